package integration

import (
	"context"
	"fmt"
	"regexp"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// TestSlowStoreMemoryBound appends from many goroutines, as fast as they
// can, to a store slower than they are, with writer.memoryBudgetBytes at
// 1 MiB.
//
// First every block upload is held: nothing is acknowledged, so the
// appends accepted (AppendAsync returned) are all pending and, once the
// appenders are blocked, their payload must fit in the budget, and must
// fill a good part of it (or the test would show nothing). A further
// AppendAsync must block, and give up when its ctx ends.
//
// Then uploads proceed, each delayed 50 ms and not stored (so the store
// does not grow), while 64 MiB or more of entries go through. Sampled
// throughout: appends accepted but not acknowledged (at most the budget's
// worth), and
// the live heap after a forced GC (at most its value before the load plus
// budget*4 + 16 MiB). A writer that does not bound what it buffers, or
// keeps entries after acknowledging them, breaks one or the other.
func TestSlowStoreMemoryBound(t *testing.T) {
	const (
		budget     = 1 << 20
		blockBytes = 256 << 10
		entrySize  = 1000
		appenders  = 16
	)
	total := int64(64 << 20)
	if soak() {
		total = 1 << 30
	}
	s := newSite(t, kindMem)
	c := s.client(t, func(cfg *options.Config) {
		cfg.Writer.MemoryBudgetBytes = budget
		cfg.Writer.MaxBlockBytes = blockBytes
		cfg.Writer.MaxEntryBytes = 64 << 10
		cfg.Writer.MaxInflightUploads = 4
	})
	l := createLog(t, c, "slow")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	blocks := regexp.MustCompile(`/b-[0-9]+$`)

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseline := ms.HeapInuse

	hold := s.mem.Inject(memstore.Rule{Op: memstore.OpPut, KeyRegexp: blocks, Action: memstore.ActionHold})
	w, err := l.OpenWriter(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)

	// A pool of payloads, copied for each append so every append
	// allocates its own entryBytes.
	pool := make([][]byte, 64)
	for i := range pool {
		pool[i] = makePayloadSize("m", int64(i), entrySize-len(fmt.Sprintf("m:%d:", i)))
	}
	var (
		accepted, done atomic.Int64
		appendErrs     = make(chan error, appenders*2)
		loadCtx, stop  = context.WithCancel(ctx)
		wg             sync.WaitGroup
		reg            pendingSet
	)
	defer stop()
	for g := range appenders {
		futs := make(chan *woodpecker.AppendFuture, 1<<14)
		wg.Add(2)
		go func() { // appender
			defer wg.Done()
			defer close(futs)
			for i := g; loadCtx.Err() == nil; i += appenders {
				p := append([]byte(nil), pool[i%len(pool)]...)
				f, err := w.AppendAsync(loadCtx, p)
				if err != nil {
					if loadCtx.Err() == nil {
						appendErrs <- err
					}
					return
				}
				accepted.Add(1)
				reg.add(f)
				futs <- f
			}
		}()
		go func() { // its acknowledgements, in order
			defer wg.Done()
			for f := range futs {
				if _, err := f.Wait(ctx); err != nil {
					appendErrs <- err
					return
				}
				done.Add(1)
			}
		}()
	}

	// Held: wait until the appenders stop making progress.
	if err := s.mem.WaitHeld(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for last, since := accepted.Load(), time.Now(); time.Since(since) < 500*time.Millisecond; {
		time.Sleep(20 * time.Millisecond)
		if n := accepted.Load(); n != last {
			last, since = n, time.Now()
		}
		if accepted.Load()*entrySize > budget {
			break
		}
	}
	pending := accepted.Load()
	if done.Load() != 0 {
		t.Fatalf("test setup: %d appends acknowledged while every upload is held", done.Load())
	}
	if pending*entrySize > budget {
		t.Fatalf("with every upload held, %d appends of %d bytes were accepted: %d bytes pending, over the %d-byte budget",
			pending, entrySize, pending*entrySize, budget)
	}
	if pending*entrySize < budget/2 {
		t.Fatalf("with every upload held, only %d appends (%d bytes) were accepted before the appenders stopped: "+
			"they are not blocked by the budget", pending, pending*entrySize)
	}
	probeCtx, probeCancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = w.AppendAsync(probeCtx, pool[0])
	probeCancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("AppendAsync with the budget full: %v, want it to block until its ctx ends", err)
	}
	t.Logf("uploads held: %d appends (%d bytes) accepted and pending, budget %d bytes, %d uploads held",
		pending, pending*entrySize, budget, len(s.mem.Held()))

	// Slow: every block upload takes 50 ms and is not kept.
	hold.Remove()
	s.mem.Inject(memstore.Rule{Op: memstore.OpPut, KeyRegexp: blocks, Delay: 50 * time.Millisecond, Action: memstore.ActionDrop})
	s.mem.Release()
	var (
		peakPending int64
		peakHeap    uint64
		samples     int
	)
	heapTick := time.NewTicker(100 * time.Millisecond)
	defer heapTick.Stop()
	for start := accepted.Load(); (accepted.Load()-start)*entrySize < total; {
		select {
		case err := <-appendErrs:
			t.Fatalf("append failed: %v", err)
		case <-heapTick.C:
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapInuse)
			samples++
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("only %d bytes appended before the timeout", (accepted.Load()-start)*entrySize)
		}
		peakPending = max(peakPending, reg.pending())
	}
	stop()
	wg.Wait()
	select {
	case err := <-appendErrs:
		t.Fatalf("append failed: %v", err)
	default:
	}

	if peakPending*entrySize > budget {
		t.Errorf("up to %d appends of %d bytes were accepted and not acknowledged at once: %d bytes, over the %d-byte budget",
			peakPending, entrySize, peakPending*entrySize, budget)
	}
	bound := uint64(budget*4 + 16<<20)
	if peakHeap > baseline+bound {
		t.Errorf("live heap reached %d MiB, %d MiB over its %d MiB before the load; bound %d MiB",
			peakHeap>>20, (peakHeap-baseline)>>20, baseline>>20, bound>>20)
	}
	t.Logf("slow store: %d appends (%d MiB); peak pending %d appends (budget %d); live heap peak %d MiB over a baseline of %d MiB (%d samples, bound +%d MiB)",
		accepted.Load(), accepted.Load()*entrySize>>20, peakPending, budget/entrySize,
		(int64(peakHeap)-int64(baseline))>>20, baseline>>20, samples, bound>>20)
}

// pendingSet holds the futures of accepted appends until they are done.
// Safe for concurrent use.
type pendingSet struct {
	mu   sync.Mutex
	futs []*woodpecker.AppendFuture
}

func (p *pendingSet) add(f *woodpecker.AppendFuture) {
	p.mu.Lock()
	p.futs = append(p.futs, f)
	p.mu.Unlock()
}

// pending drops the done futures and returns how many are left. No future
// joins during the scan, and a future found not done was not done when the
// scan began either, so the count never exceeds the appends accepted and
// unacknowledged at that moment: it needs no slack.
func (p *pendingSet) pending() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	keep := p.futs[:0]
	for _, f := range p.futs {
		select {
		case <-f.Done():
		default:
			keep = append(keep, f)
		}
	}
	clear(p.futs[len(keep):])
	p.futs = keep
	return int64(len(keep))
}
