package testenv

import (
	"fmt"
	"syscall"
	"testing"
)

// dedicatedServer is a server process owned by one test, which may stop,
// kill and restart it; EtcdProcess and MinIOProcess are built on it. It
// keeps its ports and data folder across restarts. Its methods must be
// called from the test's goroutine (they end the test with t.Fatal on
// failure); they are safe to call concurrently with requests to the server.
type dedicatedServer struct {
	t    testing.TB
	proc *process
	addr string // where clients reach it, for String
}

// startDedicated starts b for test t alone, on free ports with a data
// folder under t.TempDir, and kills it at t.Cleanup. Without the binary the
// test is skipped (fails when CI=true); a binary that does not start fails
// the test.
func startDedicated(t testing.TB, b binary) dedicatedServer {
	t.Helper()
	bin, err := ToolPath(b.tool)
	if err != nil {
		unavailable(t, b.name+" binary", err)
	}
	p, addr, err := b.launch(bin, t.TempDir())
	if err != nil {
		t.Fatalf("testenv: starting a dedicated %s: %v", b.name, err)
	}
	t.Cleanup(func() { p.stop(syscall.SIGKILL) })
	t.Logf("testenv: dedicated %s %s at %s (pid %d)", b.name, b.version, addr, p.pid())
	return dedicatedServer{t: t, proc: p, addr: addr}
}

// Stop sends SIGTERM and waits for the server to exit (SIGKILL after 30s).
// Stopping a stopped server does nothing.
func (d *dedicatedServer) Stop() { d.proc.stop(syscall.SIGTERM) }

// Kill sends SIGKILL and waits for the server to exit, like a crash.
func (d *dedicatedServer) Kill() { d.proc.stop(syscall.SIGKILL) }

// Pause sends SIGSTOP: the server keeps its connections and answers
// nothing until Resume. Killing or stopping a paused server works.
func (d *dedicatedServer) Pause() { d.proc.signal(syscall.SIGSTOP) }

// Resume sends SIGCONT to a paused server.
func (d *dedicatedServer) Resume() { d.proc.signal(syscall.SIGCONT) }

// Start starts a stopped server again on the same ports and data folder and
// waits until it is ready (etcd: /health reports it healthy); the test fails
// if it does not come up.
func (d *dedicatedServer) Start() {
	d.t.Helper()
	if err := d.proc.start(); err != nil {
		d.t.Fatalf("testenv: restarting %s: %v", d.proc.name, err)
	}
}

// String names the server, for test logs.
func (d *dedicatedServer) String() string {
	return fmt.Sprintf("%s at %s (pid %d)", d.proc.name, d.addr, d.proc.pid())
}
