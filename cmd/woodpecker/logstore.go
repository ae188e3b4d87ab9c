package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/woodpecker-wal/woodpecker/internal/logging"
	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/internal/metrics"
	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/quorum"
	"github.com/woodpecker-wal/woodpecker/quorum/logstore"
	"github.com/woodpecker-wal/woodpecker/quorum/logstore/journal"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/shared"
)

// How a LogStore stays registered and stops.
const (
	// logstoreStopGrace bounds the graceful stop of the gRPC server and
	// logstoreDeregisterTimeout the lease revocation; together they stay
	// within interruptGrace.
	logstoreStopGrace         = 2 * time.Second
	logstoreDeregisterTimeout = 2 * time.Second
	// logstoreRegisterRetry is the wait before registering again after
	// the lease was lost (etcd unreachable for longer than its TTL).
	logstoreRegisterRetry = time.Second
	// defaultLogstoreBudgetBlocks bounds the blocks a LogStore holds
	// (--budget-blocks). Each held block is a PUT a seal or a recovery
	// waits for when the uploader lags: a writer of small blocks makes
	// them faster than object storage takes one PUT each (thousands
	// behind, a seal took a minute; TestLogStoreKills: with 4096 a kill
	// cycle took 30 s, with 1024 7 s). At a few hundred PUTs a second this
	// bounds that wait to seconds; writers above it wait for uploads
	// (budget backpressure), which small-block writers do anyway in the
	// long run: the uploads set their pace.
	defaultLogstoreBudgetBlocks = 1024
	// defaultLogstoreBatchWindow paces the shared objects a LogStore
	// writes (--batch-window). The window is off the ack path: it delays
	// the upload watermark, which a seal waits for and which frees the
	// replicas' memory; at 20 ms a LogStore makes at most 50 objects a
	// second plus one per writer.objectBytes, whatever its logs.
	defaultLogstoreBatchWindow = 20 * time.Millisecond
)

type logstoreFlags struct {
	addr, advertise, zone, id, budget string
	dataDir                           string
	budgetBlocks                      int64
	leaseTTL, batchWindow             time.Duration
	tlsCert, tlsKey, tlsClientCA      string
}

func (a *app) logstoreCommand() *cobra.Command {
	var f logstoreFlags
	cmd := &cobra.Command{
		Use:   "logstore",
		Short: "Run a LogStore server: one replica of QuorumBuffer mode",
		Long: `logstore runs one LogStore server, a replica of QuorumBuffer mode (see
docs/quorum.md): it holds the blocks writers send it in memory, within
--budget bytes, and uploads them to the object store configured in storage.*,
under the same keys the writers' object backend uses.

It registers in etcd (etcd.*, under etcd.rootPath) with its address and zone,
under a lease that it keeps alive; when it stops, or its lease expires, the
registration goes. It needs etcd and an object store (storage.type minio or s3):
the embedded default and local storage cannot serve a quorum.

With --data-dir it is durable: it syncs each block it takes and each fence it
answers to a journal in that directory before it answers, and replays it when
it starts again, so that a crash of the process or the machine loses nothing it
acknowledged. Without it blocks are held in memory only, and an acknowledged
entry survives as long as one of the two replicas that hold it does (or until
it is uploaded). Keep the id (--id) with the directory: a directory belongs to
one LogStore.

It serves gRPC with the standard health service and reflection, and metrics
at metrics.addr. Once registered it prints "logstore ID listening on ADDR" on
stdout. SIGINT or SIGTERM deregisters it and stops it gracefully.`,
		Example: `  woodpecker --config cluster.yaml logstore --addr 10.0.0.5:7070 --zone a --budget 2GiB
  woodpecker --config cluster.yaml logstore --addr 127.0.0.1:0 --id ls1
  woodpecker --config cluster.yaml logstore --addr 10.0.0.5:7070 --id ls1 --data-dir /var/lib/woodpecker/ls1`,
		Args: args(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runLogstore(cmd.Context(), f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", "127.0.0.1:0", "host:port to serve gRPC on (port 0: any free port)")
	fl.StringVar(&f.advertise, "advertise-addr", "", "host:port clients dial, as registered (default: the address served, with the host name for an unspecified host)")
	fl.StringVar(&f.zone, "zone", "", "failure domain: ensembles spread over zones")
	fl.StringVar(&f.id, "id", "", "node id in the registry, unique in the cluster (default: the advertised address)")
	fl.StringVar(&f.budget, "budget", "512MiB", "bytes of blocks held in memory at most (e.g. 512MiB, 2GiB)")
	fl.Int64Var(&f.budgetBlocks, "budget-blocks", defaultLogstoreBudgetBlocks, "blocks held in memory at most (0: no limit but --budget): bounds the uploads a seal or a recovery makes up when uploads lag, and so their time")
	fl.StringVar(&f.dataDir, "data-dir", "", "journal directory: blocks and fences are synced there before they are acknowledged, and replayed at start (empty: memory only)")
	fl.DurationVar(&f.batchWindow, "batch-window", defaultLogstoreBatchWindow, "pace of the shared objects this LogStore writes for segments placed in them (clients with writer.batchWindow > 0): one object per window plus one per writer.objectBytes (0: as fast as uploads go)")
	fl.DurationVar(&f.leaseTTL, "lease-ttl", 10*time.Second, "TTL of the registration's etcd lease: how soon a dead node is forgotten")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "serve TLS with this certificate (PEM; needs --tls-key)")
	fl.StringVar(&f.tlsKey, "tls-key", "", "key of --tls-cert (PEM)")
	fl.StringVar(&f.tlsClientCA, "tls-client-ca", "", "require client certificates signed by this CA (PEM; needs --tls-cert)")
	return cmd
}

func (a *app) runLogstore(ctx context.Context, f logstoreFlags) error {
	budget, err := options.ParseSize(f.budget)
	if err != nil || budget <= 0 {
		return usagef("--budget %q: want a size such as 512MiB, above 0", f.budget)
	}
	if f.budgetBlocks < 0 {
		return usagef("--budget-blocks %d: want 0 (no limit) or more", f.budgetBlocks)
	}
	if f.batchWindow < 0 {
		return usagef("--batch-window %s: want 0 or more", f.batchWindow)
	}
	if f.leaseTTL < time.Second {
		return usagef("--lease-ttl %s: want at least 1s", f.leaseTTL)
	}
	tc, err := logstoreTLS(f)
	if err != nil {
		return err
	}
	r, err := a.loadConfig()
	if err != nil {
		return err
	}
	if r.embedded || r.cfg.Storage.Type == options.StorageLocal {
		return usagef("woodpecker logstore needs etcd and an object store (storage.type minio or s3): " +
			"give --config, WOODPECKER_ETCD_* and WOODPECKER_STORAGE_*, or --etcd and --storage flags")
	}
	lg, err := logging.New(r.cfg.Log, a.stderr)
	if err != nil {
		return err
	}
	e := &env{r: r, log: lg, metrics: metrics.New()}
	a.env = e // closed by run
	if err := e.startEtcd(ctx); err != nil {
		return err
	}
	if r.cfg.Metrics.Addr != "" {
		srv, err := metrics.Serve(r.cfg.Metrics.Addr, e.metrics.Handler())
		if err != nil {
			return walerr.Mark(err, errUsage)
		}
		e.metricsSrv = srv
		lg.Info("serving metrics", zap.String("addr", "http://"+srv.Addr()+"/metrics"))
	}
	if err := e.openStorage(ctx, connectOptions{}); err != nil {
		return err
	}
	if err := checkCreateOnly(ctx, e); err != nil {
		return err
	}
	cli, err := dialLogstoreEtcd(r.cfg.Etcd)
	if err != nil {
		return err
	}
	e.closers = append(e.closers, cli.Close)

	var jdir *journal.Dir
	if f.dataDir != "" {
		if jdir, err = journal.Open(nil, f.dataDir); err != nil {
			return usagef("--data-dir %s: %v", f.dataDir, err)
		}
	}

	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return usagef("--addr %s: %v", f.addr, err)
	}
	defer ln.Close() // Serve closes it too; this covers the failures before
	node := quorum.Node{ID: f.id, Addr: f.advertise, Zone: f.zone}
	if node.Addr == "" {
		node.Addr = advertised(ln.Addr())
	}
	if node.ID == "" {
		node.ID = node.Addr
	}
	reg, err := registerLogstore(ctx, cli, r.cfg.Etcd, node, f.leaseTTL, lg)
	if err != nil {
		return err
	}
	defer reg.deregister()
	remembers := reg.revision // the replica remembers what it was sent from then on
	if jdir != nil {
		if remembers, err = jdir.Revision(node.ID, reg.revision); err != nil {
			return usagef("--data-dir %s: %v", f.dataDir, err)
		}
	}

	up := logstoreUploader(e.store, cli, r.cfg, f.batchWindow, lg, e.metrics)
	defer up.Close() // after srv.Close, whose uploads use it
	srv, err := logstore.New(logstore.Config{
		NodeID: node.ID, Addr: node.Addr, Zone: node.Zone, BudgetBytes: budget, BudgetBlocks: f.budgetBlocks,
		Store: e.store, Root: "", Shared: up, // the root of the clients' object backend
		RegisteredRevision: remembers, Journal: jdir, StopTimeout: logstoreStopGrace, TLS: tc,
		Logger: lg, Registerer: e.metrics.Registry(),
	})
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(a.stdout, "logstore %s listening on %s\n", node.ID, node.Addr)

	select {
	case <-ctx.Done():
		lg.Info("logstore stopping", zap.String("id", node.ID))
	case err := <-served: // serving failed
		served <- err
	}
	reg.deregister() // first, so that no writer places a new segment here
	cerr := srv.Close()
	return errors.CombineErrors(<-served, cerr)
}

// logstoreUploader is a LogStore's shared object stream: the blocks of
// every segment placed in shared objects go into objects of up to
// writer.objectBytes, paced by window, committed under their writers'
// tokens in etcd. The caller closes it after the server.
func logstoreUploader(store objstore.Store, cli *clientv3.Client, cfg options.Config, window time.Duration, lg *zap.Logger,
	m shared.StreamMetrics) *shared.Uploader {
	w := cfg.Writer
	return shared.NewUploader(segment.NewObjectBackend(store, "", w.MaxInflightUploads), meta.New(cli, cfg.Etcd.RootPath),
		shared.StreamConfig{Window: window, ObjectSize: w.ObjectBytes, MaxInflight: w.MaxInflightObjects,
			RetryTimeout: w.UploadRetry.TotalTimeout, RetryInitial: w.UploadRetry.InitialBackoff,
			RetryMax: w.UploadRetry.MaxBackoff, Metrics: m}, lg)
}

// checkCreateOnly checks that the object store honours create-only
// writes, with the same policy as the client (storage.fencing).
func checkCreateOnly(ctx context.Context, e *env) error {
	err := objstore.ProbeConditionalWrite(ctx, e.rawStore)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, objstore.ErrConditionalWriteUnsupported):
		return errors.Wrap(err, "probe object store")
	case e.r.cfg.Storage.Fencing.ConditionalWrite == options.ConditionalWriteAllowEtcdOnly:
		e.log.Warn("object store ignores create-only writes: uploads cannot be fenced", zap.Error(err))
		return nil
	}
	return errors.Wrap(err, "the object store ignores If-None-Match: *, so a fenced writer's blocks could overwrite "+
		"recovered ones; use a store that supports conditional writes, or set storage.fencing.conditionalWrite: allowEtcdOnly")
}

// advertised returns the address clients dial for a listener's address:
// an unspecified host (0.0.0.0, ::) is replaced by the host name.
func advertised(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return addr.String()
	}
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	return net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}

// logstoreRegistration keeps a LogStore's registry entry alive under a
// lease, and registers again when the lease is lost.
type logstoreRegistration struct {
	cli      *clientv3.Client
	log      *zap.Logger
	root     string
	node     quorum.Node
	ttl      time.Duration
	timeout  time.Duration
	revision int64 // of the first registration: the replica's memory dates from it

	cancel context.CancelFunc
	done   chan struct{} // closed when keep ends

	mu    sync.Mutex
	lease clientv3.LeaseID
	once  sync.Once
}

// registerLogstore registers node and keeps the registration alive until
// deregister.
func registerLogstore(ctx context.Context, cli *clientv3.Client, ec options.EtcdConfig, node quorum.Node, ttl time.Duration,
	lg *zap.Logger) (*logstoreRegistration, error) {
	r := &logstoreRegistration{cli: cli, log: lg, root: ec.RootPath, node: node, ttl: ttl, timeout: ec.RequestTimeout,
		done: make(chan struct{})}
	lease, rev, err := r.register(ctx)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = walerr.Mark(err, errUnavailable)
		}
		return nil, errors.Wrapf(err, "register logstore %s in etcd", node.ID)
	}
	r.lease, r.revision = lease, rev
	kctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	go r.keep(kctx, lease)
	return r, nil
}

// register grants a lease and puts the node under it.
func (r *logstoreRegistration) register(ctx context.Context) (clientv3.LeaseID, int64, error) {
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	grant, err := r.cli.Grant(cctx, int64((r.ttl+time.Second-1)/time.Second))
	if err != nil {
		return 0, 0, err
	}
	rev, err := quorum.Register(cctx, r.cli, r.root, r.node, grant.ID)
	if err != nil {
		return 0, 0, err
	}
	return grant.ID, rev, nil
}

// keep renews the lease until ctx ends; when the lease is lost it
// registers again, under a new lease.
func (r *logstoreRegistration) keep(ctx context.Context, lease clientv3.LeaseID) {
	defer close(r.done)
	for {
		ch, err := r.cli.KeepAlive(ctx, lease)
		if err == nil {
			for range ch { // drained until the lease is lost or ctx ends
			}
		}
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("logstore registration lost (etcd unreachable for longer than the lease TTL?): registering again",
			zap.String("id", r.node.ID), zap.Error(err))
		for {
			t := time.NewTimer(logstoreRegisterRetry)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			var rerr error
			if lease, _, rerr = r.register(ctx); rerr == nil {
				r.mu.Lock()
				r.lease = lease
				r.mu.Unlock()
				break
			}
			r.log.Debug("register logstore again", zap.Error(rerr))
		}
	}
}

// deregister stops renewing the lease and revokes it, which deletes the
// registry entry at once. Idempotent; failures are logged (the lease then
// expires within its TTL).
func (r *logstoreRegistration) deregister() {
	r.once.Do(func() {
		r.cancel()
		<-r.done
		r.mu.Lock()
		lease := r.lease
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), logstoreDeregisterTimeout)
		defer cancel()
		if _, err := r.cli.Revoke(ctx, lease); err != nil {
			r.log.Warn("deregister logstore: its registration expires with its lease", zap.String("id", r.node.ID),
				zap.Duration("ttl", r.ttl), zap.Error(err))
			return
		}
		r.log.Info("logstore deregistered", zap.String("id", r.node.ID))
	})
}

// dialLogstoreEtcd connects to etcd as etcd.* says, for the registry.
func dialLogstoreEtcd(ec options.EtcdConfig) (*clientv3.Client, error) {
	cfg := clientv3.Config{Endpoints: ec.Endpoints, DialTimeout: ec.DialTimeout,
		Username: ec.Username, Password: ec.Password, Logger: zap.NewNop()}
	if ec.TLS.Enabled {
		tc := &tls.Config{ServerName: ec.TLS.ServerName, InsecureSkipVerify: ec.TLS.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // asked for by etcd.tls.insecureSkipVerify
		if ec.TLS.CAFile != "" {
			pool, err := certPool(ec.TLS.CAFile, "etcd.tls.caFile")
			if err != nil {
				return nil, err
			}
			tc.RootCAs = pool
		}
		if ec.TLS.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(ec.TLS.CertFile, ec.TLS.KeyFile)
			if err != nil {
				return nil, errors.Wrap(err, "etcd.tls.certFile / keyFile")
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		cfg.TLS = tc
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, errors.Wrapf(err, "connect to etcd at %v: check etcd.endpoints", ec.Endpoints)
	}
	return cli, nil
}

// logstoreTLS returns the server's TLS configuration from the flags, or
// nil for plaintext.
func logstoreTLS(f logstoreFlags) (*tls.Config, error) {
	switch {
	case f.tlsCert == "" && f.tlsKey == "" && f.tlsClientCA == "":
		return nil, nil
	case f.tlsCert == "" || f.tlsKey == "":
		return nil, usagef("--tls-cert and --tls-key go together (and --tls-client-ca needs them)")
	}
	cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
	if err != nil {
		return nil, usagef("--tls-cert %s / --tls-key %s: %v", f.tlsCert, f.tlsKey, err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if f.tlsClientCA != "" {
		pool, err := certPool(f.tlsClientCA, "--tls-client-ca")
		if err != nil {
			return nil, walerr.Mark(err, errUsage)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// certPool reads a PEM CA bundle; what names the setting for messages.
func certPool(path, what string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, errors.Wrapf(err, "%s: read %s", what, path)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.Newf("%s: %s holds no PEM certificate", what, path)
	}
	return pool, nil
}
