package integration

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// zombieTweak makes small blocks and short segments, so the fence lands
// among uploads in flight and segment rolls.
func zombieTweak(cfg *options.Config) {
	cfg.Writer.MaxBlockBytes = 4 << 10
	cfg.Writer.RollMaxBlocks = 4
}

// TestZombieWriter lets writer A keep many asynchronous appends in flight
// while writer B, in another client, opens the log at a newer epoch. A must
// learn that it is fenced (every error it gets satisfies
// errors.Is(err, ErrFenced)) and stop. Then, in the log as any reader sees
// it: every acknowledged append of A and B is there once; no append of A
// that failed with a definite error (not ErrUnknownOutcome) is; A's entries
// are a prefix of A's appends and all come before B's first entry, which is
// followed by B's entries in order. Tail readers on both clients, open
// from the start, see exactly that log.
//
// It catches a zombie that writes past the fence, uploads that land above
// the fence and still count, a definite failure reported for an entry that
// survives, and readers (notably on the zombie's client, notified by the
// zombie) that return entries recovery then drops.
func TestZombieWriter(t *testing.T) {
	for _, kind := range []string{kindMinIO, kindLocal} {
		t.Run(kind, func(t *testing.T) {
			for round := range zombieRounds() {
				runZombie(t, kind, round)
			}
		})
	}
}

func zombieRounds() int {
	if soak() {
		return 50
	}
	return 3
}

func runZombie(t *testing.T, kind string, round int) {
	s := newSite(t, kind)
	cA, cB := s.client(t, zombieTweak), s.client(t, zombieTweak)
	lA := createLog(t, cA, "zombie")
	lB := openLog(t, cB, "zombie")
	tails := map[string]*woodpecker.Reader{
		"tail on A's client": openReader(t, lA, woodpecker.Earliest()),
		"tail on B's client": openReader(t, lB, woodpecker.Earliest()),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	a, err := lA.OpenWriter(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	type inFlight struct {
		seq int64
		f   *woodpecker.AppendFuture
	}
	oA := newOutcomes()
	var (
		mu     sync.Mutex
		ackedA atomic.Int64
		errsA  []error
		futs   = make(chan inFlight, 512)
		wg     sync.WaitGroup
	)
	defer func() { cancel(); wg.Wait() }() // on early failure, stop A before the cleanups
	wg.Add(2)
	go func() { // A's appender: as fast as the window allows
		defer wg.Done()
		defer close(futs)
		for seq := int64(0); ; seq++ {
			f, err := a.AppendAsync(ctx, makePayload("A", seq))
			if err != nil {
				mu.Lock()
				oA.record(appendKey{"A", seq}, woodpecker.EntryID{}, err)
				errsA = append(errsA, err)
				mu.Unlock()
				return
			}
			futs <- inFlight{seq, f}
		}
	}()
	go func() { // A's outcomes, in order
		defer wg.Done()
		for p := range futs {
			id, err := p.f.Wait(ctx)
			mu.Lock()
			oA.record(appendKey{"A", p.seq}, id, err)
			if err != nil {
				errsA = append(errsA, err)
			} else {
				ackedA.Add(1)
			}
			mu.Unlock()
		}
	}()
	for ackedA.Load() < 300 {
		if ctx.Err() != nil {
			t.Fatal("writer A acknowledged too little")
		}
		time.Sleep(time.Millisecond)
	}

	b, err := lB.OpenWriter(ctx, 2)
	if err != nil {
		t.Fatalf("open writer B at epoch 2: %v", err)
	}
	oB := newOutcomes()
	for seq := range int64(100) {
		id, err := b.Append(ctx, makePayload("B", seq))
		if err != nil {
			t.Fatalf("B append %d: %v", seq, err)
		}
		oB.record(appendKey{"B", seq}, id, nil)
	}
	wg.Wait() // A stops at its first error
	if ctx.Err() != nil {
		t.Fatal("writer A never learned it was fenced")
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(ctx); err == nil {
		t.Error("closing the fenced writer A reported success")
	}
	if len(errsA) == 0 {
		t.Fatal("A got no error")
	}
	for _, err := range errsA {
		if !errors.Is(err, woodpecker.ErrFenced) {
			t.Fatalf("A got %v; want every failure of the fenced writer to satisfy errors.Is(err, ErrFenced)", err)
		}
	}

	whole := readWhole(t, openLog(t, s.client(t, zombieTweak), "zombie"))
	o := newOutcomes()
	o.merge(oA)
	o.merge(oB)
	checkZombieLog(t, whole, o)
	for name, r := range tails {
		got, err := readN(ctx, r, len(whole))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sameEntries(t, name, got, whole)
		expectSilent(t, r, name)
	}
	t.Logf("round %d: A: %d acked, %d unknown outcome, %d definitely failed; %d of A's entries in the log; B: %d",
		round, len(oA.acked), len(oA.unknown), len(oA.definite), len(whole)-len(oB.acked), len(oB.acked))
}

// checkZombieLog checks a log written by zombie A (tag "A") and its
// successor B (tag "B") against what their appends were told.
func checkZombieLog(t *testing.T, whole []seen, o *outcomes) {
	t.Helper()
	checkOrdered(t, "log after fencing", whole)
	next := map[string]int64{"A": 0, "B": 0}
	firstB := -1
	for i, e := range whole {
		switch {
		case e.Tag == "B" && firstB < 0:
			firstB = i
		case e.Tag == "A" && firstB >= 0:
			t.Fatalf("entry %v of the fenced writer A comes after B's first entry %v", e, whole[firstB])
		}
		if e.Seq != next[e.Tag] {
			t.Errorf("entry %v is append %d of writer %s, but its append %d is not in the log before it: "+
				"an append survived while an earlier one of the same writer was lost", e.ID, e.Seq, e.Tag, next[e.Tag])
			next[e.Tag] = e.Seq
		}
		next[e.Tag]++
	}
	o.check(t, "log after fencing", whole)
}

// TestZombieHeldUpload replays, on a fault-injecting store, the fence race
// the design singles out: A's block k is still in flight (held) while its
// block k+1 has landed, and B opens the log. B's recovery must fence slot k;
// when A's upload of k finally runs it finds the fence, A gets ErrFenced for
// both blocks, and neither is ever visible, while A's earlier block is.
//
// "across a roll" is the same race when block k is the last block of a
// segment and block k+1 the first of the next segment: recovery seals each
// segment on its own, so the writer must not upload the next segment's
// block while the previous segment has a block in flight; otherwise it
// would survive the gap before it.
func TestZombieHeldUpload(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rollAfter int   // RollMaxBlocks
		heldSeg   int64 // segment and block of the held upload (entry 1)
		heldBlock int64
		nextSeg   int64 // where entry 2 goes
		nextBlock int64
		nextLands bool // whether entry 2's upload may run while entry 1's is held
	}{
		{name: "within a segment", rollAfter: 1000, heldSeg: 0, heldBlock: 1, nextSeg: 0, nextBlock: 2, nextLands: true},
		{name: "across a roll", rollAfter: 2, heldSeg: 0, heldBlock: 1, nextSeg: 1, nextBlock: 0, nextLands: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t, kindMem)
			tweak := func(cfg *options.Config) { cfg.Writer.RollMaxBlocks = tc.rollAfter }
			cA, cB := s.client(t, tweak), s.client(t, tweak)
			lA := createLog(t, cA, "held")
			lB := openLog(t, cB, "held")
			tail := openReader(t, lA, woodpecker.Earliest())
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()

			a, o := startWriterA(ctx, t, lA)
			defer a.Close(ctx)

			heldKey := segment.BlockKey("", lA.ID(), tc.heldSeg, tc.heldBlock)
			nextKey := segment.BlockKey("", lA.ID(), tc.nextSeg, tc.nextBlock)
			// Only A's upload: B's fence of the same slot must go through.
			s.mem.Inject(memstore.Rule{Op: memstore.OpPut, KeyPattern: heldKey, Nth: 1, Times: 1, Action: memstore.ActionHold})
			f1, err := a.AppendAsync(ctx, makePayload("A", 1))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.mem.WaitHeld(ctx, 1); err != nil {
				t.Fatalf("A's upload of %s never started: %v", heldKey, err)
			}
			f2, err := a.AppendAsync(ctx, makePayload("A", 2))
			if err != nil {
				t.Fatal(err)
			}
			if !tc.nextLands {
				// Give the writer every chance to upload it, then check it did not.
				time.Sleep(300 * time.Millisecond)
				if _, ok := s.mem.Peek(nextKey); ok {
					t.Fatalf("A uploaded %s while the previous segment's block %s was still in flight", nextKey, heldKey)
				}
			}
			for tc.nextLands {
				if _, ok := s.mem.Peek(nextKey); ok {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("A's entry 2 never landed as %s; keys: %v", nextKey, s.mem.Keys())
				}
				time.Sleep(time.Millisecond)
			}
			select {
			case <-f2.Done():
				t.Fatal("entry 2 was acknowledged while entry 1 is still in flight")
			default:
			}

			b, err := lB.OpenWriter(ctx, 2)
			if err != nil {
				t.Fatalf("open writer B: %v", err)
			}
			if n := s.mem.Release(); n != 1 {
				t.Fatalf("released %d held uploads, want 1", n)
			}
			for i, f := range []*woodpecker.AppendFuture{f1, f2} {
				id, err := f.Wait(ctx)
				if err == nil {
					t.Fatalf("A's entry %d was acknowledged as %v after B fenced the log", i+1, id)
				}
				if !errors.Is(err, woodpecker.ErrFenced) {
					t.Fatalf("A's entry %d: %v, want ErrFenced", i+1, err)
				}
				o.record(appendKey{"A", int64(i + 1)}, id, err)
			}
			for seq := range int64(3) {
				id, err := b.Append(ctx, makePayload("B", seq))
				if err != nil {
					t.Fatal(err)
				}
				o.record(appendKey{"B", seq}, id, nil)
			}
			if err := b.Close(ctx); err != nil {
				t.Fatal(err)
			}
			whole := readWhole(t, lB)
			checkZombieLog(t, whole, o)
			got, err := readN(ctx, tail, len(whole))
			if err != nil {
				t.Fatal(err)
			}
			sameEntries(t, "tail reader on A's client", got, whole)
		})
	}
}

// TestZombieDefiniteFailureMustNotSurvive makes writer A fail for a reason
// that proves nothing about its blocks in flight: its seal of a finished
// segment finds the seal a newer writer wrote. At that moment the first
// block of A's next segment is in flight; it lands, and the next recovery
// keeps it. A must not have been told that this entry definitely failed
// (a caller would append it again and the log would hold it twice): its
// error must be marked ErrUnknownOutcome, or the block must not survive.
//
// Steps (memstore, one block per segment): A's entry 0 fills segment 0,
// A's seal of segment 0 and its upload of segment 1's block 0 (entry 1)
// are held. Writer B1 opens at epoch 2, seals segment 0, and is held
// listing segment 1. A crash ends the held requests: A's block lands, B1
// fails. A retries its seal, finds B1's and fails (its retry of the block
// is held meanwhile). Writer C opens at epoch 3 and recovers segment 1,
// block 0 included.
func TestZombieDefiniteFailureMustNotSurvive(t *testing.T) {
	s := newSite(t, kindMem)
	tweak := func(cfg *options.Config) { cfg.Writer.RollMaxBlocks = 1 }
	cA, cB := s.client(t, tweak), s.client(t, tweak)
	lA := createLog(t, cA, "survivor")
	lB := openLog(t, cB, "survivor")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hold := func(op memstore.Op, key string, nth int) {
		s.mem.Inject(memstore.Rule{Op: op, KeyPattern: key, Nth: nth, Times: 1, Action: memstore.ActionHold})
	}
	sealKey := segment.SealKey("", lA.ID(), 0)
	blockKey := segment.BlockKey("", lA.ID(), 1, 0)
	hold(memstore.OpPut, sealKey, 1)
	hold(memstore.OpPut, blockKey, 1)

	a, o := startWriterA(ctx, t, lA)
	defer a.Close(ctx)
	f1, err := a.AppendAsync(ctx, makePayload("A", 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.mem.WaitHeld(ctx, 2); err != nil {
		t.Fatalf("A's seal and block upload: %v (held: %v)", err, s.mem.Held())
	}

	hold(memstore.OpList, segment.SegmentPrefix("", lA.ID(), 1)+"b-", 1)
	b1Err := make(chan error, 1)
	go func() {
		w, err := lB.OpenWriter(ctx, 2)
		if err == nil {
			_ = w.Close(ctx)
		}
		b1Err <- err
	}()
	if err := s.mem.WaitHeld(ctx, 3); err != nil {
		t.Fatalf("B1's listing of segment 1: %v (held: %v)", err, s.mem.Held())
	}
	hold(memstore.OpPut, blockKey, 1) // A's retry of the block, after the crash (a new rule counts anew)
	s.mem.Crash(func(op memstore.HeldOp) bool { return op.Key == blockKey })
	if err := <-b1Err; err == nil {
		t.Fatal("B1 opened although its listing failed")
	}
	if _, ok := s.mem.Peek(blockKey); !ok {
		t.Fatal("A's block did not land")
	}
	id1, err1 := f1.Wait(ctx)
	if err1 == nil {
		// Honest (the block is durable and recovery keeps it), but not
		// the interleaving this test is about.
		t.Fatalf("test setup: A's entry 1 was acknowledged as %v; A's retry of the block was not held", id1)
	}
	o.record(appendKey{"A", 1}, id1, err1)
	s.mem.Release() // A's retry of the block; A has failed already

	c, err := lB.OpenWriter(ctx, 3)
	if err != nil {
		t.Fatalf("open writer C: %v", err)
	}
	idB, err := c.Append(ctx, makePayload("B", 0))
	if err != nil {
		t.Fatal(err)
	}
	o.record(appendKey{"B", 0}, idB, nil)
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	whole := readWhole(t, lB)
	t.Logf("A's entry 1 failed with: %v (unknown outcome: %t); the log holds %v",
		err1, errors.Is(err1, woodpecker.ErrUnknownOutcome), whole)
	checkZombieLog(t, whole, o)
}

// startWriterA opens writer A on l at epoch 1 and appends its first entry,
// recorded in the outcomes it returns. The caller closes the writer.
func startWriterA(ctx context.Context, t *testing.T, l *woodpecker.Log) (*woodpecker.Writer, *outcomes) {
	t.Helper()
	a, err := l.OpenWriter(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	o := newOutcomes()
	id0, err := a.Append(ctx, makePayload("A", 0))
	if err != nil {
		_ = a.Close(ctx)
		t.Fatal(err)
	}
	o.record(appendKey{"A", 0}, id0, nil)
	return a, o
}
