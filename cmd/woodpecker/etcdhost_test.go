package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests run several woodpecker processes on one data directory, the
// embedded default: the first to start hosts the embedded etcd and the
// others join it. They reproduce issue 12's hang: a process whose etcd host
// exited waited forever inside the etcd client, and ignored Ctrl-C.

// exitBound is how long a process may take to end before the test calls it
// hung. It is generous: it measures no performance, only that the process
// ends at all.
const exitBound = 60 * time.Second

// proc is a woodpecker process the test feeds and stops.
type proc struct {
	t     *testing.T
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	// lines receives stdout line by line when started with follow; else
	// stdout is collected in out.
	lines          chan string
	out, errb      bytes.Buffer
	stdoutDone     chan struct{}
	waited         bool
	metricsAddress string
}

// start starts the command with a stdin the test writes, serving metrics
// (so that the test knows when it is connected). With follow, stdout lines
// go to p.lines as they come.
func (c *cli) start(ctx context.Context, name string, follow bool, args ...string) *proc {
	c.t.Helper()
	p := &proc{t: c.t, name: name, metricsAddress: closedPort(c.t)}
	p.cmd = c.command(ctx, "", append([]string{"--metrics-addr", p.metricsAddress}, args...)...)
	p.cmd.Stdin = nil
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		c.t.Fatal(err)
	}
	p.cmd.Stderr = &p.errb
	p.stdoutDone = make(chan struct{})
	if follow {
		stdout, err := p.cmd.StdoutPipe()
		if err != nil {
			c.t.Fatal(err)
		}
		p.lines = make(chan string, 100)
		go func() {
			defer close(p.stdoutDone)
			defer close(p.lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				p.lines <- sc.Text()
			}
		}()
	} else {
		p.cmd.Stdout = &p.out
		close(p.stdoutDone)
	}
	if err := p.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() {
		if !p.waited {
			_ = p.cmd.Process.Signal(syscall.SIGCONT)
			_ = p.cmd.Process.Kill()
			<-p.stdoutDone
			_ = p.cmd.Wait()
		}
	})
	waitHTTP(c.t, "http://"+p.metricsAddress+"/metrics")
	return p
}

func (p *proc) write(s string) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, s); err != nil {
		p.t.Fatalf("%s: write stdin: %v", p.name, err)
	}
}

// waitMetric waits until the process's metrics hold line.
func (p *proc) waitMetric(line string) {
	p.t.Helper()
	deadline := time.Now().Add(exitBound)
	for {
		body := httpGet(p.t, "http://"+p.metricsAddress+"/metrics")
		if strings.Contains(body, line) {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: metrics never showed %q:\n%s", p.name, line, grepLines(body, "woodpecker_writer"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLine waits for the next stdout line of a follower.
func (p *proc) waitLine(want string) {
	p.t.Helper()
	select {
	case got, ok := <-p.lines:
		if !ok || got != want {
			p.t.Fatalf("%s printed %q (open %v), want %q; stderr:\n%s", p.name, got, ok, want, p.errb.String())
		}
	case <-time.After(exitBound):
		p.t.Fatalf("%s printed nothing for %q in %s", p.name, want, exitBound)
	}
}

// exit waits for the process to end, at most exitBound, and returns what
// it did. A process that does not end is killed and fails the test: that
// is the hang under test.
func (p *proc) exit() result {
	p.t.Helper()
	done := make(chan error, 1)
	go func() {
		if p.lines != nil {
			for range p.lines {
			}
		}
		<-p.stdoutDone
		done <- p.cmd.Wait()
	}()
	var err error
	start := time.Now()
	defer func() {
		p.t.Logf("%s exited %s after the test stopped feeding or signalled it", p.name, time.Since(start).Round(time.Millisecond))
	}()
	select {
	case err = <-done:
	case <-time.After(exitBound):
		_ = p.cmd.Process.Kill()
		<-done
		p.waited = true
		p.t.Fatalf("%s did not exit within %s (hung); stderr:\n%s", p.name, exitBound, p.errb.String())
	}
	p.waited = true
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			p.t.Fatalf("%s: %v", p.name, err)
		}
		code = ee.ExitCode()
	}
	return result{code: code, stdout: p.out.String(), stderr: p.errb.String()}
}

func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("%s: signal %v: %v", p.name, sig, err)
	}
}

// TestSecondProcessSurvivesEtcdHostExit is the scenario of issue 12: an
// appender fences the one that hosts the embedded etcd, which then exits
// and takes etcd with it. The second appender must not hang: another
// process takes over the embedded etcd, the second appender finishes and
// acknowledges everything, and a follower that had joined keeps following.
func TestSecondProcessSurvivesEtcdHostExit(t *testing.T) {
	c := newCLI(t)
	c.ok("", "log", "create", "two")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// A starts first and hosts the embedded etcd; its first entry is
	// acknowledged, so its writer owns the log.
	a := c.start(ctx, "appender A", false, "append", "two", "--ids")
	a.write("A1\n")
	a.waitMetric(`woodpecker_writer_appends_total{result="ok"} 1`)
	// A follower joins A's etcd.
	f := c.start(ctx, "follower", true, "tail", "two")
	f.waitLine("A1")
	// B joins too, and fences A.
	b := c.start(ctx, "appender B", false, "append", "two", "--ids")
	b.write("B1\n")
	b.waitMetric(`woodpecker_writer_appends_total{result="ok"} 1`)
	f.waitLine("B1")

	// A's next entry fails: it is fenced. A reaches the end of its input
	// and exits, with its etcd.
	a.write("A2\n")
	if err := a.stdin.Close(); err != nil {
		t.Fatal(err)
	}
	ra := a.exit()
	if ra.code == 0 || !strings.Contains(ra.stderr, "fenced") {
		t.Fatalf("fenced appender A: want a failure that says it was fenced\n%s", ra)
	}
	if ra.stdout != "0/0\n" {
		t.Errorf("appender A printed ids %q, want 0/0", ra.stdout)
	}

	// B goes on, with etcd needed at its end (the seal), and finishes.
	b.write("B2\nB3\n")
	if err := b.stdin.Close(); err != nil {
		t.Fatal(err)
	}
	rb := b.exit()
	if rb.code != 0 || !strings.Contains(rb.stderr, "appended 3 entries") {
		t.Fatalf("appender B after its etcd host exited: want success with 3 entries\n%s", rb)
	}
	if rb.stdout != "1/0\n1/1\n1/2\n" {
		t.Errorf("appender B printed ids %q, want 1/0..1/2", rb.stdout)
	}
	// The follower reconnected, wherever etcd is now hosted.
	f.waitLine("B2")
	f.waitLine("B3")
	f.signal(syscall.SIGINT)
	if rf := f.exit(); rf.code != exitInterrupted {
		t.Fatalf("follower stopped by SIGINT: want exit %d\n%s", exitInterrupted, rf)
	}

	// Every acknowledged entry is in the log, and B's segment was sealed.
	if got := c.ok("", "tail", "two", "--no-follow").stdout; got != "A1\nB1\nB2\nB3\n" {
		t.Fatalf("log after the take-over = %q, want A1 B1 B2 B3", got)
	}
	if st := c.ok("", "log", "stat", "two").stdout; strings.Contains(st, " open ") {
		t.Errorf("a segment is still open after B closed:\n%s", st)
	}
}

// TestInterruptEndsCommandWhoseEtcdIsGone: when the host of the embedded
// etcd stops answering without exiting (here: stopped with SIGSTOP, so its
// lock stays held and nobody can take over), SIGINT still ends the other
// processes, each with an honest report: an appender says which entries
// were acknowledged.
func TestInterruptEndsCommandWhoseEtcdIsGone(t *testing.T) {
	c := newCLI(t)
	c.ok("", "log", "create", "two")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	c.ok("", "log", "create", "other")
	host := c.start(ctx, "etcd host", true, "tail", "two")
	j := c.start(ctx, "appender", false, "append", "two", "--ids")
	f := c.start(ctx, "follower", true, "tail", "two")
	// k has its writer open and waits for input.
	k := c.start(ctx, "appender reading stdin", false, "append", "other", "--ids")
	k.write("K1\n")
	k.waitMetric(`woodpecker_writer_appends_total{result="ok"} 1`)
	j.write("J1\nJ2\n")
	j.waitMetric(`woodpecker_writer_appends_total{result="ok"} 2`)
	f.waitLine("J1")
	f.waitLine("J2")
	host.signal(syscall.SIGSTOP)

	// The appender reaches the end of its input and closes its writer:
	// the seal waits for etcd. Then the user presses Ctrl-C.
	if err := j.stdin.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	j.signal(syscall.SIGINT)
	rj := j.exit()
	if rj.code != exitInterrupted {
		t.Fatalf("appender interrupted while its etcd is gone: want exit %d\n%s", exitInterrupted, rj)
	}
	if rj.stdout != "0/0\n0/1\n" || !strings.Contains(rj.stderr, "appended 2 entries") {
		t.Fatalf("appender interrupted while its etcd is gone: want its 2 acknowledged entries reported\n%s", rj)
	}

	f.signal(syscall.SIGINT)
	if rf := f.exit(); rf.code != exitInterrupted {
		t.Fatalf("follower interrupted while its etcd is gone: want exit %d\n%s", exitInterrupted, rf)
	}

	// An appender blocked reading its input (stdin stays open) ends too,
	// and says that what it had not reported has an unknown outcome.
	k.signal(syscall.SIGINT)
	if rk := k.exit(); rk.code != exitInterrupted || !strings.Contains(rk.stderr, "may or may not") {
		t.Fatalf("appender interrupted while reading stdin, etcd gone: want exit %d and the unknown outcome said\n%s",
			exitInterrupted, rk)
	}

	host.signal(syscall.SIGCONT)
	host.signal(syscall.SIGINT)
	if rh := host.exit(); rh.code != exitInterrupted {
		t.Fatalf("etcd host: want exit %d\n%s", exitInterrupted, rh)
	}
	// The data is intact: a new process serves it again.
	if got := c.ok("", "tail", "two", "--no-follow").stdout; got != "J1\nJ2\n" {
		t.Fatalf("log afterwards = %q, want J1 J2", got)
	}
}
