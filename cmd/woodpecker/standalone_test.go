package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/quorum"
)

// standaloneRun is a `woodpecker standalone` process and what it printed.
type standaloneRun struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *syncBuilder
	exited chan error
	lines  []string // stdout up to the ready line
	rest   chan string

	etcd      string // host:port
	minio     string // host:port, "" for local storage
	minioPID  int
	logstores []string
	yaml      string // the client configuration printed
	cfgPath   string // where it was written
}

// startStandalone runs `woodpecker standalone args...` and waits until
// it prints its ready line.
func startStandalone(t *testing.T, c *cli, args ...string) *standaloneRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	cmd := c.command(ctx, "", append([]string{"standalone"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &standaloneRun{t: t, cmd: cmd, stderr: &syncBuilder{}, exited: make(chan error, 1), rest: make(chan string, 100)}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // a failed test must not leave the cluster running
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-s.exited
		}
	})
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		s.exited <- cmd.Wait()
	}()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("standalone ended before it was ready:\nstdout:\n%s\nstderr:\n%s", strings.Join(s.lines, "\n"), s.stderr)
			}
			s.lines = append(s.lines, line)
			if strings.HasPrefix(line, "ready: ") {
				go func() {
					for l := range lines {
						s.rest <- l
					}
					close(s.rest)
				}()
				s.parse()
				return s
			}
		case <-ctx.Done():
			t.Fatalf("standalone not ready in time:\nstdout:\n%s\nstderr:\n%s", strings.Join(s.lines, "\n"), s.stderr)
		}
	}
}

// parse reads the endpoints and the configuration from the output.
func (s *standaloneRun) parse() {
	t := s.t
	t.Helper()
	var yaml []string
	inYAML := false
	for _, line := range s.lines {
		switch f := strings.Fields(line); {
		case line == "---":
			inYAML = true
		case line == "...":
			inYAML = false
		case inYAML:
			yaml = append(yaml, line)
		case len(f) >= 2 && f[0] == "etcd":
			s.etcd = strings.TrimPrefix(f[1], "http://")
		case len(f) >= 4 && f[0] == "minio":
			s.minio = strings.TrimPrefix(f[1], "http://")
			s.minioPID, _ = strconv.Atoi(strings.TrimSuffix(f[3], ";"))
		case len(f) == 3 && f[0] == "logstore":
			s.logstores = append(s.logstores, f[2])
		}
		if m := regexp.MustCompile(`^client configuration \(\w+, written to (.+)\):$`).FindStringSubmatch(line); m != nil {
			s.cfgPath = m[1]
		}
	}
	s.yaml = strings.Join(yaml, "\n") + "\n"
	if s.etcd == "" || len(yaml) == 0 || s.cfgPath == "" {
		t.Fatalf("cannot find the etcd endpoint and the configuration in the output:\n%s", strings.Join(s.lines, "\n"))
	}
}

// interrupt sends SIGINT and checks that the process exits 0 within the
// interrupt grace, saying it stopped, and that nothing it started is left:
// MinIO's process, and anything listening on the ports it printed.
func (s *standaloneRun) interrupt() {
	t := s.t
	t.Helper()
	start := time.Now()
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	var rest []string
	for l := range s.rest {
		rest = append(rest, l)
	}
	select {
	case err := <-s.exited:
		if err != nil {
			t.Fatalf("standalone exited with %v after SIGINT, want 0\nstderr:\n%s", err, s.stderr)
		}
	case <-time.After(2 * interruptGrace):
		t.Fatalf("standalone still running %s after SIGINT\nstderr:\n%s", 2*interruptGrace, s.stderr)
	}
	took := time.Since(start)
	t.Logf("standalone stopped %s after SIGINT", took.Round(time.Millisecond))
	if took > interruptGrace {
		t.Errorf("stopping took %s, more than the interrupt grace %s", took, interruptGrace)
	}
	if len(rest) == 0 || rest[len(rest)-1] != "woodpecker standalone: stopped" {
		t.Errorf("stdout after ready: %q, want it to end with the stopped line", rest)
	}
	for _, bad := range []string{"panic", "goroutine ", "exiting without waiting", "ERROR"} {
		if strings.Contains(s.stderr.String(), bad) {
			t.Errorf("stderr holds %q:\n%s", bad, s.stderr)
		}
	}
	if s.minioPID != 0 {
		if err := syscall.Kill(s.minioPID, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("MinIO (pid %d) is still there after the cluster stopped (kill -0: %v)", s.minioPID, err)
		}
	}
	for _, addr := range append([]string{s.etcd, s.minio}, s.logstores...) {
		if addr == "" {
			continue
		}
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			t.Errorf("something still listens on %s after the cluster stopped", addr)
		}
	}
}

// TestStandaloneServesAQuorumClusterAndStopsOnSIGINT runs `woodpecker
// standalone` on MinIO: it must print etcd's, MinIO's and 3 LogStores'
// endpoints and a client configuration in QuorumBuffer mode that
// `woodpecker append` and `tail` work with; the LogStores must be
// registered in its etcd and serving; SIGINT must stop every part of it.
// A second run on the same directory keeps the logs.
func TestStandaloneServesAQuorumClusterAndStopsOnSIGINT(t *testing.T) {
	minio, err := testenv.ToolPath("minio")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	c := newCLI(t)
	data := filepath.Join(c.dir, "data")
	s := startStandalone(t, c, "--data-dir", data, "--minio", minio)
	if s.minio == "" || s.minioPID == 0 || len(s.logstores) != 3 {
		t.Fatalf("want MinIO (and its pid) and 3 LogStores in the output:\n%s", strings.Join(s.lines, "\n"))
	}
	written, err := os.ReadFile(s.cfgPath)
	if err != nil || string(written) != s.yaml {
		t.Fatalf("%s holds %q (%v), the printed configuration is %q", s.cfgPath, written, err, s.yaml)
	}
	path := filepath.Join(c.dir, "printed.yaml")
	if err := os.WriteFile(path, []byte(s.yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := options.Load(path)
	if err != nil {
		t.Fatalf("the printed configuration does not load: %v\n%s", err, s.yaml)
	}
	if cfg.Mode != options.ModeQuorumBuffer || cfg.Storage.Type != options.StorageMinIO || cfg.Storage.Endpoint != s.minio {
		t.Fatalf("printed configuration: mode %s, storage %s at %s; want quorumBuffer on minio at %s",
			cfg.Mode, cfg.Storage.Type, cfg.Storage.Endpoint, s.minio)
	}

	// The LogStores are registered in the cluster's etcd and serve.
	etcd, err := dialLogstoreEtcd(cfg.Etcd)
	if err != nil {
		t.Fatal(err)
	}
	defer etcd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nodes, err := quorum.Nodes(ctx, etcd, cfg.Etcd.RootPath)
	if err != nil {
		t.Fatal(err)
	}
	var registered []string
	for _, n := range nodes {
		registered = append(registered, n.Addr)
	}
	if strings.Join(registered, ",") != strings.Join(s.logstores, ",") {
		t.Fatalf("registered LogStores %v, printed %v", registered, s.logstores)
	}
	for _, addr := range s.logstores {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		hc, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		conn.Close()
		if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("logstore %s health: %v, %v", addr, hc, err)
		}
	}

	// Each LogStore keeps a journal of its own in the cluster's directory.
	for i := range s.logstores {
		if _, err := os.Stat(filepath.Join(data, "standalone", "logstores", fmt.Sprintf("ls-%d", i), "node.json")); err != nil {
			t.Errorf("logstore ls-%d has no journal: %v", i, err)
		}
	}

	// The printed configuration works with the command.
	c.flags = []string{"--config", path}
	c.ok("", "log", "create", "demo")
	c.ok("one\ntwo\nthree\n", "append", "demo")
	if got := c.ok("", "tail", "demo", "-n", "3").stdout; got != "one\ntwo\nthree\n" {
		t.Fatalf("tail printed %q", got)
	}
	// bench measures the cluster against raw AddBlocks to its LogStores.
	r := c.ok("", "bench", "--raw", "--total", "2MiB", "--entry-size", "4KiB", "--async-depth", "8", "--progress", "none")
	for _, want := range []string{"QuorumBuffer on LogStores " + strings.Join(s.logstores, ", "), "raw limit",
		"AddBlock to LogStores", "2 of 3 acknowledging", "4.00 KiB writes, 8 at once", "ratio"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("bench output lacks %q:\n%s", want, r.stdout)
		}
	}
	s.interrupt()
	sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
	defer scancel()
	if _, err := quorum.Nodes(sctx, etcd, cfg.Etcd.RootPath); err == nil {
		t.Error("etcd still answers after the cluster stopped")
	}

	// Started again on the same directory: the log is there, and takes
	// more entries.
	c.flags = nil
	s = startStandalone(t, c, "--data-dir", data, "--minio", minio)
	if err := os.WriteFile(path, []byte(s.yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c.flags = []string{"--config", path}
	c.ok("four\n", "append", "demo")
	if got := c.ok("", "tail", "demo", "-n", "4").stdout; got != "one\ntwo\nthree\nfour\n" {
		t.Fatalf("after a restart, tail printed %q", got)
	}
	s.interrupt()
}

// TestStandaloneWithoutMinIOUsesLocalStorage: with no MinIO binary to be
// found, standalone says so and runs MemoryBuffer on the local file
// system, whose configuration works; the directory then refuses MinIO.
func TestStandaloneWithoutMinIOUsesLocalStorage(t *testing.T) {
	c := newCLI(t)
	empty := t.TempDir()
	for i, kv := range c.env {
		if strings.HasPrefix(kv, "PATH=") {
			c.env[i] = "PATH=" + empty // no minio on it
		}
	}
	data := filepath.Join(c.dir, "data")
	s := startStandalone(t, c, "--data-dir", data)
	if s.minio != "" || len(s.logstores) != 0 {
		t.Fatalf("without MinIO, want no MinIO and no LogStore:\n%s", strings.Join(s.lines, "\n"))
	}
	if !strings.Contains(s.yaml, "mode: memoryBuffer") || !strings.Contains(s.yaml, "type: local") {
		t.Errorf("configuration:\n%s", s.yaml)
	}
	c.flags = []string{"--config", s.cfgPath}
	c.ok("", "log", "create", "demo")
	c.ok("x\n", "append", "demo")
	if got := c.ok("", "tail", "demo", "-n", "1").stdout; got != "x\n" {
		t.Fatalf("tail printed %q", got)
	}
	s.interrupt()
	// After the exit, so that the copy of stderr is complete: the notes
	// come before the ready line, but through another pipe.
	for _, want := range []string{"no MinIO binary found", "local file system", "MemoryBuffer", "QuorumBuffer needs an object store"} {
		if !strings.Contains(s.stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, s.stderr)
		}
	}

	c.flags = nil
	wantError(t, c.run("", "standalone", "--data-dir", data, "--minio", "/bin/true"), exitUsage,
		"keeps its data on the local file system")
}

func TestStandaloneUsage(t *testing.T) {
	c := newCLI(t)
	wantError(t, c.run("", "standalone", "--logstores", "2"), exitUsage, "--logstores 2")
	wantError(t, c.run("", "standalone", "--budget", "lots"), exitUsage, `--budget "lots"`)
	wantError(t, c.run("", "standalone", "--minio", filepath.Join(c.dir, "nothing")), exitUsage, "--minio")
	wantError(t, c.run("", "--etcd", "127.0.0.1:1", "standalone"), exitUsage, "runs its own etcd and object store")
	if _, err := os.Stat(filepath.Join(c.dir, "data")); err == nil {
		t.Error("a usage error created ./data")
	}
}

// TestStandaloneInProcessLeavesNoGoroutine runs the command in this
// process and cancels it as SIGINT would: every goroutine it started must
// have ended when it returns.
func TestStandaloneInProcessLeavesNoGoroutine(t *testing.T) {
	minio, err := testenv.ToolPath("minio")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr strings.Builder
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"standalone", "--data-dir", t.TempDir(), "--minio", minio, "--log-level", "warn"},
			strings.NewReader(""), pw, &stderr, func(string) (string, bool) { return "", false })
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	ready := false
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "ready: ") {
			ready = true
			break
		}
	}
	if !ready {
		t.Fatalf("standalone ended before it was ready (exit %d): %s", <-code, stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	cancel()
	if c := <-code; c != exitOK {
		t.Fatalf("exit %d after cancel, want 0: %s", c, stderr.String())
	}
}

// syncBuilder is a strings.Builder that a process's output goroutine writes
// while the test reads it.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
