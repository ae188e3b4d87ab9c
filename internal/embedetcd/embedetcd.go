// Package embedetcd runs an etcd server inside the current process, so that
// the woodpecker command works on a machine where nothing is installed.
//
// Open starts a single-member server on 127.0.0.1 with a port the kernel
// picks, keeping its data in a directory (the woodpecker command uses
// ./data/etcd). A directory is served by one process at a time: Open takes
// an exclusive lock on it, and a second process that opens the same
// directory while the first runs does not start a server but joins the
// running one (Server.Shared reports it), through the endpoint the first
// wrote beside its data. So `woodpecker tail -f` in one terminal and
// `woodpecker append` in another share one etcd.
//
// A joined process is not left without etcd when the serving one ends: each
// shared handle watches the directory's lock, and the first to take it
// starts a server on the same data, on the same port when it is free, so
// that every client reconnects to the address it knows. When the port was
// taken, the new endpoint is published as usual and Config.OnEndpoint tells
// each handle's owner where etcd moved. When a handle cannot take over (the
// data cannot be used), Config.OnLost reports ErrHostGone.
//
// The server fsyncs like a production etcd: what it acknowledged survives a
// crash of the process.
package embedetcd

import (
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/errors"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/woodpecker-wal/woodpecker/internal/walerr"
)

// Files Open keeps in the directory beside etcd's own "member" folder.
const (
	// LockFile is held (flock) by the process that serves the directory.
	LockFile = "woodpecker.lock"
	// EndpointFile holds the client URL of the serving process, one line.
	EndpointFile = "endpoint"
)

// ErrBusy is returned when another process holds the directory's lock but
// has not published an endpoint within the wait allowed.
var ErrBusy = errors.New("embedded etcd directory is in use by another process")

// ErrHostGone is what Config.OnLost reports: the process that served the
// directory ended, and this process could not start a server in its place.
// Requests to etcd then fail at their deadlines; the remedy is to run the
// command again (a new process starts a server, or says why it cannot).
var ErrHostGone = errors.New("the process hosting the embedded etcd exited and this process could not take over")

// streamGrace is how long Close lets the server finish the requests in
// flight before it cuts the connections that remain: watches and lease
// keepalives of other processes never finish by themselves, and etcd alone
// would wait more than five seconds for them.
const streamGrace = time.Second

// watchInterval is how often a shared handle checks whether the serving
// process is still there (its lock) and where it serves (its endpoint).
const watchInterval = 100 * time.Millisecond

// Config says where the server keeps its data and how long to wait for it.
type Config struct {
	// Dir holds the server's data; created when missing. Required.
	Dir string
	// StartTimeout bounds the start of the server, or the wait for the
	// endpoint of the process already serving Dir (default 30s). A
	// take-over is bounded by it too.
	StartTimeout time.Duration
	// Logger receives the server's own log (default: none). The server
	// logs a lot at info level: pass a logger at warn level or above.
	Logger *zap.Logger
	// OnEndpoint, when set, is called when the endpoint of a shared handle
	// changes: this process took over serving Dir on another port, or
	// another process did. Point the etcd clients at the new endpoint.
	// Calls come from the handle's own goroutine, one at a time.
	OnEndpoint func(endpoint string)
	// OnTakeOver, when set, is called once this process has taken over
	// serving Dir: it serves it until the handle is closed.
	OnTakeOver func(endpoint string)
	// OnLost, when set, is called with an error marked ErrHostGone when the
	// serving process ended and this one could not take over. The handle
	// keeps trying, and calls OnTakeOver when it succeeds.
	OnLost func(err error)
}

// Server is a running embedded etcd server, or a handle on the one another
// process runs for the same directory. Close it when done. Its methods are
// safe for concurrent use.
type Server struct {
	cfg Config
	dir string

	mu       sync.Mutex
	endpoint string
	etcd     *etcdServer // nil while shared
	lock     *os.File    // nil while shared

	// The watch of a shared handle (nil when the process served Dir from
	// the start): stop ends it, done is closed when it has ended.
	stop context.CancelFunc
	done chan struct{}

	once sync.Once
	err  error
}

// Open starts a server for cfg.Dir, or joins the one another process runs
// for it. It fails when the server does not become ready within
// cfg.StartTimeout, when the data in Dir cannot be used, and with ErrBusy
// when another process holds Dir without publishing an endpoint.
func Open(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("embedded etcd: no data directory given")
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, errors.Wrapf(err, "embedded etcd: data directory %s", cfg.Dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, errors.Wrapf(err, "embedded etcd: create data directory %s", dir)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	lock, locked, err := tryLock(filepath.Join(dir, LockFile))
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, dir: dir}
	if !locked {
		if s.endpoint, err = join(ctx, dir); err != nil {
			return nil, err
		}
		wctx, stop := context.WithCancel(context.Background())
		s.stop, s.done = stop, make(chan struct{})
		go s.watch(wctx)
		return s, nil
	}
	e, ep, err := start(ctx, dir, cfg.Logger, "")
	if err != nil {
		_ = unlock(lock)
		return nil, err
	}
	s.etcd, s.lock, s.endpoint = e, lock, ep
	return s, nil
}

// join waits for the serving process to publish its endpoint.
func join(ctx context.Context, dir string) (string, error) {
	path := filepath.Join(dir, EndpointFile)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if ep := readEndpoint(dir); ep != "" {
			return ep, nil
		}
		select {
		case <-ctx.Done():
			return "", errors.Wrapf(ErrBusy, "%s is locked by another process that published no endpoint in %s", dir, path)
		case <-tick.C:
		}
	}
}

// readEndpoint returns the published endpoint, "" when there is none.
func readEndpoint(dir string) string {
	data, err := os.ReadFile(filepath.Join(dir, EndpointFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// watch follows the serving process of a shared handle: when its lock is
// free, the process is gone and this one takes over; meanwhile, a changed
// endpoint file means another process took over on another port.
func (s *Server) watch(ctx context.Context) {
	defer close(s.done)
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	var (
		lost    bool      // OnLost was called for the current failure
		retryAt time.Time // after a failed take-over, when to try again
		backoff = watchInterval
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if time.Now().Before(retryAt) {
			continue
		}
		lock, locked, err := tryLock(filepath.Join(s.dir, LockFile))
		if err == nil && locked {
			err = s.takeOver(ctx, lock)
			if err == nil || ctx.Err() != nil {
				return
			}
			if !lost && s.cfg.OnLost != nil {
				s.cfg.OnLost(err)
			}
			lost = true
			backoff = min(2*backoff, 5*time.Second)
			retryAt = time.Now().Add(backoff)
			continue
		}
		if ep := readEndpoint(s.dir); ep != "" {
			// Another process serves the directory (again).
			lost, backoff = false, watchInterval
			s.mu.Lock()
			changed := ep != s.endpoint
			s.endpoint = ep
			s.mu.Unlock()
			if changed && s.cfg.OnEndpoint != nil {
				s.cfg.OnEndpoint(ep)
			}
		}
	}
}

// takeOver starts a server on the directory whose lock this handle just
// took, on the port of the previous one when it is free.
func (s *Server) takeOver(ctx context.Context, lock *os.File) error {
	s.mu.Lock()
	old := s.endpoint
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StartTimeout)
	defer cancel()
	e, ep, err := start(ctx, s.dir, s.cfg.Logger, hostOf(old))
	if err != nil && ctx.Err() == nil {
		// The old port is taken, or something else went wrong with it:
		// any port will do, the endpoint file says which.
		e, ep, err = start(ctx, s.dir, s.cfg.Logger, "")
	}
	if err != nil {
		_ = unlock(lock)
		return walerr.Mark(errors.Wrapf(err, "embedded etcd in %s: take over from the process that served it", s.dir), ErrHostGone)
	}
	s.mu.Lock()
	s.etcd, s.lock, s.endpoint = e, lock, ep
	s.mu.Unlock()
	if ep != old && s.cfg.OnEndpoint != nil {
		s.cfg.OnEndpoint(ep)
	}
	if s.cfg.OnTakeOver != nil {
		s.cfg.OnTakeOver(ep)
	}
	return nil
}

// hostOf returns the host:port of an endpoint URL, "" when it has none.
func hostOf(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return ""
	}
	return u.Host
}

// etcdServer is a running server and its gRPC servers.
type etcdServer struct {
	*embed.Etcd
	mu   sync.Mutex
	grpc []*grpc.Server
}

// close stops the server: requests in flight get streamGrace to finish,
// then every connection is cut.
func (e *etcdServer) close() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Close()
	}()
	select {
	case <-done:
	case <-time.After(streamGrace):
		e.mu.Lock()
		for _, gs := range e.grpc {
			gs.Stop() // interrupts etcd's graceful stop
		}
		e.mu.Unlock()
		<-done
	}
	<-e.Server.StopNotify()
}

// start starts a server on dir, whose lock the caller holds, serving
// clients on clientHost ("": any port on 127.0.0.1), and publishes its
// endpoint.
func start(ctx context.Context, dir string, lg *zap.Logger, clientHost string) (*etcdServer, string, error) {
	epPath := filepath.Join(dir, EndpointFile)
	// A previous server of this directory is gone (we hold the lock): its
	// endpoint is stale.
	if err := os.Remove(epPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, "", errors.Wrapf(err, "embedded etcd: remove stale %s", epPath)
	}
	if clientHost == "" {
		clientHost = "127.0.0.1:0"
	}
	cfg := embed.NewConfig()
	cfg.Name = "woodpecker"
	cfg.Dir = dir
	anyPort := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	clientURL := url.URL{Scheme: "http", Host: clientHost}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{clientURL}, []url.URL{clientURL}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{anyPort}, []url.URL{anyPort}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.Logger = "zap"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg)
	// One member: a short election timeout costs nothing and makes the
	// server ready sooner.
	cfg.TickMs, cfg.ElectionMs = 50, 250
	// Keep an hour of history: enough for watches, bounded on disk.
	cfg.AutoCompactionMode, cfg.AutoCompactionRetention = embed.CompactorModePeriodic, "1h"
	cfg.Metrics = "basic"
	srv := &etcdServer{}
	// Registers no service: it only keeps the gRPC servers for close.
	cfg.ServiceRegister = func(gs *grpc.Server) {
		srv.mu.Lock()
		srv.grpc = append(srv.grpc, gs)
		srv.mu.Unlock()
	}

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", errors.Wrapf(err, "embedded etcd: start with data in %s", dir)
	}
	srv.Etcd = e
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, "", errors.Wrapf(err, "embedded etcd: failed while starting (data in %s)", dir)
	case <-ctx.Done():
		e.Close()
		return nil, "", errors.Wrapf(ctx.Err(), "embedded etcd: not ready (data in %s)", dir)
	}
	if len(e.Clients) == 0 {
		e.Close()
		return nil, "", errors.New("embedded etcd: the server has no client listener")
	}
	ep := "http://" + e.Clients[0].Addr().String()
	if err := writeFileAtomic(epPath, []byte(ep+"\n")); err != nil {
		e.Close()
		return nil, "", err
	}
	return srv, ep, nil
}

// writeFileAtomic replaces path with data so that a reader sees either
// nothing or all of it.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return errors.Wrapf(err, "embedded etcd: write %s", tmp)
	}
	if err := os.Rename(tmp, path); err != nil {
		return errors.Wrapf(err, "embedded etcd: rename %s", tmp)
	}
	return nil
}

// Endpoint returns the client URL, "http://127.0.0.1:<port>": the one
// last known, which changes when another process takes over on another
// port.
func (s *Server) Endpoint() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endpoint
}

// Shared reports whether another process runs the server and this handle
// only names it. The server then stops when that process ends, and this
// handle tries to take over.
func (s *Server) Shared() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.etcd == nil
}

// Close stops the server this process runs (a shared handle stops watching
// and has nothing else to stop) and releases the directory. It is
// idempotent.
func (s *Server) Close() error {
	s.once.Do(func() {
		if s.stop != nil {
			s.stop()
			<-s.done
		}
		s.mu.Lock()
		e, lock := s.etcd, s.lock
		s.etcd, s.lock = nil, nil
		s.mu.Unlock()
		if e == nil {
			return
		}
		_ = os.Remove(filepath.Join(s.dir, EndpointFile))
		e.close()
		s.err = unlock(lock)
	})
	return s.err
}
