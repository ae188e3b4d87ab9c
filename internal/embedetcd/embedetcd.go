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
// The server fsyncs like a production etcd: what it acknowledged survives a
// crash of the process.
package embedetcd

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/errors"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
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

// Config says where the server keeps its data and how long to wait for it.
type Config struct {
	// Dir holds the server's data; created when missing. Required.
	Dir string
	// StartTimeout bounds the start of the server, or the wait for the
	// endpoint of the process already serving Dir (default 30s).
	StartTimeout time.Duration
	// Logger receives the server's own log (default: none). The server
	// logs a lot at info level: pass a logger at warn level or above.
	Logger *zap.Logger
}

// Server is a running embedded etcd server, or a handle on the one another
// process runs for the same directory. Close it when done. Its methods are
// safe for concurrent use.
type Server struct {
	endpoint string
	etcd     *embed.Etcd // nil when shared
	lock     *os.File    // nil when shared
	once     sync.Once
	err      error
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
	if !locked {
		return join(ctx, dir)
	}
	s, err := start(ctx, dir, cfg.Logger)
	if err != nil {
		_ = unlock(lock)
		return nil, err
	}
	s.lock = lock
	return s, nil
}

// join waits for the serving process to publish its endpoint.
func join(ctx context.Context, dir string) (*Server, error) {
	path := filepath.Join(dir, EndpointFile)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		data, err := os.ReadFile(path)
		if ep := strings.TrimSpace(string(data)); err == nil && ep != "" {
			return &Server{endpoint: ep}, nil
		}
		select {
		case <-ctx.Done():
			return nil, errors.Wrapf(ErrBusy, "%s is locked by another process that published no endpoint in %s", dir, path)
		case <-tick.C:
		}
	}
}

func start(ctx context.Context, dir string, lg *zap.Logger) (*Server, error) {
	epPath := filepath.Join(dir, EndpointFile)
	// A previous server of this directory is gone (we hold the lock): its
	// endpoint is stale.
	if err := os.Remove(epPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, errors.Wrapf(err, "embedded etcd: remove stale %s", epPath)
	}
	cfg := embed.NewConfig()
	cfg.Name = "woodpecker"
	cfg.Dir = dir
	anyPort := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{anyPort}, []url.URL{anyPort}
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

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, errors.Wrapf(err, "embedded etcd: start with data in %s", dir)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, errors.Wrapf(err, "embedded etcd: failed while starting (data in %s)", dir)
	case <-ctx.Done():
		e.Close()
		return nil, errors.Wrapf(ctx.Err(), "embedded etcd: not ready (data in %s)", dir)
	}
	if len(e.Clients) == 0 {
		e.Close()
		return nil, errors.New("embedded etcd: the server has no client listener")
	}
	s := &Server{endpoint: "http://" + e.Clients[0].Addr().String(), etcd: e}
	if err := writeFileAtomic(epPath, []byte(s.endpoint+"\n")); err != nil {
		e.Close()
		return nil, err
	}
	return s, nil
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

// Endpoint returns the client URL, "http://127.0.0.1:<port>".
func (s *Server) Endpoint() string { return s.endpoint }

// Shared reports whether another process runs the server and this handle
// only names it. The server then stops when that process ends.
func (s *Server) Shared() bool { return s.etcd == nil }

// Close stops the server this process runs (a shared handle has nothing to
// stop) and releases the directory. It is idempotent.
func (s *Server) Close() error {
	s.once.Do(func() {
		if s.etcd == nil {
			return
		}
		_ = os.Remove(filepath.Join(s.etcd.Config().Dir, EndpointFile))
		s.etcd.Close()
		<-s.etcd.Server.StopNotify()
		s.err = unlock(s.lock)
	})
	return s.err
}
