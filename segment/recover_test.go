package segment

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
)

// The recovery's decisions, event by event, without I/O. Each event is
// the outcome of the step the recovery asked for; the trace lists the steps
// it asks for after each.
func TestRecoveryDecisions(t *testing.T) {
	boom := errors.New("boom")
	seal := SealInfo{LastEntry: 41, Blocks: 3, Bytes: 300}
	theirs := SealInfo{LastEntry: 44, Blocks: 4, Bytes: 400}
	type event func(r *recovery)
	var (
		sealFound   = func(info SealInfo) event { return func(r *recovery) { r.sealRead(info, true, nil) } }
		sealMissing = func(r *recovery) { r.sealRead(SealInfo{}, false, nil) }
		sealErr     = func(r *recovery) { r.sealRead(SealInfo{}, false, boom) }
		end         = func(blocks int64, fenced bool) event {
			return func(r *recovery) { r.endFound(Tail{Blocks: blocks, Fenced: fenced}, nil) }
		}
		endErr       = func(r *recovery) { r.endFound(Tail{}, boom) }
		fenceHeld    = func(r *recovery) { r.fenced(true, nil) }
		fenceTaken   = func(r *recovery) { r.fenced(false, nil) }
		fenceErr     = func(r *recovery) { r.fenced(false, boom) }
		tail         = func(info SealInfo) event { return func(r *recovery) { r.tailRead(info, nil) } }
		tailErr      = func(r *recovery) { r.tailRead(SealInfo{}, boom) }
		sealCreated  = func(r *recovery) { r.sealWritten(true, nil) }
		sealConflict = func(r *recovery) { r.sealWritten(false, nil) }
		sealWriteErr = func(r *recovery) { r.sealWritten(false, boom) }
	)
	for _, tc := range []struct {
		name    string
		events  []event
		trace   string // the step after each event
		want    SealInfo
		wantErr string // "" for success
		tail    Tail   // the tail ReadTail was asked for, when it was
	}{
		{
			name:   "sealed already: its seal stands, nothing is fenced",
			events: []event{sealFound(seal)},
			trace:  "done", want: seal,
		},
		{
			name:   "the plain case",
			events: []event{sealMissing, end(3, false), fenceHeld, tail(seal), sealCreated},
			trace:  "find end, fence, read tail, write seal, done", want: seal,
			tail: Tail{Blocks: 3, Fenced: true},
		},
		{
			name:   "a fence is there already (an earlier recovery stopped halfway): no second fence",
			events: []event{sealMissing, end(3, true), tail(seal), sealCreated},
			trace:  "find end, read tail, write seal, done", want: seal,
			tail: Tail{Blocks: 3, Fenced: true},
		},
		{
			name: "a block lands in the slot being fenced: find the end again, fence the next gap",
			events: []event{sealMissing, end(3, false), fenceTaken, end(5, false), fenceHeld,
				tail(seal), sealCreated},
			trace: "find end, fence, find end, fence, read tail, write seal, done", want: seal,
			tail: Tail{Blocks: 5, Fenced: true},
		},
		{
			name:   "a concurrent recovery fences the same slot first: its fence serves",
			events: []event{sealMissing, end(3, false), fenceTaken, end(3, true), tail(seal), sealCreated},
			trace:  "find end, fence, find end, read tail, write seal, done", want: seal,
			tail: Tail{Blocks: 3, Fenced: true},
		},
		{
			name:   "a concurrent recovery seals first: its seal stands",
			events: []event{sealMissing, end(3, false), fenceHeld, tail(seal), sealConflict, sealFound(theirs)},
			trace:  "find end, fence, read tail, write seal, read the winning seal, done", want: theirs,
			tail: Tail{Blocks: 3, Fenced: true},
		},
		{
			name:    "the winning seal vanished",
			events:  []event{sealMissing, end(3, false), fenceHeld, tail(seal), sealConflict, sealMissing},
			trace:   "find end, fence, read tail, write seal, read the winning seal, done",
			wantErr: "read the winning seal: the seal record that won the create-only write is gone",
		},
		{
			name:    "a taken slot that shows nothing would loop forever",
			events:  []event{sealMissing, end(3, false), fenceTaken, end(3, false)},
			trace:   "find end, fence, find end, done",
			wantErr: "find end: slot 3 was taken when fenced, but storage shows neither a block nor a fence there",
		},
		{
			name:    "the end never goes back",
			events:  []event{sealMissing, end(3, false), fenceTaken, end(2, false)},
			trace:   "find end, fence, find end, done",
			wantErr: "went back from 3 blocks to 2",
		},
		{name: "read seal fails", events: []event{sealErr}, trace: "done", wantErr: "read seal: boom"},
		{name: "find end fails", events: []event{sealMissing, endErr}, trace: "find end, done", wantErr: "find end: boom"},
		{name: "fence fails", events: []event{sealMissing, end(0, false), fenceErr}, trace: "find end, fence, done", wantErr: "fence: boom"},
		{
			name:   "read tail fails",
			events: []event{sealMissing, end(0, false), fenceHeld, tailErr}, trace: "find end, fence, read tail, done",
			wantErr: "read tail: boom",
		},
		{
			name:    "write seal fails",
			events:  []event{sealMissing, end(0, false), fenceHeld, tail(seal), sealWriteErr},
			trace:   "find end, fence, read tail, write seal, done",
			wantErr: "write seal: boom",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecovery(Ref{LogID: 7, SegmentID: 2})
			var trace []string
			var asked Tail
			for i, ev := range tc.events {
				if r.step == stepDone {
					t.Fatalf("event %d after the recovery was done", i)
				}
				ev(r)
				if r.step == stepReadTail {
					asked = r.tail
				}
				trace = append(trace, r.step.String())
			}
			if got := strings.Join(trace, ", "); got != tc.trace {
				t.Fatalf("steps:\n got %s\nwant %s", got, tc.trace)
			}
			if tc.wantErr != "" {
				if r.err == nil || !strings.Contains(r.err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", r.err, tc.wantErr)
				}
				if !strings.HasPrefix(r.err.Error(), "recover segment 2 of log 7: ") {
					t.Fatalf("error %q does not name the segment", r.err)
				}
				return
			}
			if r.err != nil || r.info != tc.want {
				t.Fatalf("result %+v %v, want %+v", r.info, r.err, tc.want)
			}
			if asked != tc.tail {
				t.Fatalf("read tail at %+v, want %+v", asked, tc.tail)
			}
		})
	}
}

// extendRun is the object backend's reading of a listing.
func TestExtendRun(t *testing.T) {
	const block, fence = 200, 40 // sizes: a fence is smaller than a block header
	for _, tc := range []struct {
		name     string
		from     Tail
		listed   []listedSlot
		want     Tail
		wantStop bool
	}{
		{"empty segment", Tail{}, nil, Tail{}, false},
		{"contiguous blocks; the page may continue", Tail{},
			[]listedSlot{{0, block}, {1, block}, {2, block}}, Tail{Blocks: 3, Bytes: 3 * block}, false},
		{"continues from an earlier page", Tail{Blocks: 3, Bytes: 3 * block},
			[]listedSlot{{3, block}}, Tail{Blocks: 4, Bytes: 4 * block}, false},
		{"a gap ends the run; blocks after it do not count", Tail{},
			[]listedSlot{{0, block}, {1, block}, {3, block}}, Tail{Blocks: 2, Bytes: 2 * block}, true},
		{"block 0 missing", Tail{}, []listedSlot{{1, block}}, Tail{}, true},
		{"a fence in the next slot ends the segment", Tail{},
			[]listedSlot{{0, block}, {1, fence}, {2, block}}, Tail{Blocks: 1, Bytes: block, Fenced: true}, true},
		{"a fence after a gap is not the segment's end", Tail{},
			[]listedSlot{{0, block}, {2, fence}}, Tail{Blocks: 1, Bytes: block}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, stop := extendRun(tc.from, tc.listed)
			if got != tc.want || stop != tc.wantStop {
				t.Fatalf("extendRun = %+v, stop %v; want %+v, stop %v", got, stop, tc.want, tc.wantStop)
			}
		})
	}
}

// putBlocks stores blocks from..to-1 of segment ref, one entry each, as a
// writer would.
func putBlocks(t *testing.T, store objstore.Store, ref Ref, from, to int64) {
	t.Helper()
	for no := from; no < to; no++ {
		data := mustEncodeBlock(t, BlockHeader{LogID: ref.LogID, SegmentID: ref.SegmentID, FirstEntry: no, Count: 1, Epoch: 1, BlockNo: no},
			[][]byte{[]byte(fmt.Sprint("entry ", no))}, CompressionNone)
		if err := store.Put(context.Background(), BlockKey("root", ref.LogID, ref.SegmentID, no), data, objstore.PutOptions{IfNotExists: true}); err != nil {
			t.Fatal(err)
		}
	}
}

// Recovery is bounded (DESIGN.md, invariant 5): its listing calls grow with
// the block count a thousand at a time, and it reads one block header.
func TestObjectRecoveryIsBounded(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	be := &ObjectBackend{store: store, root: "root"}
	ref := Ref{LogID: 7, SegmentID: 0}
	putBlocks(t, store, ref, 0, 2500)
	store.ResetCounts()
	info, err := be.Recover(ctx, ref, 2)
	if err != nil || info.Blocks != 2500 || info.LastEntry != 2499 {
		t.Fatalf("recover: %+v %v", info, err)
	}
	for op, want := range map[memstore.Op]int64{
		memstore.OpList: 3, memstore.OpGetRange: 1, memstore.OpGet: 1, memstore.OpPut: 2,
	} {
		if got := store.Count(op); got != want {
			t.Errorf("%d %s calls, want %d", got, op, want)
		}
	}
}

// The race DESIGN.md describes: recovery lists blocks 0..2 and fences slot
// 3, but block 3 (and 4) land first. Recovery lists again from block 3 and
// fences slot 5; the seal counts blocks 0..4.
func TestObjectRecoveryFencesTheNextGapWhenABlockLands(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	t.Cleanup(func() { store.Release() })
	be := &ObjectBackend{store: store, root: "root"}
	ref := Ref{LogID: 7, SegmentID: 0}
	putBlocks(t, store, ref, 0, 3)
	store.ResetCounts()
	// The first put to slot 3 is the recovery's fence: hold it while the
	// blocks land.
	store.Inject(memstore.Rule{Op: memstore.OpPut, KeyPattern: "root/7/*/b-0000000000000000003", Action: memstore.ActionHold, Nth: 1, Times: 1})
	type result struct {
		info SealInfo
		err  error
	}
	done := make(chan result, 1)
	go func() {
		info, err := be.Recover(ctx, ref, 2)
		done <- result{info, err}
	}()
	if err := store.WaitHeld(ctx, 1); err != nil {
		t.Fatal(err)
	}
	putBlocks(t, store, ref, 3, 5)
	store.Release()
	res := <-done
	if res.err != nil || res.info.Blocks != 5 || res.info.LastEntry != 4 {
		t.Fatalf("recover: %+v %v, want 5 blocks ending at entry 4", res.info, res.err)
	}
	if n := store.Count(memstore.OpList); n != 2 {
		t.Fatalf("%d listings, want 2: the second from block 3 on", n)
	}
	data, ok := store.Peek(BlockKey("root", 7, 0, 5))
	if !ok || !IsFence(data) {
		t.Fatal("slot 5 holds no fence")
	}
	if again, err := be.Recover(ctx, ref, 3); err != nil || again != res.info {
		t.Fatalf("second recovery: %+v %v, want %+v", again, err, res.info)
	}
}

// sealRace is a Recoverable whose WriteSeal loses the race to another
// recovery's seal, written just before its own.
type sealRace struct {
	Recoverable
	other []byte
}

func (s sealRace) WriteSeal(ctx context.Context, ref Ref, record []byte) (bool, error) {
	if _, err := s.Recoverable.WriteSeal(ctx, ref, s.other); err != nil {
		return false, err
	}
	return s.Recoverable.WriteSeal(ctx, ref, record)
}

// Of two recoveries the first seal stands, on either backend.
func TestRecoveryReturnsTheWinningSeal(t *testing.T) {
	ctx := context.Background()
	ref := Ref{LogID: 7, SegmentID: 0}
	theirs := SealInfo{LastEntry: 1, Blocks: 2, Bytes: 1}
	rec, err := EncodeSealInfo(7, 0, 9, theirs)
	if err != nil {
		t.Fatal(err)
	}
	store := memstore.New()
	putBlocks(t, store, ref, 0, 3)
	fb, err := NewFileBackend(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]Recoverable{
		"object": objectRecovery{&ObjectBackend{store: store, root: "root"}},
		"file":   fileRecovery{fb},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := RecoverSegment(ctx, sealRace{r, rec}, ref, 2)
			if err != nil || got != theirs {
				t.Fatalf("recover: %+v %v, want the winner's %+v", got, err, theirs)
			}
		})
	}
}
