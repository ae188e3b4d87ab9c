package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/cockroachdb/errors"
	"go.uber.org/goleak"
)

// Main runs a package's tests and is meant to be its TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// It runs m.Run, stops every shared server this test binary started (MinIO,
// versitygw, embedded etcd) and removes their data, then, if the tests
// passed, checks with goleak that no goroutine outlived them, and exits with
// the right code. leakOpts are added to the goleak options, for goroutines a
// package knowingly leaves running. Packages that use the shared servers
// should use Main rather than goleak.VerifyTestMain: the shared servers'
// own goroutines only end once Main stops them.
func Main(m *testing.M, leakOpts ...goleak.Option) {
	code := m.Run()
	stopShared()
	if code == 0 {
		if err := goleak.Find(leakOpts...); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: goroutines leaked by a successful test run:\n%v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// shared holds what the shared servers need at the end of the test binary.
var shared struct {
	mu    sync.Mutex
	stops []func() // in start order; run in reverse
	base  string   // per-process temp folder, created on first use
}

// onStopShared registers f to run when Main stops the shared servers.
func onStopShared(f func()) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.stops = append(shared.stops, f)
}

// stopShared stops the shared servers in reverse start order and removes
// their temp folder. Later uses of a shared server fail.
func stopShared() {
	shared.mu.Lock()
	stops, base := shared.stops, shared.base
	shared.stops = nil
	shared.mu.Unlock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
	if base != "" {
		_ = os.RemoveAll(base)
	}
}

// sharedServer is a server shared by every test of the test binary: started
// on first use, stopped by Main. Safe for concurrent use.
type sharedServer[T any] struct {
	once sync.Once
	val  T
	err  error
}

// get returns the server, which start(t) starts on first use. A server that
// could not be had ends the test, on every use (see unavailable); what names
// it in that message.
func (s *sharedServer[T]) get(t testing.TB, what string, start func(testing.TB) (T, error)) T {
	t.Helper()
	s.once.Do(func() { s.val, s.err = start(t) })
	if s.err != nil {
		unavailable(t, what, s.err)
	}
	return s.val
}

// startShared starts b as a shared server, in a folder under this process's
// temp folder, to be stopped with SIGTERM by Main, and returns its address.
func startShared(t testing.TB, b binary) (string, error) {
	t.Helper()
	bin, err := ToolPath(b.tool)
	if err != nil {
		return "", err
	}
	dir, err := sharedDir(b.tool)
	if err != nil {
		return "", err
	}
	p, addr, err := b.launch(bin, dir)
	if err != nil {
		return "", err
	}
	onStopShared(func() { p.stop(syscall.SIGTERM) })
	announce(t, "%s %s at %s (pid %d, data %s)", p.name, b.version, addr, p.pid(), dir)
	return addr, nil
}

// tempPrefix starts the name of every temp folder of this package; the PID
// that follows lets a later run remove folders of test binaries that died
// without cleaning up.
const tempPrefix = "woodpecker-testenv-"

// sharedDir returns a new folder for one shared server under this process's
// temp folder, which Main removes.
func sharedDir(name string) (string, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.base == "" {
		sweepStaleTemp()
		base, err := os.MkdirTemp("", tempPrefix+strconv.Itoa(os.Getpid())+"-")
		if err != nil {
			return "", errors.Wrap(err, "testenv: creating a temp folder for shared servers")
		}
		shared.base = base
	}
	dir := filepath.Join(shared.base, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", errors.Wrap(err, "testenv: creating a temp folder for shared servers")
	}
	return dir, nil
}

// sweepStaleTemp removes temp folders left by test binaries that are gone
// (killed, or a package without Main). Best effort.
func sweepStaleTemp() {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"*"))
	for _, m := range matches {
		rest := strings.TrimPrefix(filepath.Base(m), tempPrefix)
		pidStr, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		_ = os.RemoveAll(m)
	}
}

// unavailable ends a test that cannot get a server. A binary that was never
// built skips the test with a message saying `make tools`, unless CI=true,
// where nothing may skip silently and the test fails. Any other failure
// (a server that is there but does not start) fails the test: skipping would
// hide a broken environment.
func unavailable(t testing.TB, what string, err error) {
	t.Helper()
	var missing *ToolMissingError
	if errors.As(err, &missing) && os.Getenv("CI") != "true" {
		t.Skipf("testenv: no %s: %v", what, err)
	}
	t.Fatalf("testenv: no %s: %v", what, err)
}

// announce tells, once per server and test binary, which server a test run
// uses, on stderr (visible with go test -v) and in the test's log.
func announce(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintln(os.Stderr, "testenv: "+msg)
	t.Logf("testenv: %s", msg)
}
