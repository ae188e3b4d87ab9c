package segment

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/cockroachdb/errors"
)

// Seal record format, version 1. Little-endian:
//
//	magic "WPSL" | version u8 (1) | reserved u8 (0) | reserved u16 (0) |
//	logID i64 | segmentID i64 | epoch i64 | lastEntry i64 | entryCount i64 |
//	totalBytes i64 | fenceBlockNo i64 | blockCount i64 | objectCount u32 |
//	objectCount x { uvarint(len(name)) | name | firstEntry i64 | count u32 | size i64 } |
//	CRC32C u32 of all the bytes before it
const (
	sealVersion    = 1
	sealFixedSize  = 4 + 1 + 1 + 2 + 8*8 + 4
	sealMinObject  = 1 + 1 + 8 + 4 + 8 // shortest possible encoded object
	maxSealNameLen = 1024
)

var sealMagic = [4]byte{'W', 'P', 'S', 'L'}

// SealObject is one object of a sealed segment, in the seal record's index.
type SealObject struct {
	// Name is the object's key relative to the segment prefix, for example
	// BlockName(7). Non-empty, at most 1024 bytes, without '/'.
	Name string
	// FirstEntry is the id of the object's first entry.
	FirstEntry int64
	// Count is the number of entries in the object (at least 1).
	Count uint32
	// Size is the object's size in bytes (at least 1).
	Size int64
}

// SealRecord is the content of a segment's seal record: where the segment
// ends and which objects hold its entries, so that readers and recovery
// need not probe for blocks.
type SealRecord struct {
	LogID     int64
	SegmentID int64
	// Epoch is the epoch of the writer whose blocks the segment holds.
	Epoch int64
	// LastEntry is the segment's last entry id, -1 when it holds none.
	LastEntry int64
	// EntryCount is the number of entries: the sum of the objects' counts,
	// or LastEntry+1 in a record without an index (see BlockCount).
	EntryCount int64
	// TotalBytes is the total payload size of the entries (not counting
	// framing), for statistics.
	TotalBytes int64
	// FenceBlockNo is the block slot recovery fenced, or -1 when the
	// segment was sealed by its own writer. Block objects listed in
	// Objects all have lower numbers.
	FenceBlockNo int64
	// BlockCount is the number of block objects (b-0 .. b-(BlockCount-1))
	// of a record that carries no index (Objects empty): recovery seals a
	// segment after reading only its tail, so it knows where the segment
	// ends but not where each block starts. 0 when Objects is set.
	BlockCount int64
	// Objects lists the objects holding the entries, in entry order. Their
	// entry ranges are contiguous and their names strictly ascending.
	Objects []SealObject
}

func corruptSeal(off int64, format string, args ...any) *CorruptError {
	return &CorruptError{Object: "seal record", Reason: fmt.Sprintf(format, args...), Offset: off}
}

// validate checks the record's internal consistency and returns the reason
// it is inconsistent, or "".
func (r *SealRecord) validate() string {
	switch {
	case r.LogID < 0 || r.SegmentID < 0 || r.Epoch < 0:
		return fmt.Sprintf("negative id (log %d, segment %d, epoch %d)", r.LogID, r.SegmentID, r.Epoch)
	case r.TotalBytes < 0:
		return fmt.Sprintf("negative total bytes %d", r.TotalBytes)
	case r.FenceBlockNo < -1:
		return fmt.Sprintf("fence block %d (want -1 or a block number)", r.FenceBlockNo)
	case uint64(len(r.Objects)) > math.MaxUint32:
		return fmt.Sprintf("%d objects", len(r.Objects))
	}
	if r.BlockCount < 0 || (r.BlockCount > 0 && len(r.Objects) > 0) {
		return fmt.Sprintf("block count %d with %d indexed objects (want >= 0, and 0 with an index)", r.BlockCount, len(r.Objects))
	}
	if len(r.Objects) == 0 && r.BlockCount > 0 {
		// No index: entries 0..LastEntry in BlockCount blocks.
		if r.LastEntry < 0 || r.EntryCount != r.LastEntry+1 || r.EntryCount < r.BlockCount {
			return fmt.Sprintf("%d blocks but entry count %d and last entry %d", r.BlockCount, r.EntryCount, r.LastEntry)
		}
		if r.FenceBlockNo >= 0 && r.BlockCount > r.FenceBlockNo {
			return fmt.Sprintf("%d blocks reach the fence at block %d", r.BlockCount, r.FenceBlockNo)
		}
		return ""
	}
	if len(r.Objects) == 0 {
		if r.EntryCount != 0 || r.LastEntry != -1 {
			return fmt.Sprintf("no objects but entry count %d and last entry %d (want 0 and -1)", r.EntryCount, r.LastEntry)
		}
		return ""
	}
	next := r.Objects[0].FirstEntry
	if next < 0 {
		return fmt.Sprintf("object %q: negative first entry %d", r.Objects[0].Name, next)
	}
	for i, o := range r.Objects {
		switch {
		case o.Name == "" || len(o.Name) > maxSealNameLen || strings.ContainsRune(o.Name, '/'):
			return fmt.Sprintf("object %d: invalid name %q", i, o.Name)
		case i > 0 && o.Name <= r.Objects[i-1].Name:
			return fmt.Sprintf("object %d: name %q does not sort after %q", i, o.Name, r.Objects[i-1].Name)
		case o.FirstEntry != next:
			return fmt.Sprintf("object %q: first entry %d, want %d (index not contiguous)", o.Name, o.FirstEntry, next)
		case o.Count == 0:
			return fmt.Sprintf("object %q: no entries", o.Name)
		case o.Size <= 0:
			return fmt.Sprintf("object %q: size %d", o.Name, o.Size)
		case next > math.MaxInt64-int64(o.Count):
			return fmt.Sprintf("object %q: entry ids overflow", o.Name)
		}
		if r.FenceBlockNo >= 0 {
			if b, ok := ParseBlockName(o.Name); ok && b >= r.FenceBlockNo {
				return fmt.Sprintf("object %q is at or above the fence at block %d", o.Name, r.FenceBlockNo)
			}
		}
		next += int64(o.Count)
	}
	if count := next - r.Objects[0].FirstEntry; r.EntryCount != count {
		return fmt.Sprintf("entry count %d, but the objects hold %d", r.EntryCount, count)
	}
	if r.LastEntry != next-1 {
		return fmt.Sprintf("last entry %d, but the objects end at %d", r.LastEntry, next-1)
	}
	return ""
}

// EncodeSeal returns the encoded seal record, a new slice. It fails (without
// wrapping ErrCorrupt) when r is inconsistent in a way DecodeSeal would
// reject. Safe for concurrent use; r is not retained.
func EncodeSeal(r SealRecord) ([]byte, error) {
	if reason := r.validate(); reason != "" {
		return nil, errors.Newf("segment: invalid seal record for log %d segment %d: %s", r.LogID, r.SegmentID, reason)
	}
	size := sealFixedSize + 4
	for _, o := range r.Objects {
		size += uvarintLen(uint64(len(o.Name))) + len(o.Name) + 8 + 4 + 8
	}
	b := make([]byte, 0, size)
	b = append(b, sealMagic[:]...)
	b = append(b, sealVersion, 0, 0, 0)
	for _, v := range []int64{r.LogID, r.SegmentID, r.Epoch, r.LastEntry, r.EntryCount, r.TotalBytes, r.FenceBlockNo, r.BlockCount} {
		b = binary.LittleEndian.AppendUint64(b, uint64(v))
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.Objects)))
	for _, o := range r.Objects {
		b = binary.AppendUvarint(b, uint64(len(o.Name)))
		b = append(b, o.Name...)
		b = binary.LittleEndian.AppendUint64(b, uint64(o.FirstEntry))
		b = binary.LittleEndian.AppendUint32(b, o.Count)
		b = binary.LittleEndian.AppendUint64(b, uint64(o.Size))
	}
	return binary.LittleEndian.AppendUint32(b, crc32c(b)), nil
}

// DecodeSeal validates an encoded seal record (magic, version, CRC,
// structure, no trailing bytes, and the consistency EncodeSeal requires)
// and returns it. The result shares no memory with data. Errors wrap
// ErrCorrupt. Safe for concurrent use.
func DecodeSeal(data []byte) (SealRecord, error) {
	if len(data) < sealFixedSize+4 {
		return SealRecord{}, corruptSeal(0, "truncated: %d bytes, need at least %d", len(data), sealFixedSize+4)
	}
	if [4]byte(data[:4]) != sealMagic {
		return SealRecord{}, corruptSeal(0, "bad magic %q, want %q", data[:4], sealMagic[:])
	}
	if data[4] != sealVersion {
		return SealRecord{}, corruptSeal(4, "unsupported version %d (this build reads version %d)", data[4], sealVersion)
	}
	end := len(data) - 4
	if stored, computed := binary.LittleEndian.Uint32(data[end:]), crc32c(data[:end]); stored != computed {
		return SealRecord{}, corruptSeal(int64(end), "CRC mismatch: stored %#08x, computed %#08x", stored, computed)
	}
	if data[5] != 0 || data[6] != 0 || data[7] != 0 {
		return SealRecord{}, corruptSeal(5, "reserved bytes are not 0")
	}
	i64 := func(off int) int64 { return int64(binary.LittleEndian.Uint64(data[off:])) }
	r := SealRecord{
		LogID: i64(8), SegmentID: i64(16), Epoch: i64(24), LastEntry: i64(32),
		EntryCount: i64(40), TotalBytes: i64(48), FenceBlockNo: i64(56), BlockCount: i64(64),
	}
	n := binary.LittleEndian.Uint32(data[72:])
	pos := sealFixedSize
	if uint64(n) > uint64(end-pos)/sealMinObject {
		return SealRecord{}, corruptSeal(72, "%d objects cannot fit in %d bytes", n, end-pos)
	}
	if n > 0 {
		r.Objects = make([]SealObject, 0, n)
	}
	for i := uint32(0); i < n; i++ {
		if end-pos < sealMinObject {
			return SealRecord{}, corruptSeal(int64(pos), "object %d of %d overruns the record", i, n)
		}
		l, k := binary.Uvarint(data[pos:end])
		switch {
		case k <= 0:
			return SealRecord{}, corruptSeal(int64(pos), "object %d: malformed name length", i)
		case k != uvarintLen(l):
			return SealRecord{}, corruptSeal(int64(pos), "object %d: name length not minimally encoded", i)
		case l > uint64(end-pos-k) || uint64(end-pos-k)-l < 20:
			return SealRecord{}, corruptSeal(int64(pos), "object %d: name length %d overruns the record", i, l)
		}
		pos += k
		o := SealObject{Name: string(data[pos : pos+int(l)])}
		pos += int(l)
		o.FirstEntry = i64(pos)
		o.Count = binary.LittleEndian.Uint32(data[pos+8:])
		o.Size = i64(pos + 12)
		pos += 20
		r.Objects = append(r.Objects, o)
	}
	if pos != end {
		return SealRecord{}, corruptSeal(int64(pos), "%d bytes after the last object", end-pos)
	}
	if reason := r.validate(); reason != "" {
		return SealRecord{}, corruptSeal(-1, "%s", reason)
	}
	return r, nil
}
