package segcheck

import (
	"context"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/shared"
)

// CheckShared checks a segment whose blocks live in shared objects
// (docs/shared-objects.md): its seal record, prefix + shared.SealName, and
// every block the record lists, read by range from its shared object and
// checked against the record's length and CRC32C and its own. An open
// shared segment's blocks are listed in etcd, not in storage: the check
// reports that, and what storage holds of the segment otherwise.
func CheckShared(ctx context.Context, store objstore.Store, prefix string, ex Expect, o Options) (*Report, error) {
	r := &Report{Expect: ex}
	sealKey := prefix + shared.SealName
	sealLoc := Location{Key: sealKey, Offset: -1}
	data, err := store.Get(ctx, sealKey)
	switch {
	case errors.Is(err, objstore.ErrNotFound) && !ex.Sealed:
		r.note("the segment is open and its blocks are in shared objects: etcd lists them until it is sealed; " +
			"check it again once sealed")
		r.chain(0)
		return r, nil
	case errors.Is(err, objstore.ErrNotFound):
		r.problem(-1, sealLoc, "seal record %s is missing but etcd says the segment is sealed", sealKey)
		r.chain(0)
		return r, nil
	case err != nil:
		return nil, err
	}
	r.SealLoc = sealLoc
	seal, err := shared.DecodeSeal(data)
	if err != nil {
		r.problem(-1, sealLoc, "seal record: %s", describeErr(err))
		r.chain(0)
		return r, nil
	}
	switch {
	case seal.LogID != ex.LogID || seal.SegmentID != ex.SegmentID:
		r.problem(-1, sealLoc, "seal record belongs to log %d segment %d", seal.LogID, seal.SegmentID)
	case !ex.Sealed:
		r.note("sealed in storage but open in etcd: recovery will finish sealing it")
	case seal.Info.Blocks != ex.Blocks || seal.Info.LastEntry != ex.LastEntry:
		r.problem(-1, sealLoc, "seal record says %d blocks ending at entry %d, etcd says %d blocks ending at entry %d",
			seal.Info.Blocks, seal.Info.LastEntry, ex.Blocks, ex.LastEntry)
	}
	for _, x := range seal.Extents {
		b := Block{No: x.BlockNo, Loc: Location{Key: x.Object, Offset: x.Offset}, Size: x.Length}
		data, err := store.GetRange(ctx, x.Object, x.Offset, x.Length)
		switch {
		case errors.Is(err, objstore.ErrNotFound):
			r.problem(x.BlockNo, b.Loc, "block %d: shared object %s is missing", x.BlockNo, x.Object)
			continue
		case err != nil:
			return nil, err
		case int64(len(data)) != x.Length:
			b.Err = errors.Newf("%d bytes where the seal record says %d", len(data), x.Length)
		}
		if b.Err == nil {
			b.Header, b.HeaderOK = decodeInto(&b, data, o)
			if b.Err == nil && shared.Checksum(data) != x.CRC {
				b.Err = errors.New("CRC32C differs from the seal record's")
			}
		}
		if b.Err != nil {
			r.problem(x.BlockNo, b.Loc, "block %d: %s", x.BlockNo, describeErr(b.Err))
		}
		r.Blocks = append(r.Blocks, b)
	}
	r.chain(seal.Info.Blocks)
	return r, nil
}

// decodeInto decodes a block into b (entries, sizes, error) and returns its
// header when that could be read.
func decodeInto(b *Block, data []byte, o Options) (segment.BlockHeader, bool) {
	h, entries, err := segment.DecodeBlock(data)
	if err != nil {
		b.Err = err
		hh, herr := segment.DecodeBlockHeader(data)
		return hh, herr == nil
	}
	for _, e := range entries {
		b.EntrySize += int64(len(e))
	}
	if o.KeepEntries {
		b.Entries = entries
	}
	return h, true
}
