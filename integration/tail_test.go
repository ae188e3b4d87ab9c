package integration

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// TestTailReadersSeeExactlyTheAcknowledged appends 100,000 small entries
// from 8 goroutines, half with Append and half with AppendAsync and many in
// flight, while three readers opened before the first append follow the
// tail (Earliest, Latest and At(0/0); one on a second client, which learns
// of new data from etcd and storage rather than from the writer in its
// process). Each reader must return exactly the acknowledged entries, in id
// order, with their bytes, and nothing else.
//
// It catches lost, duplicated, reordered or torn entries under concurrency,
// ids handed out out of order, readers that skip or repeat a block across
// segment rolls, and readers that return data before it is durable.
func TestTailReadersSeeExactlyTheAcknowledged(t *testing.T) {
	total := 100_000
	if soak() {
		total = 1_000_000
	}
	for _, kind := range []string{kindMinIO, kindLocal} {
		t.Run(kind, func(t *testing.T) {
			s := newSite(t, kind)
			tweak := func(cfg *options.Config) {
				cfg.Writer.MaxBlockBytes = 32 << 10 // ~200 entries: many blocks
				cfg.Writer.RollMaxBlocks = 40       // several segments
			}
			c := s.client(t, tweak)
			other := s.client(t, tweak)
			l := createLog(t, c, "tail")
			lo := openLog(t, other, "tail")
			readers := map[string]*woodpecker.Reader{
				"earliest":             openReader(t, l, woodpecker.Earliest()),
				"latest":               openReader(t, l, woodpecker.Latest()),
				"at 0/0, other client": openReader(t, lo, woodpecker.At(woodpecker.EntryID{})),
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()

			results := make(map[string][]seen)
			readErrs := make(map[string]error)
			var rmu sync.Mutex
			var rwg sync.WaitGroup
			defer func() { cancel(); rwg.Wait() }() // before t.Cleanup closes the readers
			for name, r := range readers {
				rwg.Add(1)
				go func() {
					defer rwg.Done()
					got, err := readN(ctx, r, total)
					rmu.Lock()
					results[name], readErrs[name] = got, err
					rmu.Unlock()
				}()
			}

			w, err := l.OpenWriter(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			const appenders, window = 8, 256
			var tickets atomic.Int64 // appends claimed so far, across goroutines
			acked := make([][]seen, appenders)
			var wg sync.WaitGroup
			for g := range appenders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tag := fmt.Sprintf("g%d", g)
					async := g%2 == 1
					var futs []*woodpecker.AppendFuture
					var futSeq []int64
					done := func(seq int64, id woodpecker.EntryID, err error) bool {
						if err != nil {
							t.Errorf("%s append %d: %v", tag, seq, err)
							return false
						}
						if n := len(acked[g]); n > 0 && !acked[g][n-1].ID.Less(id) {
							t.Errorf("%s: append %d got id %v, not after the previous one's %v", tag, seq, id, acked[g][n-1].ID)
							return false
						}
						acked[g] = append(acked[g], seen{ID: id, Tag: tag, Seq: seq})
						return true
					}
					waitOldest := func() bool {
						id, err := futs[0].Wait(ctx)
						ok := done(futSeq[0], id, err)
						futs, futSeq = futs[1:], futSeq[1:]
						return ok
					}
					for seq := int64(0); tickets.Add(1) <= int64(total); seq++ {
						p := makePayload(tag, seq)
						if !async {
							id, err := w.Append(ctx, p)
							if !done(seq, id, err) {
								return
							}
							continue
						}
						f, err := w.AppendAsync(ctx, p)
						if err != nil {
							t.Errorf("%s append %d: %v", tag, seq, err)
							return
						}
						futs, futSeq = append(futs, f), append(futSeq, seq)
						if len(futs) == window && !waitOldest() {
							return
						}
					}
					for len(futs) > 0 {
						if !waitOldest() {
							return
						}
					}
				}()
			}
			wg.Wait()
			if err := w.Close(ctx); err != nil {
				t.Fatalf("close writer: %v", err)
			}
			if t.Failed() {
				return
			}
			var want []seen
			perAppender := make([]int, appenders)
			for g, a := range acked {
				want = append(want, a...)
				perAppender[g] = len(a)
			}
			sort.Slice(want, func(i, j int) bool { return want[i].ID.Less(want[j].ID) })
			checkOrdered(t, "acknowledged ids", want)
			if len(want) != total {
				t.Fatalf("%d appends acknowledged, want %d", len(want), total)
			}
			rwg.Wait()
			for name, err := range readErrs {
				if err != nil {
					t.Errorf("reader %s: %v", name, err)
				}
			}
			if t.Failed() {
				return
			}
			for name, r := range readers {
				sameEntries(t, "reader "+name, results[name], want)
				expectSilent(t, r, "reader "+name)
			}
			st, err := l.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if int(st.SealedEntries) != total {
				t.Fatalf("stats: %d sealed entries, want %d", st.SealedEntries, total)
			}
			t.Logf("%d entries in %d segments; appends per goroutine (even: Append, odd: AppendAsync): %v",
				total, len(st.Segments), perAppender)
		})
	}
}
