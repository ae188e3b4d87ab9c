package quorum

import "sync"

// lacTracker computes a segment's last-add-confirmed: the highest block
// number n such that every block 0..n is acknowledged. Blocks complete in
// any order; the LAC only grows. It is safe for concurrent use.
type lacTracker struct {
	mu   sync.Mutex
	lac  int64
	done map[int64]bool // acknowledged blocks above lac
}

func newLACTracker() *lacTracker { return &lacTracker{lac: -1, done: map[int64]bool{}} }

// acked records that block was acknowledged and returns the LAC.
func (t *lacTracker) acked(block int64) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if block > t.lac {
		t.done[block] = true
	}
	for t.done[t.lac+1] {
		delete(t.done, t.lac+1)
		t.lac++
	}
	return t.lac
}

// get returns the LAC.
func (t *lacTracker) get() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lac
}
