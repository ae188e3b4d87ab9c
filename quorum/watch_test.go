package quorum_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/quorum"
	"github.com/woodpecker-wal/woodpecker/quorum/quorumtest"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// tailClient opens a client (its own transport, wrapped in faults) whose
// readers back off for tailBackoff between looks at a tail that nothing
// pushes: with an hour, a tail reader gets a block of another client's
// writer within a test only if a replica pushes it.
func (e *env) tailClient(tailBackoff time.Duration) (*woodpecker.Client, *quorum.Faults) {
	e.t.Helper()
	return e.client(func(cfg *options.Config) {
		cfg.Reader.TailBackoffMin, cfg.Reader.TailBackoffMax = tailBackoff, tailBackoff
	})
}

// follow reads r in the background until ctx ends, sending what it reads
// (and its last error) on the returned channels.
func follow(ctx context.Context, r *woodpecker.Reader) (<-chan woodpecker.Entry, <-chan error) {
	entries, done := make(chan woodpecker.Entry, 100), make(chan error, 1)
	go func() {
		for {
			e, err := r.Next(ctx)
			if err != nil {
				done <- err
				return
			}
			entries <- e
		}
	}()
	return entries, done
}

// expect receives the entry with payload want within d.
func expect(t *testing.T, entries <-chan woodpecker.Entry, done <-chan error, want string, d time.Duration) {
	t.Helper()
	select {
	case e := <-entries:
		t.Logf("read %q at %v", e.Payload, e.ID)
		if string(e.Payload) != want {
			t.Fatalf("read %q (%v), want %q", e.Payload, e.ID, want)
		}
	case err := <-done:
		t.Fatalf("waiting for %q: the reader ended: %v", want, err)
	case <-time.After(d):
		t.Fatalf("no %q within %v", want, d)
	}
}

// TestTailReaderIsPushedBlocksByTheReplicas: a tail reader in another
// client than the writer (no in-process wake) whose polling backs off for
// an hour still reads a new entry at once: the replicas push it. Against
// LogStores without the Watch call the same reader waits out its backoff
// (so the first case proves the push), and with the usual backoff it
// polls, as before the call existed.
func TestTailReaderIsPushedBlocksByTheReplicas(t *testing.T) {
	for _, tt := range []struct {
		name    string
		watch   bool
		backoff time.Duration
		wait    time.Duration // how long the reader may wait for the entry
		want    bool          // whether it gets it
	}{
		{"pushed", true, time.Hour, 30 * time.Second, true},
		{"LogStores without Watch", false, time.Hour, 3 * time.Second, false},
		{"LogStores without Watch poll", false, 50 * time.Millisecond, 30 * time.Second, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			wc, _ := e.client()
			w, err := e.log(wc, "tail").OpenWriter(context.Background(), 1)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close(context.Background())
			appendAll(t, w, "before", 3)

			rc, faults := e.tailClient(tt.backoff)
			if !tt.watch {
				for _, n := range e.cluster.Nodes {
					faults.NoWatch(n.Addr, true)
				}
			}
			r, err := e.log(rc, "tail").OpenReader(context.Background(), woodpecker.Latest())
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			ctx, cancel := context.WithTimeout(context.Background(), tt.wait)
			defer cancel()
			got := make(chan error, 1)
			go func() {
				e, err := r.Next(ctx)
				if err == nil && string(e.Payload) != "after" {
					err = errors.Newf("read %q, want %q", e.Payload, "after")
				}
				got <- err
			}()
			time.Sleep(300 * time.Millisecond) // the reader waits at the tail
			start := time.Now()
			if _, err := w.Append(context.Background(), []byte("after")); err != nil {
				t.Fatal(err)
			}
			err = <-got
			switch {
			case tt.want && err != nil:
				t.Fatalf("the tail reader did not get the entry: %v", err)
			case !tt.want && !errors.Is(err, context.DeadlineExceeded):
				t.Fatalf("without pushes, a reader backing off for %v read the entry within %v (%v): what else woke it?",
					tt.backoff, tt.wait, err)
			case tt.want:
				t.Logf("read %v after the append", time.Since(start))
			}
			if n := faults.Calls("Watch"); n == 0 {
				t.Fatal("the reader never asked a replica to watch")
			}
		})
	}
}

// TestTailReaderFollowsThroughAReplicaFailure: a replica of the segment a
// tail reader follows restarts (empty, no longer part of the segment) or
// dies; the other two keep pushing, and the reader keeps reading with an
// hour of polling backoff, through the writer's roll to a new segment.
func TestTailReaderFollowsThroughAReplicaFailure(t *testing.T) {
	for _, restart := range []bool{true, false} {
		name := "killed"
		if restart {
			name = "restarted"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			w, entries, done, _ := tailSetup(t, e, "fail")
			appendOne(t, w, "e0")
			expect(t, entries, done, "e0", 20*time.Second)
			if restart {
				e.cluster.Restart(t, testenv.Etcd(t), 1, e.store, "", 64<<20)
			} else {
				_ = e.cluster.Servers[1].Close()
			}
			for i := 1; i <= 5; i++ {
				p := fmt.Sprintf("e%d", i)
				appendOne(t, w, p)
				expect(t, entries, done, p, 20*time.Second)
			}
		})
	}
}

// TestTailReaderWatchesAgainAReplicaItLost: the reader's stream from one
// replica breaks (a partition between the reader and that replica only:
// the writer keeps writing the same segment, so no segment change wakes
// the reader); the other two replicas keep pushing. Once the partition
// heals the reader watches that replica again: with another replica cut
// off then, the last entry (held by two replicas, not yet covered by a
// LAC, not uploaded) can only come from the two it streams.
func TestTailReaderWatchesAgainAReplicaItLost(t *testing.T) {
	// No uploads until the end: an upload watermark would make blocks
	// readable through the uploader's stream alone.
	store, gate := memstore.New(), make(chan struct{})
	e := &env{t: t, store: store, prefix: testenv.UniquePrefix(t),
		cluster: quorumtest.Start(t, testenv.Etcd(t), 3, gatedPuts{Store: store, open: gate}, "", 64<<20)}
	w, entries, done, faults := tailSetup(t, e, "lost")
	t.Cleanup(func() { close(gate) }) // before the writer closes
	appendOne(t, w, "e0")
	expect(t, entries, done, "e0", 20*time.Second)
	faults.Partition(e.cluster.Nodes[1].Addr, true)
	for i := 1; i <= 3; i++ {
		p := fmt.Sprintf("e%d", i)
		appendOne(t, w, p)
		expect(t, entries, done, p, 20*time.Second)
	}
	faults.Partition(e.cluster.Nodes[1].Addr, false)
	time.Sleep(3 * time.Second) // longer than the watch's retry backoff
	faults.Partition(e.cluster.Nodes[2].Addr, true)
	// One entry, the reader waiting: the LAC that would make it readable
	// through replica 0 alone comes with the next append only.
	appendOne(t, w, "e4")
	expect(t, entries, done, "e4", 20*time.Second)
}

// tailSetup opens a writer and, in another client that backs off for an
// hour, a tail reader at Latest after two entries; the reader reads in
// the background until the test ends.
func tailSetup(t *testing.T, e *env, name string) (*woodpecker.Writer, <-chan woodpecker.Entry, <-chan error, *quorum.Faults) {
	t.Helper()
	wc, _ := e.client()
	w, err := e.log(wc, name).OpenWriter(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, w, "before", 2)
	rc, faults := e.tailClient(time.Hour)
	r, err := e.log(rc, name).OpenReader(context.Background(), woodpecker.Latest())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	entries, done := follow(ctx, r)
	t.Cleanup(func() {
		cancel()
		<-done
		_ = r.Close()
		_ = w.Close(context.Background())
	})
	time.Sleep(200 * time.Millisecond) // the reader waits at the tail
	return w, entries, done, faults
}

func appendOne(t *testing.T, w *woodpecker.Writer, p string) {
	t.Helper()
	if _, err := w.Append(context.Background(), []byte(p)); err != nil {
		t.Fatalf("append %s: %v", p, err)
	}
}

// TestTailReaderOfAWriterInItsClientWatchesNoReplica: a reader following a
// segment that a writer of its own client writes is woken by that writer,
// and opens no stream to the replicas.
func TestTailReaderOfAWriterInItsClientWatchesNoReplica(t *testing.T) {
	e := newEnv(t)
	c, faults := e.client()
	l := e.log(c, "local")
	w, err := l.OpenWriter(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(context.Background())
	appendOne(t, w, "e0")
	r, err := l.OpenReader(context.Background(), woodpecker.Earliest())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	entries, done := follow(ctx, r)
	defer func() { cancel(); <-done }()
	expect(t, entries, done, "e0", 20*time.Second)
	appendOne(t, w, "e1")
	expect(t, entries, done, "e1", 20*time.Second)
	if n := faults.Calls("Watch"); n != 0 {
		t.Fatalf("the reader opened %d watches of a segment its client writes", n)
	}
}
