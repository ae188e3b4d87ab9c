package shared

import (
	"testing"
	"time"
)

// TestAdaptiveLimitBacksOffWhenTheStoreQueues: latency far above the
// fastest seen takes the limit down to 1; latency back near it takes it
// back to max; it never leaves [1, max].
func TestAdaptiveLimitBacksOffWhenTheStoreQueues(t *testing.T) {
	l := newAdaptiveLimit(4)
	for range 10 {
		if n := l.observe(10*time.Millisecond, 1<<20); n != 4 {
			t.Fatalf("steady store: limit %d, want 4", n)
		}
	}
	for range 20 {
		l.observe(100*time.Millisecond, 1<<20)
	}
	if l.cur != 1 {
		t.Fatalf("store 10x slower: limit %d, want 1", l.cur)
	}
	for range 40 {
		l.observe(10*time.Millisecond, 1<<20)
	}
	if l.cur != 4 {
		t.Fatalf("store fast again: limit %d, want 4", l.cur)
	}
}

// TestAdaptiveLimitFollowsAStoreThatStaysSlow: base latency drifts up, so
// a store that became slower for good is not throttled for ever.
func TestAdaptiveLimitFollowsAStoreThatStaysSlow(t *testing.T) {
	l := newAdaptiveLimit(4)
	l.observe(time.Millisecond, 1<<20)
	for range 500 {
		l.observe(50*time.Millisecond, 1<<20)
	}
	if l.cur != 4 {
		t.Fatalf("after the store settled at a new latency: limit %d, want 4", l.cur)
	}
}

// TestAdaptiveLimitComparesLikeSizes: a large object that takes longer
// than a small one is not a sign of queueing, nor is a small one after a
// run of large ones (a PUT's time is mostly a fixed cost).
func TestAdaptiveLimitComparesLikeSizes(t *testing.T) {
	l := newAdaptiveLimit(4)
	for i := range 40 {
		size, d := int64(64<<10), 2*time.Millisecond
		if i%2 == 1 {
			size, d = 8<<20, 256*time.Millisecond
		}
		if n := l.observe(d, size); n != 4 {
			t.Fatalf("sample %d: limit %d, want 4", i, n)
		}
	}
	l = newAdaptiveLimit(4)
	for range 10 {
		l.observe(30*time.Millisecond, 2<<20)
	}
	for i := range 40 {
		if n := l.observe(5*time.Millisecond, 128<<10); n != 4 {
			t.Fatalf("small object %d after large ones: limit %d, want 4", i, n)
		}
	}
}
