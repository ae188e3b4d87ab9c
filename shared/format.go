package shared

import (
	"encoding/binary"
	"hash/crc32"
	"sort"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/segment"
)

// The shared object and seal record formats (docs/shared-objects.md).
//
// Shared object, version 1:
//
//	blocks, grouped by (log, segment) in block order
//	index:   "WPXI" | version u16 | count u32 | count x entry | CRC32C u32 of all before it
//	entry:   log i64 | segment i64 | block i64 | offset i64 | length i64 |
//	         first entry i64 | entry count u32 | CRC32C of the block's bytes u32
//	trailer: index offset u64 | index length u32 | "WPXO"
//
// Seal record of a shared segment, version 1:
//
//	"WPXS" | version u16 | log i64 | segment i64 | epoch i64 | last entry i64 |
//	blocks i64 | bytes i64 | names u32 | names x (len u16, bytes) |
//	blocks x (name index u32, offset i64, length i64, first entry i64, count u32, CRC32C u32) |
//	CRC32C u32 of all before it
//
// Integers are little endian.

const formatVersion = 1

var (
	indexMagic   = [4]byte{'W', 'P', 'X', 'I'}
	trailerMagic = [4]byte{'W', 'P', 'X', 'O'}
	sealMagic    = [4]byte{'W', 'P', 'X', 'S'}
	castagnoli   = crc32.MakeTable(crc32.Castagnoli)
)

const (
	indexHeaderSize = 4 + 2 + 4
	indexEntrySize  = 6*8 + 4 + 4
	trailerSize     = 8 + 4 + 4
	sealHeaderSize  = 4 + 2 + 6*8 + 4
	sealEntrySize   = 4 + 3*8 + 4 + 4
	maxNameLen      = 1<<16 - 1
)

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Piece is one block to pack into a shared object.
type Piece struct {
	LogID, SegmentID, BlockNo int64
	FirstEntry                int64
	Count                     uint32
	Data                      []byte
}

// EncodeObject packs pieces into a shared object named object: it sorts
// them by (log, segment, block), so that one log's run of blocks is one
// contiguous byte range, and returns the object's bytes and the extent of
// each piece, in the sorted order.
func EncodeObject(object string, pieces []Piece) ([]byte, []meta.Extent) {
	sorted := make([]Piece, len(pieces))
	copy(sorted, pieces)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.LogID != b.LogID {
			return a.LogID < b.LogID
		}
		if a.SegmentID != b.SegmentID {
			return a.SegmentID < b.SegmentID
		}
		return a.BlockNo < b.BlockNo
	})
	size := indexHeaderSize + len(sorted)*indexEntrySize + 4 + trailerSize
	for _, p := range sorted {
		size += len(p.Data)
	}
	out := make([]byte, 0, size)
	exts := make([]meta.Extent, len(sorted))
	for i, p := range sorted {
		exts[i] = meta.Extent{LogID: p.LogID, SegmentID: p.SegmentID, BlockNo: p.BlockNo, Object: object,
			Offset: int64(len(out)), Length: int64(len(p.Data)), FirstEntry: p.FirstEntry, Count: p.Count,
			CRC: crc32c(p.Data)}
		out = append(out, p.Data...)
	}
	indexAt := len(out)
	out = append(out, indexMagic[:]...)
	out = binary.LittleEndian.AppendUint16(out, formatVersion)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(exts)))
	for _, e := range exts {
		out = appendI64s(out, e.LogID, e.SegmentID, e.BlockNo, e.Offset, e.Length, e.FirstEntry)
		out = binary.LittleEndian.AppendUint32(out, e.Count)
		out = binary.LittleEndian.AppendUint32(out, e.CRC)
	}
	out = binary.LittleEndian.AppendUint32(out, crc32c(out[indexAt:]))
	indexLen := len(out) - indexAt
	out = binary.LittleEndian.AppendUint64(out, uint64(indexAt))
	out = binary.LittleEndian.AppendUint32(out, uint32(indexLen))
	out = append(out, trailerMagic[:]...)
	return out, exts
}

func appendI64s(b []byte, vs ...int64) []byte {
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, uint64(v))
	}
	return b
}

func corrupt(what string, format string, args ...any) error {
	return errors.Wrapf(walerr.ErrCorrupt, "%s: %s", what, errors.Newf(format, args...))
}

// DecodeTrailer returns where a shared object of size bytes keeps its
// index, from the object's last TrailerSize bytes.
func DecodeTrailer(tail []byte, size int64) (indexAt, indexLen int64, err error) {
	if len(tail) != trailerSize {
		return 0, 0, corrupt("shared object trailer", "%d bytes, want %d", len(tail), trailerSize)
	}
	if [4]byte(tail[12:16]) != trailerMagic {
		return 0, 0, corrupt("shared object trailer", "bad magic %q", tail[12:16])
	}
	indexAt = int64(binary.LittleEndian.Uint64(tail))
	indexLen = int64(binary.LittleEndian.Uint32(tail[8:]))
	if indexAt < 0 || indexLen < indexHeaderSize+4 || indexAt+indexLen != size-trailerSize {
		return 0, 0, corrupt("shared object trailer", "index at %d+%d in an object of %d bytes", indexAt, indexLen, size)
	}
	return indexAt, indexLen, nil
}

// TrailerSize is the size of a shared object's trailer.
const TrailerSize = trailerSize

// DecodeIndex decodes a shared object's index, as located by
// DecodeTrailer at indexAt, and checks that every extent lies before it.
func DecodeIndex(object string, index []byte, indexAt int64) ([]meta.Extent, error) {
	what := "shared object " + object + " index"
	if len(index) < indexHeaderSize+4 {
		return nil, corrupt(what, "%d bytes", len(index))
	}
	body, sum := index[:len(index)-4], binary.LittleEndian.Uint32(index[len(index)-4:])
	if crc32c(body) != sum {
		return nil, corrupt(what, "CRC32C mismatch")
	}
	if [4]byte(body[:4]) != indexMagic {
		return nil, corrupt(what, "bad magic %q", body[:4])
	}
	if v := binary.LittleEndian.Uint16(body[4:]); v != formatVersion {
		return nil, corrupt(what, "version %d, this build reads %d", v, formatVersion)
	}
	n := int64(binary.LittleEndian.Uint32(body[6:]))
	if int64(len(body)-indexHeaderSize) != n*indexEntrySize {
		return nil, corrupt(what, "%d entries in %d bytes", n, len(body))
	}
	exts := make([]meta.Extent, n)
	p := body[indexHeaderSize:]
	for i := range exts {
		e := meta.Extent{Object: object,
			LogID: i64(p, 0), SegmentID: i64(p, 1), BlockNo: i64(p, 2),
			Offset: i64(p, 3), Length: i64(p, 4), FirstEntry: i64(p, 5),
			Count: binary.LittleEndian.Uint32(p[48:]), CRC: binary.LittleEndian.Uint32(p[52:])}
		p = p[indexEntrySize:]
		if err := e.Valid(); err != nil || e.LogID < 0 || e.SegmentID < 0 || e.BlockNo < 0 || e.Offset+e.Length > indexAt {
			return nil, corrupt(what, "entry %d: log %d segment %d block %d at %d+%d", i, e.LogID, e.SegmentID, e.BlockNo, e.Offset, e.Length)
		}
		exts[i] = e
	}
	return exts, nil
}

func i64(p []byte, i int) int64 { return int64(binary.LittleEndian.Uint64(p[8*i:])) }

// Seal is a shared segment's seal record: its end and the extent of each
// of its blocks 0 .. Info.Blocks-1.
type Seal struct {
	LogID, SegmentID, Epoch int64
	Info                    segment.SealInfo
	Extents                 []meta.Extent
}

// EncodeSeal encodes a seal record. It is deterministic, so a retried or
// concurrent recovery writes identical bytes.
func EncodeSeal(s Seal) ([]byte, error) {
	if int64(len(s.Extents)) != s.Info.Blocks {
		return nil, errors.AssertionFailedf("seal of %d blocks with %d extents", s.Info.Blocks, len(s.Extents))
	}
	var names []string
	index := map[string]uint32{}
	for i, e := range s.Extents {
		if e.BlockNo != int64(i) || e.LogID != s.LogID || e.SegmentID != s.SegmentID {
			return nil, errors.AssertionFailedf("seal of log %d segment %d: extent %d is log %d segment %d block %d",
				s.LogID, s.SegmentID, i, e.LogID, e.SegmentID, e.BlockNo)
		}
		if len(e.Object) > maxNameLen {
			return nil, errors.AssertionFailedf("object name of %d bytes", len(e.Object))
		}
		if _, ok := index[e.Object]; !ok {
			index[e.Object] = uint32(len(names))
			names = append(names, e.Object)
		}
	}
	out := append([]byte(nil), sealMagic[:]...)
	out = binary.LittleEndian.AppendUint16(out, formatVersion)
	out = appendI64s(out, s.LogID, s.SegmentID, s.Epoch, s.Info.LastEntry, s.Info.Blocks, s.Info.Bytes)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(names)))
	for _, n := range names {
		out = binary.LittleEndian.AppendUint16(out, uint16(len(n)))
		out = append(out, n...)
	}
	for _, e := range s.Extents {
		out = binary.LittleEndian.AppendUint32(out, index[e.Object])
		out = appendI64s(out, e.Offset, e.Length, e.FirstEntry)
		out = binary.LittleEndian.AppendUint32(out, e.Count)
		out = binary.LittleEndian.AppendUint32(out, e.CRC)
	}
	return binary.LittleEndian.AppendUint32(out, crc32c(out)), nil
}

// DecodeSeal decodes a seal record and checks that its extents are
// blocks 0 .. Blocks-1 with contiguous entries ending at LastEntry.
func DecodeSeal(data []byte) (Seal, error) {
	const what = "shared segment seal record"
	if len(data) < sealHeaderSize+4 {
		return Seal{}, corrupt(what, "%d bytes", len(data))
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32c(body) != sum {
		return Seal{}, corrupt(what, "CRC32C mismatch")
	}
	if [4]byte(body[:4]) != sealMagic {
		return Seal{}, corrupt(what, "bad magic %q", body[:4])
	}
	if v := binary.LittleEndian.Uint16(body[4:]); v != formatVersion {
		return Seal{}, corrupt(what, "version %d, this build reads %d", v, formatVersion)
	}
	h := body[6:]
	s := Seal{LogID: i64(h, 0), SegmentID: i64(h, 1), Epoch: i64(h, 2),
		Info: segment.SealInfo{LastEntry: i64(h, 3), Blocks: i64(h, 4), Bytes: i64(h, 5)}}
	nNames := int(binary.LittleEndian.Uint32(h[48:]))
	p := h[52:]
	if s.Info.Blocks < 0 || s.Info.LastEntry < -1 || s.Info.Bytes < 0 || nNames < 0 || nNames > len(p)/2 {
		return Seal{}, corrupt(what, "blocks %d, last entry %d, bytes %d, names %d", s.Info.Blocks, s.Info.LastEntry, s.Info.Bytes, nNames)
	}
	names := make([]string, nNames)
	for i := range names {
		if len(p) < 2 {
			return Seal{}, corrupt(what, "name %d truncated", i)
		}
		n := int(binary.LittleEndian.Uint16(p))
		if len(p) < 2+n || n == 0 {
			return Seal{}, corrupt(what, "name %d of %d bytes", i, n)
		}
		names[i], p = string(p[2:2+n]), p[2+n:]
	}
	if int64(len(p)) != s.Info.Blocks*sealEntrySize {
		return Seal{}, corrupt(what, "%d blocks in %d bytes", s.Info.Blocks, len(p))
	}
	s.Extents = make([]meta.Extent, s.Info.Blocks)
	next, bytes := int64(0), int64(0)
	for i := range s.Extents {
		ni := binary.LittleEndian.Uint32(p)
		if int(ni) >= len(names) {
			return Seal{}, corrupt(what, "block %d names object %d of %d", i, ni, len(names))
		}
		e := meta.Extent{LogID: s.LogID, SegmentID: s.SegmentID, BlockNo: int64(i), Object: names[ni],
			Offset: i64(p[4:], 0), Length: i64(p[4:], 1), FirstEntry: i64(p[4:], 2),
			Count: binary.LittleEndian.Uint32(p[28:]), CRC: binary.LittleEndian.Uint32(p[32:])}
		p = p[sealEntrySize:]
		if err := e.Valid(); err != nil || e.FirstEntry != next {
			return Seal{}, corrupt(what, "block %d: entries %d+%d after entry %d", i, e.FirstEntry, e.Count, next-1)
		}
		next += int64(e.Count)
		bytes += e.Length
		s.Extents[i] = e
	}
	if next-1 != s.Info.LastEntry || bytes != s.Info.Bytes {
		return Seal{}, corrupt(what, "blocks end at entry %d and %d bytes, the record says %d and %d",
			next-1, bytes, s.Info.LastEntry, s.Info.Bytes)
	}
	return s, nil
}

// Checksum is the CRC32C an extent records for a block's bytes.
func Checksum(b []byte) uint32 { return crc32c(b) }
