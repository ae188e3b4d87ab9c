//go:build linux

package integration

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/woodpecker-wal/woodpecker/internal/testenv"
)

// kindQuorum is QuorumBuffer: 3 `woodpecker logstore` processes uploading
// to MinIO, found by clients in the etcd registry.
const kindQuorum = "quorum"

// logStores are the LogStore processes of a quorum site. Node i always
// registers under the id "ls-<i>", so a restarted node replaces its own
// registration and the registry never lists more than 3.
type logStores struct {
	t        testing.TB
	bin      string
	config   string
	dataDirs []string // node i's --data-dir, when journaled

	mu    sync.Mutex
	procs []*exec.Cmd
	addrs []string // where node i listens: a restarted node comes back there
	kills int
}

// logStoreOptions are how a test wants its LogStores, when not as usual.
type logStoreOptions struct {
	// journaled gives each node a --data-dir of its own, kept across its
	// restarts.
	journaled bool
	// s3Endpoint is where they reach object storage instead of the site's
	// MinIO (a proxy in front of it).
	s3Endpoint string
}

// startLogStores starts 3 LogStores for the site; they are killed when the
// test ends.
func startLogStores(t testing.TB, s *site) *logStores {
	t.Helper()
	return startLogStoresWith(t, s, logStoreOptions{})
}

func startLogStoresWith(t testing.TB, s *site, o logStoreOptions) *logStores {
	t.Helper()
	dir := t.TempDir()
	endpoint := s.S3.Endpoint
	if o.s3Endpoint != "" {
		endpoint = o.s3Endpoint
	}
	cfg := fmt.Sprintf(`etcd:
  endpoints: [%s]
  rootPath: %q
storage:
  type: minio
  endpoint: %q
  bucket: %q
  rootPath: ""
  region: %q
  accessKey: %q
  secretKey: %q
  useSSL: %t
`, quoted(s.EtcdEndpoints), s.EtcdRoot, endpoint, s.Bucket, s.S3.Region, s.S3.AccessKey, s.S3.SecretKey, s.S3.Secure)
	path := filepath.Join(dir, "logstore.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ls := &logStores{t: t, bin: testenv.WoodpeckerBinary(t), config: path, procs: make([]*exec.Cmd, 3),
		addrs: []string{"127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"}}
	if o.journaled {
		for i := range ls.procs {
			ls.dataDirs = append(ls.dataDirs, filepath.Join(dir, fmt.Sprintf("ls-%d", i)))
		}
	}
	t.Cleanup(func() {
		for i := range ls.procs {
			ls.kill(i)
		}
	})
	for i := range ls.procs {
		ls.start(i)
	}
	return ls
}

func quoted(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// start starts node i and waits until it serves and is registered.
func (ls *logStores) start(i int) {
	ls.t.Helper()
	ls.mu.Lock()
	addr := ls.addrs[i]
	ls.mu.Unlock()
	args := []string{"--config", ls.config, "logstore", "--addr", addr,
		"--id", fmt.Sprintf("ls-%d", i), "--budget", "256MiB", "--lease-ttl", "3s"}
	if ls.dataDirs != nil {
		args = append(args, "--data-dir", ls.dataDirs[i])
	}
	cmd := exec.Command(ls.bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		ls.t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		ls.t.Fatal(err)
	}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, got, ok := strings.Cut(sc.Text(), " listening on "); ok {
				ls.mu.Lock()
				ls.addrs[i] = strings.TrimSpace(got)
				ls.mu.Unlock()
				ready <- nil
				for sc.Scan() {
				}
				return
			}
		}
		ready <- fmt.Errorf("logstore ls-%d ended before serving: %v", i, sc.Err())
	}()
	select {
	case err := <-ready:
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			ls.t.Fatalf("%v\n%s", err, stderr.String())
		}
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		ls.t.Fatalf("logstore ls-%d did not serve within a minute\n%s", i, stderr.String())
	}
	ls.mu.Lock()
	ls.procs[i] = cmd
	ls.mu.Unlock()
}

// kill kills node i with SIGKILL, if it runs, and reaps it.
func (ls *logStores) kill(i int) {
	ls.mu.Lock()
	cmd := ls.procs[i]
	ls.procs[i] = nil
	if cmd != nil {
		ls.kills++
	}
	ls.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
}

// restart kills node i and starts it again with an empty memory (and its
// journal, when journaled).
func (ls *logStores) restart(i int) {
	ls.kill(i)
	ls.start(i)
}
