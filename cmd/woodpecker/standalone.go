package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/woodpecker-wal/woodpecker/internal/embedetcd"
	"github.com/woodpecker-wal/woodpecker/internal/logging"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/quorum"
	"github.com/woodpecker-wal/woodpecker/quorum/logstore"
	"github.com/woodpecker-wal/woodpecker/quorum/logstore/journal"
	"github.com/woodpecker-wal/woodpecker/shared"
	"github.com/woodpecker-wal/woodpecker/storage"
)

// What `woodpecker standalone` runs with.
const (
	// standaloneAccessKey and standaloneSecretKey are the credentials of
	// the MinIO it starts. It listens on 127.0.0.1 only; fixed credentials
	// keep the printed configuration valid across restarts.
	standaloneAccessKey = "woodpecker"
	standaloneSecretKey = "woodpecker-secret"
	standaloneBucket    = "woodpecker"
	// standaloneMinIOReady bounds MinIO's start (a first start formats its
	// data directory).
	standaloneMinIOReady = time.Minute
	// standaloneMinIOStop bounds MinIO's graceful stop before it is killed,
	// and standaloneLogstoreStop the LogStores' graceful stop: together
	// with etcd's they stay within interruptGrace.
	standaloneMinIOStop    = 2 * time.Second
	standaloneLogstoreStop = time.Second
	// standaloneLeaseTTL is the TTL of the LogStores' registrations.
	standaloneLeaseTTL = 10 * time.Second
	// standaloneState is the file (in the cluster's directory) that
	// remembers the ports of the last run, reused when free so that the
	// segments a writer left open stay reachable after a restart.
	standaloneState = "standalone.json"
	// standaloneClientConfig is the file the client configuration is
	// written to, in the cluster's directory.
	standaloneClientConfig = "client.yaml"
)

type standaloneFlags struct {
	logstores int
	minio     string
	budget    string
	memory    bool
}

func (a *app) standaloneCommand() *cobra.Command {
	var f standaloneFlags
	cmd := &cobra.Command{
		Use:   "standalone",
		Short: "Run a whole local cluster: etcd, MinIO and 3 LogStores on 127.0.0.1",
		Long: `standalone runs a local Woodpecker cluster in one process, on 127.0.0.1:
an embedded etcd, a MinIO server (a child process) and --logstores LogStore
servers (QuorumBuffer replicas, in this process, registered in etcd). It prints
their endpoints and a client configuration (YAML, also written to
<data-dir>/standalone/client.yaml) with mode: quorumBuffer, ready for
'woodpecker --config' or the client library. Ctrl-C (SIGINT) or SIGTERM stops
everything it started.

Everything lives in <data-dir>/standalone: etcd/, minio/ (MinIO's data and
minio.log), logstores/ (the LogStores' journals), client.yaml and
standalone.json (the ports of the last run, reused when free). Logs and their
data survive a restart, and a crash: each LogStore syncs what it acknowledges
to its journal before it answers (--memory-logstores: memory only, faster, and
what was not uploaded yet is lost when the cluster stops).

MinIO is --minio, or the one 'make tools' builds (.tools/minio-*/minio in the
repository, or under $WOODPECKER_TOOLS_DIR), or 'minio' on PATH. Without one,
the cluster keeps log data on the local file system and runs in MemoryBuffer
mode: QuorumBuffer needs an object store, so no LogStore runs (it says so).
--logstores 0 runs MemoryBuffer on MinIO.`,
		Example: `  woodpecker standalone
  woodpecker standalone --data-dir /tmp/wp --logstores 5 --minio ~/bin/minio
  woodpecker --config data/standalone/client.yaml log create demo`,
		Args: args(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runStandalone(cmd.Context(), f) },
	}
	fl := cmd.Flags()
	fl.IntVar(&f.logstores, "logstores", quorum.EnsembleSize, fmt.Sprintf("LogStore servers to run (0, or %d and more)", quorum.EnsembleSize))
	fl.StringVar(&f.minio, "minio", "", "MinIO server binary (default: the one 'make tools' builds, else minio on PATH)")
	fl.StringVar(&f.budget, "budget", "256MiB", "memory budget of each LogStore (e.g. 256MiB, 1GiB)")
	fl.BoolVar(&f.memory, "memory-logstores", false, "LogStores hold blocks in memory only, without journals: an acknowledgement costs no fsync, and a stop loses what was not uploaded")
	return cmd
}

// standalone is a running local cluster.
type standalone struct {
	a   *app
	log *zap.Logger
	dir string

	etcd      *embedetcd.Server
	etcdCli   *clientv3.Client
	minio     *minioProc // nil: local storage
	store     *storage.Storage
	logstores []*standaloneLogstore
	// served gets the error of a LogStore that stopped serving.
	served chan error
	// stops undo what was started, in reverse order.
	stops []func()
}

// standaloneLogstore is one in-process LogStore.
type standaloneLogstore struct {
	node quorum.Node
	reg  *logstoreRegistration
	srv  *logstore.Server
	up   *shared.Uploader // its shared object stream, closed after srv
	done chan struct{}    // closed when Serve returned
}

// standaloneState is what standalone.json remembers.
type standaloneStateFile struct {
	MinIO     string   `json:"minio,omitempty"`
	LogStores []string `json:"logstores,omitempty"`
}

func (a *app) runStandalone(ctx context.Context, f standaloneFlags) (err error) {
	if f.logstores != 0 && f.logstores < quorum.EnsembleSize {
		return usagef("--logstores %d: want 0 (MemoryBuffer) or at least %d (a segment has %d replicas)",
			f.logstores, quorum.EnsembleSize, quorum.EnsembleSize)
	}
	budget, err := options.ParseSize(f.budget)
	if err != nil || budget <= 0 {
		return usagef("--budget %q: want a size such as 256MiB, above 0", f.budget)
	}
	r, err := a.loadConfig()
	if err != nil {
		return err
	}
	if !r.embedded {
		return usagef("woodpecker standalone runs its own etcd and object store: drop the etcd and storage settings " +
			"(--etcd, --storage*, WOODPECKER_ETCD_*, WOODPECKER_STORAGE_*, and the etcd and storage sections of --config)")
	}
	minioBin, err := findMinIO(f.minio, a.lookup)
	if err != nil {
		return err
	}
	lg, err := logging.New(r.cfg.Log, a.stderr)
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(filepath.Join(r.dataDir, "standalone"))
	if err != nil {
		return errors.Wrap(err, "standalone: data directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return errors.Wrap(err, "standalone: create the data directory")
	}
	// The metadata in etcd points at data in one kind of storage: a
	// cluster keeps the kind it was started with.
	switch {
	case minioBin == "" && exists(filepath.Join(dir, "minio")):
		return usagef("the cluster in %s keeps its data in MinIO, and no MinIO binary is found: give --minio, "+
			"run 'make tools' in the repository, put minio on PATH, or give another --data-dir", dir)
	case minioBin != "" && exists(filepath.Join(dir, "logs")):
		return usagef("the cluster in %s keeps its data on the local file system (it was started without MinIO): "+
			"give another --data-dir to run one on MinIO", dir)
	}
	s := &standalone{a: a, log: lg, dir: dir, served: make(chan error, max(f.logstores, 1))}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	prev := readStandaloneState(dir)

	if err := s.startEtcd(ctx, r.cfg.Log.Level == options.LogDebug); err != nil {
		return err
	}
	cfg := options.Default()
	cfg.Log = r.cfg.Log
	cfg.Etcd.Endpoints = []string{s.etcd.Endpoint()}
	cfg.Sources = nil
	if minioBin == "" {
		fmt.Fprintf(a.stderr, "woodpecker standalone: no MinIO binary found (--minio, .tools/minio-*/minio from 'make tools', "+
			"$WOODPECKER_TOOLS_DIR, or minio on PATH): log data goes to the local file system in %s, and the cluster runs "+
			"MemoryBuffer mode only: QuorumBuffer needs an object store, so no LogStore runs\n", filepath.Join(dir, "logs"))
		cfg.Storage = options.StorageConfig{Type: options.StorageLocal, RootPath: filepath.Join(dir, "logs"),
			RequestTimeout: cfg.Storage.RequestTimeout, Fencing: cfg.Storage.Fencing}
		f.logstores = 0
	} else {
		if err := s.startMinIO(ctx, minioBin, prev.MinIO); err != nil {
			return err
		}
		cfg.Storage.Endpoint = s.minio.addr
		cfg.Storage.Bucket = standaloneBucket
		cfg.Storage.AccessKey, cfg.Storage.SecretKey = standaloneAccessKey, standaloneSecretKey
		if err := s.openStore(ctx, cfg); err != nil {
			return err
		}
	}
	if f.logstores > 0 {
		cfg.Mode = options.ModeQuorumBuffer
		if err := s.startLogstores(ctx, cfg, f.logstores, budget, !f.memory, prev.LogStores); err != nil {
			return err
		}
	}
	if err := cfg.Validate(); err != nil {
		return errors.Wrap(err, "standalone: the client configuration")
	}
	yaml := clientYAML(cfg, len(s.logstores))
	cfgPath := filepath.Join(dir, standaloneClientConfig)
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		return errors.Wrap(err, "standalone: write the client configuration")
	}
	st := standaloneStateFile{}
	if s.minio != nil {
		st.MinIO = s.minio.addr
	}
	for _, l := range s.logstores {
		st.LogStores = append(st.LogStores, l.node.Addr)
	}
	if data, err := json.Marshal(st); err == nil {
		_ = os.WriteFile(filepath.Join(dir, standaloneState), data, 0o600) // a cache: losing it costs nothing
	}
	s.print(cfg, yaml, cfgPath)

	// Serve until interrupted, or until a part fails.
	var minioExit <-chan struct{}
	if s.minio != nil {
		minioExit = s.minio.exited
	}
	select {
	case <-ctx.Done():
		lg.Info("standalone cluster stopping")
		s.stop()
		fmt.Fprintln(a.stdout, "woodpecker standalone: stopped")
		return nil
	case <-minioExit:
		err = errors.Newf("standalone: MinIO exited (%v); see %s", s.minio.waitErr, s.minio.logPath)
	case serr := <-s.served:
		err = errors.Wrap(serr, "standalone: a LogStore stopped serving")
	}
	return err
}

// stop stops everything in reverse start order. Idempotent.
func (s *standalone) stop() {
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
	s.stops = nil
}

func (s *standalone) onStop(f func()) { s.stops = append(s.stops, f) }

// startEtcd starts the embedded etcd in dir/etcd and connects to it.
func (s *standalone) startEtcd(ctx context.Context, debug bool) error {
	lg := zap.NewNop()
	if debug {
		lg = s.log.Named("etcd")
	}
	etcdDir := filepath.Join(s.dir, "etcd")
	srv, err := embedetcd.Open(ctx, embedetcd.Config{Dir: etcdDir, Logger: lg})
	if err != nil {
		return errors.Wrapf(err, "standalone: start etcd in %s", etcdDir)
	}
	if srv.Shared() {
		ep := srv.Endpoint()
		_ = srv.Close()
		return usagef("another process runs a cluster on %s (its etcd is at %s): stop it, or give another --data-dir", s.dir, ep)
	}
	s.etcd = srv
	s.onStop(func() {
		if err := srv.Close(); err != nil {
			s.log.Warn("stop etcd", zap.Error(err))
		}
	})
	ec := options.Default().Etcd
	ec.Endpoints = []string{srv.Endpoint()}
	cli, err := dialLogstoreEtcd(ec)
	if err != nil {
		return err
	}
	s.etcdCli = cli
	s.onStop(func() { _ = cli.Close() })
	return nil
}

// openStore opens the object store (creating the bucket) for the
// LogStores.
func (s *standalone) openStore(ctx context.Context, cfg options.Config) error {
	cfg.Mode = options.ModeMemoryBuffer // the bare object store
	cfg.Storage.CreateBucket = true
	octx, cancel := context.WithTimeout(ctx, cfg.Storage.RequestTimeout)
	defer cancel()
	st, err := storage.Open(octx, cfg)
	if err != nil {
		return errors.Wrap(err, "standalone: open MinIO")
	}
	s.store = st
	s.onStop(func() { _ = st.Close() })
	return nil
}

// startLogstores starts n LogStores, on the addresses of the last run
// when they are free, each registered in etcd under a lease.
func (s *standalone) startLogstores(ctx context.Context, cfg options.Config, n int, budget int64, journaled bool, prev []string) error {
	// This cluster's registry holds its own LogStores only: registrations
	// of a previous run (another count, other ports) go.
	prefix := quorum.RegistryPrefix(cfg.Etcd.RootPath)
	dctx, cancel := context.WithTimeout(ctx, cfg.Etcd.RequestTimeout)
	_, err := s.etcdCli.Delete(dctx, prefix, clientv3.WithPrefix())
	cancel()
	if err != nil {
		return errors.Wrap(err, "standalone: clear the LogStore registry")
	}
	for i := range n {
		addr := "127.0.0.1:0"
		if i < len(prev) && prev[i] != "" {
			addr = prev[i]
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil && addr != "127.0.0.1:0" {
			ln, err = net.Listen("tcp", "127.0.0.1:0")
		}
		if err != nil {
			return errors.Wrap(err, "standalone: listen for a LogStore")
		}
		node := quorum.Node{ID: fmt.Sprintf("ls-%d", i), Addr: ln.Addr().String()}
		reg, err := registerLogstore(ctx, s.etcdCli, cfg.Etcd, node, standaloneLeaseTTL, s.log)
		if err != nil {
			_ = ln.Close()
			return err
		}
		remembers := reg.revision
		var jdir *journal.Dir
		if journaled {
			jdir, err = journal.Open(nil, filepath.Join(s.dir, "logstores", node.ID))
			if err == nil {
				remembers, err = jdir.Revision(node.ID, reg.revision)
			}
			if err != nil {
				_ = ln.Close()
				reg.deregister()
				return err
			}
		}
		up := logstoreUploader(s.store.Raw, s.etcdCli, cfg, defaultLogstoreBatchWindow, s.log, nil)
		srv, err := logstore.New(logstore.Config{NodeID: node.ID, Addr: node.Addr, BudgetBytes: budget, BudgetBlocks: defaultLogstoreBudgetBlocks,
			Store: s.store.Raw, Root: "", Shared: up, RegisteredRevision: remembers, Journal: jdir, StopTimeout: standaloneLogstoreStop,
			Logger: s.log})
		if err != nil {
			_ = up.Close()
			_ = ln.Close()
			reg.deregister()
			return err
		}
		l := &standaloneLogstore{node: node, reg: reg, srv: srv, up: up, done: make(chan struct{})}
		go func() {
			defer close(l.done)
			if err := srv.Serve(ln); err != nil {
				s.served <- errors.Wrapf(err, "logstore %s", node.ID)
			}
		}()
		s.logstores = append(s.logstores, l)
	}
	s.onStop(func() {
		// Deregister first, so that no writer places a segment on a
		// LogStore that is going; then stop them, all at once.
		var wg sync.WaitGroup
		for _, l := range s.logstores {
			wg.Add(1)
			go func() { defer wg.Done(); l.reg.deregister() }()
		}
		wg.Wait()
		for _, l := range s.logstores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = l.srv.Close()
				<-l.done
				_ = l.up.Close()
			}()
		}
		wg.Wait()
	})
	return nil
}

// print writes the endpoints and the client configuration to stdout.
func (s *standalone) print(cfg options.Config, yaml, cfgPath string) {
	w := s.a.stdout
	fmt.Fprintf(w, "woodpecker standalone: a local cluster in %s\n", s.dir)
	fmt.Fprintf(w, "  etcd      %s (embedded; data in %s)\n", s.etcd.Endpoint(), filepath.Join(s.dir, "etcd"))
	if s.minio != nil {
		fmt.Fprintf(w, "  minio     http://%s (pid %d; %s; data in %s, log in %s; user %s, bucket %s)\n", s.minio.addr,
			s.minio.cmd.Process.Pid, s.minio.bin, s.minio.dataDir, s.minio.logPath, standaloneAccessKey, standaloneBucket)
	} else {
		fmt.Fprintf(w, "  storage   local file system, %s\n", cfg.Storage.RootPath)
	}
	for _, l := range s.logstores {
		fmt.Fprintf(w, "  logstore  %s %s\n", l.node.ID, l.node.Addr)
	}
	fmt.Fprintf(w, "\nclient configuration (%s, written to %s):\n---\n%s...\n", cfg.Mode, cfgPath, yaml)
	fmt.Fprintf(w, "\nready: try 'woodpecker --config %s log create demo'; Ctrl-C stops the cluster\n", cfgPath)
}

// clientYAML is the configuration clients of the cluster use: the keys
// that differ from the defaults.
func clientYAML(cfg options.Config, logstores int) string {
	var b strings.Builder
	if cfg.Mode == options.ModeQuorumBuffer {
		fmt.Fprintf(&b, "# woodpecker standalone: appends are acknowledged by 2 of the %d LogStores registered in etcd,\n"+
			"# which upload them to MinIO.\n", logstores)
	} else {
		b.WriteString("# woodpecker standalone: MemoryBuffer mode.\n")
	}
	fmt.Fprintf(&b, "mode: %s\n", cfg.Mode)
	fmt.Fprintf(&b, "etcd:\n  endpoints: [%q]\n  rootPath: %q\n", cfg.Etcd.Endpoints[0], cfg.Etcd.RootPath)
	sc := cfg.Storage
	if sc.Type == options.StorageLocal {
		fmt.Fprintf(&b, "storage:\n  type: local\n  rootPath: %q\n", sc.RootPath)
		return b.String()
	}
	fmt.Fprintf(&b, "storage:\n  type: %s\n  endpoint: %q\n  bucket: %q\n  rootPath: %q\n  region: %q\n  accessKey: %q\n  secretKey: %q\n",
		sc.Type, sc.Endpoint, sc.Bucket, sc.RootPath, sc.Region, sc.AccessKey, sc.SecretKey)
	return b.String()
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// readStandaloneState reads standalone.json; a missing or unreadable
// file is an empty state.
func readStandaloneState(dir string) standaloneStateFile {
	var st standaloneStateFile
	if data, err := os.ReadFile(filepath.Join(dir, standaloneState)); err == nil {
		_ = json.Unmarshal(data, &st)
	}
	return st
}

// findMinIO returns the MinIO binary to run: flag when given (it must
// exist), else the newest one scripts/tools.sh built (under
// $WOODPECKER_TOOLS_DIR, or .tools/ in the working directory or a parent),
// else minio on PATH; "" when there is none.
func findMinIO(flag string, lookup func(string) (string, bool)) (string, error) {
	if flag != "" {
		p, err := exec.LookPath(flag)
		if err != nil {
			return "", usagef("--minio %s: %v", flag, err)
		}
		return filepath.Abs(p)
	}
	var dirs []string
	if d, ok := lookup("WOODPECKER_TOOLS_DIR"); ok && d != "" {
		dirs = append(dirs, d)
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; {
			dirs = append(dirs, filepath.Join(d, ".tools"))
			parent := filepath.Dir(d)
			if parent == d {
				break
			}
			d = parent
		}
	}
	for _, d := range dirs {
		found, _ := filepath.Glob(filepath.Join(d, "minio-*", "minio"))
		sort.Strings(found)
		for i := len(found) - 1; i >= 0; i-- {
			if fi, err := os.Stat(found[i]); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
				return filepath.Abs(found[i])
			}
		}
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return filepath.Abs(p)
	}
	return "", nil
}

// minioProc is the MinIO server process.
type minioProc struct {
	bin, addr, dataDir, logPath string
	cmd                         *exec.Cmd
	exited                      chan struct{} // closed when the process has exited
	waitErr                     error         // read after exited is closed
}

// startMinIO starts MinIO on prevAddr when it is free, else on a free
// port, and waits until it is ready.
func (s *standalone) startMinIO(ctx context.Context, bin, prevAddr string) error {
	dataDir := filepath.Join(s.dir, "minio")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return errors.Wrap(err, "standalone: create MinIO's data directory")
	}
	var lastErr error
	for attempt := range 3 {
		addr, err := freeAddr(prevAddr)
		if err != nil {
			return err
		}
		prevAddr = "" // a port that failed once is not tried again
		p := &minioProc{bin: bin, addr: addr, dataDir: dataDir, logPath: filepath.Join(s.dir, "minio.log")}
		if lastErr = p.start(ctx); lastErr == nil {
			s.minio = p
			s.onStop(func() { p.stop(s.log) })
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.log.Debug("MinIO did not start", zap.Int("attempt", attempt+1), zap.Error(lastErr))
	}
	return lastErr
}

// freeAddr returns prev when it can be listened on, else a free address
// of 127.0.0.1.
func freeAddr(prev string) (string, error) {
	if prev != "" {
		if ln, err := net.Listen("tcp", prev); err == nil {
			_ = ln.Close()
			return prev, nil
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", errors.Wrap(err, "standalone: find a free port")
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// start runs MinIO and waits until it answers its readiness check.
func (p *minioProc) start(ctx context.Context) error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return errors.Wrap(err, "standalone: open MinIO's log")
	}
	fmt.Fprintf(logf, "=== woodpecker standalone %s: %s server --address %s %s\n", time.Now().Format(time.RFC3339), p.bin, p.addr, p.dataDir)
	cmd := exec.Command(p.bin, "server", "--address", p.addr, "--quiet", p.dataDir)
	env := []string{"LANG=C"}
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	cmd.Env = append(env, "MINIO_ROOT_USER="+standaloneAccessKey, "MINIO_ROOT_PASSWORD="+standaloneSecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childProcAttr()
	err = cmd.Start()
	_ = logf.Close() // the child has its own descriptor
	if err != nil {
		return errors.Wrapf(err, "standalone: start MinIO (%s)", p.bin)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	rctx, cancel := context.WithTimeout(ctx, standaloneMinIOReady)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		if lastErr = minioReady(rctx, hc, p.addr); lastErr == nil {
			select {
			case <-p.exited: // something else answers on the port
				lastErr = errors.Newf("MinIO exited (%v), yet something answers on %s", p.waitErr, p.addr)
			default:
				return nil
			}
		}
		select {
		case <-p.exited:
			return errors.Newf("standalone: MinIO exited before it was ready (%v): see %s", p.waitErr, p.logPath)
		case <-rctx.Done():
			_ = cmd.Process.Kill()
			<-p.exited
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return errors.Newf("standalone: MinIO not ready after %s (%v): see %s", standaloneMinIOReady, lastErr, p.logPath)
		case <-tick.C:
		}
	}
}

func minioReady(ctx context.Context, hc *http.Client, addr string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/minio/health/ready", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.Newf("health check answered %s", resp.Status)
	}
	return nil
}

// stop asks MinIO to stop (SIGTERM) and kills it if it has not exited
// within standaloneMinIOStop.
func (p *minioProc) stop(lg *zap.Logger) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(standaloneMinIOStop)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		lg.Warn("MinIO did not stop in time: killing it", zap.Duration("waited", standaloneMinIOStop))
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}
