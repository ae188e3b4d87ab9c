package quorum

import (
	"context"
	"sync"

	"github.com/cockroachdb/errors"
	"google.golang.org/grpc"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/quorum/quorumpb"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/shared"
)

// Segments in shared objects (docs/quorum.md, "Shared objects"). The
// uploader packs the blocks of every segment it uploads into shared
// objects and commits them in etcd under the writer's token (the
// segment's Ref.Owner, sent in every request as Segment.shared_owner).
// A block is in object storage once its extent is committed; the first
// blocks with extents are the stored prefix, as the leading block objects
// are in the per-log layout. The commit compares the writer's ownership,
// so once a new writer has taken the log (before it recovers), no upload
// of the old writer's segment becomes visible: the extents recovery reads
// are final, and it seals them with the blocks it copies from the
// replicas, committed under its own token.

// sharedCopyBytes is the object size of blocks a seal or a recovery
// copies into shared objects.
const sharedCopyBytes = 8 << 20

// writeSealRecord writes the segment's seal record once blocks
// 0..info.Blocks-1 are in object storage.
func (s *sink) writeSealRecord(ctx context.Context, info segment.SealInfo, record []byte) error {
	if s.obj != nil {
		return s.obj.WriteSeal(ctx, info, record)
	}
	got, err := s.b.SealAt(ctx, s.ref, s.epoch, info.Blocks)
	if err != nil {
		return err
	}
	if got.Blocks != info.Blocks || got.LastEntry != info.LastEntry {
		return errors.Wrapf(walerr.ErrFenced, "segment %d of log %d was sealed by recovery at %d blocks, not %d",
			s.ref.SegmentID, s.ref.LogID, got.Blocks, info.Blocks)
	}
	return nil
}

// copyShared copies blocks from..to-1 that object storage lacks into
// shared objects committed under ref.Owner, reading each with read,
// copyParallel at a time and holding at most sharedCopyBytes of them
// (plus one read batch) before it writes them. It returns how many leading
// blocks are then stored, and the error of the first block it could not
// copy; nothing above that block is committed.
func (b *Backend) copyShared(ctx context.Context, ref segment.Ref, from, to int64,
	read func(ctx context.Context, blk int64) ([]byte, error)) (int64, error) {
	if from >= to {
		return to, nil
	}
	owner, err := meta.ParseWriterToken(ref.LogID, ref.Owner)
	if err != nil {
		return from, errors.Wrapf(err, "copy blocks of segment %d of log %d", ref.SegmentID, ref.LogID)
	}
	var (
		pending      []shared.Piece // read, in block order, not yet written
		pendingBytes int64
		stored       = from // every block below it is committed
	)
	flush := func(upTo int64) error {
		if err := b.WriteObjects(ctx, owner, pending, sharedCopyBytes); err != nil {
			return errors.Wrapf(err, "copy blocks %d-%d of segment %d of log %d", stored, upTo-1, ref.SegmentID, ref.LogID)
		}
		pending, pendingBytes, stored = pending[:0], 0, upTo
		return nil
	}
	for lo := from; lo < to; lo += copyParallel {
		hi := min(lo+copyParallel, to)
		var mu sync.Mutex
		got := map[int64]shared.Piece{}
		end, readErr := copyBlocks(ctx, lo, hi, func(ctx context.Context, blk int64) error {
			data, err := read(ctx, blk)
			if err != nil {
				if b.uploaded(ctx, ref, blk) {
					return nil // the uploader got there first, and dropped its copy
				}
				return errors.Wrapf(err, "copy block %d of segment %d of log %d", blk, ref.SegmentID, ref.LogID)
			}
			h, err := segment.DecodeBlockHeader(data)
			if err != nil {
				return errors.Wrapf(err, "copy block %d of segment %d of log %d", blk, ref.SegmentID, ref.LogID)
			}
			mu.Lock()
			got[blk] = shared.Piece{LogID: ref.LogID, SegmentID: ref.SegmentID, BlockNo: blk,
				FirstEntry: h.FirstEntry, Count: h.Count, Data: data}
			mu.Unlock()
			return nil
		})
		// Only the blocks below the first failure: no gap, so none is
		// committed above one that is not.
		for blk := lo; blk < end; blk++ {
			if p, ok := got[blk]; ok {
				pending = append(pending, p)
				pendingBytes += int64(len(p.Data))
			}
		}
		if readErr != nil || pendingBytes >= sharedCopyBytes || end == to {
			if err := flush(end); err != nil {
				return stored, err
			}
		}
		if readErr != nil {
			return stored, readErr
		}
	}
	return stored, nil
}

// recoverShared ends recovery of a segment in shared objects: it copies
// the blocks up to the decided end that object storage lacks, from the
// replicas that hold them, under the recovering writer's token
// (ref.Owner), seals the segment there, and releases the replicas.
func (b *Backend) recoverShared(ctx context.Context, ref segment.Ref, epoch int64, p placement,
	cs []quorumpb.LogStoreClient, stored int64, d Decision) (segment.SealInfo, error) {
	if _, err := b.copyShared(ctx, ref, stored, d.End, func(ctx context.Context, blk int64) ([]byte, error) {
		data, err := b.readBlock(ctx, cs[d.Sources[blk]], ref, epoch, blk, grpc.WaitForReady(true))
		if err != nil {
			return nil, errors.Wrapf(err, "read block %d from %s", blk, p.Nodes[d.Sources[blk]].ID)
		}
		return data, nil
	}); err != nil {
		return segment.SealInfo{}, errors.Wrapf(err, "recover segment %d of log %d", ref.SegmentID, ref.LogID)
	}
	info, err := b.SealAt(ctx, ref, epoch, d.End)
	if err != nil {
		return segment.SealInfo{}, errors.Wrapf(err, "recover segment %d of log %d", ref.SegmentID, ref.LogID)
	}
	b.release(ctx, ref, epoch, cs)
	return info, nil
}

// storedBlock reads block blk from object storage, in the segment's
// layout.
func (b *Backend) storedBlock(ctx context.Context, ref segment.Ref, blk int64) ([]byte, error) {
	if shared.IsShared(ref.Placement) {
		return b.StoredBlock(ctx, ref, blk)
	}
	return b.ObjectBackend.Store().Get(ctx, segment.BlockKey(b.ObjectBackend.Root(), ref.LogID, ref.SegmentID, blk))
}
