package shared

import (
	"context"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/segment"
)

// Compaction of shared segments (docs/shared-objects.md): a sealed shared
// segment's blocks are copied out of the shared objects into per-log
// objects of layout generation 1 (segment/compact.go), the same layout a
// compaction of a per-log segment writes, so readers and later
// compactions treat both alike. Once the segment's metadata switches to
// generation 1 and the grace period for readers of the old layout has
// passed, no reader needs the shared objects for this segment any more,
// and the collector deletes an object when that holds for every segment
// it serves.

// Compact implements the collector's compaction for shared segments of
// generation 0 and delegates everything else to the per-log layout. The
// caller commits the result (meta.Store.CommitCompaction).
func (b *Backend) Compact(ctx context.Context, ref segment.Ref, gen, blocks int64, sizes map[string]int64,
	opts segment.CompactOptions) (segment.CompactResult, error) {
	if !isShared(ref) || gen > 0 {
		return b.ObjectBackend.Compact(ctx, ref, gen, blocks, sizes, opts)
	}
	fail := func(err error) (segment.CompactResult, error) {
		return segment.CompactResult{}, errors.Wrapf(err, "compact shared segment %d of log %d", ref.SegmentID, ref.LogID)
	}
	seal, err := b.ReadSeal(ctx, ref)
	if err != nil {
		return fail(err)
	}
	if seal.Info.Blocks != blocks {
		return fail(errors.Wrapf(walerr.ErrCorrupt, "seal of %d blocks, metadata says %d", seal.Info.Blocks, blocks))
	}
	if blocks == 0 {
		return segment.CompactResult{}, segment.ErrNothingToCompact
	}
	prefix := segment.SegmentPrefix(b.Root(), ref.LogID, ref.SegmentID)
	next := segment.Layout{Generation: 1, Blocks: blocks}
	rec := segment.SealRecord{LogID: ref.LogID, SegmentID: ref.SegmentID, Epoch: seal.Epoch,
		LastEntry: seal.Info.LastEntry, EntryCount: seal.Info.LastEntry + 1, TotalBytes: seal.Info.Bytes, FenceBlockNo: -1}
	res := segment.CompactResult{Replaced: int(blocks)}
	for _, group := range groupBlocks(seal.Extents, opts.TargetObjectBytes) {
		data, err := b.copyBlocks(ctx, ref, group)
		if err != nil {
			return fail(err)
		}
		first, last := group[0], group[len(group)-1]
		obj := segment.LayoutObject{Name: segment.MergedObjectName(first.BlockNo, 1), FirstBlock: first.BlockNo,
			Blocks: int64(len(group)), FirstEntry: first.FirstEntry,
			Count: uint32(last.FirstEntry + int64(last.Count) - first.FirstEntry), Size: int64(len(data))}
		if err := b.PutOwned(ctx, prefix+obj.Name, data); err != nil {
			return fail(err)
		}
		next.Objects = append(next.Objects, obj)
		rec.Objects = append(rec.Objects, segment.SealObject{Name: obj.Name, FirstEntry: obj.FirstEntry, Count: obj.Count, Size: obj.Size})
		res.Written++
		res.Bytes += obj.Size
	}
	enc, err := segment.EncodeSeal(rec)
	if err != nil {
		return fail(err)
	}
	if err := b.PutOwned(ctx, prefix+segment.LayoutSealName(1), enc); err != nil {
		return fail(err)
	}
	next.Record = rec
	res.Layout = next
	return res, nil
}

// groupBlocks cuts a segment's extents, in block order, into runs whose
// total size stays within target (a larger block is a run of its own).
func groupBlocks(exts []meta.Extent, target int64) [][]meta.Extent {
	var groups [][]meta.Extent
	for i := 0; i < len(exts); {
		j, size := i+1, exts[i].Length
		for j < len(exts) && size+exts[j].Length <= target {
			size += exts[j].Length
			j++
		}
		groups = append(groups, exts[i:j:j])
		i = j
	}
	return groups
}

// copyBlocks reads a group's blocks with a cursor over exactly those
// extents (ranged GETs, merged where adjacent, validated block by block)
// and returns their concatenation: blocks are self-describing, so a
// concatenation is a valid compacted object.
func (b *Backend) copyBlocks(ctx context.Context, ref segment.Ref, group []meta.Extent) ([]byte, error) {
	c := &cursor{b: b, ref: ref, next: group[0].BlockNo, limit: group[len(group)-1].BlockNo + 1,
		prefetch: b.ObjectBackend.Parallel(), sealed: true, exts: append([]meta.Extent(nil), group...)}
	defer c.Close()
	var out []byte
	for range group {
		data, ext, err := c.read(ctx)
		if err == nil {
			err = c.check(data, ext)
		}
		if err != nil {
			return nil, errors.Wrapf(err, "block %d", c.next)
		}
		out = append(out, data...)
		c.next++
		c.exts = c.exts[1:]
	}
	return out, nil
}
