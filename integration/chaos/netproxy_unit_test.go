package chaos

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// echoServer answers every line with the same line, until closed.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

type lineConn struct {
	net.Conn
	r *bufio.Reader
}

func dialLine(t *testing.T, addr string) *lineConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &lineConn{Conn: c, r: bufio.NewReader(c)}
}

// roundTrip sends a line and returns the answer, or an error after limit.
func (c *lineConn) roundTrip(s string, limit time.Duration) (string, error) {
	_ = c.SetDeadline(time.Now().Add(limit))
	if _, err := c.Write([]byte(s + "\n")); err != nil {
		return "", err
	}
	got, err := c.r.ReadString('\n')
	return strings.TrimSuffix(got, "\n"), err
}

// TestProxyFaults: the proxy forwards; a partition holds bytes (no answer
// while it lasts, the answer once it heals, nothing lost); a one-way
// partition of answers lets the request reach the server; latency delays;
// a reset ends open connections and refuses new ones while it holds.
func TestProxyFaults(t *testing.T) {
	p, err := startProxy("test", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := dialLine(t, p.Addr())
	if got, err := c.roundTrip("a", 5*time.Second); err != nil || got != "a" {
		t.Fatalf("pass: %q, %v", got, err)
	}

	for _, f := range []netFault{{StallUp: true, StallDown: true}, {StallDown: true}, {StallUp: true}} {
		p.Set(f)
		if got, err := c.roundTrip("b", 300*time.Millisecond); err == nil {
			t.Fatalf("%+v: answer %q during the partition", f, got)
		}
		p.Heal()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		got, err := c.r.ReadString('\n')
		if err != nil || got != "b\n" {
			t.Fatalf("%+v: after healing got %q, %v; want the held answer", f, got, err)
		}
	}

	p.Set(netFault{Latency: 150 * time.Millisecond})
	start := time.Now()
	if got, err := c.roundTrip("c", 5*time.Second); err != nil || got != "c" {
		t.Fatalf("latency: %q, %v", got, err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("latency 150ms each way: round trip took %s", d)
	}

	p.Set(netFault{Rate: 1 << 10})
	start = time.Now()
	long := strings.Repeat("x", 1000)
	if got, err := c.roundTrip(long, 10*time.Second); err != nil || got != long {
		t.Fatalf("rate: %d bytes, %v", len(got), err)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("1KiB/s each way: 2KB took %s", d)
	}

	p.Set(netFault{Refuse: true})
	p.Reset()
	if _, err := c.roundTrip("d", 2*time.Second); err == nil {
		t.Fatal("a reset connection still answers")
	}
	// A refusing proxy resets new connections; the reset may reach the
	// dialer during connect or on the first read, and both are refusals.
	if c2, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second); err == nil {
		lc := &lineConn{Conn: c2, r: bufio.NewReader(c2)}
		_, err := lc.roundTrip("e", 2*time.Second)
		_ = c2.Close()
		if err == nil {
			t.Fatal("a new connection is served while the proxy refuses")
		}
	}
	p.Heal()
	c3 := dialLine(t, p.Addr())
	if got, err := c3.roundTrip("f", 5*time.Second); err != nil || got != "f" {
		t.Fatalf("after the reset healed: %q, %v", got, err)
	}
}
