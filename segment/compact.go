package segment

import (
	"context"
	"encoding/binary"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
)

// Compaction of sealed object-store segments.
//
// A sealed segment's data lives in one layout generation at a time.
// Generation 0 is what the writer left: block objects b-0 .. b-(n-1) and
// the seal record "seal". Compaction g (g = 1, 2, ...) concatenates runs of
// small objects of generation g-1, unchanged (blocks are self-describing,
// so a concatenation is parsed block by block), into merged objects, and
// writes a seal record "seal-<g>" whose index lists every object of the new
// layout in entry order: the merged objects and the objects of generation
// g-1 left as they were because they are large already. Merged objects
// are named after their first block and their generation,
//
//	b-<first block, 19 digits>-c<generation, 19 digits>
//
// a name no writer or fence ever takes (block names end after the 19
// digits), and one that sorts right after b-<first block>, so an index in
// entry order has ascending names, as seal records require. Every object
// is written create-only.
//
// The switch to generation g is a compare-and-swap of the segment's
// metadata, made by the caller after Compact returns; until then the new
// objects are invisible and, after a crash, orphans. The objects the new
// generation replaced stay for a grace period, so a reader that opened its
// cursor on the old layout finishes reading it. A cursor that finds an
// object of its layout gone moves to the newest generation, at the block it
// was about to read: blocks keep their numbers in every generation, so it
// sees no gap and no duplicate.
//
// Local segment files are one object per segment already: compaction does
// not apply to them.

const (
	mergedTag     = "-c"
	sealGenPrefix = SealName + "-"
)

// MergedObjectName returns the name of a merged object of generation gen
// whose first block is firstBlock.
func MergedObjectName(firstBlock, gen int64) string {
	return BlockName(firstBlock) + mergedTag + padID(gen)
}

// LayoutSealName returns the name of the seal record of layout generation
// gen: SealName for generation 0.
func LayoutSealName(gen int64) string {
	if gen == 0 {
		return SealName
	}
	return sealGenPrefix + padID(gen)
}

// ObjectKind classifies the objects of a segment's prefix.
type ObjectKind int

// Object kinds.
const (
	// ObjectUnknown: a name this package never writes.
	ObjectUnknown ObjectKind = iota
	// ObjectBlock: b-N, a writer's block or a fence in a block slot.
	ObjectBlock
	// ObjectMerged: b-N-cG, blocks N... merged by compaction G.
	ObjectMerged
	// ObjectSeal: the seal record of generation 0 (SealName) or G.
	ObjectSeal
)

// ObjectName is a parsed object name within a segment's prefix.
type ObjectName struct {
	Kind ObjectKind
	// Block is the (first) block number of a block or merged object.
	Block int64
	// Generation is the layout generation that wrote the object: 0 for
	// blocks and the writer's seal record.
	Generation int64
}

// ParseObjectName parses a name made by BlockName, MergedObjectName or
// LayoutSealName; anything else is ObjectUnknown.
func ParseObjectName(name string) ObjectName {
	if name == SealName {
		return ObjectName{Kind: ObjectSeal}
	}
	if g, ok := strings.CutPrefix(name, sealGenPrefix); ok {
		if gen, ok := parsePadded(g); ok && gen > 0 {
			return ObjectName{Kind: ObjectSeal, Generation: gen}
		}
		return ObjectName{}
	}
	if no, ok := ParseBlockName(name); ok {
		return ObjectName{Kind: ObjectBlock, Block: no}
	}
	blk, g, ok := strings.Cut(name, mergedTag)
	if !ok {
		return ObjectName{}
	}
	no, ok1 := ParseBlockName(blk)
	gen, ok2 := parsePadded(g)
	if !ok1 || !ok2 || gen == 0 {
		return ObjectName{}
	}
	return ObjectName{Kind: ObjectMerged, Block: no, Generation: gen}
}

// ErrNothingToCompact: the segment's layout has too few small objects, or
// none that can be merged.
var ErrNothingToCompact = errors.New("nothing to compact")

// LayoutObject is one data object of a sealed segment's layout.
type LayoutObject struct {
	// Name within the segment prefix.
	Name string
	// FirstBlock and Blocks: the object holds blocks FirstBlock ..
	// FirstBlock+Blocks-1, concatenated.
	FirstBlock, Blocks int64
	// FirstEntry and Count: the entries it holds. Count is 0 while
	// unknown (generation 0 objects before their header is read).
	FirstEntry int64
	Count      uint32
	// Size in bytes.
	Size int64
}

// Layout is a sealed segment's layout of one generation.
type Layout struct {
	Generation int64
	// Blocks is the segment's block count, the same in every generation.
	Blocks int64
	// Record is the generation's seal record.
	Record SealRecord
	// Objects hold blocks 0 .. Blocks-1 in order.
	Objects []LayoutObject
}

// Names returns the layout's data object names and its seal record's
// name, as a set.
func (l Layout) Names() map[string]bool {
	names := make(map[string]bool, len(l.Objects)+1)
	for _, o := range l.Objects {
		names[o.Name] = true
	}
	names[LayoutSealName(l.Generation)] = true
	return names
}

// find returns the index of the object holding block no, or -1.
func (l Layout) find(no int64) int {
	i := sort.Search(len(l.Objects), func(i int) bool { return l.Objects[i].FirstBlock > no }) - 1
	if i < 0 || no >= l.Objects[i].FirstBlock+l.Objects[i].Blocks {
		return -1
	}
	return i
}

// ReadLayout reads the layout of generation gen > 0 of a sealed segment of
// blocks blocks from its seal record. Errors wrap objstore.ErrNotFound
// when the record is gone, and ErrCorrupt when it does not describe blocks
// 0 .. blocks-1.
func (b *ObjectBackend) ReadLayout(ctx context.Context, ref Ref, gen, blocks int64) (Layout, error) {
	if gen <= 0 {
		return Layout{}, errors.AssertionFailedf("read layout generation %d: generation 0 has no index", gen)
	}
	key := SegmentPrefix(b.root, ref.LogID, ref.SegmentID) + LayoutSealName(gen)
	data, err := b.store.Get(ctx, key)
	if err != nil {
		return Layout{}, errors.Wrapf(err, "read layout %d of segment %d of log %d", gen, ref.SegmentID, ref.LogID)
	}
	rec, err := DecodeSeal(data)
	if err != nil {
		return Layout{}, errors.Wrapf(err, "%s", key)
	}
	return layoutFromRecord(ref, gen, blocks, rec, key)
}

func layoutFromRecord(ref Ref, gen, blocks int64, rec SealRecord, key string) (Layout, error) {
	bad := func(format string, args ...any) (Layout, error) {
		return Layout{}, errors.Wrapf(walerr.ErrCorrupt, "%s: %s", key, errors.Newf(format, args...))
	}
	if rec.LogID != ref.LogID || rec.SegmentID != ref.SegmentID {
		return bad("record of log %d segment %d", rec.LogID, rec.SegmentID)
	}
	l := Layout{Generation: gen, Blocks: blocks, Record: rec, Objects: make([]LayoutObject, len(rec.Objects))}
	for i, o := range rec.Objects {
		n := ParseObjectName(o.Name)
		if n.Kind != ObjectBlock && n.Kind != ObjectMerged || n.Generation > gen {
			return bad("index names object %q", o.Name)
		}
		l.Objects[i] = LayoutObject{Name: o.Name, FirstBlock: n.Block, FirstEntry: o.FirstEntry, Count: o.Count, Size: o.Size}
	}
	for i := range l.Objects {
		end := blocks
		if i+1 < len(l.Objects) {
			end = l.Objects[i+1].FirstBlock
		}
		l.Objects[i].Blocks = end - l.Objects[i].FirstBlock
		if l.Objects[i].Blocks <= 0 || (i == 0 && l.Objects[0].FirstBlock != 0) {
			return bad("object %q does not fit blocks 0..%d", l.Objects[i].Name, blocks-1)
		}
	}
	if len(l.Objects) == 0 && blocks > 0 {
		return bad("empty index for %d blocks", blocks)
	}
	return l, nil
}

// MergeRun says that objects From .. To-1 of a layout merge into one.
type MergeRun struct{ From, To int }

// CompactOptions controls Compact.
type CompactOptions struct {
	// TargetObjectBytes bounds the size of merged objects. Objects at
	// least this large are never rewritten.
	TargetObjectBytes int64
	// MinSmallObjects is how many objects smaller than TargetObjectBytes a
	// layout needs before it is compacted (at least 2).
	MinSmallObjects int
}

// PlanCompaction decides which objects of a layout, given their sizes in
// order, merge: each maximal run of consecutive small objects (smaller than
// the target) is cut greedily into groups whose total stays within the
// target, and every group of two or more objects becomes one merged
// object. It returns nil when the layout has fewer than
// opts.MinSmallObjects small objects or nothing to merge. Pure.
func PlanCompaction(sizes []int64, opts CompactOptions) []MergeRun {
	target := opts.TargetObjectBytes
	small := 0
	for _, s := range sizes {
		if s < target {
			small++
		}
	}
	if small < max(opts.MinSmallObjects, 2) {
		return nil
	}
	var runs []MergeRun
	for i := 0; i < len(sizes); {
		if sizes[i] >= target {
			i++
			continue
		}
		j, sum := i, int64(0)
		for j < len(sizes) && sizes[j] < target && sum+sizes[j] <= target {
			sum += sizes[j]
			j++
		}
		if j-i >= 2 {
			runs = append(runs, MergeRun{From: i, To: j})
		}
		i = j
	}
	return runs
}

// CompactResult is what Compact wrote.
type CompactResult struct {
	// Layout is the new generation's layout; the caller commits it by
	// switching the segment's metadata to Layout.Generation.
	Layout Layout
	// Written is the number of merged objects written, Replaced the number
	// of objects of the old layout they replace, Bytes their total size.
	Written, Replaced int
	Bytes             int64
}

// Compact writes layout generation gen+1 of a sealed segment of blocks
// blocks whose current layout is generation gen. For generation 0, sizes
// gives the size of each block object by name (from a listing); it is
// ignored otherwise. It validates every block it copies and writes only
// create-only objects; objects of generation gen+1 left by an earlier
// attempt that crashed before its commit are replaced. It returns
// ErrNothingToCompact when there is nothing to merge. The caller holds the
// right to compact the segment (no other compaction of it runs) and
// commits the result.
func (b *ObjectBackend) Compact(ctx context.Context, ref Ref, gen, blocks int64, sizes map[string]int64, opts CompactOptions) (CompactResult, error) {
	fail := func(err error) (CompactResult, error) {
		return CompactResult{}, errors.Wrapf(err, "compact segment %d of log %d", ref.SegmentID, ref.LogID)
	}
	prefix := SegmentPrefix(b.root, ref.LogID, ref.SegmentID)
	var cur Layout
	if gen == 0 {
		data, err := b.store.Get(ctx, prefix+SealName)
		if err != nil {
			return fail(errors.Wrap(err, "read seal record"))
		}
		rec, err := DecodeSeal(data)
		if err != nil {
			return fail(err)
		}
		if len(rec.Objects) > 0 {
			if cur, err = layoutFromRecord(ref, 0, blocks, rec, prefix+SealName); err != nil {
				return fail(err)
			}
		} else {
			if rec.BlockCount != blocks {
				return fail(errors.Wrapf(walerr.ErrCorrupt, "seal record says %d blocks, metadata %d", rec.BlockCount, blocks))
			}
			cur = Layout{Blocks: blocks, Record: rec, Objects: make([]LayoutObject, blocks)}
			for i := range blocks {
				name := BlockName(i)
				size, ok := sizes[name]
				if !ok {
					return fail(errors.Wrapf(walerr.ErrCorrupt, "block %s%s of the sealed segment is missing", prefix, name))
				}
				cur.Objects[i] = LayoutObject{Name: name, FirstBlock: i, Blocks: 1, Size: size}
			}
		}
	} else {
		var err error
		if cur, err = b.ReadLayout(ctx, ref, gen, blocks); err != nil {
			return fail(err)
		}
	}
	objSizes := make([]int64, len(cur.Objects))
	for i, o := range cur.Objects {
		objSizes[i] = o.Size
	}
	runs := PlanCompaction(objSizes, opts)
	if len(runs) == 0 {
		return CompactResult{}, ErrNothingToCompact
	}

	next := Layout{Generation: gen + 1, Blocks: blocks}
	res := CompactResult{}
	nextEntry := int64(0)
	for i := 0; i < len(cur.Objects); {
		if len(runs) > 0 && runs[0].From == i {
			run := runs[0]
			runs = runs[1:]
			obj, data, err := b.merge(ctx, ref, cur.Objects[run.From:run.To], gen+1)
			if err != nil {
				return fail(err)
			}
			if err := b.PutOwned(ctx, prefix+obj.Name, data); err != nil {
				return fail(err)
			}
			next.Objects = append(next.Objects, obj)
			res.Written++
			res.Replaced += run.To - run.From
			res.Bytes += obj.Size
			i = run.To
			continue
		}
		o := cur.Objects[i]
		if o.Count == 0 {
			head, err := b.store.GetRange(ctx, prefix+o.Name, 0, BlockHeaderSize)
			if err != nil {
				return fail(errors.Wrapf(err, "read the header of %s%s", prefix, o.Name))
			}
			h, err := DecodeBlockHeader(head)
			if err != nil {
				return fail(errors.Wrapf(err, "%s%s", prefix, o.Name))
			}
			if h.LogID != ref.LogID || h.SegmentID != ref.SegmentID || h.BlockNo != o.FirstBlock {
				return fail(errors.Wrapf(walerr.ErrCorrupt, "%s%s claims log %d segment %d block %d", prefix, o.Name, h.LogID, h.SegmentID, h.BlockNo))
			}
			o.FirstEntry, o.Count = h.FirstEntry, h.Count
		}
		next.Objects = append(next.Objects, o)
		i++
	}
	for _, o := range next.Objects {
		if o.FirstEntry != nextEntry {
			return fail(errors.Wrapf(walerr.ErrCorrupt, "object %s%s starts at entry %d, want %d", prefix, o.Name, o.FirstEntry, nextEntry))
		}
		nextEntry += int64(o.Count)
	}
	rec := cur.Record
	rec.FenceBlockNo, rec.BlockCount, rec.Objects = -1, 0, nil
	if nextEntry-1 != rec.LastEntry {
		return fail(errors.Wrapf(walerr.ErrCorrupt, "objects end at entry %d, the seal record at %d", nextEntry-1, rec.LastEntry))
	}
	for _, o := range next.Objects {
		rec.Objects = append(rec.Objects, SealObject{Name: o.Name, FirstEntry: o.FirstEntry, Count: o.Count, Size: o.Size})
	}
	enc, err := EncodeSeal(rec)
	if err != nil {
		return fail(err)
	}
	next.Record = rec
	if err := b.PutOwned(ctx, prefix+LayoutSealName(next.Generation), enc); err != nil {
		return fail(err)
	}
	res.Layout = next
	return res, nil
}

// merge reads objs, checks that they hold consecutive valid blocks of the
// segment, and returns their concatenation as a merged object of
// generation gen.
func (b *ObjectBackend) merge(ctx context.Context, ref Ref, objs []LayoutObject, gen int64) (LayoutObject, []byte, error) {
	prefix := SegmentPrefix(b.root, ref.LogID, ref.SegmentID)
	parts := make([][]byte, len(objs))
	errs := make([]error, len(objs))
	sem := make(chan struct{}, b.parallel)
	var wg sync.WaitGroup
	for i, o := range objs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			parts[i], errs[i] = b.store.Get(ctx, prefix+o.Name)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return LayoutObject{}, nil, errors.Wrap(err, "read objects to merge")
	}
	total := 0
	for _, p := range parts {
		total += len(p)
	}
	data := make([]byte, 0, total)
	for _, p := range parts {
		data = append(data, p...)
	}
	out := LayoutObject{Name: MergedObjectName(objs[0].FirstBlock, gen), FirstBlock: objs[0].FirstBlock, Size: int64(total)}
	wantBlock, entry := objs[0].FirstBlock, int64(-1)
	for off := int64(0); off < int64(len(data)); {
		h, err := checkBlock(data[off:])
		if err != nil {
			return LayoutObject{}, nil, errors.Wrapf(err, "block %d of %s", wantBlock, prefix)
		}
		if h.LogID != ref.LogID || h.SegmentID != ref.SegmentID || h.BlockNo != wantBlock || (entry >= 0 && h.FirstEntry != entry) {
			return LayoutObject{}, nil, errors.Wrapf(walerr.ErrCorrupt, "%s: block claims log %d segment %d block %d first entry %d, want block %d entry %d",
				prefix, h.LogID, h.SegmentID, h.BlockNo, h.FirstEntry, wantBlock, entry)
		}
		if entry < 0 {
			out.FirstEntry = h.FirstEntry
		}
		entry = h.NextEntry()
		out.Blocks++
		wantBlock++
		off += BlockSize(h)
	}
	if entry < 0 || out.Blocks != sumBlocks(objs) {
		return LayoutObject{}, nil, errors.Wrapf(walerr.ErrCorrupt, "%s: objects %s.. hold %d blocks, want %d", prefix, objs[0].Name, out.Blocks, sumBlocks(objs))
	}
	out.Count = uint32(entry - out.FirstEntry)
	return out, data, nil
}

func sumBlocks(objs []LayoutObject) int64 {
	var n int64
	for _, o := range objs {
		n += o.Blocks
	}
	return n
}

// checkBlock validates the header and body CRC of the block at the start
// of data, without decoding its entries.
func checkBlock(data []byte) (BlockHeader, error) {
	h, err := DecodeBlockHeader(data)
	if err != nil {
		return BlockHeader{}, err
	}
	size := BlockSize(h)
	if int64(len(data)) < size {
		return BlockHeader{}, corruptBlock(int64(len(data)), "truncated: header says %d bytes, have %d", size, len(data))
	}
	bodyEnd := BlockHeaderSize + int(h.BodyLen)
	if stored, computed := binary.LittleEndian.Uint32(data[bodyEnd:]), crc32c(data[BlockHeaderSize:bodyEnd]); stored != computed {
		return BlockHeader{}, corruptBlock(int64(bodyEnd), "body CRC mismatch: stored %#08x, computed %#08x", stored, computed)
	}
	return h, nil
}

// PutOwned creates key holding data. An existing object with other
// content is an uncommitted leftover of an earlier attempt of the same
// compaction generation, which the caller owns: it is replaced.
func (b *ObjectBackend) PutOwned(ctx context.Context, key string, data []byte) error {
	for range 3 {
		err := b.store.Put(ctx, key, data, objstore.PutOptions{IfNotExists: true})
		if !errors.Is(err, objstore.ErrAlreadyExists) {
			return errors.Wrapf(err, "write %s", key)
		}
		got, err := b.store.Get(ctx, key)
		if err == nil && string(got) == string(data) {
			return nil
		}
		if err != nil && !errors.Is(err, objstore.ErrNotFound) {
			return errors.Wrapf(err, "check existing %s", key)
		}
		if err := b.store.Delete(ctx, key); err != nil {
			return errors.Wrapf(err, "replace leftover %s", key)
		}
	}
	return errors.Newf("write %s: another process keeps writing it", key)
}

// Cursor side: reading a layout of generation > 0, and moving to a newer
// generation when an object of the current one is gone.

// layoutState is an objectCursor's position in a compacted layout.
type layoutState struct {
	l     Layout
	idx   int    // object in data, -1 for none
	data  []byte // content of object idx
	off   int64  // offset in data of the next block to examine
	ahead *fetch // fetch of object aheadIdx
	aIdx  int
}

// UseGeneration makes the cursor read layout generation gen of a sealed
// segment (whose block count SetLimit gives). Call it before the first
// Next; generation 0 is the default.
func (c *objectCursor) UseGeneration(gen int64) {
	c.dropAhead()
	c.gen, c.lay = gen, nil
}

// Generation reports the layout generation the cursor reads.
func (c *objectCursor) Generation() int64 { return c.gen }

func (c *objectCursor) nextInLayout(ctx context.Context) (BlockHeader, [][]byte, error) {
	prefix := SegmentPrefix(c.b.root, c.ref.LogID, c.ref.SegmentID)
	if c.lay == nil {
		l, err := c.b.ReadLayout(ctx, c.ref, c.gen, c.limit)
		if errors.Is(err, objstore.ErrNotFound) {
			return c.relayout(ctx, prefix+LayoutSealName(c.gen))
		}
		if err != nil {
			return BlockHeader{}, nil, err
		}
		c.lay = &layoutState{l: l, idx: -1, aIdx: -1}
	}
	lay := c.lay
	if lay.idx < 0 || c.next < lay.l.Objects[lay.idx].FirstBlock || c.next >= lay.l.Objects[lay.idx].FirstBlock+lay.l.Objects[lay.idx].Blocks {
		i := lay.l.find(c.next)
		if i < 0 {
			return BlockHeader{}, nil, errors.Wrapf(walerr.ErrCorrupt, "%s: layout %d has no object for block %d", prefix, c.gen, c.next)
		}
		data, err := c.fetchLayoutObject(ctx, i)
		if errors.Is(err, objstore.ErrNotFound) {
			return c.relayout(ctx, prefix+lay.l.Objects[i].Name)
		}
		if err != nil {
			return BlockHeader{}, nil, errors.Wrapf(err, "read %s%s", prefix, lay.l.Objects[i].Name)
		}
		lay.idx, lay.data, lay.off = i, data, 0
		c.prefetchLayoutObject(i + 1)
	}
	name := lay.l.Objects[lay.idx].Name
	for {
		if lay.off >= int64(len(lay.data)) {
			return BlockHeader{}, nil, errors.Wrapf(walerr.ErrCorrupt, "%s%s ends before block %d", prefix, name, c.next)
		}
		h, err := DecodeBlockHeader(lay.data[lay.off:])
		if err != nil {
			return BlockHeader{}, nil, errors.Wrapf(err, "%s%s at offset %d", prefix, name, lay.off)
		}
		size := BlockSize(h)
		if lay.off+size > int64(len(lay.data)) {
			return BlockHeader{}, nil, errors.Wrapf(walerr.ErrCorrupt, "%s%s: block at offset %d overruns the object", prefix, name, lay.off)
		}
		if h.BlockNo < c.next {
			lay.off += size
			continue
		}
		if h.LogID != c.ref.LogID || h.SegmentID != c.ref.SegmentID || h.BlockNo != c.next {
			return BlockHeader{}, nil, errors.Wrapf(walerr.ErrCorrupt,
				"%s%s at offset %d: block claims log %d segment %d block %d, want block %d", prefix, name, lay.off, h.LogID, h.SegmentID, h.BlockNo, c.next)
		}
		// Copy the block: entries of an uncompressed block share its bytes,
		// and must not keep a whole merged object alive.
		h, entries, err := DecodeBlock(slices.Clone(lay.data[lay.off : lay.off+size]))
		if err != nil {
			return BlockHeader{}, nil, errors.Wrapf(err, "%s%s at offset %d", prefix, name, lay.off)
		}
		lay.off += size
		c.next++
		if lay.off >= int64(len(lay.data)) {
			lay.idx, lay.data, lay.off = -1, nil, 0
		}
		return h, entries, nil
	}
}

// fetchLayoutObject returns object i of the layout, from the prefetch
// when it is there.
func (c *objectCursor) fetchLayoutObject(ctx context.Context, i int) ([]byte, error) {
	lay := c.lay
	c.mu.Lock()
	f := lay.ahead
	match := f != nil && lay.aIdx == i
	lay.ahead, lay.aIdx = nil, -1
	c.mu.Unlock()
	if match {
		select {
		case <-f.done:
			return f.data, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	key := SegmentPrefix(c.b.root, c.ref.LogID, c.ref.SegmentID) + lay.l.Objects[i].Name
	return c.b.store.Get(ctx, key)
}

// prefetchLayoutObject starts reading object i in the background, so at
// most two objects of the layout are in memory.
func (c *objectCursor) prefetchLayoutObject(i int) {
	lay := c.lay
	if c.prefetch <= 1 || i >= len(lay.l.Objects) {
		return
	}
	key := SegmentPrefix(c.b.root, c.ref.LogID, c.ref.SegmentID) + lay.l.Objects[i].Name
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fetchCtx == nil {
		c.fetchCtx, c.cancel = context.WithCancel(context.Background())
	}
	f := &fetch{done: make(chan struct{})}
	lay.ahead, lay.aIdx = f, i
	c.wg.Add(1)
	go func(fctx context.Context) {
		defer c.wg.Done()
		defer close(f.done)
		f.data, f.err = c.b.store.Get(fctx, key)
	}(c.fetchCtx)
}

// relayout is called when object key of the cursor's layout is gone: it
// moves the cursor to the newest layout generation, at the block it was
// about to read. Without a newer generation the segment's data is gone
// (deleted by garbage collection, or lost): the error is marked
// ErrObjectMissing and wraps ErrCorrupt.
func (c *objectCursor) relayout(ctx context.Context, key string) (BlockHeader, [][]byte, error) {
	prefix := SegmentPrefix(c.b.root, c.ref.LogID, c.ref.SegmentID)
	seals, err := objstore.ListAll(ctx, c.b.store, prefix+sealGenPrefix, "")
	if err != nil {
		return BlockHeader{}, nil, errors.Wrapf(err, "%s is gone; list newer layouts", key)
	}
	newest := c.gen
	for _, o := range seals {
		if n := ParseObjectName(strings.TrimPrefix(o.Key, prefix)); n.Kind == ObjectSeal && n.Generation > newest {
			newest = n.Generation
		}
	}
	if newest == c.gen || c.limit < 0 {
		return BlockHeader{}, nil, walerr.Mark(errors.Wrapf(walerr.ErrCorrupt,
			"%s of a sealed segment is missing (no newer layout than generation %d)", key, c.gen), ErrObjectMissing)
	}
	c.UseGeneration(newest)
	return c.nextInLayout(ctx)
}
