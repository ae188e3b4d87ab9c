package quorum

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/woodpecker-wal/woodpecker/quorum/quorumpb"
	"github.com/woodpecker-wal/woodpecker/segment"
)

var _ segment.BlockWatcher = (*Backend)(nil)

// A replica's watch that failed (not for good) is opened again after
// watchRetryMin, doubling up to watchRetryMax while it keeps failing.
const (
	watchRetryMin = 50 * time.Millisecond
	watchRetryMax = 2 * time.Second
)

// WatchBlocks implements segment.BlockWatcher: it follows the segment's
// state on every replica of its ensemble (the LogStore's Watch stream)
// and wakes the reader when the blocks that state shows readable grow:
// the prefix of blocks each covered by a replica's LAC or upload
// watermark, or held by AckQuorum replicas. The cursor still decides what
// is visible, by the quorum rule; a wake only says "look again". Any
// AckQuorum replicas that stream suffice, so a silent replica does not
// stall the reader. A replica whose stream breaks is subscribed again
// with backoff (it restarted, or the network failed); one that cannot
// watch (a LogStore without the call: UNIMPLEMENTED), no longer holds the
// segment (released) or takes no part in it (segment_lost) is left to
// the reader's fallback timer.
func (b *Backend) WatchBlocks(ctx context.Context, ref segment.Ref, wake chan<- struct{}) (stop func()) {
	if ref.Placement == "" {
		return func() {}
	}
	p, cs, err := b.replicas(ref)
	if err != nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &tailWatch{wake: wake, states: make([]*quorumpb.WatchEvent, len(cs)), woke: -1}
	req := &quorumpb.WatchRequest{Segment: pbSegment(ref, 0), CreatedRevision: p.Revision}
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.follow(ctx, i, c, req)
		}()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			wg.Wait()
		})
	}
}

// tailWatch is one reader's watch of one segment.
type tailWatch struct {
	wake chan<- struct{}

	mu     sync.Mutex
	states []*quorumpb.WatchEvent // the latest event of each replica; nil: none
	woke   int64                  // readable blocks at the last wake
}

// follow streams replica i's state for as long as ctx lives, subscribing
// again when the stream breaks.
func (w *tailWatch) follow(ctx context.Context, i int, c quorumpb.LogStoreClient, req *quorumpb.WatchRequest) {
	backoff := watchRetryMin
	for {
		// Wait for a connection: a replica that is down or restarting
		// costs a blocked call, not a loop of failures.
		s, err := c.Watch(ctx, req, grpc.WaitForReady(true))
		for err == nil {
			var ev *quorumpb.WatchEvent
			if ev, err = s.Recv(); err == nil {
				w.update(i, ev)
				backoff = watchRetryMin
			}
		}
		w.update(i, nil) // what it held may be gone by the time it answers again
		if ctx.Err() != nil {
			return
		}
		switch status.Code(err) {
		case codes.Unimplemented, codes.NotFound, codes.DataLoss, codes.InvalidArgument:
			// For good: the reader's timer covers this replica. A release
			// (the segment is sealed) is worth a look at once.
			w.poke()
			return
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, watchRetryMax)
	}
}

// update records replica i's state (nil: unknown) and wakes the reader
// when more blocks are readable than at the last wake.
func (w *tailWatch) update(i int, ev *quorumpb.WatchEvent) {
	w.mu.Lock()
	w.states[i] = ev
	n := readable(w.states)
	more := n > w.woke
	if more {
		w.woke = n
	}
	w.mu.Unlock()
	if more {
		w.poke()
	}
}

func (w *tailWatch) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// readable returns how many leading blocks of the segment the replicas'
// states show readable, by the rule the cursor reads by (VisibleWithLAC):
// every block up to a replica's LAC (acknowledged) or upload watermark (in
// object storage), then each block held by AckQuorum replicas. nil states
// are replicas not heard from.
func readable(states []*quorumpb.WatchEvent) int64 {
	stored, lac := int64(0), int64(-1)
	var held [][]int64
	for _, ev := range states {
		if ev == nil {
			continue
		}
		stored, lac = max(stored, ev.GetUploaded()+1), max(lac, ev.GetLac())
		held = append(held, blocksOf(ev.GetHeld()))
	}
	return VisibleWithLAC(stored, held, lac)
}

// blocksOf lists the blocks of runs (first, last pairs).
func blocksOf(runs []int64) []int64 {
	var out []int64
	for i := 0; i+1 < len(runs); i += 2 {
		for b := runs[i]; b <= runs[i+1]; b++ {
			out = append(out, b)
		}
	}
	return out
}
