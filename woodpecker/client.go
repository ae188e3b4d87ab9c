// Package woodpecker is the client library of Woodpecker, a write-ahead log
// whose data lives in object storage (or a local directory) and whose
// metadata lives in etcd.
//
// A Client opens Logs. A Log has at most one Writer at a time, chosen by
// epoch: opening a writer at epoch E fences every writer of a lower epoch
// (and any earlier writer of epoch E), seals what it left, and starts a new
// segment. Readers follow a log from any position, including its tail.
//
// Append returns once the entry is durable: in object storage (one
// create-only object per block) or fsynced in a local segment file.
package woodpecker

import (
	"context"
	"crypto/tls"
	"sync"
	"time"

	"github.com/cockroachdb/errors"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/quorum"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/storage"
)

// Option adjusts how New builds a client.
type Option func(*clientOptions)

type clientOptions struct {
	etcd    *clientv3.Client
	store   objstore.Store
	quorum  quorum.Transport
	logger  *zap.Logger
	metrics Metrics
}

// WithEtcdClient makes the client use cli instead of dialling
// cfg.Etcd.Endpoints. The caller keeps ownership and closes cli after the
// client.
func WithEtcdClient(cli *clientv3.Client) Option { return func(o *clientOptions) { o.etcd = cli } }

// WithQuorumTransport makes a QuorumBuffer client reach its LogStores
// through t instead of dialling them over gRPC itself (tests wrap the gRPC
// transport in quorum.Faults this way). The caller keeps ownership.
func WithQuorumTransport(t quorum.Transport) Option { return func(o *clientOptions) { o.quorum = t } }

// WithObjectStore makes the client keep log data in store instead of the
// store cfg.Storage describes. The caller keeps ownership.
func WithObjectStore(store objstore.Store) Option {
	return func(o *clientOptions) { o.store = store }
}

// WithLogger sets the logger (default: none).
func WithLogger(l *zap.Logger) Option { return func(o *clientOptions) { o.logger = l } }

// Client is the entry point: it creates, opens, lists and deletes logs. It
// is safe for concurrent use. Close it when done.
type Client struct {
	cfg     options.Config
	meta    *meta.Store
	backend segment.Backend
	hub     *tailHub
	// budget bounds what all the client's writers hold together
	// (writer.clientMemoryBudgetBytes).
	budget  *segment.Budget
	logger  *zap.Logger
	metrics Metrics // nil: measure nothing (metrics.go)

	ownEtcd   *clientv3.Client
	storage   *storage.Storage
	weakFence error    // set when the store cannot fence and config requires it
	gc        gcRunner // garbage collection (retention.go)

	mu     sync.Mutex
	closed bool
}

// New validates cfg, connects to etcd and the storage, and checks that the
// storage honours create-only writes. It does not create logs.
func New(ctx context.Context, cfg options.Config, opts ...Option) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var o clientOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = zap.NewNop()
	}
	c := &Client{cfg: cfg, hub: newTailHub(), logger: o.logger, metrics: o.metrics,
		budget: segment.NewBudget(cfg.Writer.ClientMemoryBudgetBytes)}
	cli := o.etcd
	if cli == nil {
		var err error
		if cli, err = dialEtcd(cfg.Etcd); err != nil {
			return nil, err
		}
		c.ownEtcd = cli
	}
	c.meta = meta.New(cli, cfg.Etcd.RootPath, meta.WithCallTimeout(cfg.Etcd.RequestTimeout))
	if err := c.openStorage(ctx, o); err != nil {
		c.closeEtcd()
		return nil, err
	}
	if cfg.Retention.GCEnabled {
		if err := c.startGC(); err != nil {
			c.closeStore()
			c.closeEtcd()
			return nil, errors.Wrap(err, "start garbage collection: check retention")
		}
	}
	return c, nil
}

// Settings of the etcd connection beyond the configuration. A request
// waits for a connection (the etcd client's default) until its deadline
// (etcd.requestTimeout), so the connection must come back soon after etcd
// does: reconnection attempts start again at once and back off to at most
// etcdMaxReconnectDelay, not gRPC's two minutes. Keepalive pings, sent
// while requests are pending, detect a server that stopped answering
// without closing the connection.
const (
	etcdMaxReconnectDelay  = 2 * time.Second
	etcdKeepAliveTime      = 10 * time.Second
	etcdKeepAliveTimeout   = 5 * time.Second
	etcdReconnectBaseDelay = 100 * time.Millisecond
)

func dialEtcd(cfg options.EtcdConfig) (*clientv3.Client, error) {
	ecfg := clientv3.Config{
		Endpoints:            cfg.Endpoints,
		DialTimeout:          cfg.DialTimeout,
		DialKeepAliveTime:    etcdKeepAliveTime,
		DialKeepAliveTimeout: etcdKeepAliveTimeout,
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{BaseDelay: etcdReconnectBaseDelay, Multiplier: 1.6, Jitter: 0.2,
				MaxDelay: etcdMaxReconnectDelay},
			MinConnectTimeout: cfg.DialTimeout,
		})},
		Username: cfg.Username,
		Password: cfg.Password,
		Logger:   zap.NewNop(),
	}
	if cfg.TLS.Enabled {
		tc, err := etcdTLS(cfg.TLS)
		if err != nil {
			return nil, err
		}
		ecfg.TLS = tc
	}
	cli, err := clientv3.New(ecfg)
	if err != nil {
		return nil, errors.Wrapf(err, "connect to etcd at %v: check etcd.endpoints", cfg.Endpoints)
	}
	return cli, nil
}

func etcdTLS(t options.EtcdTLS) (*tls.Config, error) {
	return buildTLS(t.CAFile, t.CertFile, t.KeyFile, t.ServerName, t.InsecureSkipVerify)
}

func (c *Client) openStorage(ctx context.Context, o clientOptions) error {
	opts := []storage.Option{storage.WithEtcd(c.meta.Client()), storage.WithIndex(c.meta, c.logger)}
	if m, ok := o.metrics.(SharedObjectMetrics); ok {
		opts = append(opts, storage.WithStreamMetrics(m))
	}
	if o.store != nil {
		opts = append(opts, storage.WithStore(o.store))
	}
	if o.quorum != nil {
		opts = append(opts, storage.WithQuorumTransport(o.quorum))
	}
	st, err := storage.Open(ctx, c.cfg, opts...)
	if err != nil {
		return err
	}
	c.storage, c.backend = st, st.Backend
	if st.Store == nil {
		return nil // local storage: create-only files need no probe
	}
	if err := objstore.ProbeConditionalWrite(ctx, st.Store); err != nil {
		if !errors.Is(err, objstore.ErrConditionalWriteUnsupported) {
			c.closeStore()
			return errors.Wrap(err, "probe object store")
		}
		if c.cfg.Storage.Fencing.ConditionalWrite != options.ConditionalWriteAllowEtcdOnly {
			c.weakFence = errors.Wrap(walerr.ErrWeakFencing,
				"the object store ignores If-None-Match: *, so a zombie writer could overwrite blocks; "+
					"use a store that supports conditional writes, or set storage.fencing.conditionalWrite: allowEtcdOnly")
		}
		c.logger.Warn("object store ignores create-only writes: writers are fenced by etcd only", zap.Error(err))
	}
	return nil
}

func (c *Client) closeStore() {
	if c.storage != nil {
		_ = c.storage.Close()
	}
}

func (c *Client) closeEtcd() {
	if c.ownEtcd != nil {
		_ = c.ownEtcd.Close()
	}
}

func (c *Client) usable() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.Wrap(walerr.ErrClosed, "client")
	}
	return nil
}

// Config returns the configuration the client runs with.
func (c *Client) Config() options.Config { return c.cfg }

// CreateLog creates an empty log. It fails with ErrLogExists when the name
// is taken and ErrInvalidName when the name is empty, too long, or holds a
// slash or control characters.
func (c *Client) CreateLog(ctx context.Context, name string) error {
	if err := c.usable(); err != nil {
		return err
	}
	_, err := c.meta.CreateLog(ctx, name)
	return err
}

// OpenLog returns a handle on an existing log, or ErrLogNotFound.
func (c *Client) OpenLog(ctx context.Context, name string) (*Log, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	info, err := c.meta.GetLog(ctx, name)
	if err != nil {
		return nil, err
	}
	return &Log{c: c, info: info}, nil
}

// LogExists reports whether the log exists.
func (c *Client) LogExists(ctx context.Context, name string) (bool, error) {
	if err := c.usable(); err != nil {
		return false, err
	}
	_, err := c.meta.GetLog(ctx, name)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, walerr.ErrLogNotFound):
		return false, nil
	default:
		return false, err
	}
}

// ListLogs returns the names of all logs, sorted.
func (c *Client) ListLogs(ctx context.Context) ([]string, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	return c.meta.ListLogs(ctx)
}

// DeleteLog deletes the log: its name is free at once, its writer is fenced,
// and its data is left to garbage collection. ErrLogNotFound when missing.
func (c *Client) DeleteLog(ctx context.Context, name string) error {
	if err := c.usable(); err != nil {
		return err
	}
	return c.meta.DeleteLog(ctx, name)
}

// Close releases the client's connections. Writers and readers opened from
// it must be closed first. Close is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	c.stopGC()
	c.closeStore()
	c.closeEtcd()
	return nil
}

// SetEtcdEndpoints points the client's etcd connection at endpoints, for
// an etcd that moved to another address: the woodpecker command's embedded
// etcd does when another process takes it over on another port. Requests
// waiting for a connection go to the new address. It fails when the
// caller passed its own etcd client (WithEtcdClient): move that one.
func (c *Client) SetEtcdEndpoints(endpoints ...string) error {
	if c.ownEtcd == nil {
		return errors.New("set etcd endpoints: the client uses the etcd client it was given; set its endpoints")
	}
	if len(endpoints) == 0 {
		return errors.New("set etcd endpoints: none given")
	}
	c.ownEtcd.SetEndpoints(endpoints...)
	return nil
}

// Backend returns the segment storage the client reads and writes, for
// tools that inspect or verify segments.
func (c *Client) Backend() segment.Backend { return c.backend }
