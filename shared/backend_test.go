package shared

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/segment"
)

func sharedRef(tok meta.WriterToken, segID int64) segment.Ref {
	return segment.Ref{LogID: tok.LogID, SegmentID: segID, Placement: Placement, Owner: tok.String()}
}

// writeBlocks writes blocks from..to-1 of one entry each through a sink.
func writeBlocks(t *testing.T, sink segment.Sink, ref segment.Ref, from, to int64) {
	t.Helper()
	for no := from; no < to; no++ {
		if err := sink.WriteBlock(context.Background(), no, testBlock(t, ref.LogID, ref.SegmentID, no, no, 1)); err != nil {
			t.Fatalf("block %d: %v", no, err)
		}
	}
}

// readAll reads a cursor to its end or to ErrNoBlockYet and returns the
// first entry id of each block read.
func readAll(t *testing.T, c segment.Cursor) ([]int64, error) {
	t.Helper()
	var firsts []int64
	for {
		h, _, err := c.Next(context.Background())
		if err != nil {
			return firsts, err
		}
		firsts = append(firsts, h.FirstEntry)
	}
}

// TestPlacementRoutes: with a window, new segments are shared; without,
// the backend is the per-log layout and refuses to write shared segments
// it cannot commit.
func TestPlacementRoutes(t *testing.T) {
	b, _, _ := newTestBackend(t, time.Millisecond)
	if p, err := b.Place(context.Background(), segment.Ref{}); err != nil || p != Placement {
		t.Fatalf("place with a window: %q %v", p, err)
	}
	off, _, _ := newTestBackend(t, 0)
	if p, _ := off.Place(context.Background(), segment.Ref{}); p != "" {
		t.Fatalf("place without a window: %q", p)
	}
	if _, err := off.CreateSink(context.Background(), segment.Ref{LogID: 1, Placement: Placement, Owner: "1:x"}, 1); err == nil {
		t.Fatal("a backend without a window opened a shared segment for writing")
	}
}

// TestWriteSealRead: a writer's segment, sealed by its writer, reads back
// from the seal record alone once etcd's extents are gone.
func TestWriteSealRead(t *testing.T) {
	b, _, idx := newTestBackend(t, time.Millisecond)
	tok := idx.own(4, 1)
	ref := sharedRef(tok, 0)
	sink, err := b.CreateSink(context.Background(), ref, 1)
	if err != nil {
		t.Fatal(err)
	}
	writeBlocks(t, sink, ref, 0, 5)
	c := b.OpenCursor(ref)
	got, err := readAll(t, c)
	if !errors.Is(err, segment.ErrNoBlockYet) || len(got) != 5 {
		t.Fatalf("open segment: %v %v", got, err)
	}
	info := segment.SealInfo{LastEntry: 4, Blocks: 5}
	if err := sink.WriteSeal(context.Background(), info, nil); err != nil {
		t.Fatal(err)
	}
	idx.mu.Lock()
	clear(idx.exts) // the seal transaction deletes them
	idx.mu.Unlock()
	if _, err := readAll(t, c); !errors.Is(err, segment.ErrEndOfSegment) {
		t.Fatalf("after the seal, the open cursor ends with %v", err)
	}
	fresh := b.OpenCursor(ref)
	fresh.SetLimit(5)
	if got, err := readAll(t, fresh); !errors.Is(err, segment.ErrEndOfSegment) || len(got) != 5 || got[4] != 4 {
		t.Fatalf("sealed: %v %v", got, err)
	}
	if got, err := b.Scan(context.Background(), ref); err != nil || got.Blocks != 5 || got.LastEntry != 4 {
		t.Fatalf("scan: %+v %v", got, err)
	}
	if blk, err := b.LocateBlock(context.Background(), ref, 5, 3); err != nil || blk != 3 {
		t.Fatalf("locate entry 3: %d %v", blk, err)
	}
}

// TestRecoverSealsTheContiguousRun: blocks after a gap were never
// acknowledged (acknowledgements go in order); recovery seals what comes
// before it, and a later seal by the old writer that disagrees is fenced.
func TestRecoverSealsTheContiguousRun(t *testing.T) {
	b, _, idx := newTestBackend(t, time.Millisecond)
	tok := idx.own(2, 1)
	ref := sharedRef(tok, 3)
	sink, err := b.CreateSink(context.Background(), ref, 1)
	if err != nil {
		t.Fatal(err)
	}
	writeBlocks(t, sink, ref, 0, 3)
	writeBlocks(t, sink, ref, 4, 5) // block 3 never made it
	idx.own(2, 2)
	info, err := b.Recover(context.Background(), ref, 2)
	if err != nil || info.Blocks != 3 || info.LastEntry != 2 {
		t.Fatalf("recover: %+v %v", info, err)
	}
	again, err := b.Recover(context.Background(), ref, 2)
	if err != nil || again != info {
		t.Fatalf("recovery is not idempotent: %+v %v", again, err)
	}
	err = sink.WriteSeal(context.Background(), segment.SealInfo{LastEntry: 4, Blocks: 5}, nil)
	if !errors.Is(err, walerr.ErrFenced) {
		// (the zombie never sealed: block 3 is missing, so WriteSeal
		// refuses before storage; either way it must not succeed)
		if err == nil {
			t.Fatal("the old writer sealed over the recovery's seal")
		}
	}
	c := b.OpenCursor(ref)
	c.SetLimit(info.Blocks)
	if got, err := readAll(t, c); !errors.Is(err, segment.ErrEndOfSegment) || len(got) != 3 {
		t.Fatalf("read after recovery: %v %v", got, err)
	}
}

// TestZombieAfterRecoveryMakesNothingVisible: once a newer writer owns the
// log, the old writer's blocks fail with ErrFenced and no reader sees them.
func TestZombieAfterRecoveryMakesNothingVisible(t *testing.T) {
	b, _, idx := newTestBackend(t, time.Millisecond)
	tok := idx.own(6, 1)
	ref := sharedRef(tok, 0)
	sink, _ := b.CreateSink(context.Background(), ref, 1)
	writeBlocks(t, sink, ref, 0, 2)
	idx.own(6, 2)
	if _, err := b.Recover(context.Background(), ref, 2); err != nil {
		t.Fatal(err)
	}
	err := sink.WriteBlock(context.Background(), 2, testBlock(t, 6, 0, 2, 2, 1))
	if !errors.Is(err, walerr.ErrFenced) {
		t.Fatalf("zombie block: %v", err)
	}
	if idx.committed(6, 0, 2) {
		t.Fatal("zombie block committed")
	}
}

// TestCursorDetectsDamage: a flipped byte in a shared object is ErrCorrupt,
// and a deleted object of a sealed segment is ErrObjectMissing, never a
// silent skip.
func TestCursorDetectsDamage(t *testing.T) {
	b, store, idx := newTestBackend(t, time.Millisecond)
	tok := idx.own(9, 1)
	ref := sharedRef(tok, 0)
	sink, _ := b.CreateSink(context.Background(), ref, 1)
	writeBlocks(t, sink, ref, 0, 2)
	exts, _ := idx.Extents(context.Background(), 9, 0, 0, 0)
	if err := store.Corrupt(exts[1].Object, exts[1].Offset+exts[1].Length-2, 0x01); err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, b.OpenCursor(ref))
	if !errors.Is(err, walerr.ErrCorrupt) || len(got) != 1 {
		t.Fatalf("corrupt block 1: read %v, then %v", got, err)
	}
	if err := sink.WriteSeal(context.Background(), segment.SealInfo{LastEntry: 1, Blocks: 2}, nil); err != nil {
		t.Fatal(err)
	}
	if err := store.Delete(context.Background(), exts[0].Object); err != nil {
		t.Fatal(err)
	}
	c := b.OpenCursor(ref)
	c.SetLimit(2)
	if _, err := readAll(t, c); !errors.Is(err, segment.ErrObjectMissing) || !errors.Is(err, walerr.ErrCorrupt) {
		t.Fatalf("deleted object: %v", err)
	}
}

// writeSharedRuns writes a shared segment of objects objects of
// perObject blocks each (one run of one GET each), seals it, and returns
// the backend, its store, the segment and its SealInfo.
func writeSharedRuns(t *testing.T, objects, perObject int64) (*Backend, *memstore.Store, segment.Ref, segment.SealInfo) {
	t.Helper()
	b, store, idx := newTestBackend(t, time.Hour)
	tok := idx.own(4, 1)
	ref := sharedRef(tok, 0)
	sink, err := b.CreateSink(context.Background(), ref, 1)
	if err != nil {
		t.Fatal(err)
	}
	for o := range int64(objects) {
		// Blocks written together, within a window, share an object.
		b.stream.mu.Lock()
		b.stream.lastClose = time.Now()
		b.stream.mu.Unlock()
		errs := make(chan error, perObject)
		for i := range int64(perObject) {
			no := o*perObject + i
			go func() {
				errs <- sink.WriteBlock(context.Background(), no, testBlock(t, ref.LogID, ref.SegmentID, no, no, 1))
			}()
		}
		for queued := false; !queued; time.Sleep(time.Millisecond) {
			b.stream.mu.Lock()
			queued = b.stream.open != nil && int64(len(b.stream.open.items)) == perObject
			if queued {
				b.stream.closeOpenLocked()
				b.stream.startLocked()
			}
			b.stream.mu.Unlock()
		}
		for range perObject {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	}
	info := segment.SealInfo{LastEntry: objects*perObject - 1, Blocks: objects * perObject}
	if err := sink.WriteSeal(context.Background(), info, nil); err != nil {
		t.Fatal(err)
	}

	return b, store, ref, info
}

// holdGets holds every ranged GET of the objects keys until released.
func holdGets(store *memstore.Store, keys ...string) {
	quoted := make([]string, len(keys))
	for i, k := range keys {
		quoted[i] = regexp.QuoteMeta(k)
	}
	store.Inject(memstore.Rule{Op: memstore.OpGetRange, KeyRegexp: regexp.MustCompile("^(" + strings.Join(quoted, "|") + ")$"),
		Times: -1, Action: memstore.ActionHold})
}

// sharedObjectKeys returns the shared objects in store, oldest first.
func sharedObjectKeys(t *testing.T, store *memstore.Store, want int) []string {
	t.Helper()
	var keys []string
	for _, k := range store.Keys() {
		if strings.HasPrefix(k, "shared/") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys) // names start with their creation time
	if len(keys) != want {
		t.Fatalf("%d shared objects, want %d: %v", len(keys), want, keys)
	}
	return keys
}

// TestCursorKeepsPrefetchGETsInFlight: reader.prefetchBlocks bounds the
// GETs in flight, and a run of several blocks already fetched is not one
// of them: while the cursor returns its blocks, the next runs are being
// fetched (counting it left one GET fewer in flight, and catch-up reads
// fell short of the store's GETs at the same parallelism).
func TestCursorKeepsPrefetchGETsInFlight(t *testing.T) {
	const objects, perObject = 5, 2
	b, store, ref, info := writeSharedRuns(t, objects, perObject)

	const prefetch = 2
	c := b.OpenCursor(ref)
	c.(segment.PrefetchCursor).SetPrefetch(prefetch)
	c.SetLimit(info.Blocks)
	defer c.Close()
	// The first two runs' GETs go through; later ones are held in flight.
	// Runs are picked by object, not by the order GETs arrive in: the
	// cursor issues them from goroutines, and under load the GET of run 2
	// (issued once run 0 arrived) can overtake run 1's (a CI-like run hung
	// so, holding run 1).
	objectKeys := sharedObjectKeys(t, store, objects)
	holdGets(store, objectKeys[prefetch:]...)
	nctx, ncancel := context.WithTimeout(context.Background(), time.Minute) // a held GET fails the test, not hangs it
	defer ncancel()
	for want := range int64(3) { // all of run 0, the first block of run 1
		h, _, err := c.Next(nctx)
		if err != nil || h.BlockNo != want {
			t.Fatalf("block %d: %+v %v", want, h, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = store.WaitHeld(ctx, prefetch) // fewer never come: the assertion says so
	if held := len(store.Held()); held != prefetch {
		t.Fatalf("%d GETs in flight while the cursor returns a fetched run, want %d (prefetch)", held, prefetch)
	}
	store.ClearRules()
	store.Release()
	got, err := readAll(t, c)
	if !errors.Is(err, segment.ErrEndOfSegment) || len(got) != objects*perObject-3 {
		t.Fatalf("the rest: %v %v", got, err)
	}
	for i, first := range got {
		if first != int64(i+3) {
			t.Fatalf("the rest, block %d holds entry %d: %v", i+3, first, got)
		}
	}
}

// TestCursorFetchesAheadOfASlowGET: GETs end out of order; while the
// cursor waits for the run it must return next, each GET that lands lets
// the next one start, so prefetch GETs stay in flight behind a slow one
// (before, the landed runs held their slots until the slow one came: 1 GET
// in flight, and catch-up reads at 0.64-0.78 of the store's GETs).
func TestCursorFetchesAheadOfASlowGET(t *testing.T) {
	const objects, perObject = 5, 2
	b, store, ref, info := writeSharedRuns(t, objects, perObject)
	keys := sharedObjectKeys(t, store, objects)
	c := b.OpenCursor(ref)
	c.(segment.PrefetchCursor).SetPrefetch(2)
	c.SetLimit(info.Blocks)
	defer c.Close()
	// The first run's GET and the last run's are held: the last is only
	// asked for once the runs between landed while the first was held.
	holdGets(store, keys[0], keys[objects-1])
	nctx, ncancel := context.WithTimeout(context.Background(), time.Minute)
	defer ncancel()
	first := make(chan error, 1)
	go func() {
		h, _, err := c.Next(nctx)
		if err == nil && h.BlockNo != 0 {
			err = errors.Newf("first block %d", h.BlockNo)
		}
		first <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = store.WaitHeld(ctx, 2) // fewer never come: the assertion says so
	if held := len(store.Held()); held != 2 {
		t.Fatalf("%d GETs held: the cursor did not fetch runs 1-4 while run 0 was slow", held)
	}
	store.ClearRules()
	store.Release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, c)
	if !errors.Is(err, segment.ErrEndOfSegment) || len(got) != objects*perObject-1 {
		t.Fatalf("the rest: %v %v", got, err)
	}
	for i, entry := range got {
		if entry != int64(i+1) {
			t.Fatalf("block %d holds entry %d: %v", i+1, entry, got)
		}
	}
}

// TestCursorHoldsNoMoreThanMaxBuffer: reader.maxBufferBytes bounds the
// bytes of runs a cursor holds ahead, those being fetched included: with a
// bound smaller than two runs, it fetches one run at a time whatever the
// prefetch (a run always fits when nothing is held).
func TestCursorHoldsNoMoreThanMaxBuffer(t *testing.T) {
	const objects, perObject = 5, 2
	b, store, ref, info := writeSharedRuns(t, objects, perObject)
	keys := sharedObjectKeys(t, store, objects)
	c := b.OpenCursor(ref)
	c.(segment.PrefetchCursor).SetPrefetch(4)
	c.(segment.BufferCursor).SetMaxBuffer(1)
	c.SetLimit(info.Blocks)
	defer c.Close()
	// Runs 2 on are held: once runs 0 and 1 are read, the reader waits
	// for run 2, and no other GET may start while it is in flight.
	holdGets(store, keys[2:]...)
	nctx, ncancel := context.WithTimeout(context.Background(), time.Minute)
	defer ncancel()
	for want := range int64(2 * perObject) { // runs 0 and 1
		if h, _, err := c.Next(nctx); err != nil || h.BlockNo != want {
			t.Fatalf("block %d: %+v %v", want, h, err)
		}
	}
	next := make(chan error, 1)
	go func() {
		_, _, err := c.Next(nctx)
		next <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = store.WaitHeld(ctx, 2) // more than one must not come: the assertion says so
	if held := len(store.Held()); held != 1 {
		t.Fatalf("%d GETs in flight with a buffer bound below two runs, want 1", held)
	}
	store.ClearRules()
	store.Release()
	if err := <-next; err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, c)
	if !errors.Is(err, segment.ErrEndOfSegment) || len(got) != objects*perObject-2*perObject-1 {
		t.Fatalf("the rest: %v %v", got, err)
	}
}
