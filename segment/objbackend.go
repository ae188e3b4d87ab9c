package segment

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
)

// ObjectBackend keeps each segment as a run of block objects, one per
// upload, written create-only, followed by a seal record object. It is safe
// for concurrent use.
type ObjectBackend struct {
	store    objstore.Store
	root     string
	parallel int
}

// NewObjectBackend stores segments in store under root. parallel bounds a
// writer's concurrent uploads and compaction's concurrent reads. How many
// blocks a reader reads ahead is the reader's setting (PrefetchCursor).
func NewObjectBackend(store objstore.Store, root string, parallel int) *ObjectBackend {
	return &ObjectBackend{store: store, root: root, parallel: max(parallel, 1)}
}

// Parallel implements Backend.
func (b *ObjectBackend) Parallel() int { return b.parallel }

// Describe implements Backend.
func (b *ObjectBackend) Describe() string { return fmt.Sprintf("object store at %q", b.root) }

// Store returns the underlying object store.
func (b *ObjectBackend) Store() objstore.Store { return b.store }

// Root returns the key prefix under which the backend keeps segments.
func (b *ObjectBackend) Root() string { return b.root }

// CreateSink implements Backend. Objects need no preparation.
func (b *ObjectBackend) CreateSink(ctx context.Context, ref Ref, epoch int64) (Sink, error) {
	return &objectSink{b: b, ref: ref}, nil
}

type objectSink struct {
	b   *ObjectBackend
	ref Ref
}

func (s *objectSink) WriteBlock(ctx context.Context, blockNo int64, block []byte) error {
	key := BlockKey(s.b.root, s.ref.LogID, s.ref.SegmentID, blockNo)
	return createOnce(ctx, s.b.store, key, block)
}

func (s *objectSink) WriteSeal(ctx context.Context, info SealInfo, record []byte) error {
	return createOnce(ctx, s.b.store, SealKey(s.b.root, s.ref.LogID, s.ref.SegmentID), record)
}

func (s *objectSink) Close() error { return nil }

// isFenceSize tells fence objects from blocks in a listing: every block is
// larger than a block header, every fence is smaller.
func isFenceSize(size int64) bool { return size < BlockHeaderSize }

// Recover implements Backend with RecoverSegment: one listing (a page per
// 1000 blocks), one create-only fence, one range read of the last block's
// header and one seal write, whatever the block count. A fence that finds
// its slot taken by a block that just landed costs one more listing, of
// what follows that block.
func (b *ObjectBackend) Recover(ctx context.Context, ref Ref, epoch int64) (SealInfo, error) {
	return RecoverSegment(ctx, objectRecovery{b}, ref, epoch)
}

// objectRecovery is the object backend's Recoverable.
type objectRecovery struct{ b *ObjectBackend }

func (r objectRecovery) ReadSeal(ctx context.Context, ref Ref) (SealInfo, bool, error) {
	info, err := r.b.readSeal(ctx, ref)
	if errors.Is(err, objstore.ErrNotFound) {
		return SealInfo{}, false, nil
	}
	return info, err == nil, err
}

func (r objectRecovery) FindEnd(ctx context.Context, ref Ref, from Tail) (Tail, error) {
	return r.b.findEnd(ctx, ref, from)
}

// Fence creates a fence object in slot at.Blocks, create-only. A slot taken
// by a block that landed meanwhile, or by another recovery's fence, is not
// held; FindEnd tells which.
func (r objectRecovery) Fence(ctx context.Context, ref Ref, epoch int64, at Tail) (bool, error) {
	key := BlockKey(r.b.root, ref.LogID, ref.SegmentID, at.Blocks)
	fence := EncodeFence(FenceInfo{LogID: ref.LogID, SegmentID: ref.SegmentID, BlockNo: at.Blocks, Epoch: epoch})
	err := r.b.store.Put(ctx, key, fence, objstore.PutOptions{IfNotExists: true})
	if errors.Is(err, objstore.ErrAlreadyExists) {
		return false, nil
	}
	if err != nil {
		return false, errors.Wrapf(err, "fence slot %d", at.Blocks)
	}
	return true, nil
}

func (r objectRecovery) ReadTail(ctx context.Context, ref Ref, at Tail) (SealInfo, error) {
	return r.b.lastEntry(ctx, ref, at.Blocks, at.Bytes)
}

func (r objectRecovery) WriteSeal(ctx context.Context, ref Ref, record []byte) (bool, error) {
	err := r.b.store.Put(ctx, SealKey(r.b.root, ref.LogID, ref.SegmentID), record, objstore.PutOptions{IfNotExists: true})
	if errors.Is(err, objstore.ErrAlreadyExists) {
		return false, nil
	}
	return err == nil, err
}

// lastEntry completes a SealInfo for blocks 0..blocks-1 by reading the
// header of the last one.
func (b *ObjectBackend) lastEntry(ctx context.Context, ref Ref, blocks, size int64) (SealInfo, error) {
	info := SealInfo{LastEntry: -1, Blocks: blocks, Bytes: size}
	if blocks == 0 {
		return info, nil
	}
	key := BlockKey(b.root, ref.LogID, ref.SegmentID, blocks-1)
	head, err := b.store.GetRange(ctx, key, 0, BlockHeaderSize)
	if err != nil {
		return SealInfo{}, errors.Wrapf(err, "read the header of block %s", key)
	}
	h, err := DecodeBlockHeader(head)
	if err != nil {
		return SealInfo{}, errors.Wrapf(err, "block %s", key)
	}
	info.LastEntry = h.NextEntry() - 1
	return info, nil
}

// Scan implements Backend.
func (b *ObjectBackend) Scan(ctx context.Context, ref Ref) (SealInfo, error) {
	if info, err := b.readSeal(ctx, ref); err == nil {
		return info, nil
	} else if !errors.Is(err, objstore.ErrNotFound) {
		return SealInfo{}, err
	}
	tail, err := b.findEnd(ctx, ref, Tail{})
	if err != nil {
		return SealInfo{}, errors.Wrapf(err, "scan segment %d of log %d", ref.SegmentID, ref.LogID)
	}
	return b.lastEntry(ctx, ref, tail.Blocks, tail.Bytes)
}

// findEnd lists the segment's block keys after from's last block and
// extends from over the contiguous run of blocks that follows. It stops at
// the first free slot or fence: one listing call per 1000 keys it reads.
func (b *ObjectBackend) findEnd(ctx context.Context, ref Ref, from Tail) (Tail, error) {
	segPrefix := SegmentPrefix(b.root, ref.LogID, ref.SegmentID)
	prefix := segPrefix + blockNamePrefix
	startAfter := ""
	if from.Blocks > 0 {
		startAfter = BlockKey(b.root, ref.LogID, ref.SegmentID, from.Blocks-1)
	}
	tail := from
	for {
		page, err := b.store.List(ctx, prefix, startAfter, 0)
		if err != nil {
			return Tail{}, errors.Wrap(err, "list blocks")
		}
		slots := make([]listedSlot, 0, len(page.Objects))
		for _, obj := range page.Objects {
			if no, ok := ParseBlockName(strings.TrimPrefix(obj.Key, segPrefix)); ok {
				slots = append(slots, listedSlot{no: no, size: obj.Size})
			}
		}
		var stop bool
		if tail, stop = extendRun(tail, slots); stop || !page.More || len(page.Objects) == 0 {
			return tail, nil
		}
		startAfter = page.Objects[len(page.Objects)-1].Key
	}
}

// listedSlot is a block slot an object listing showed: a block, or a fence
// when its size says so (isFenceSize).
type listedSlot struct{ no, size int64 }

// extendRun extends tail over listed, the slots a listing showed after
// tail's last block, in slot order: each block in the next slot adds to the
// run. It stops (stop set) at the first free slot, or at a fence in the next
// slot, which ends the segment (Fenced set). Blocks after a gap do not
// count: acknowledgements go in order, so none of them was acknowledged.
func extendRun(tail Tail, listed []listedSlot) (_ Tail, stop bool) {
	for _, s := range listed {
		if s.no != tail.Blocks {
			return tail, true
		}
		if isFenceSize(s.size) {
			tail.Fenced = true
			return tail, true
		}
		tail.Blocks++
		tail.Bytes += s.size
	}
	return tail, false
}

func (b *ObjectBackend) readSeal(ctx context.Context, ref Ref) (SealInfo, error) {
	data, err := b.store.Get(ctx, SealKey(b.root, ref.LogID, ref.SegmentID))
	if err != nil {
		return SealInfo{}, err
	}
	info, err := DecodeSealInfo(data)
	if err != nil {
		return SealInfo{}, errors.Wrapf(err, "seal record of segment %d of log %d", ref.SegmentID, ref.LogID)
	}
	return info, nil
}

// OpenCursor implements Backend.
func (b *ObjectBackend) OpenCursor(ref Ref) Cursor {
	return &objectCursor{b: b, ref: ref, limit: -1}
}

// objectCursor reads block objects in order. Once the block count is known
// (SetLimit), it reads up to prefetch blocks ahead in parallel.
type objectCursor struct {
	b     *ObjectBackend
	ref   Ref
	next  int64
	limit int64        // block count of a sealed segment, -1 while unknown
	gen   int64        // layout generation read (compact.go); 0: the writer's blocks
	lay   *layoutState // position in a layout of generation > 0
	// prefetch is how many blocks to keep in flight (SetPrefetch).
	prefetch int
	// maxBuffer bounds the bytes of blocks fetched or being fetched
	// (SetMaxBuffer; 0: none); largest is the largest block fetched, the
	// estimate of a block in flight.
	maxBuffer, largest int64

	mu       sync.Mutex
	ahead    []*fetch      // fetches for next, next+1, ...
	landed   chan struct{} // a fetch ended (buffered, 1): Next starts the next one
	cancel   context.CancelFunc
	fetchCtx context.Context
	wg       sync.WaitGroup
}

type fetch struct {
	done chan struct{}
	data []byte
	err  error
}

// fetched reports whether the fetch ended.
func (f *fetch) fetched() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// SetLimit tells the cursor the segment holds exactly blocks blocks,
// enabling prefetch.
func (c *objectCursor) SetLimit(blocks int64) { c.limit = blocks }

func (c *objectCursor) Skip(blockNo int64) {
	c.dropAhead()
	c.next = blockNo
}

func (c *objectCursor) Next(ctx context.Context) (BlockHeader, [][]byte, error) {
	if c.limit >= 0 && c.next >= c.limit {
		return BlockHeader{}, nil, ErrEndOfSegment
	}
	if c.gen > 0 {
		return c.nextInLayout(ctx)
	}
	var data []byte
	var err error
	if c.limit >= 0 && c.prefetch > 1 {
		data, err = c.prefetched(ctx)
	} else {
		data, err = c.b.store.Get(ctx, BlockKey(c.b.root, c.ref.LogID, c.ref.SegmentID, c.next))
	}
	key := BlockKey(c.b.root, c.ref.LogID, c.ref.SegmentID, c.next)
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		if c.limit >= 0 {
			// Compaction may have replaced it (compact.go).
			return c.relayout(ctx, key)
		}
		return BlockHeader{}, nil, ErrNoBlockYet
	case err != nil:
		// The prefetch window is aligned to c.next, which does not move:
		// drop it so the next call reads this block again.
		c.dropAhead()
		return BlockHeader{}, nil, errors.Wrapf(err, "read block %s", key)
	case IsFence(data) && c.limit >= 0:
		c.dropAhead()
		return BlockHeader{}, nil, errors.Wrapf(walerr.ErrCorrupt,
			"block %s of a sealed segment of %d blocks is a fence object", key, c.limit)
	case IsFence(data):
		return BlockHeader{}, nil, ErrEndOfSegment
	}
	h, entries, err := DecodeBlock(data)
	if err == nil && (h.LogID != c.ref.LogID || h.SegmentID != c.ref.SegmentID || h.BlockNo != c.next) {
		err = errors.Wrapf(walerr.ErrCorrupt, "claims log %d segment %d block %d", h.LogID, h.SegmentID, h.BlockNo)
	}
	if err != nil {
		c.dropAhead()
		return BlockHeader{}, nil, errors.Wrapf(err, "log %d segment %d block %d (object %s)",
			c.ref.LogID, c.ref.SegmentID, c.next, key)
	}
	c.next++
	return h, entries, nil
}

// prefetched returns block next, keeping up to prefetch fetches in flight
// and at most twice that many blocks fetched or being fetched. GETs end
// out of order: fetches that landed do not count as in flight, and each
// one that lands while Next waits for block next starts the next fetch
// (counting them kept 1-3 GETs in flight behind a slow one).
func (c *objectCursor) prefetched(ctx context.Context) ([]byte, error) {
	for {
		c.mu.Lock()
		if c.fetchCtx == nil {
			c.fetchCtx, c.cancel = context.WithCancel(context.Background())
			c.landed = make(chan struct{}, 1)
		}
		inflight, held := 0, int64(0)
		for _, f := range c.ahead {
			if f.fetched() {
				held += int64(len(f.data))
				c.largest = max(c.largest, int64(len(f.data)))
			} else {
				inflight++
			}
		}
		fits := func() bool {
			return c.maxBuffer <= 0 || len(c.ahead) == 0 || held+int64(inflight+1)*c.largest <= c.maxBuffer
		}
		for n := int64(len(c.ahead)); inflight < c.prefetch && n < 2*int64(c.prefetch) && c.next+n < c.limit && fits(); n++ {
			f := &fetch{done: make(chan struct{})}
			key := BlockKey(c.b.root, c.ref.LogID, c.ref.SegmentID, c.next+n)
			c.ahead = append(c.ahead, f)
			inflight++
			c.wg.Add(1)
			go func(fctx context.Context, landed chan<- struct{}) {
				defer c.wg.Done()
				defer func() {
					close(f.done)
					select {
					case landed <- struct{}{}:
					default:
					}
				}()
				f.data, f.err = c.b.store.Get(fctx, key)
			}(c.fetchCtx, c.landed)
		}
		f, landed := c.ahead[0], c.landed
		c.mu.Unlock()
		select {
		case <-f.done:
		case <-landed:
			continue // another fetch ended: start the next one
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		c.mu.Lock()
		c.ahead = c.ahead[1:]
		c.mu.Unlock()
		return f.data, f.err
	}
}

func (c *objectCursor) dropAhead() {
	c.mu.Lock()
	cancel := c.cancel
	c.ahead, c.fetchCtx, c.cancel = nil, nil, nil
	if c.lay != nil {
		c.lay.ahead, c.lay.aIdx = nil, -1
	}
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	c.wg.Wait()
}

func (c *objectCursor) Close() error {
	c.dropAhead()
	return nil
}

// LocateBlock returns the number of the block of a sealed segment of blocks
// blocks that holds entry, by binary search over block headers: about
// log2(blocks) range reads of a header each, instead of reading every block
// before the entry. Only the writer's original layout (generation 0) is
// searched; it returns 0, nil when the headers are not there (a compacted
// segment whose original blocks are gone), so the caller reads from the
// segment's start.
func (b *ObjectBackend) LocateBlock(ctx context.Context, ref Ref, blocks, entry int64) (int64, error) {
	lo, hi := int64(0), blocks-1 // the answer lies in [lo, hi]
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		key := BlockKey(b.root, ref.LogID, ref.SegmentID, mid)
		head, err := b.store.GetRange(ctx, key, 0, BlockHeaderSize)
		if errors.Is(err, objstore.ErrNotFound) {
			return 0, nil
		}
		if err != nil {
			return 0, errors.Wrapf(err, "locate entry %d in segment %d of log %d", entry, ref.SegmentID, ref.LogID)
		}
		h, err := DecodeBlockHeader(head)
		if err != nil {
			return 0, errors.Wrapf(err, "block %s", key)
		}
		if h.FirstEntry <= entry {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo, nil
}
