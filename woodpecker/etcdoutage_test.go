package woodpecker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// TestReaderWaitsOutAnEtcdOutage: a reader blocked in Next while etcd is
// down retries, as it does through a storage outage, for as long as its
// caller waits, and delivers the next entry once etcd is back and a writer
// appends it. (Found by the chaos suite: Next returned the failed reload
// of the segment list at once.)
func TestReaderWaitsOutAnEtcdOutage(t *testing.T) {
	etcd, c := outageClient(t)
	l := openLog(t, c, "outage")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const n = 3
	w, _ := appendN(t, l, 1, n)
	r, err := l.OpenReader(ctx, woodpecker.Earliest())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := range n {
		if _, err := r.Next(ctx); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	// Sealing the segment changes its metadata: the reader hears of it
	// through its watch and must reload the segment list, which it will
	// try while etcd is down.
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // let the watch event reach the reader
	etcd.Stop()

	type result struct {
		e   woodpecker.Entry
		err error
	}
	got := make(chan result, 1)
	go func() {
		e, err := r.Next(ctx)
		got <- result{e, err}
	}()
	// Several of the reader's etcd requests fail meanwhile.
	select {
	case res := <-got:
		t.Fatalf("Next returned during the etcd outage: %q, %v", res.e.Payload, res.err)
	case <-time.After(2 * time.Second):
	}
	etcd.Start()

	// The client's connection comes back within a few of its short
	// requests.
	var w2 *woodpecker.Writer
	for {
		if w2, err = l.OpenWriter(ctx, 2); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("open a writer after etcd restarted: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	defer w2.Close(ctx)
	if _, err := w2.Append(ctx, []byte("after")); err != nil {
		t.Fatal(err)
	}
	res := <-got
	if res.err != nil {
		t.Fatalf("Next across the etcd outage: %v", res.err)
	}
	if string(res.e.Payload) != "after" {
		t.Fatalf("Next across the etcd outage returned %q, want %q", res.e.Payload, "after")
	}
}

// TestOpenReaderWaitsOutAnEtcdOutage: OpenReader while etcd is down
// retries, as Next does, for as long as its caller waits, and returns a
// reader that delivers the log's entries once etcd is back. A definite
// answer still comes at once: a reader on a deleted log fails with
// ErrLogNotFound, not after the caller's deadline.
func TestOpenReaderWaitsOutAnEtcdOutage(t *testing.T) {
	etcd, c := outageClient(t)
	l := openLog(t, c, "outage")
	gone := openLog(t, c, "gone")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const n = 3
	w, _ := appendN(t, l, 1, n)
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteLog(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := gone.OpenReader(ctx, woodpecker.Earliest()); !errors.Is(err, woodpecker.ErrLogNotFound) || ctx.Err() != nil {
		t.Fatalf("reader on a deleted log: %v (context: %v), want ErrLogNotFound at once", err, ctx.Err())
	}

	etcd.Stop()
	type result struct {
		r   *woodpecker.Reader
		err error
	}
	got := make(chan result, 1)
	go func() {
		r, err := l.OpenReader(ctx, woodpecker.Earliest())
		got <- result{r, err}
	}()
	// Several of the open's etcd requests fail meanwhile.
	select {
	case res := <-got:
		t.Fatalf("OpenReader returned during the etcd outage: %v", res.err)
	case <-time.After(2 * time.Second):
	}
	etcd.Start()
	res := <-got
	if res.err != nil {
		t.Fatalf("OpenReader across the etcd outage: %v", res.err)
	}
	defer res.r.Close()
	for i := range n {
		e, err := res.r.Next(ctx)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if want := string(payload(i)); string(e.Payload) != want {
			t.Fatalf("entry %d: %q, want %q", i, e.Payload, want)
		}
	}
}

// outageClient returns a dedicated etcd process, for the test to stop and
// start, and a client on it (local storage) with short etcd deadlines and
// tail backoff.
func outageClient(t *testing.T) (*testenv.EtcdProcess, *woodpecker.Client) {
	t.Helper()
	etcd := testenv.StartEtcd(t)
	cfg := options.Default()
	cfg.Etcd.Endpoints = etcd.Endpoints()
	cfg.Etcd.RootPath = testenv.UniquePrefix(t)
	cfg.Etcd.DialTimeout = time.Second
	cfg.Etcd.RequestTimeout = 300 * time.Millisecond
	cfg.Storage.Type = options.StorageLocal
	cfg.Storage.RootPath = t.TempDir()
	cfg.Reader.TailBackoffMax = 200 * time.Millisecond
	c, err := woodpecker.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return etcd, c
}
