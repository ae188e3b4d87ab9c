package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
)

// CountingStore is an objstore.Store that counts the calls and bytes passing
// through it to another store. Give it to the client
// (woodpecker.WithObjectStore) and to Config.Counter to learn how many
// requests the engine made per GiB written. It is safe for concurrent use.
type CountingStore struct {
	next objstore.Store

	puts, putBytes atomic.Int64
	gets, getBytes atomic.Int64
	stats, lists   atomic.Int64
	deletes        atomic.Int64
	failures       atomic.Int64

	mu     sync.Mutex
	putLat *hdrhistogram.Histogram // successful PUTs since the last TakePutLatency
}

var _ objstore.Store = (*CountingStore)(nil)

// NewCountingStore counts the calls made to next. next stays the caller's.
func NewCountingStore(next objstore.Store) *CountingStore {
	return &CountingStore{next: next, putLat: newHist()}
}

// TakePutLatency returns the latency of the successful PUTs since the
// last call (or since the store was made), and starts over.
func (s *CountingStore) TakePutLatency() Latency {
	s.mu.Lock()
	h := s.putLat
	s.putLat = newHist()
	s.mu.Unlock()
	return summarize(h)
}

// Counts is a snapshot of a CountingStore's counters. Calls are counted as
// they complete, failed ones included; bytes count only successful calls.
type Counts struct {
	Puts     int64 `json:"puts"`
	PutBytes int64 `json:"put_bytes"`
	// Gets counts Get and GetRange calls.
	Gets     int64 `json:"gets"`
	GetBytes int64 `json:"get_bytes"`
	Stats    int64 `json:"stats"`
	Lists    int64 `json:"lists"`
	Deletes  int64 `json:"deletes"`
	// Failures counts calls of any kind that returned an error.
	Failures int64 `json:"failures"`
}

// Sub returns c minus earlier, the calls made between two snapshots.
func (c Counts) Sub(earlier Counts) Counts {
	return Counts{
		Puts: c.Puts - earlier.Puts, PutBytes: c.PutBytes - earlier.PutBytes,
		Gets: c.Gets - earlier.Gets, GetBytes: c.GetBytes - earlier.GetBytes,
		Stats: c.Stats - earlier.Stats, Lists: c.Lists - earlier.Lists,
		Deletes: c.Deletes - earlier.Deletes, Failures: c.Failures - earlier.Failures,
	}
}

// Counts returns the counters now.
func (s *CountingStore) Counts() Counts {
	return Counts{
		Puts: s.puts.Load(), PutBytes: s.putBytes.Load(),
		Gets: s.gets.Load(), GetBytes: s.getBytes.Load(),
		Stats: s.stats.Load(), Lists: s.lists.Load(),
		Deletes: s.deletes.Load(), Failures: s.failures.Load(),
	}
}

func (s *CountingStore) done(calls *atomic.Int64, err error) {
	calls.Add(1)
	if err != nil {
		s.failures.Add(1)
	}
}

// Put implements objstore.Store.
func (s *CountingStore) Put(ctx context.Context, key string, data []byte, opts objstore.PutOptions) error {
	t0 := time.Now()
	err := s.next.Put(ctx, key, data, opts)
	if err == nil {
		d := time.Since(t0)
		s.putBytes.Add(int64(len(data)))
		s.mu.Lock()
		recordHist(s.putLat, d)
		s.mu.Unlock()
	}
	s.done(&s.puts, err)
	return err
}

// Get implements objstore.Store.
func (s *CountingStore) Get(ctx context.Context, key string) ([]byte, error) {
	data, err := s.next.Get(ctx, key)
	s.getBytes.Add(int64(len(data)))
	s.done(&s.gets, err)
	return data, err
}

// GetRange implements objstore.Store.
func (s *CountingStore) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	data, err := s.next.GetRange(ctx, key, offset, length)
	s.getBytes.Add(int64(len(data)))
	s.done(&s.gets, err)
	return data, err
}

// Stat implements objstore.Store.
func (s *CountingStore) Stat(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	info, err := s.next.Stat(ctx, key)
	s.done(&s.stats, err)
	return info, err
}

// List implements objstore.Store.
func (s *CountingStore) List(ctx context.Context, prefix, startAfter string, limit int) (objstore.ListPage, error) {
	page, err := s.next.List(ctx, prefix, startAfter, limit)
	s.done(&s.lists, err)
	return page, err
}

// Delete implements objstore.Store.
func (s *CountingStore) Delete(ctx context.Context, key string) error {
	err := s.next.Delete(ctx, key)
	s.done(&s.deletes, err)
	return err
}
