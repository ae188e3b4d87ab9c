package integration

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// TestClientFromConfigReleasesItsStore builds a client the way a process
// does, from configuration alone (it opens the MinIO store itself), uses it
// and closes it: the store's HTTP connections must go with it (each holds
// two goroutines and a socket, for the transport's 90 s idle timeout or
// for good). The other tests hand clients a store they close themselves,
// so they would not notice.
func TestClientFromConfigReleasesItsStore(t *testing.T) {
	s := newSite(t, kindMinIO)
	ctx := context.Background()
	const conn = "net/http.(*persistConn).readLoop"
	before := countGoroutines(conn)

	c, err := woodpecker.New(ctx, s.config(nil), woodpecker.WithEtcdClient(testenv.Etcd(t)))
	if err != nil {
		t.Fatal(err)
	}
	l := createLog(t, c, "from-config")
	w, err := l.OpenWriter(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := w.AppendAsync(ctx, makePayload("x", int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countGoroutines(conn); n <= before {
		t.Fatalf("test setup: the client holds no HTTP connection (%d before, %d now)", before, n)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := countGoroutines(conn)
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after Client.Close, %d HTTP connections of the object store it opened are still open (%d before it)", n, before)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// countGoroutines counts the goroutines whose stack holds fn.
func countGoroutines(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			count++
		}
	}
	return count
}
