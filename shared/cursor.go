package shared

import (
	"context"
	"sync"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/segment"
)

// maxRunBytes bounds one ranged GET of adjacent blocks.
const maxRunBytes = 8 << 20

// cursor reads a shared segment's blocks in order: extents from the seal
// record once the segment is sealed, from etcd while it is open; block
// bytes by ranged GETs, adjacent blocks of one object merged into one GET,
// up to prefetch GETs in flight.
type cursor struct {
	b        *Backend
	ref      segment.Ref
	next     int64
	limit    int64 // block count of a sealed segment, -1 while unknown
	prefetch int
	// maxBuffer bounds the bytes of runs fetched or being fetched
	// (SetMaxBuffer); 0: prefetch x maxRunBytes.
	maxBuffer int64
	sealed    bool          // exts come from the seal: every block is known
	exts      []meta.Extent // known extents of blocks next, next+1, ...
	// inner reads the per-log layout a compaction wrote, once the
	// segment's metadata says so (UseGeneration) or a shared object of
	// the segment is gone (deleted after its compaction).
	inner segment.Cursor

	mu    sync.Mutex
	ahead []*run // runs fetched or being fetched, in block order; ahead[0] starts at next
	// landed wakes a reader waiting for ahead[0] when another GET ends,
	// so that it starts the next one at once (buffered, 1).
	landed chan struct{}
	cancel context.CancelFunc
	fctx   context.Context
	wg     sync.WaitGroup
}

// run is one ranged GET of adjacent blocks of one object.
type run struct {
	off  int64         // where the GET starts in the object
	exts []meta.Extent // blocks not yet returned
	done chan struct{}
	data []byte
	err  error
}

var (
	_ segment.PrefetchCursor   = (*cursor)(nil)
	_ segment.BufferCursor     = (*cursor)(nil)
	_ segment.GenerationCursor = (*cursor)(nil)
)

func (c *cursor) SetPrefetch(blocks int) { c.prefetch = blocks }

// SetMaxBuffer implements segment.BufferCursor.
func (c *cursor) SetMaxBuffer(bytes int64) {
	c.maxBuffer = bytes
	if c.inner != nil {
		if bc, ok := c.inner.(segment.BufferCursor); ok {
			bc.SetMaxBuffer(bytes)
		}
	}
}

func (c *cursor) SetLimit(blocks int64) {
	c.limit = blocks
	if c.inner != nil {
		c.inner.SetLimit(blocks)
	}
}

// UseGeneration implements segment.GenerationCursor: generation g > 0 of
// a shared segment is a per-log layout (compact.go).
func (c *cursor) UseGeneration(gen int64) {
	c.toLayout()
	c.inner.(segment.GenerationCursor).UseGeneration(gen)
}

// toLayout makes the cursor read the segment's per-log layout from block
// next on: generation 0 there has no objects, so the object cursor moves
// to the newest generation by itself, or reports ErrObjectMissing.
func (c *cursor) toLayout() {
	if c.inner != nil {
		return
	}
	c.dropAhead()
	c.inner = c.b.ObjectBackend.OpenCursor(c.ref)
	if pc, ok := c.inner.(segment.PrefetchCursor); ok {
		pc.SetPrefetch(c.prefetch)
	}
	if bc, ok := c.inner.(segment.BufferCursor); ok {
		bc.SetMaxBuffer(c.maxBuffer)
	}
	c.inner.SetLimit(c.limit)
	c.inner.Skip(c.next)
}

func (c *cursor) Skip(blockNo int64) {
	if c.inner != nil {
		c.inner.Skip(blockNo)
	}
	c.dropAhead()
	c.next = blockNo
	for len(c.exts) > 0 && c.exts[0].BlockNo < blockNo {
		c.exts = c.exts[1:]
	}
}

func (c *cursor) Close() error {
	c.dropAhead()
	if c.inner != nil {
		return c.inner.Close()
	}
	return nil
}

func (c *cursor) Next(ctx context.Context) (segment.BlockHeader, [][]byte, error) {
	if c.inner != nil {
		return c.inner.Next(ctx)
	}
	if c.limit >= 0 && c.next >= c.limit {
		return segment.BlockHeader{}, nil, segment.ErrEndOfSegment
	}
	if len(c.exts) == 0 {
		if err := c.loadExtents(ctx); err != nil {
			return segment.BlockHeader{}, nil, err
		}
	}
	data, ext, err := c.read(ctx)
	if err != nil {
		c.dropAhead()
		if errors.Is(err, objstore.ErrNotFound) && c.limit >= 0 {
			// Compaction copied the segment out and the shared object
			// was deleted after the readers' grace period.
			c.toLayout()
			return c.inner.Next(ctx)
		}
		if errors.Is(err, objstore.ErrNotFound) {
			return segment.BlockHeader{}, nil, walerr.Mark(errors.Wrapf(walerr.ErrCorrupt,
				"log %d segment %d block %d: shared object %s is missing", c.ref.LogID, c.ref.SegmentID, c.next, ext.Object),
				segment.ErrObjectMissing)
		}
		return segment.BlockHeader{}, nil, errors.Wrapf(err, "read log %d segment %d block %d", c.ref.LogID, c.ref.SegmentID, c.next)
	}
	h, entries, err := c.decode(data, ext)
	if err != nil {
		c.dropAhead()
		return segment.BlockHeader{}, nil, errors.Wrapf(err, "log %d segment %d block %d (shared object %s at %d)",
			c.ref.LogID, c.ref.SegmentID, c.next, ext.Object, ext.Offset)
	}
	c.next++
	c.exts = c.exts[1:]
	return h, entries, nil
}

// decode validates a block read for extent ext and decodes it.
func (c *cursor) decode(data []byte, ext meta.Extent) (segment.BlockHeader, [][]byte, error) {
	if crc32c(data) != ext.CRC {
		return segment.BlockHeader{}, nil, errors.Wrap(walerr.ErrCorrupt, "CRC32C differs from the extent's")
	}
	h, entries, err := segment.DecodeBlock(data)
	if err == nil && (h.LogID != c.ref.LogID || h.SegmentID != c.ref.SegmentID || h.BlockNo != c.next ||
		h.FirstEntry != ext.FirstEntry || h.Count != ext.Count) {
		err = errors.Wrapf(walerr.ErrCorrupt, "claims log %d segment %d block %d", h.LogID, h.SegmentID, h.BlockNo)
	}
	return h, entries, err
}

// check validates a block read for extent ext.
func (c *cursor) check(data []byte, ext meta.Extent) error {
	_, _, err := c.decode(data, ext)
	return err
}

// loadExtents finds the extents from block next on: from the seal when the
// segment is known sealed, else from etcd, else (sealed meanwhile, its
// extents folded into the seal) from the seal. ErrNoBlockYet when the next
// block is not committed yet, ErrEndOfSegment when the seal ends before it.
func (c *cursor) loadExtents(ctx context.Context) error {
	if c.limit < 0 {
		page, err := c.b.index.Extents(ctx, c.ref.LogID, c.ref.SegmentID, c.next, extentPage)
		if err != nil {
			return err
		}
		for i, e := range page {
			if e.BlockNo != c.next+int64(i) {
				break
			}
			c.exts = append(c.exts, e)
		}
		if len(c.exts) > 0 {
			return nil
		}
	}
	s, err := c.b.ReadSeal(ctx, c.ref)
	switch {
	case errors.Is(err, objstore.ErrNotFound) && c.limit < 0:
		return segment.ErrNoBlockYet
	case errors.Is(err, objstore.ErrNotFound):
		return walerr.Mark(errors.Wrapf(walerr.ErrCorrupt, "the seal of sealed segment %d of log %d is missing",
			c.ref.SegmentID, c.ref.LogID), segment.ErrObjectMissing)
	case err != nil:
		return err
	}
	if c.limit >= 0 && s.Info.Blocks != c.limit {
		return errors.Wrapf(walerr.ErrCorrupt, "segment %d of log %d: seal of %d blocks, metadata says %d",
			c.ref.SegmentID, c.ref.LogID, s.Info.Blocks, c.limit)
	}
	c.limit, c.sealed = s.Info.Blocks, true
	if c.next >= c.limit {
		return segment.ErrEndOfSegment
	}
	c.exts = append(c.exts[:0], s.Extents[c.next:]...)
	return nil
}

// read returns block next's bytes, keeping up to prefetch GETs in flight
// over the known extents.
func (c *cursor) read(ctx context.Context) ([]byte, meta.Extent, error) {
	ext := c.exts[0]
	var r *run
	for r == nil {
		c.mu.Lock()
		c.refillLocked(0)
		first, landed := c.ahead[0], c.landed
		c.mu.Unlock()
		select {
		case <-first.done:
			r = first
		case <-landed:
			// Another GET ended: start the next while this one runs.
		case <-ctx.Done():
			return nil, ext, ctx.Err()
		}
	}
	if r.err != nil {
		return nil, ext, r.err
	}
	last := r.exts[len(r.exts)-1]
	if int64(len(r.data)) != last.Offset+last.Length-r.off {
		return nil, ext, errors.Wrapf(walerr.ErrCorrupt, "shared object %s is shorter than its extents", ext.Object)
	}
	data := r.data[ext.Offset-r.off : ext.Offset-r.off+ext.Length]
	c.mu.Lock()
	if r.exts = r.exts[1:]; len(r.exts) == 0 {
		c.ahead = c.ahead[1:]
	}
	c.refillLocked(1) // the run just fetched no longer counts
	c.mu.Unlock()
	return data, ext, nil
}

// refillLocked starts GETs of the next runs while fewer than prefetch are
// in flight, holding at most prefetch x maxRunBytes of runs fetched or
// being fetched. Runs fetched and not yet returned do not count as in
// flight: GETs end out of order, and while the reader waited for the
// first one, the ones that had landed kept the next from starting (1-3 in
// flight instead of 4 in catch-up reads of small blocks, 0.64-0.78 of the
// store's GETs at the same parallelism). The first returning extents are
// being returned: no run reads them.
func (c *cursor) refillLocked(returning int) {
	if c.fctx == nil {
		c.fctx, c.cancel = context.WithCancel(context.Background())
		c.landed = make(chan struct{}, 1)
	}
	queued, inflight, held := returning, 0, int64(0)
	for _, r := range c.ahead {
		queued += len(r.exts)
		held += r.size()
		if !r.fetched() {
			inflight++
		}
	}
	prefetch := max(c.prefetch, 1)
	limit := int64(prefetch) * maxRunBytes
	if c.maxBuffer > 0 {
		limit = c.maxBuffer
	}
	for inflight < prefetch && queued < len(c.exts) {
		r := &run{exts: nextRun(c.exts[queued:]), done: make(chan struct{})}
		if len(c.ahead) > 0 && held+r.size() > limit {
			return
		}
		r.off = r.exts[0].Offset
		queued += len(r.exts)
		held += r.size()
		inflight++
		c.ahead = append(c.ahead, r)
		c.wg.Add(1)
		go func(fctx context.Context, landed chan<- struct{}) {
			defer c.wg.Done()
			defer func() {
				close(r.done)
				select {
				case landed <- struct{}{}:
				default:
				}
			}()
			first, last := r.exts[0], r.exts[len(r.exts)-1]
			r.data, r.err = c.b.Store().GetRange(fctx, first.Object, first.Offset, last.Offset+last.Length-first.Offset)
		}(c.fctx, c.landed)
	}
}

// size is the number of bytes the run's GET reads.
func (r *run) size() int64 {
	first, last := r.exts[0], r.exts[len(r.exts)-1]
	return last.Offset + last.Length - first.Offset
}

// fetched reports whether the run's GET ended.
func (r *run) fetched() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// nextRun returns the longest prefix of exts that one ranged GET reads:
// blocks of one object, each starting where the previous ends.
func nextRun(exts []meta.Extent) []meta.Extent {
	n, size := 1, exts[0].Length
	for n < len(exts) {
		e, prev := exts[n], exts[n-1]
		if e.Object != prev.Object || e.Offset != prev.Offset+prev.Length || size+e.Length > maxRunBytes {
			break
		}
		size += e.Length
		n++
	}
	return exts[:n:n]
}

func (c *cursor) dropAhead() {
	c.mu.Lock()
	cancel := c.cancel
	c.ahead, c.fctx, c.cancel = nil, nil, nil
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	c.wg.Wait()
}
