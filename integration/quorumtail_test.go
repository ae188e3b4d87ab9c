//go:build linux

package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// TestQuorumTailReaderIsPushedThroughLogStoreKills: against 3 `woodpecker
// logstore` processes, a tail reader on another client than the writer,
// whose polling backs off for an hour, reads each new entry within
// seconds: the LogStores push it (Watch). It keeps doing so while a
// LogStore is killed with SIGKILL (the other two push the entry acked
// without it) and after it comes back with an empty memory (the writer
// rolls to a segment it takes part in again, and the reader watches it).
func TestQuorumTailReaderIsPushedThroughLogStoreKills(t *testing.T) {
	s := newSite(t, kindQuorum)
	wc := s.client(t, nil)
	rc := s.client(t, func(cfg *options.Config) {
		cfg.Reader.TailBackoffMin, cfg.Reader.TailBackoffMax = time.Hour, time.Hour
	})
	l := createLog(t, wc, "pushed")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w, err := l.OpenWriter(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(context.Background())
	appendOne := func(p string) {
		t.Helper()
		if _, err := w.Append(ctx, []byte(p)); err != nil {
			t.Fatalf("append %s: %v", p, err)
		}
	}
	appendOne("before")
	r := openReader(t, openLog(t, rc, "pushed"), woodpecker.Latest())
	entries, done := make(chan woodpecker.Entry, 16), make(chan error, 1)
	rctx, rcancel := context.WithCancel(ctx)
	go func() {
		for {
			e, err := r.Next(rctx)
			if err != nil {
				done <- err
				return
			}
			entries <- e
		}
	}()
	defer func() { rcancel(); <-done }()
	expect := func(want string) {
		t.Helper()
		start := time.Now()
		select {
		case e := <-entries:
			if string(e.Payload) != want {
				t.Fatalf("read %q (%v), want %q", e.Payload, e.ID, want)
			}
			t.Logf("read %q at %v, %v after its ack", e.Payload, e.ID, time.Since(start))
		case err := <-done:
			t.Fatalf("waiting for %q: the reader ended: %v", want, err)
		case <-time.After(30 * time.Second):
			t.Fatalf("no %q within 30s of its ack (the reader's polling backs off for an hour)", want)
		}
	}
	time.Sleep(200 * time.Millisecond) // the reader waits at the tail
	appendOne("e0")
	expect("e0")

	s.stores.kill(1)
	appendOne("e1") // acknowledged by the two left, which push it
	expect("e1")

	s.stores.start(1) // back with an empty memory
	for i := 2; i <= 5; i++ {
		p := fmt.Sprintf("e%d", i)
		appendOne(p)
		expect(p)
	}
}
