package woodpecker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// slowGets is a store whose Gets take a while, and which records how many
// were in flight at most.
type slowGets struct {
	objstore.Store
	mu                sync.Mutex
	inflight, maxSeen int
}

func (s *slowGets) Get(ctx context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	s.inflight++
	s.maxSeen = max(s.maxSeen, s.inflight)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight--
		s.mu.Unlock()
	}()
	time.Sleep(5 * time.Millisecond)
	return s.Store.Get(ctx, key)
}

func (s *slowGets) reset() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.maxSeen
	s.maxSeen = 0
	return m
}

// TestReaderPrefetchBlocks: reader.prefetchBlocks is the reader's setting,
// handed to the cursor it opens on a sealed segment: it keeps that many
// block reads in flight, and reads one block at a time with 1.
func TestReaderPrefetchBlocks(t *testing.T) {
	for _, prefetch := range []int{1, 4} {
		t.Run(map[int]string{1: "one", 4: "four"}[prefetch], func(t *testing.T) {
			store := &slowGets{Store: memstore.New()}
			b := backend{name: "slow", setup: func(*testing.T, *options.Config) []woodpecker.Option {
				return []woodpecker.Option{woodpecker.WithObjectStore(store)}
			}}
			c := newClient(t, b, func(cfg *options.Config) { cfg.Reader.PrefetchBlocks = prefetch })
			l := openLog(t, c, "prefetch")
			ctx := context.Background()
			w, err := l.OpenWriter(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			const n = 24 // a lone writer: one block per append
			for i := range n {
				if _, err := w.Append(ctx, payload(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(ctx); err != nil { // seals the segment
				t.Fatal(err)
			}
			store.reset()
			readN(t, mustReader(t, l, woodpecker.Earliest()), n)
			got := store.reset()
			if prefetch == 1 && got != 1 || prefetch > 1 && (got < 2 || got > prefetch) {
				t.Fatalf("reader.prefetchBlocks %d: %d block reads in flight at most", prefetch, got)
			}
		})
	}
}
