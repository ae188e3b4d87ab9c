package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/integration/chaos/history"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// Engine timeouts of the run's processes, short so that faults turn into
// outcomes within a cycle. Pauses (schedule.go) last longer than
// uploadTimeout and than a LogStore's lease.
const (
	uploadTimeout   = 2 * time.Second
	storageTimeout  = 1500 * time.Millisecond
	etcdTimeout     = 3 * time.Second
	quorumCallLimit = time.Second
	logstoreLease   = 2 * time.Second
	// logstoreBudget and logstoreBudgetBlocks bound what the LogStores
	// hold not yet uploaded, and so the blocks a recovery or a seal must
	// upload: with 256MiB alone, uploads to a MinIO slowed by a loaded
	// machine lagged hundreds of (small) blocks behind the acks, and
	// recovering a log took longer than the runner waits (quorum long
	// runs, seeds 1206003-1206007). Above the budget the writers wait
	// (budget backpressure).
	logstoreBudget       = "8MiB"
	logstoreBudgetBlocks = 64
)

// cluster is one mode's servers and processes: etcd and MinIO processes
// the test owns, proxies in this process between every group of client
// processes and each server, LogStore processes in quorum mode, and the
// writer and reader child processes. Its methods are called from the test's
// goroutine, except where noted.
type cluster struct {
	// activations numbers writers in the order they became active (see
	// proc.active).
	activations atomic.Int64

	t     *testing.T
	mode  string
	dir   string // history files, configurations, logs of the processes
	clock history.Clock
	root  string // etcd root and storage root
	data  string // localfs mode: the folder every process stores logs in

	etcd   *testenv.EtcdProcess
	minio  *testenv.MinIOProcess
	s3     testenv.S3
	bucket string

	proxies map[string]*proxy // by link (linksOf)
	// s3proxies stand between a link's TCP proxy and MinIO, by link (the
	// links to MinIO): S3 faults (5xx answers, slow PUTs).
	s3proxies map[string]*s3Proxy
	logstores []*logstoreProc
	configs   map[string]string // role -> YAML path

	client *woodpecker.Client // direct to the servers (LogStores through their proxies)
	rec    *history.Recorder  // the runner's own history (process 0)

	mu       sync.Mutex
	nextProc int
	procs    map[int]*proc
	acks     map[string]ackState // by log
	problems []string            // ERROR lines of children, and other failures found off the test goroutine
	readErrs map[string]int      // READERR lines, by error text prefix
}

// ackState is what the runner knows of a log's progress.
type ackState struct {
	at   time.Time // when the newest ACK line arrived
	last woodpecker.EntryID
	n    int // ACK lines
}

func newCluster(t *testing.T, mode, dir string, clock history.Clock) *cluster {
	t.Helper()
	c := &cluster{t: t, mode: mode, dir: dir, clock: clock, root: "chaos-" + mode,
		proxies: map[string]*proxy{}, s3proxies: map[string]*s3Proxy{}, configs: map[string]string{}, procs: map[int]*proc{},
		acks: map[string]ackState{}, readErrs: map[string]int{}, nextProc: 1}
	t.Cleanup(c.cleanup)
	c.etcd = testenv.StartEtcd(t)
	if mode == modeLocalFS {
		c.data = t.TempDir()
	} else {
		c.minio = testenv.StartMinIO(t)
		c.s3 = c.minio.S3()
		c.bucket = testenv.NewBucket(t, c.s3)
	}
	etcdAddr := strings.TrimPrefix(c.etcd.Endpoints()[0], "http://")
	for i, link := range linksOf(mode) {
		var target string
		switch {
		case strings.HasSuffix(link, ">minio"):
			sp, err := startS3Proxy(link, c.s3.Endpoint, uint64(i))
			if err != nil {
				t.Fatalf("S3 proxy %s: %v", link, err)
			}
			c.s3proxies[link] = sp
			target = sp.Addr()
		case strings.HasSuffix(link, ">etcd"):
			target = etcdAddr
		default:
			target = "127.0.0.1:1" // a LogStore's, set when it starts
		}
		p, err := startProxy(link, target)
		if err != nil {
			t.Fatalf("proxy %s: %v", link, err)
		}
		c.proxies[link] = p
	}
	for _, role := range []string{roleWriter, roleReader, "logstore"} {
		if role == "logstore" && !quorumMode(mode) {
			continue
		}
		s3Addr := ""
		if p := c.proxies[role+">minio"]; p != nil {
			s3Addr = p.Addr()
		}
		cfg := c.config(c.proxies[role+">etcd"].Addr(), s3Addr, false)
		path := filepath.Join(dir, role+".yaml")
		if err := os.WriteFile(path, cfg.Render(false), 0o600); err != nil {
			t.Fatal(err)
		}
		c.configs[role] = path
	}
	if quorumMode(mode) {
		bin := woodpeckerBinary(t)
		for i := range 3 {
			ls := &logstoreProc{c: c, idx: i, bin: bin, proxy: c.proxies[fmt.Sprintf("client>ls%d", i)]}
			c.logstores = append(c.logstores, ls)
			if err := ls.start(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The runner's client reaches etcd and MinIO directly, with the
	// default, patient timeouts: its damage checks and final writes are
	// not what the faults test.
	cfg := c.config(etcdAddr, c.s3.Endpoint, true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli, err := woodpecker.New(ctx, cfg)
	if err != nil {
		t.Fatalf("runner's client: %v", err)
	}
	c.client = cli
	rec, err := history.Create(filepath.Join(dir, "p0-runner.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	c.rec = rec
	return c
}

// config is the configuration of the run's processes, reaching etcd and
// MinIO at the given addresses; patient keeps the default timeouts.
func (c *cluster) config(etcdAddr, s3Addr string, patient bool) options.Config {
	cfg := options.Default()
	cfg.Etcd.Endpoints = []string{etcdAddr}
	cfg.Etcd.RootPath = c.root
	if !patient {
		cfg.Etcd.DialTimeout = 2 * time.Second
		cfg.Etcd.RequestTimeout = etcdTimeout
	}
	if c.mode == modeLocalFS {
		cfg.Storage.Type = options.StorageLocal
		cfg.Storage.RootPath = c.data
	} else {
		cfg.Storage.Type = options.StorageMinIO
		cfg.Storage.Endpoint = s3Addr
		cfg.Storage.AccessKey, cfg.Storage.SecretKey = c.s3.AccessKey, c.s3.SecretKey
		cfg.Storage.Region = c.s3.Region
		cfg.Storage.Bucket = c.bucket
		cfg.Storage.RootPath = c.root
	}
	cfg.Writer.MaxBlockBytes = 64 << 10
	cfg.Writer.RollMaxBlocks = 100
	cfg.Writer.RollMaxAge = 3 * time.Second
	cfg.Writer.UploadRetry.InitialBackoff = 20 * time.Millisecond
	cfg.Writer.UploadRetry.MaxBackoff = 300 * time.Millisecond
	if !patient {
		cfg.Storage.RequestTimeout = storageTimeout
		cfg.Writer.UploadRetry.MaxAttempts = 20
		cfg.Writer.UploadRetry.TotalTimeout = uploadTimeout
	}
	cfg.Log.Level = "warn"
	if c.mode == modeQuorumShared {
		cfg.Writer.BatchWindow = 5 * time.Millisecond
	}
	if quorumMode(c.mode) {
		cfg.Mode = options.ModeQuorumBuffer
		if !patient {
			cfg.Quorum.CallTimeout = quorumCallLimit
		}
	}
	if err := cfg.Validate(); err != nil {
		c.t.Fatalf("chaos configuration: %v", err)
	}
	return cfg
}

// problem records a failure found off the test goroutine.
func (c *cluster) problem(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.problems) < 100 {
		c.problems = append(c.problems, fmt.Sprintf(format, args...))
	}
}

// record writes one of the runner's own records.
func (c *cluster) record(r history.Record) {
	if err := c.rec.Record(r); err != nil {
		c.t.Fatalf("runner history: %v", err)
	}
}

func (c *cluster) cleanup() {
	c.mu.Lock()
	procs := make([]*proc, 0, len(c.procs))
	for _, p := range c.procs {
		procs = append(procs, p)
	}
	c.mu.Unlock()
	for _, p := range procs {
		p.kill()
	}
	for _, ls := range c.logstores {
		ls.kill()
	}
	if c.client != nil {
		_ = c.client.Close()
	}
	if c.rec != nil {
		_ = c.rec.Close()
	}
	for _, p := range c.proxies {
		p.Close()
	}
	for _, p := range c.s3proxies {
		p.Close()
	}
}

// proc is a child process (writer or reader) of the test binary.
type proc struct {
	c     *cluster
	id    int
	role  string
	log   string // writer's
	epoch int64  // writer's
	spec  childSpec
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
	err   error // after done

	mu      sync.Mutex
	standby bool // a spare writer not told GO yet
	// active numbers a writer in the order writers became active, from 1;
	// 0 for a spare not told GO yet. A spare is started long before it is
	// told GO: its id says when it started, not when it began writing.
	active  int64
	ready   bool      // READY seen
	lastAck time.Time // when its newest ACK line arrived
	fenced  bool
	opened  bool
	stopped bool // SIGSTOP sent, no SIGCONT yet
}

// startChild starts a child process of the test binary with spec (its
// Proc, History and Config are filled in here). It runs in its own process
// group, dies with the test binary (parent-death signal) and is killed at
// the test's end.
func (c *cluster) startChild(spec childSpec) *proc {
	c.t.Helper()
	c.mu.Lock()
	id := c.nextProc
	c.nextProc++
	c.mu.Unlock()
	spec.Proc = id
	spec.Origin = c.clock.Origin()
	spec.Config = c.configs[spec.Role]
	spec.History = filepath.Join(c.dir, fmt.Sprintf("p%d-%s.jsonl", id, spec.Role))
	raw, err := json.Marshal(spec)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestChaosChild$", "-test.count=1", "-test.timeout=0")
	cmd.Env = append(os.Environ(), childEnv+"="+string(raw))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	logf, err := os.Create(filepath.Join(c.dir, fmt.Sprintf("p%d-%s.log", id, spec.Role)))
	if err != nil {
		c.t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start child: %v", err)
	}
	p := &proc{c: c, id: id, role: spec.Role, log: spec.Log, epoch: spec.Epoch, spec: spec, cmd: cmd, stdin: stdin,
		done: make(chan struct{}), standby: spec.Standby}
	if spec.Role == roleWriter && !spec.Standby {
		p.active = c.activations.Add(1)
	}
	c.mu.Lock()
	c.procs[id] = p
	c.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.line(sc.Text())
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p
}

// line handles one line of the child's stdout; it runs on the child's
// reading goroutine.
func (p *proc) line(s string) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return
	}
	c := p.c
	switch f[0] {
	case lineAck:
		if len(f) != 3 {
			break
		}
		id, err := woodpecker.ParseEntryID(f[2])
		if err != nil {
			c.problem("child %d: bad line %q", p.id, s)
			return
		}
		now := time.Now()
		c.mu.Lock()
		a := c.acks[f[1]]
		a.at, a.n = now, a.n+1
		if a.last.Less(id) {
			a.last = id
		}
		c.acks[f[1]] = a
		c.mu.Unlock()
		p.mu.Lock()
		p.lastAck = now
		p.mu.Unlock()
	case lineReady:
		p.mu.Lock()
		p.ready = true
		p.mu.Unlock()
	case lineOpen:
		p.mu.Lock()
		p.opened = true
		p.mu.Unlock()
	case lineFenced:
		p.mu.Lock()
		p.fenced = true
		p.mu.Unlock()
	case lineReadErr:
		msg := strings.TrimSpace(strings.TrimPrefix(s, lineReadErr))
		if len(f) > 1 {
			msg = strings.TrimSpace(strings.TrimPrefix(msg, f[1]))
		}
		if i := strings.IndexAny(msg, ":"); i > 0 {
			msg = msg[:i]
		}
		c.mu.Lock()
		c.readErrs[msg]++
		c.mu.Unlock()
	case lineError:
		c.problem("child %d (%s): %s", p.id, p.role, strings.TrimSpace(strings.TrimPrefix(s, lineError)))
	}
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// activate tells a ready standby writer to open its writer at epoch; false
// when it is not ready (or gone).
func (p *proc) activate(epoch int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.standby || !p.ready || !p.alive() {
		return false
	}
	if _, err := fmt.Fprintf(p.stdin, "GO %d\n", epoch); err != nil {
		return false
	}
	p.standby, p.epoch = false, epoch
	p.active = p.c.activations.Add(1)
	return true
}

// activeSince returns the writer's activation number (proc.active).
func (p *proc) activeSince() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.active
}

// signal sends sig to the child's process group.
func (p *proc) signal(sig syscall.Signal) {
	if p.alive() {
		_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// pause sends SIGSTOP; resume SIGCONT.
func (p *proc) pause() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	p.signal(syscall.SIGSTOP)
}

func (p *proc) resume() {
	p.signal(syscall.SIGCONT)
	p.mu.Lock()
	p.stopped = false
	p.mu.Unlock()
}

// kill sends SIGKILL (and SIGCONT, for a paused one) and waits for the
// child to end.
func (p *proc) kill() {
	p.signal(syscall.SIGKILL)
	p.signal(syscall.SIGCONT)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.c.problem("child %d did not end after SIGKILL", p.id)
	}
}

// finish closes the child's stdin, which tells it to stop (writer) or to
// finish reading (reader), and waits for it to exit as long as its history
// file grew within the last limit (a reader from Earliest catches up on
// the whole log first: minutes after a long run); then it is killed. It
// reports whether the child exited by itself with status 0.
func (p *proc) finish(limit time.Duration) bool {
	_ = p.stdin.Close()
	size := int64(-1)
	if fi, err := os.Stat(p.spec.History); err == nil {
		size = fi.Size()
	}
	for {
		select {
		case <-p.done:
			return p.err == nil
		case <-time.After(limit):
		}
		fi, err := os.Stat(p.spec.History)
		if err == nil && fi.Size() > size {
			size = fi.Size()
			continue
		}
		p.c.problem("child %d (%s) did not finish, and recorded nothing, within %s: killed", p.id, p.role, limit)
		p.kill()
		return false
	}
}

// logstoreProc is a `woodpecker logstore` process, reached by clients
// through its proxy (its registered address).
type logstoreProc struct {
	c     *cluster
	idx   int
	bin   string
	proxy *proxy

	cmd    *exec.Cmd
	done   chan struct{}
	paused bool
}

func (ls *logstoreProc) id() string { return fmt.Sprintf("ls%d", ls.idx) }

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// start starts the LogStore on a free port and points its proxy at it. It
// retries for a minute: etcd or MinIO may be down, which a LogStore does
// not start without.
func (ls *logstoreProc) start() error {
	deadline := time.Now().Add(time.Minute)
	var last error
	for time.Now().Before(deadline) {
		if last = ls.startOnce(); last == nil {
			return nil
		}
		time.Sleep(300 * time.Millisecond)
	}
	return errors.Wrapf(last, "LogStore %s did not start within a minute", ls.id())
}

func (ls *logstoreProc) startOnce() error {
	c := ls.c
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	args := []string{"--config", c.configs["logstore"], "logstore",
		"--addr", addr, "--advertise-addr", ls.proxy.Addr(), "--id", ls.id(), "--zone", "z" + strconv.Itoa(ls.idx),
		"--budget", logstoreBudget, "--budget-blocks", strconv.Itoa(logstoreBudgetBlocks), "--lease-ttl", logstoreLease.String()}
	if c.mode == modeJournaled {
		// The same directory at every start: the journal survives kills.
		args = append(args, "--data-dir", filepath.Join(c.dir, ls.id()+"-journal"))
	}
	cmd := exec.Command(ls.bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	logf, err := os.OpenFile(filepath.Join(c.dir, ls.id()+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== %s start at %s\n", time.Now().Format(time.RFC3339Nano), addr)
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		seen := false
		for sc.Scan() {
			if !seen && strings.Contains(sc.Text(), " listening on ") {
				seen = true
				close(listening)
			}
		}
		_ = cmd.Wait()
		close(done)
	}()
	select {
	case <-listening:
	case <-done:
		return errors.Newf("LogStore %s exited before it listened (see %s.log)", ls.id(), ls.id())
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return errors.Newf("LogStore %s did not listen within 30s", ls.id())
	}
	ls.proxy.SetTarget(addr)
	ls.cmd, ls.done, ls.paused = cmd, done, false
	return nil
}

// kill sends SIGKILL and waits for the process to end.
func (ls *logstoreProc) kill() {
	if ls.cmd == nil {
		return
	}
	_ = syscall.Kill(-ls.cmd.Process.Pid, syscall.SIGKILL)
	_ = syscall.Kill(-ls.cmd.Process.Pid, syscall.SIGCONT)
	<-ls.done
	ls.cmd, ls.paused = nil, false
}

func (ls *logstoreProc) pause() {
	if ls.cmd != nil {
		_ = syscall.Kill(-ls.cmd.Process.Pid, syscall.SIGSTOP)
		ls.paused = true
	}
}

func (ls *logstoreProc) resume() {
	if ls.cmd != nil {
		_ = syscall.Kill(-ls.cmd.Process.Pid, syscall.SIGCONT)
		ls.paused = false
	}
}

// alive reports whether the process runs (it may have exited by itself).
func (ls *logstoreProc) alive() bool {
	if ls.cmd == nil {
		return false
	}
	select {
	case <-ls.done:
		return false
	default:
		return true
	}
}
