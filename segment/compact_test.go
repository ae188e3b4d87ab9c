package segment

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
)

func TestParseObjectName(t *testing.T) {
	tests := []struct {
		name string
		want ObjectName
	}{
		{"seal", ObjectName{Kind: ObjectSeal}},
		{LayoutSealName(3), ObjectName{Kind: ObjectSeal, Generation: 3}},
		{BlockName(12), ObjectName{Kind: ObjectBlock, Block: 12}},
		{MergedObjectName(12, 2), ObjectName{Kind: ObjectMerged, Block: 12, Generation: 2}},
		{"seal-0000000000000000000", ObjectName{}}, // generation 0 is "seal"
		{"seal-12", ObjectName{}},
		{"b-12", ObjectName{}},
		{BlockName(1) + "-c0000000000000000000", ObjectName{}},
		{BlockName(1) + "-c1", ObjectName{}},
		{BlockName(1) + "-x" + strings.Repeat("0", 19), ObjectName{}},
		{"something", ObjectName{}},
		{"", ObjectName{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseObjectName(tt.name); got != tt.want {
				t.Fatalf("ParseObjectName(%q) = %+v, want %+v", tt.name, got, tt.want)
			}
		})
	}
}

func TestMergedNamesSortInBlockOrder(t *testing.T) {
	names := []string{BlockName(0), MergedObjectName(0, 1), BlockName(1), MergedObjectName(1, 9), BlockName(2), MergedObjectName(10, 1)}
	if !slices.IsSorted(names) {
		t.Fatalf("names do not sort in block order: %q", names)
	}
	if LayoutSealName(1) < MergedObjectName(1<<40, 1<<40) || SealName > LayoutSealName(1) {
		t.Fatal("seal records must list after every data object, and seal before seal-N")
	}
}

func TestPlanCompaction(t *testing.T) {
	opts := CompactOptions{TargetObjectBytes: 100, MinSmallObjects: 3}
	tests := []struct {
		name  string
		sizes []int64
		opts  CompactOptions
		want  []MergeRun
	}{
		{"too few small", []int64{10, 10}, opts, nil},
		{"minimum is at least two", []int64{10, 10}, CompactOptions{TargetObjectBytes: 100}, []MergeRun{{0, 2}}},
		{"one group", []int64{10, 20, 30}, opts, []MergeRun{{0, 3}}},
		{"cut at the target", []int64{40, 40, 40, 40, 40}, opts, []MergeRun{{0, 2}, {2, 4}}},
		{"exactly the target", []int64{50, 50, 50, 50}, opts, []MergeRun{{0, 2}, {2, 4}}},
		{"large objects stay", []int64{10, 10, 100, 10, 10, 200, 10}, opts, []MergeRun{{0, 2}, {3, 5}}},
		{"lone small objects stay", []int64{10, 100, 10, 100, 10}, opts, nil},
		{"all large", []int64{100, 200, 300}, opts, nil},
		{"empty", nil, opts, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PlanCompaction(tt.sizes, tt.opts)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("PlanCompaction(%v) = %v, want %v", tt.sizes, got, tt.want)
			}
			for _, r := range got {
				var sum int64
				for _, s := range tt.sizes[r.From:r.To] {
					if s >= tt.opts.TargetObjectBytes {
						t.Fatalf("run %v rewrites a large object", r)
					}
					sum += s
				}
				if sum > tt.opts.TargetObjectBytes {
					t.Fatalf("run %v holds %d bytes, over the target", r, sum)
				}
			}
		})
	}
}

// sealedSegment writes n entries, one block each (a lone writer cuts a
// block per append), entry i of size sizeOf(i), seals segment 0 and
// returns its block count and listing sizes.
func sealedSegment(t *testing.T, r *rig, n int, sizeOf func(int) int) (int64, map[string]int64) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		p := bytes.Repeat([]byte{byte('a' + i%26)}, sizeOf(i))
		copy(p, fmt.Sprintf("%06d", i))
		if _, _, err := r.w.Append(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	info := r.meta.sealed[0]
	if info.Blocks != int64(n) {
		t.Fatalf("segment has %d blocks, want %d", info.Blocks, n)
	}
	return info.Blocks, r.sizes(t)
}

func (r *rig) sizes(t *testing.T) map[string]int64 {
	t.Helper()
	prefix := SegmentPrefix("root", 7, 0)
	objs, err := objstore.ListAll(context.Background(), r.store, prefix, "")
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int64{}
	for _, o := range objs {
		sizes[strings.TrimPrefix(o.Key, prefix)] = o.Size
	}
	return sizes
}

// readLayout reads the whole segment through a cursor on generation gen
// and returns entry ids and payload prefixes in order.
func readLayout(t *testing.T, be *ObjectBackend, gen, blocks int64) []string {
	t.Helper()
	c := be.OpenCursor(Ref{LogID: 7, SegmentID: 0})
	defer c.Close()
	c.(PrefetchCursor).SetPrefetch(4)
	c.SetLimit(blocks)
	c.(GenerationCursor).UseGeneration(gen)
	var out []string
	for {
		h, entries, err := c.Next(context.Background())
		if errors.Is(err, ErrEndOfSegment) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range entries {
			out = append(out, fmt.Sprintf("%d:%s", h.FirstEntry+int64(i), e[:6]))
		}
	}
}

func TestCompactMergesSmallBlocksAndKeepsLargeOnes(t *testing.T) {
	cfg := testConfig()
	cfg.MaxInflight = 1
	r := newRig(t, cfg)
	// Blocks 5 and 11 are large; the rest small.
	size := func(i int) int {
		if i == 5 || i == 11 {
			return 3000
		}
		return 100
	}
	blocks, sizes := sealedSegment(t, r, 20, size)
	want := readLayout(t, r.be, 0, blocks)
	ctx := context.Background()
	ref := Ref{LogID: 7, SegmentID: 0}
	opts := CompactOptions{TargetObjectBytes: 1000, MinSmallObjects: 4}
	res, err := r.be.Compact(ctx, ref, 0, blocks, sizes, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Small blocks are ~170 bytes: 5 fit in 1000. Runs: 0-4 | 5 large |
	// 6-10 | 11 large | 12-16, 17-19.
	var names []string
	for _, o := range res.Layout.Objects {
		names = append(names, o.Name)
	}
	wantNames := []string{MergedObjectName(0, 1), BlockName(5), MergedObjectName(6, 1), BlockName(11),
		MergedObjectName(12, 1), MergedObjectName(17, 1)}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("layout %q, want %q", names, wantNames)
	}
	if res.Written != 4 || res.Replaced != 18 {
		t.Fatalf("written %d replacing %d, want 4 replacing 18", res.Written, res.Replaced)
	}
	if got := readLayout(t, r.be, 1, blocks); !slices.Equal(got, want) {
		t.Fatalf("generation 1 reads\n%v\nwant\n%v", got, want)
	}
	// The large blocks were not rewritten: no object of generation 1 holds them.
	after := r.sizes(t)
	for name := range after {
		if n := ParseObjectName(name); n.Kind == ObjectMerged && (n.Block == 5 || n.Block == 11) {
			t.Fatalf("large block rewritten into %s", name)
		}
	}
	// Generation 2 of generation 1 has nothing to merge: the small objects
	// left are 17-19 only, and they already are one object.
	if _, err := r.be.Compact(ctx, ref, 1, blocks, nil, opts); !errors.Is(err, ErrNothingToCompact) {
		t.Fatalf("second compaction: %v, want ErrNothingToCompact", err)
	}
}

func TestCompactReplacesLeftoversOfACrashedAttempt(t *testing.T) {
	r := newRig(t, testConfig())
	blocks, sizes := sealedSegment(t, r, 12, func(int) int { return 50 })
	ctx := context.Background()
	ref := Ref{LogID: 7, SegmentID: 0}
	prefix := SegmentPrefix("root", 7, 0)
	// A crashed attempt left a torn object and a wrong seal record.
	if err := r.store.Put(ctx, prefix+MergedObjectName(0, 1), []byte("torn"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := r.store.Put(ctx, prefix+LayoutSealName(1), []byte("junk"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	opts := CompactOptions{TargetObjectBytes: 1 << 20, MinSmallObjects: 2}
	res, err := r.be.Compact(ctx, ref, 0, blocks, sizes, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Layout.Objects) != 1 {
		t.Fatalf("%d objects, want 1", len(res.Layout.Objects))
	}
	if got, want := readLayout(t, r.be, 1, blocks), readLayout(t, r.be, 0, blocks); !slices.Equal(got, want) {
		t.Fatalf("generation 1 reads %v, want %v", got, want)
	}
	// A retry of the same compaction finds its own objects and succeeds.
	if _, err := r.be.Compact(ctx, ref, 0, blocks, sizes, opts); err != nil {
		t.Fatalf("retry: %v", err)
	}
}

func TestCompactRefusesCorruptBlocks(t *testing.T) {
	r := newRig(t, testConfig())
	blocks, sizes := sealedSegment(t, r, 6, func(int) int { return 50 })
	ctx := context.Background()
	prefix := SegmentPrefix("root", 7, 0)
	if err := r.store.Corrupt(prefix+BlockName(3), 70, 0); err != nil {
		t.Fatal(err)
	}
	_, err := r.be.Compact(ctx, Ref{LogID: 7, SegmentID: 0}, 0, blocks, sizes, CompactOptions{TargetObjectBytes: 1 << 20, MinSmallObjects: 2})
	if !errors.Is(err, walerr.ErrCorrupt) {
		t.Fatalf("compacting a corrupt block: %v, want ErrCorrupt", err)
	}
	if _, ok := r.sizes(t)[LayoutSealName(1)]; ok {
		t.Fatal("a seal record was written for a failed compaction")
	}
}

// TestCursorMovesToTheNewLayout: a cursor that began on the writer's blocks
// keeps reading them while they exist, and moves to the compacted layout at
// the right block once they are deleted, with no gap and no duplicate.
func TestCursorMovesToTheNewLayout(t *testing.T) {
	for _, prefetch := range []int{1, 4} {
		t.Run(fmt.Sprint("prefetch ", prefetch), func(t *testing.T) {
			r := newRig(t, testConfig())
			blocks, sizes := sealedSegment(t, r, 30, func(int) int { return 60 })
			want := readLayout(t, r.be, 0, blocks)
			be := NewObjectBackend(r.store, "root", 1)
			ctx := context.Background()
			c := be.OpenCursor(Ref{LogID: 7, SegmentID: 0})
			defer c.Close()
			c.(PrefetchCursor).SetPrefetch(prefetch)
			c.SetLimit(blocks)
			var got []string
			read := func(n int) {
				for range n {
					h, entries, err := c.Next(ctx)
					if err != nil {
						t.Fatalf("after %v: %v", got, err)
					}
					for i, e := range entries {
						got = append(got, fmt.Sprintf("%d:%s", h.FirstEntry+int64(i), e[:6]))
					}
				}
			}
			read(7)
			if _, err := be.Compact(ctx, Ref{LogID: 7, SegmentID: 0}, 0, blocks, sizes,
				CompactOptions{TargetObjectBytes: 1000, MinSmallObjects: 2}); err != nil {
				t.Fatal(err)
			}
			read(3) // old blocks still there
			// The grace period ends: the writer's blocks go.
			for name := range sizes {
				if ParseObjectName(name).Kind == ObjectBlock {
					if err := r.store.Delete(ctx, SegmentPrefix("root", 7, 0)+name); err != nil {
						t.Fatal(err)
					}
				}
			}
			read(int(blocks) - 10)
			if _, _, err := c.Next(ctx); !errors.Is(err, ErrEndOfSegment) {
				t.Fatalf("after the last block: %v, want ErrEndOfSegment", err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("read\n%v\nwant\n%v", got, want)
			}
			if g := c.(*objectCursor).Generation(); g != 1 {
				t.Fatalf("cursor reads generation %d, want 1", g)
			}
		})
	}
}

func TestCursorReportsMissingObjects(t *testing.T) {
	r := newRig(t, testConfig())
	blocks, _ := sealedSegment(t, r, 4, func(int) int { return 60 })
	ctx := context.Background()
	if err := r.store.Delete(ctx, SegmentPrefix("root", 7, 0)+BlockName(2)); err != nil {
		t.Fatal(err)
	}
	c := r.be.OpenCursor(Ref{LogID: 7, SegmentID: 0})
	defer c.Close()
	c.(PrefetchCursor).SetPrefetch(4)
	c.SetLimit(blocks)
	for i := range 3 {
		_, _, err := c.Next(ctx)
		if i < 2 && err != nil {
			t.Fatal(err)
		}
		if i == 2 && (!errors.Is(err, ErrObjectMissing) || !errors.Is(err, walerr.ErrCorrupt)) {
			t.Fatalf("missing block: %v, want ErrObjectMissing and ErrCorrupt", err)
		}
	}
}

// TestCursorFetchesAheadOfASlowGET: block GETs end out of order; while the
// cursor waits for the block it must return next, each GET that lands
// lets the next one start, up to twice the prefetch ahead (before, the
// landed blocks held their slots until the slow one came: 1 GET in flight
// behind it).
func TestCursorFetchesAheadOfASlowGET(t *testing.T) {
	r := newRig(t, testConfig())
	blocks, _ := sealedSegment(t, r, 10, func(int) int { return 60 })
	be := NewObjectBackend(r.store, "root", 1)
	c := be.OpenCursor(Ref{LogID: 7, SegmentID: 0})
	defer c.Close()
	c.(PrefetchCursor).SetPrefetch(2)
	c.SetLimit(blocks)
	prefix := SegmentPrefix("root", 7, 0)
	// Block 0's GET and block 3's are held: block 3 is only asked for once
	// blocks 1 and 2 landed while block 0 was held.
	r.store.Inject(memstore.Rule{Op: memstore.OpGet,
		KeyRegexp: regexp.MustCompile("^(" + regexp.QuoteMeta(prefix+BlockName(0)) + "|" + regexp.QuoteMeta(prefix+BlockName(3)) + ")$"),
		Times:     -1, Action: memstore.ActionHold})
	nctx, ncancel := context.WithTimeout(context.Background(), time.Minute)
	defer ncancel()
	first := make(chan error, 1)
	go func() {
		_, _, err := c.Next(nctx)
		first <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.store.WaitHeld(ctx, 2) // fewer never come: the assertion says so
	if held := len(r.store.Held()); held != 2 {
		t.Fatalf("%d GETs held: the cursor did not fetch blocks 1-3 while block 0 was slow", held)
	}
	r.store.ClearRules()
	r.store.Release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for want := int64(1); want < blocks; want++ {
		h, _, err := c.Next(nctx)
		if err != nil || h.BlockNo != want {
			t.Fatalf("block %d: %+v %v", want, h, err)
		}
	}
	if _, _, err := c.Next(nctx); !errors.Is(err, ErrEndOfSegment) {
		t.Fatalf("after the last block: %v", err)
	}
}

// TestCursorHoldsNoMoreThanMaxBuffer: reader.maxBufferBytes bounds the
// blocks a cursor holds ahead, those being fetched counted at the size of
// the largest block read: with a bound below two blocks, it fetches one
// block at a time whatever the prefetch.
func TestCursorHoldsNoMoreThanMaxBuffer(t *testing.T) {
	r := newRig(t, testConfig())
	blocks, _ := sealedSegment(t, r, 10, func(int) int { return 60 })
	be := NewObjectBackend(r.store, "root", 1)
	c := be.OpenCursor(Ref{LogID: 7, SegmentID: 0})
	defer c.Close()
	c.(PrefetchCursor).SetPrefetch(4)
	c.(BufferCursor).SetMaxBuffer(1)
	c.SetLimit(blocks)
	nctx, ncancel := context.WithTimeout(context.Background(), time.Minute)
	defer ncancel()
	for want := range int64(3) { // the cursor learns the blocks' size
		if h, _, err := c.Next(nctx); err != nil || h.BlockNo != want {
			t.Fatalf("block %d: %+v %v", want, h, err)
		}
	}
	r.store.Inject(memstore.Rule{Op: memstore.OpGet, KeyRegexp: regexp.MustCompile(`/b-0*([4-9])$`),
		Times: -1, Action: memstore.ActionHold})
	next := make(chan error, 1)
	go func() {
		for range 2 { // block 3, then block 4, whose GET is held
			if _, _, err := c.Next(nctx); err != nil {
				next <- err
				return
			}
		}
		next <- nil
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = r.store.WaitHeld(ctx, 2) // more than one must not come: the assertion says so
	if held := len(r.store.Held()); held != 1 {
		t.Fatalf("%d GETs held with a buffer bound below two blocks, want 1", held)
	}
	r.store.ClearRules()
	r.store.Release()
	if err := <-next; err != nil {
		t.Fatal(err)
	}
	for want := int64(5); want < blocks; want++ {
		if h, _, err := c.Next(nctx); err != nil || h.BlockNo != want {
			t.Fatalf("block %d: %+v %v", want, h, err)
		}
	}
}
