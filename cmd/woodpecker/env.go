package main

import (
	"context"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/errors"
	"go.uber.org/zap"

	"github.com/woodpecker-wal/woodpecker/internal/embedetcd"
	"github.com/woodpecker-wal/woodpecker/internal/logging"
	"github.com/woodpecker-wal/woodpecker/internal/metrics"
	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/storage"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// backendMemory is the bench-only storage kept in this process's memory.
const backendMemory = "memory"

var _ woodpecker.Metrics = (*metrics.Metrics)(nil)

// env is what a command connected to: etcd (perhaps embedded), the
// storage, the client, the logger and the metrics. Close releases it all.
type env struct {
	r       resolved
	log     *zap.Logger
	metrics *metrics.Metrics
	client  *woodpecker.Client

	// store is the object store the client writes through (nil for
	// local storage); rawStore is the same store without instrumentation.
	store    objstore.Store
	rawStore objstore.Store
	// backend reads segments for the segment commands: a FileBackend on
	// the same directory, or an ObjectBackend on the same store.
	backend segment.Backend

	etcd       *embedetcd.Server
	etcdUser   atomic.Pointer[woodpecker.Client] // follows the embedded etcd when it moves
	metricsSrv *metrics.Server
	closers    []func() error
}

// connectOptions adjust connect.
type connectOptions struct {
	// backend overrides storage.type: local, minio, s3 or memory.
	backend string
	// wrap, when set, wraps the object store the client writes through.
	wrap func(objstore.Store) objstore.Store
	// configure, when set, adjusts the loaded configuration (a command's
	// own flags, such as bench --batch-window), which is then validated
	// again.
	configure func(*options.Config)
}

// connect loads the configuration, starts or reaches etcd and the storage,
// and opens a client. Unreachable servers fail fast, marked errUnavailable.
// The env is closed by run when the command ends.
func (a *app) connect(ctx context.Context, o connectOptions) (*env, error) {
	r, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	if o.configure != nil {
		o.configure(&r.cfg)
		if err := r.cfg.Validate(); err != nil {
			return nil, err
		}
	}
	lg, err := logging.New(r.cfg.Log, a.stderr)
	if err != nil {
		return nil, err
	}
	e := &env{r: r, log: lg, metrics: metrics.New()}
	a.env = e
	if err := e.startEtcd(ctx); err != nil {
		return nil, err
	}
	// Served once etcd runs: a scraper (or a test) that gets an answer
	// knows the process is connected.
	if r.cfg.Metrics.Addr != "" {
		srv, err := metrics.Serve(r.cfg.Metrics.Addr, e.metrics.Handler())
		if err != nil {
			return nil, walerr.Mark(err, errUsage)
		}
		e.metricsSrv = srv
		lg.Info("serving metrics", zap.String("addr", "http://"+srv.Addr()+"/metrics"))
	}
	if o.backend != "" {
		if err := e.overrideBackend(o.backend); err != nil {
			return nil, err
		}
	}
	// The client reports appends, block writes, seals, fencing and reads
	// itself, on every backend; the instrumented store adds the fence
	// events only an object store sees.
	opts := []woodpecker.Option{woodpecker.WithLogger(lg), woodpecker.WithMetrics(e.metrics)}
	if err := e.openStorage(ctx, o); err != nil {
		return nil, err
	}
	if e.store != nil {
		opts = append(opts, woodpecker.WithObjectStore(e.store))
	}
	cctx, cancel := context.WithTimeout(ctx, r.cfg.Etcd.DialTimeout+r.cfg.Storage.RequestTimeout)
	defer cancel()
	cli, err := woodpecker.New(cctx, e.r.cfg, opts...)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = walerr.Mark(err, errUnavailable)
		}
		return nil, err
	}
	e.client = cli
	if e.etcd != nil {
		e.etcdUser.Store(cli)
		// The embedded etcd may have moved while the client was made.
		if ep := e.etcd.Endpoint(); ep != e.r.cfg.Etcd.Endpoints[0] {
			e.etcdMoved(ep)
		}
	}
	e.metrics.SetGCSource(func() metrics.GCCounts {
		g := cli.GCMetrics()
		return metrics.GCCounts{Passes: g.Passes, Errors: g.Errors,
			DeletedSegments: g.DeletedSegments, DeletedObjects: g.DeletedObjects, DeletedBytes: g.DeletedBytes,
			OrphanObjects: g.OrphanObjects, RetiredObjects: g.RetiredObjects, CollectedLogs: g.CollectedLogs,
			CompactedSegments: g.CompactedSegments, CompactionObjects: g.CompactionObjects, CompactionBytes: g.CompactionBytes}
	})
	return e, nil
}

// startEtcd starts the embedded etcd, or checks that a configured one
// accepts connections.
func (e *env) startEtcd(ctx context.Context) error {
	if !e.r.embedded {
		return probe(ctx, "etcd", e.r.cfg.Etcd.Endpoints, e.r.cfg.Etcd.DialTimeout,
			"check etcd.endpoints (--etcd, WOODPECKER_ETCD_ENDPOINTS) and that etcd runs")
	}
	// etcd's own log is noisy, even at warn level (a line per request,
	// errors at every clean stop): show it only when debugging. Failures to
	// start come back as errors.
	lg := zap.NewNop()
	if e.r.cfg.Log.Level == options.LogDebug {
		lg = e.log.Named("etcd")
	}
	dir := e.r.etcdDir()
	srv, err := embedetcd.Open(ctx, embedetcd.Config{Dir: dir, Logger: lg,
		// When the process hosting the embedded etcd ends, this one takes
		// over, on the same address when it can.
		OnEndpoint: e.etcdMoved,
		OnTakeOver: func(ep string) {
			e.log.Info("the process that hosted the embedded etcd ended: this process hosts it now, until it ends",
				zap.String("dir", dir), zap.String("endpoint", ep))
		},
		OnLost: func(err error) {
			e.log.Error("the process that hosted the embedded etcd ended, and this process cannot take over: "+
				"requests to etcd fail at their deadline, and what they were doing has an unknown outcome; "+
				"run the command again, which starts the embedded etcd or says why it cannot",
				zap.String("dir", dir), zap.Error(err))
		},
	})
	if err != nil {
		return errors.Wrapf(err, "start the embedded etcd in %s", e.r.etcdDir())
	}
	e.etcd = srv
	e.r.cfg.Etcd.Endpoints = []string{srv.Endpoint()}
	e.log.Debug("embedded etcd", zap.String("endpoint", srv.Endpoint()), zap.Bool("shared", srv.Shared()))
	return nil
}

// closeGrace is how long closing may go on after an interrupt: the writer's
// pending appends and seal get that long to finish, so that the command
// can still report what it knows, within interruptGrace.
const closeGrace = 3 * time.Second

// closeContext is the context to close pending work with (a writer): it
// outlives ctx, so that an interrupted command still finishes what it can
// and reports honestly, but ends closeGrace after ctx is canceled, and
// after limit in any case.
func closeContext(ctx context.Context, limit time.Duration) (context.Context, context.CancelFunc) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), limit)
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(closeGrace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-cctx.Done():
		}
	})
	return cctx, func() {
		stop()
		cancel()
	}
}

// etcdMoved points the client at the embedded etcd's new endpoint: another
// process (or this one) took it over on another port.
func (e *env) etcdMoved(ep string) {
	e.log.Info("the embedded etcd moved", zap.String("endpoint", ep))
	if c := e.etcdUser.Load(); c != nil {
		if err := c.SetEtcdEndpoints(ep); err != nil {
			e.log.Warn("cannot follow the embedded etcd", zap.Error(err))
		}
	}
}

// overrideBackend makes the storage the one named (bench --backend).
func (e *env) overrideBackend(name string) error {
	cfg := &e.r.cfg.Storage
	switch name {
	case backendMemory:
		return nil
	case string(options.StorageLocal):
		if cfg.Type != options.StorageLocal {
			cfg.Type = options.StorageLocal
			if e.r.embedded {
				cfg.RootPath = e.r.logsDir()
			}
		}
	case string(options.StorageMinIO), string(options.StorageS3):
		if e.r.embedded {
			return usagef("--backend %s needs object store settings: give --config, WOODPECKER_STORAGE_* or --storage-endpoint (and etcd: --etcd)", name)
		}
		cfg.Type = options.StorageType(name)
	default:
		return usagef("--backend %q: want local, minio, s3 or memory", name)
	}
	return e.r.cfg.Validate()
}

// openStorage opens the storage as the client does (storage.Open): the
// object store, instrumented and wrapped as o says, that the client will
// write through, or the local directory. The segment commands read
// through e.backend.
func (e *env) openStorage(ctx context.Context, o connectOptions) error {
	cfg := e.r.cfg
	opts := []storage.Option{storage.WithWrap(func(s objstore.Store) objstore.Store {
		s = metrics.InstrumentStore(s, e.metrics)
		if o.wrap != nil {
			s = o.wrap(s)
		}
		return s
	})}
	switch s := cfg.Storage; {
	case o.backend == backendMemory:
		opts = append(opts, storage.WithStore(memstore.New()))
	case s.Type != options.StorageLocal && s.Endpoint != "":
		if err := probe(ctx, "the object store", []string{s.Endpoint}, cfg.Etcd.DialTimeout,
			"check storage.endpoint (--storage-endpoint, WOODPECKER_STORAGE_ENDPOINT) and that the server runs"); err != nil {
			return err
		}
	}
	octx, cancel := context.WithTimeout(ctx, cfg.Storage.RequestTimeout)
	defer cancel()
	// The client puts its own shared-object stream (writer.batchWindow)
	// in front of the store it is given, with the etcd index it owns;
	// this storage is the store itself and the per-log backend of the
	// segment commands, which storage.Open refuses to give with a window
	// but no index.
	cfg.Writer.BatchWindow = 0
	st, err := storage.Open(octx, cfg, opts...)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = walerr.Mark(err, errUnavailable)
		}
		return err
	}
	e.closers = append(e.closers, st.Close)
	e.backend, e.store, e.rawStore = st.Backend, st.Store, st.Raw
	return nil
}

// probe checks that at least one of endpoints accepts a TCP connection
// within timeout, so that an unreachable server fails in moments with a
// clear message instead of after request timeouts.
func probe(ctx context.Context, what string, endpoints []string, timeout time.Duration, hint string) error {
	var lastErr error
	for _, ep := range endpoints {
		host := ep
		if strings.Contains(ep, "://") {
			if u, err := url.Parse(ep); err == nil {
				host = u.Host
			}
		}
		if _, _, err := net.SplitHostPort(host); err != nil {
			continue // no port: leave it to the client, which knows the defaults
		}
		d := net.Dialer{Timeout: timeout}
		conn, err := d.DialContext(ctx, "tcp", host)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		lastErr = err
	}
	if lastErr == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return walerr.Mark(errors.Newf("cannot reach %s at %s (%s): %s",
		what, strings.Join(endpoints, ","), dialReason(lastErr), hint), errUnavailable)
}

// dialReason shortens a dial error to its cause ("connection refused").
func dialReason(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}

// Close releases everything connect opened: the metrics server first (it
// reads the client), then the client, the stores and etcd.
func (e *env) Close() error {
	var errs []error
	if e.metricsSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, e.metricsSrv.Close(ctx))
		cancel()
	}
	if e.client != nil {
		errs = append(errs, e.client.Close())
	}
	for i := len(e.closers) - 1; i >= 0; i-- {
		errs = append(errs, e.closers[i]())
	}
	if e.etcd != nil {
		errs = append(errs, e.etcd.Close())
	}
	_ = e.log.Sync() // fails on a terminal; nothing to do about it
	return errors.Join(errs...)
}
