// Package shared packs the blocks of many logs into shared objects: one
// object stream per process, one PUT and one etcd transaction per object
// whatever the number of logs (docs/shared-objects.md).
//
// Backend is a segment.Backend over an object store. Segments placed while
// a window is configured (placement "shared") live in shared objects;
// every other segment is delegated to the per-log layout of
// segment.ObjectBackend, so a client can change the window between runs.
package shared

import (
	"context"
	"strings"
	"sync"

	"github.com/cockroachdb/errors"
	"go.uber.org/zap"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/segment"
)

// Placement marks a segment whose blocks live in shared objects.
const Placement = "shared"

// placementSep joins Placement and another backend's placement of a
// segment whose blocks also live in shared objects: a QuorumBuffer
// segment whose LogStores upload into shared objects records
// "shared:<ensemble>".
const placementSep = ":"

// IsShared reports whether a segment of this placement keeps its blocks in
// shared objects.
func IsShared(placement string) bool {
	return placement == Placement || strings.HasPrefix(placement, Placement+placementSep)
}

// WithPlacement returns the placement of a segment that another backend
// places (inner) and whose blocks live in shared objects.
func WithPlacement(inner string) string { return Placement + placementSep + inner }

// InnerPlacement returns what WithPlacement was given, or placement itself
// when it was not made by WithPlacement.
func InnerPlacement(placement string) string {
	inner, ok := strings.CutPrefix(placement, Placement+placementSep)
	if !ok {
		return placement
	}
	return inner
}

// SealName is the name of a shared segment's seal record in its prefix.
const SealName = "sseal"

// extentPage is how many extents one etcd read returns.
const extentPage = 1000

// Backend keeps segments in shared objects (see the package comment).
type Backend struct {
	*segment.ObjectBackend
	index  Index
	stream *Stream // nil: new segments use the per-log layout
}

var (
	_ segment.Backend      = (*Backend)(nil)
	_ segment.Placer       = (*Backend)(nil)
	_ segment.BlockLocator = (*Backend)(nil)
)

// NewBackend returns a backend over objects. With cfg.Window > 0 new
// segments go to shared objects, committed to index; with 0 they use the
// per-log layout, and existing shared segments stay readable.
func NewBackend(objects *segment.ObjectBackend, index Index, cfg StreamConfig, logger *zap.Logger) *Backend {
	if index == nil {
		index = noIndex{}
	}
	b := &Backend{ObjectBackend: objects, index: index}
	if cfg.Window > 0 {
		b.stream = NewStream(cfg, objects.Store(), index, objects.Root(), logger)
		b.stream.resolve = b.committed
	}
	return b
}

// noIndex is the index of a backend opened without etcd: shared segments
// cannot be read or written through it.
type noIndex struct{}

var errNoIndex = errors.New("segments in shared objects need the etcd metadata: open storage through the client")

func (noIndex) CommitObject(context.Context, meta.ObjectCommit) ([]int64, error) {
	return nil, errNoIndex
}
func (noIndex) Extents(context.Context, int64, int64, int64, int) ([]meta.Extent, error) {
	return nil, errNoIndex
}

// Stream returns the backend's object stream, nil when the window is 0.
func (b *Backend) Stream() *Stream { return b.stream }

// Close stops the stream.
func (b *Backend) Close() error {
	if b.stream != nil {
		return b.stream.Close()
	}
	return nil
}

// Describe implements segment.Backend.
func (b *Backend) Describe() string {
	if b.stream == nil {
		return b.ObjectBackend.Describe()
	}
	return b.ObjectBackend.Describe() + " with shared objects"
}

// Place implements segment.Placer.
func (b *Backend) Place(ctx context.Context, ref segment.Ref) (string, error) {
	if b.stream == nil {
		return "", nil
	}
	return Placement, nil
}

func isShared(ref segment.Ref) bool { return IsShared(ref.Placement) }

func (b *Backend) sealKey(ref segment.Ref) string {
	return segment.SegmentPrefix(b.Root(), ref.LogID, ref.SegmentID) + SealName
}

// CreateSink implements segment.Backend.
func (b *Backend) CreateSink(ctx context.Context, ref segment.Ref, epoch int64) (segment.Sink, error) {
	if !isShared(ref) {
		return b.ObjectBackend.CreateSink(ctx, ref, epoch)
	}
	if b.stream == nil {
		return nil, errors.Newf("segment %d of log %d was placed in shared objects, but writer.batchWindow is 0", ref.SegmentID, ref.LogID)
	}
	owner, err := meta.ParseWriterToken(ref.LogID, ref.Owner)
	if err != nil {
		return nil, errors.Wrapf(err, "segment %d of log %d", ref.SegmentID, ref.LogID)
	}
	return &sink{b: b, ref: ref, owner: owner, exts: map[int64]meta.Extent{}}, nil
}

type sink struct {
	b     *Backend
	ref   segment.Ref
	owner meta.WriterToken
	mu    sync.Mutex
	exts  map[int64]meta.Extent // committed blocks
}

func (s *sink) WriteBlock(ctx context.Context, blockNo int64, block []byte) error {
	h, err := segment.DecodeBlockHeader(block)
	if err != nil {
		return errors.Wrapf(err, "block %d of segment %d of log %d", blockNo, s.ref.SegmentID, s.ref.LogID)
	}
	ext, err := s.b.stream.Write(ctx, s.owner, Piece{LogID: s.ref.LogID, SegmentID: s.ref.SegmentID,
		BlockNo: blockNo, FirstEntry: h.FirstEntry, Count: h.Count, Data: block})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.exts[blockNo] = ext
	s.mu.Unlock()
	return nil
}

func (s *sink) WriteSeal(ctx context.Context, info segment.SealInfo, _ []byte) error {
	seal := Seal{LogID: s.ref.LogID, SegmentID: s.ref.SegmentID, Epoch: s.owner.Epoch, Info: info}
	s.mu.Lock()
	for no := range info.Blocks {
		e, ok := s.exts[no]
		if !ok {
			s.mu.Unlock()
			return errors.AssertionFailedf("seal segment %d of log %d: block %d was not written", s.ref.SegmentID, s.ref.LogID, no)
		}
		seal.Extents = append(seal.Extents, e)
	}
	s.mu.Unlock()
	// The writer's SealInfo counts block bytes; so does the seal.
	var size int64
	for _, e := range seal.Extents {
		size += e.Length
	}
	seal.Info.Bytes = size
	got, err := s.b.writeSeal(ctx, s.ref, seal)
	if err != nil {
		return err
	}
	if got.Info != seal.Info {
		return errors.Wrapf(walerr.ErrFenced, "segment %d of log %d was sealed by recovery at %d blocks, not %d",
			s.ref.SegmentID, s.ref.LogID, got.Info.Blocks, seal.Info.Blocks)
	}
	return nil
}

func (s *sink) Close() error { return nil }

// writeSeal writes the seal record create-only and returns the seal in
// storage: seal, or the one a concurrent writer or recovery wrote first.
func (b *Backend) writeSeal(ctx context.Context, ref segment.Ref, seal Seal) (Seal, error) {
	data, err := EncodeSeal(seal)
	if err != nil {
		return Seal{}, err
	}
	err = b.Store().Put(ctx, b.sealKey(ref), data, objstore.PutOptions{IfNotExists: true})
	if err == nil {
		return seal, nil
	}
	if !errors.Is(err, objstore.ErrAlreadyExists) {
		return Seal{}, errors.Wrapf(err, "write the seal of segment %d of log %d", ref.SegmentID, ref.LogID)
	}
	got, err := b.ReadSeal(ctx, ref)
	if err != nil {
		return Seal{}, err
	}
	return got, nil
}

// ReadSeal reads a shared segment's seal record; errors wrap
// objstore.ErrNotFound when it has none yet.
func (b *Backend) ReadSeal(ctx context.Context, ref segment.Ref) (Seal, error) {
	data, err := b.Store().Get(ctx, b.sealKey(ref))
	if err != nil {
		return Seal{}, err
	}
	s, err := DecodeSeal(data)
	if err == nil && (s.LogID != ref.LogID || s.SegmentID != ref.SegmentID) {
		err = errors.Wrapf(walerr.ErrCorrupt, "it is the seal of log %d segment %d", s.LogID, s.SegmentID)
	}
	if err != nil {
		return Seal{}, errors.Wrapf(err, "seal of segment %d of log %d", ref.SegmentID, ref.LogID)
	}
	return s, nil
}

// committedRun reads the segment's extents from etcd and returns the
// contiguous run from block 0: the blocks a reader would find. Blocks after
// a gap were never acknowledged (acknowledgements go in order).
func (b *Backend) committedRun(ctx context.Context, ref segment.Ref, epoch int64) (Seal, error) {
	seal := Seal{LogID: ref.LogID, SegmentID: ref.SegmentID, Epoch: epoch, Info: segment.SealInfo{LastEntry: -1}}
	for {
		page, err := b.index.Extents(ctx, ref.LogID, ref.SegmentID, seal.Info.Blocks, extentPage)
		if err != nil {
			return Seal{}, err
		}
		for _, e := range page {
			if e.BlockNo != seal.Info.Blocks || e.FirstEntry != seal.Info.LastEntry+1 {
				return seal, nil
			}
			seal.Extents = append(seal.Extents, e)
			seal.Info.Blocks++
			seal.Info.Bytes += e.Length
			seal.Info.LastEntry = e.FirstEntry + int64(e.Count) - 1
		}
		if len(page) < extentPage {
			return seal, nil
		}
	}
}

// Recover implements segment.Backend. Fencing is the commit's compare of
// the log's owner, which the caller changed before recovering: extents
// read now are final. One etcd read per 1000 blocks, one seal write.
func (b *Backend) Recover(ctx context.Context, ref segment.Ref, epoch int64) (segment.SealInfo, error) {
	if !isShared(ref) {
		return b.ObjectBackend.Recover(ctx, ref, epoch)
	}
	info, err := b.sealRun(ctx, ref, epoch, -1)
	if err != nil {
		return segment.SealInfo{}, errors.Wrapf(err, "recover segment %d of log %d", ref.SegmentID, ref.LogID)
	}
	return info, nil
}

// Scan implements segment.Backend.
func (b *Backend) Scan(ctx context.Context, ref segment.Ref) (segment.SealInfo, error) {
	if !isShared(ref) {
		return b.ObjectBackend.Scan(ctx, ref)
	}
	if s, err := b.ReadSeal(ctx, ref); err == nil {
		return s.Info, nil
	} else if !errors.Is(err, objstore.ErrNotFound) {
		return segment.SealInfo{}, err
	}
	seal, err := b.committedRun(ctx, ref, 0)
	if err != nil {
		return segment.SealInfo{}, errors.Wrapf(err, "scan segment %d of log %d", ref.SegmentID, ref.LogID)
	}
	// Sealed meanwhile: its extents moved into the seal record.
	if s, err := b.ReadSeal(ctx, ref); err == nil {
		return s.Info, nil
	}
	return seal.Info, nil
}

// committed tells whether the stream's pending block is part of its log.
func (b *Backend) committed(ctx context.Context, p *pending) (bool, error) {
	ref := segment.Ref{LogID: p.piece.LogID, SegmentID: p.piece.SegmentID, Placement: Placement}
	return b.Committed(ctx, ref, p.piece.BlockNo)
}

// Committed tells whether block blk of a shared segment is part of its
// log: its extent is in etcd, or, once the segment is sealed, within the
// seal.
func (b *Backend) Committed(ctx context.Context, ref segment.Ref, blk int64) (bool, error) {
	if _, ok, err := metaExtent(ctx, b.index, ref, blk); err != nil || ok {
		return ok, err
	}
	s, err := b.ReadSeal(ctx, ref)
	if errors.Is(err, objstore.ErrNotFound) {
		// No seal yet: the extent would be in etcd; unless the seal and
		// its deletion of the extents landed between the two reads.
		if _, ok, err := metaExtent(ctx, b.index, ref, blk); err != nil || ok {
			return ok, err
		}
		s, err = b.ReadSeal(ctx, ref)
		if errors.Is(err, objstore.ErrNotFound) {
			return false, nil
		}
	}
	if err != nil {
		return false, err
	}
	return blk < s.Info.Blocks, nil
}

func metaExtent(ctx context.Context, index Index, ref segment.Ref, block int64) (meta.Extent, bool, error) {
	ext, err := index.Extents(ctx, ref.LogID, ref.SegmentID, block, 1)
	if err != nil || len(ext) == 0 || ext[0].BlockNo != block {
		return meta.Extent{}, false, err
	}
	return ext[0], true, nil
}

// LocateBlock implements segment.BlockLocator: the seal lists every
// block's first entry.
func (b *Backend) LocateBlock(ctx context.Context, ref segment.Ref, blocks, entry int64) (int64, error) {
	if !isShared(ref) {
		return b.ObjectBackend.LocateBlock(ctx, ref, blocks, entry)
	}
	s, err := b.ReadSeal(ctx, ref)
	if err != nil {
		return 0, err
	}
	lo := int64(0)
	for i, e := range s.Extents {
		if e.FirstEntry <= entry {
			lo = int64(i)
		}
	}
	return lo, nil
}

// OpenCursor implements segment.Backend.
func (b *Backend) OpenCursor(ref segment.Ref) segment.Cursor {
	if !isShared(ref) {
		return b.ObjectBackend.OpenCursor(ref)
	}
	return &cursor{b: b, ref: ref, limit: -1}
}
