package testenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cockroachdb/errors"
)

const (
	// readyTimeout bounds how long a server may take to answer after start.
	// Generous: two cores are shared with race-enabled test binaries.
	readyTimeout = 90 * time.Second
	// stopTimeout bounds a graceful stop before it turns into SIGKILL.
	stopTimeout = 30 * time.Second
	// logTailLines is how much of a server's log a start failure shows.
	logTailLines = 40
)

// binary is a server binary testenv runs, and how to launch it.
type binary struct {
	tool    string // its name for ToolPath: "minio"
	name    string // for messages: "MinIO"
	version string // the version ToolPath finds
	// launch starts the binary at bin with its data and log in dir, on free
	// ports, and returns the process and the address clients use.
	launch func(bin, dir string) (*process, string, error)
}

// process is one server binary run as a child process: started, probed until
// ready, stopped or killed by its PID, and started again with the same
// arguments (so the same ports and data folder). Its output goes to logPath,
// appended across restarts. Safe for concurrent use.
type process struct {
	name    string // for messages: "MinIO", "etcd", ...
	bin     string
	args    []string
	env     []string // added to a minimal environment
	logPath string
	// ready returns nil once the server serves requests.
	ready func(ctx context.Context) error

	mu   sync.Mutex
	cmd  *exec.Cmd     // nil when not running
	done chan struct{} // closed when cmd has exited
}

// start runs the binary and waits until it is ready. On failure the process
// is killed and the error carries the tail of its log.
func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return errors.Newf("testenv: %s is already running (pid %d)", p.name, p.cmd.Process.Pid)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return errors.Wrapf(err, "testenv: opening the %s log", p.name)
	}
	fmt.Fprintf(logf, "=== testenv %s: %s %s\n", time.Now().Format(time.RFC3339Nano), p.bin, strings.Join(p.args, " "))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(minimalEnv(), p.env...)
	cmd.Stdout, cmd.Stderr = logf, logf // an *os.File: no copying goroutines
	cmd.SysProcAttr = sysProcAttr()
	err = cmd.Start()
	_ = logf.Close() // the child has its own descriptor
	if err != nil {
		return errors.Wrapf(err, "testenv: starting %s (%s)", p.name, p.bin)
	}
	done := make(chan struct{})
	var waitErr error // read only after done is closed
	go func() {
		waitErr = cmd.Wait()
		close(done)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		if lastErr = p.ready(ctx); lastErr == nil {
			select {
			case <-done:
				// Something else answered on the port (ours could not
				// bind it): not our server.
				lastErr = errors.New("the server exited, yet something answered on its port")
			default:
				p.cmd, p.done = cmd, done
				return nil
			}
		}
		select {
		case <-done:
			return errors.Newf("testenv: %s exited before it was ready (%v); last probe: %v\n%s",
				p.name, waitErr, lastErr, p.logTail())
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-done
			return errors.Newf("testenv: %s not ready after %s; last probe: %v\n%s",
				p.name, readyTimeout, lastErr, p.logTail())
		case <-tick.C:
		}
	}
}

// stop sends sig and waits for the process to exit; after stopTimeout it
// kills it. Stopping a process that is not running does nothing.
func (p *process) stop(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd, p.done = nil, nil
}

// signal sends sig to the running process, if any.
func (p *process) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

// pid returns the running process's PID, or 0.
func (p *process) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// logTail returns the last lines of the log, framed for an error message.
func (p *process) logTail() string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	const maxBytes = 16 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > maxBytes {
		_, _ = f.Seek(fi.Size()-maxBytes, io.SeekStart)
	}
	data, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > logTailLines {
		lines = lines[len(lines)-logTailLines:]
	}
	return fmt.Sprintf("--- last lines of %s ---\n%s\n--- end of log ---", p.logPath, strings.Join(lines, "\n"))
}

// minimalEnv is the environment servers start with: enough to run, and free
// of variables (MINIO_*, ETCD_*, VGW_*) that would change their behaviour.
func minimalEnv() []string {
	env := []string{"LANG=C"}
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// portAttempts bounds how often a server is started on fresh ports: another
// process may take a port between freeAddrs picking it and the server
// binding it.
const portAttempts = 3

// startOnFreePorts starts the process newProc makes for count free
// addresses of 127.0.0.1 ("127.0.0.1:port"), and on failure starts afresh
// on new ports, up to portAttempts times. It returns the process and its
// addresses, or the last start's error.
func startOnFreePorts(count int, newProc func(addrs []string) *process) (*process, []string, error) {
	var lastErr error
	for range portAttempts {
		addrs, err := freeAddrs(count)
		if err != nil {
			return nil, nil, err
		}
		p := newProc(addrs)
		if lastErr = p.start(); lastErr == nil {
			return p, addrs, nil
		}
	}
	return nil, nil, lastErr
}

// freeAddrs returns count different addresses on 127.0.0.1 that were free a
// moment ago. Each port is held until all are picked, so they differ.
func freeAddrs(count int) ([]string, error) {
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	addrs := make([]string, 0, count)
	for range count {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, errors.Wrap(err, "testenv: finding a free port")
		}
		listeners = append(listeners, l)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// probeClient is used for readiness probes. No keep-alive: nothing lingers
// after a probe, so goroutine leak checks stay exact.
var probeClient = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true},
	Timeout:   2 * time.Second,
}

// httpGet fetches url and returns the status code and (a prefix of) the body.
func httpGet(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return resp.StatusCode, string(body), nil
}

// healthReady is a readiness probe: ready once GET url answers 200 OK with a
// body that contains want ("" accepts any body).
func healthReady(url, want string) func(context.Context) error {
	return func(ctx context.Context) error {
		code, body, err := httpGet(ctx, url)
		if err != nil {
			return err
		}
		if code != http.StatusOK || !strings.Contains(body, want) {
			return errors.Newf("%s answered %d %q", url, code, body)
		}
		return nil
	}
}
