package quorum

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// TestCopyBlocksReportsTheLowestFailure: every block is copied once, at
// most copyParallel at a time, and the result is the lowest block that
// failed (a seal measures its progress by it), or the end.
func TestCopyBlocksReportsTheLowestFailure(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fail     map[int64]bool
		wantNext int64
	}{
		{"none fails", nil, 40},
		{"one fails", map[int64]bool{17: true}, 17},
		{"several fail", map[int64]bool{33: true, 12: true, 25: true}, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			seen := map[int64]int{}
			var running, peak atomic.Int64
			next, err := copyBlocks(context.Background(), 5, 40, func(ctx context.Context, blk int64) error {
				n := running.Add(1)
				defer running.Add(-1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				mu.Lock()
				seen[blk]++
				mu.Unlock()
				if tc.fail[blk] {
					return errors.New("no")
				}
				return nil
			})
			if next != tc.wantNext || (err != nil) != (tc.fail != nil) {
				t.Fatalf("copyBlocks = %d, %v; want %d", next, err, tc.wantNext)
			}
			for blk := int64(5); blk < 40; blk++ {
				if seen[blk] != 1 {
					t.Fatalf("block %d copied %d times", blk, seen[blk])
				}
			}
			if len(seen) != 35 || peak.Load() > copyParallel {
				t.Fatalf("%d blocks copied, %d at once", len(seen), peak.Load())
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if next, err := copyBlocks(ctx, 3, 10, func(context.Context, int64) error { return nil }); next != 3 || !errors.Is(err, context.Canceled) {
		t.Fatalf("copyBlocks with ctx ended = %d, %v", next, err)
	}
}
