package shared

import (
	"context"

	"github.com/cockroachdb/errors"
	"go.uber.org/zap"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/segment"
)

// What a backend whose blocks reach object storage by other hands needs
// of shared objects (QuorumBuffer: the LogStores upload, docs/quorum.md).
// Its writer seals a segment from the extents etcd holds (SealAt), and
// copies itself the blocks an uploader left out (WriteObjects), as a
// recovery does.

// WriteObjects writes pieces, blocks of logs whose owner is owner, into new
// shared objects (as many as etcd's transaction limit and the object size
// need) and commits each. An error marked walerr.ErrFenced means owner no
// longer owns a log: what was not committed before never will be. Any
// other error leaves the pieces' outcome unknown; writing them again is
// harmless (the later extent wins, naming the same bytes).
func (b *Backend) WriteObjects(ctx context.Context, owner meta.WriterToken, pieces []Piece, objectSize int64) error {
	proc := newProcID()
	for seq := uint64(1); len(pieces) > 0; seq++ {
		n, size := 0, int64(0)
		for n < len(pieces) && n < maxObjectBlocks && (n == 0 || size+int64(len(pieces[n].Data)) <= objectSize) {
			size += int64(len(pieces[n].Data))
			n++
		}
		key := ObjectKey(b.Root(), objectName(proc, seq))
		data, exts := EncodeObject(key, pieces[:n])
		if err := b.Store().Put(ctx, key, data, objstore.PutOptions{IfNotExists: true}); err != nil {
			return errors.Wrapf(err, "write shared object %s", key)
		}
		c := meta.ObjectCommit{Object: key, Owners: map[int64]meta.WriterToken{}, Extents: exts}
		for _, p := range pieces[:n] {
			c.Owners[p.LogID] = owner
		}
		fenced, err := b.index.CommitObject(ctx, c)
		if err != nil {
			return walerr.Mark(err, walerr.ErrUnknownOutcome)
		}
		if len(fenced) > 0 {
			return errors.Wrapf(walerr.ErrFenced, "log %d: writer epoch %d was replaced before shared object %s was committed",
				fenced[0], owner.Epoch, key)
		}
		pieces = pieces[n:]
	}
	return nil
}

// SealAt writes the seal record of a shared segment whose first blocks
// blocks are committed in etcd, and returns the seal's SealInfo: that one,
// or the one a concurrent sealer wrote first (the caller compares). It
// fails when fewer than blocks leading blocks are committed. Only the
// segment's owner may call it: fencing must have stopped every commit
// past blocks, or the owner must not have sent any.
func (b *Backend) SealAt(ctx context.Context, ref segment.Ref, epoch, blocks int64) (segment.SealInfo, error) {
	info, err := b.sealRun(ctx, ref, epoch, blocks)
	if err != nil {
		return segment.SealInfo{}, errors.Wrapf(err, "seal segment %d of log %d", ref.SegmentID, ref.LogID)
	}
	return info, nil
}

// sealRun seals the segment with its first blocks committed blocks (all
// of the leading run when blocks < 0), unless it is sealed already, and
// returns the seal's SealInfo.
func (b *Backend) sealRun(ctx context.Context, ref segment.Ref, epoch, blocks int64) (segment.SealInfo, error) {
	if s, err := b.ReadSeal(ctx, ref); err == nil {
		return s.Info, nil
	} else if !errors.Is(err, objstore.ErrNotFound) {
		return segment.SealInfo{}, err
	}
	seal, err := b.committedRun(ctx, ref, epoch)
	if err != nil {
		return segment.SealInfo{}, err
	}
	if seal.Info.Blocks < blocks {
		return segment.SealInfo{}, errors.Newf("%d of %d blocks are committed in shared objects", seal.Info.Blocks, blocks)
	}
	if blocks >= 0 && seal.Info.Blocks > blocks {
		seal.Extents = seal.Extents[:blocks]
		seal.Info = segment.SealInfo{LastEntry: -1, Blocks: blocks}
		for _, e := range seal.Extents {
			seal.Info.Bytes += e.Length
			seal.Info.LastEntry = e.FirstEntry + int64(e.Count) - 1
		}
	}
	got, err := b.writeSeal(ctx, ref, seal)
	if err != nil {
		return segment.SealInfo{}, err
	}
	return got.Info, nil
}

// StoredBlock reads block blk of a shared segment from its shared object.
// Errors wrap objstore.ErrNotFound when it is not committed.
func (b *Backend) StoredBlock(ctx context.Context, ref segment.Ref, blk int64) ([]byte, error) {
	ext, ok, err := metaExtent(ctx, b.index, ref, blk)
	if err != nil {
		return nil, err
	}
	if !ok {
		s, err := b.ReadSeal(ctx, ref)
		if err != nil {
			return nil, err
		}
		if blk >= int64(len(s.Extents)) {
			return nil, errors.Wrapf(objstore.ErrNotFound, "block %d of segment %d of log %d: the seal ends at %d",
				blk, ref.SegmentID, ref.LogID, len(s.Extents))
		}
		ext = s.Extents[blk]
	}
	data, err := b.Store().GetRange(ctx, ext.Object, ext.Offset, ext.Length)
	if err != nil {
		return nil, err
	}
	if crc32c(data) != ext.CRC {
		return nil, errors.Wrapf(walerr.ErrCorrupt, "block %d of segment %d of log %d in %s: CRC32C differs from the extent's",
			blk, ref.SegmentID, ref.LogID, ext.Object)
	}
	return data, nil
}

// Uploader is a process's object stream for blocks whose writer is
// elsewhere: a LogStore packs the blocks of the segments it uploads into
// shared objects with it, and commits each object under the writers'
// tokens.
type Uploader struct {
	*Backend
}

// NewUploader starts a stream writing objects into objects' store and
// committing them to index. cfg.Window may be 0 (upload as soon as a slot
// is free). Close stops it.
func NewUploader(objects *segment.ObjectBackend, index Index, cfg StreamConfig, logger *zap.Logger) *Uploader {
	b := &Backend{ObjectBackend: objects, index: index, stream: NewStream(cfg, objects.Store(), index, objects.Root(), logger)}
	b.stream.resolve = b.committed
	return &Uploader{Backend: b}
}

// Upload writes block (block number blk of ref's segment) into a shared
// object and returns once the object is committed under owner, the
// ownership token ("<epoch>:<nonce>") of the block's writer. An error
// marked walerr.ErrFenced means the writer no longer owns the log and the
// block will not be committed by this call. Uploading a block again is
// harmless.
func (u *Uploader) Upload(ctx context.Context, owner string, ref segment.Ref, blk int64, block []byte) error {
	tok, err := meta.ParseWriterToken(ref.LogID, owner)
	if err != nil {
		return errors.Wrapf(err, "segment %d of log %d", ref.SegmentID, ref.LogID)
	}
	h, err := segment.DecodeBlockHeader(block)
	if err != nil {
		return errors.Wrapf(err, "block %d of segment %d of log %d", blk, ref.SegmentID, ref.LogID)
	}
	_, err = u.stream.Write(ctx, tok, Piece{LogID: ref.LogID, SegmentID: ref.SegmentID, BlockNo: blk,
		FirstEntry: h.FirstEntry, Count: h.Count, Data: block})
	return err
}
