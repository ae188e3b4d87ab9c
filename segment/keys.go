package segment

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// Object key layout of a segment in object storage:
//
//	<root>/<logID>/<segmentID, 19 digits>/b-<blockNo, 19 digits>   a block (or a fence)
//	<root>/<logID>/<segmentID, 19 digits>/seal                     the seal record
//
// logID is plain decimal; segment and block numbers are zero-padded to 19
// digits (the width of the largest int64), so within a log the segments,
// and within a segment the blocks, list in numeric order, and "seal" lists
// after every block. An empty root means no prefix. All ids must be
// non-negative. The functions are pure and safe for concurrent use.

const (
	// SealName is the name of a segment's seal record within its prefix.
	SealName = "seal"
	// blockNamePrefix starts the name of every block object.
	blockNamePrefix = "b-"
	idDigits        = 19
)

// joinRoot returns root with surrounding slashes removed and one slash
// appended, or "" for an empty root.
func joinRoot(root string) string {
	root = strings.Trim(root, "/")
	if root == "" {
		return ""
	}
	return root + "/"
}

func padID(id int64) string { return fmt.Sprintf("%0*d", idDigits, id) }

// LogPrefix returns the prefix of every object of log logID, ending in a
// slash: "<root>/<logID>/".
func LogPrefix(root string, logID int64) string {
	return joinRoot(root) + strconv.FormatInt(logID, 10) + "/"
}

// SegmentPrefix returns the prefix of every object of one segment, ending
// in a slash: "<root>/<logID>/<segmentID padded>/". Listing it returns the
// segment's blocks in block order, then its seal record.
func SegmentPrefix(root string, logID, segmentID int64) string {
	return LogPrefix(root, logID) + padID(segmentID) + "/"
}

// BlockName returns the name of block blockNo within its segment's prefix:
// "b-" and 19 digits. Seal records list objects by this name.
func BlockName(blockNo int64) string { return blockNamePrefix + padID(blockNo) }

// BlockKey returns the key of block blockNo of a segment.
func BlockKey(root string, logID, segmentID, blockNo int64) string {
	return SegmentPrefix(root, logID, segmentID) + BlockName(blockNo)
}

// SealKey returns the key of a segment's seal record.
func SealKey(root string, logID, segmentID int64) string {
	return SegmentPrefix(root, logID, segmentID) + SealName
}

// parsePadded parses exactly 19 decimal digits.
func parsePadded(s string) (int64, bool) {
	if len(s) != idDigits {
		return 0, false
	}
	return parseDigits(s)
}

// parseDigits parses a non-empty run of ASCII digits into a non-negative
// int64, rejecting signs, spaces and overflow.
func parseDigits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}

// ParseBlockName parses a block name made by BlockName.
func ParseBlockName(name string) (blockNo int64, ok bool) {
	digits, found := strings.CutPrefix(name, blockNamePrefix)
	if !found {
		return 0, false
	}
	return parsePadded(digits)
}

// ParseSegmentKey splits a key made by BlockKey, SealKey or SegmentPrefix
// plus a name into its log, segment and name (the part after the segment
// prefix, for example "b-…" or "seal"). The root is whatever precedes the
// last three path elements and is not checked. ok is false when the key
// does not have that shape (a log id with a sign or leading zeros, a
// segment id that is not 19 digits, an empty name).
func ParseSegmentKey(key string) (logID, segmentID int64, name string, ok bool) {
	i := strings.LastIndexByte(key, '/')
	if i < 0 {
		return 0, 0, "", false
	}
	name, rest := key[i+1:], key[:i]
	i = strings.LastIndexByte(rest, '/')
	if i < 0 {
		return 0, 0, "", false
	}
	segStr, rest := rest[i+1:], rest[:i]
	logStr := rest
	if i = strings.LastIndexByte(rest, '/'); i >= 0 {
		logStr = rest[i+1:]
	}
	if name == "" || (len(logStr) > 1 && logStr[0] == '0') {
		return 0, 0, "", false
	}
	if logID, ok = parseDigits(logStr); !ok {
		return 0, 0, "", false
	}
	if segmentID, ok = parsePadded(segStr); !ok {
		return 0, 0, "", false
	}
	return logID, segmentID, name, true
}

// ParseBlockKey parses a key made by BlockKey (with any root).
func ParseBlockKey(key string) (logID, segmentID, blockNo int64, ok bool) {
	logID, segmentID, name, ok := ParseSegmentKey(key)
	if !ok {
		return 0, 0, 0, false
	}
	if blockNo, ok = ParseBlockName(name); !ok {
		return 0, 0, 0, false
	}
	return logID, segmentID, blockNo, true
}

// Fence object, written create-only into a block slot by recovery so that
// a zombie writer's create-only put of that block fails. Little-endian:
//
//	magic "WPFN" | version u8 (1) | reserved 3 bytes (0) |
//	logID i64 | segmentID i64 | blockNo i64 | epoch i64 | CRC32C u32 of the bytes before
const (
	// FenceSize is the encoded size of a fence object. It is smaller than
	// any block (at least BlockHeaderSize+BlockTrailerSize+1 bytes), so a
	// listing tells fences from blocks by size alone.
	FenceSize    = 44
	fenceVersion = 1
)

var fenceMagic = [4]byte{'W', 'P', 'F', 'N'}

// FenceInfo identifies the block slot a fence occupies and the epoch of the
// writer (recovery) that placed it.
type FenceInfo struct {
	LogID     int64
	SegmentID int64
	BlockNo   int64
	Epoch     int64
}

// EncodeFence returns the fence object for f, a new slice of FenceSize
// bytes. Any field values are accepted (a local-file fence may use BlockNo
// -1) and DecodeFence returns them unchanged.
func EncodeFence(f FenceInfo) []byte {
	b := make([]byte, FenceSize)
	copy(b, fenceMagic[:])
	b[4] = fenceVersion
	binary.LittleEndian.PutUint64(b[8:], uint64(f.LogID))
	binary.LittleEndian.PutUint64(b[16:], uint64(f.SegmentID))
	binary.LittleEndian.PutUint64(b[24:], uint64(f.BlockNo))
	binary.LittleEndian.PutUint64(b[32:], uint64(f.Epoch))
	binary.LittleEndian.PutUint32(b[40:], crc32c(b[:40]))
	return b
}

// IsFence reports whether data starts with the fence magic: a cheap check
// to tell a fence from a block (whose magic differs) in a block slot. Use
// DecodeFence to validate it.
func IsFence(data []byte) bool {
	return len(data) >= len(fenceMagic) && [4]byte(data[:4]) == fenceMagic
}

// DecodeFence validates a fence object and returns its content. Errors wrap
// ErrCorrupt.
func DecodeFence(data []byte) (FenceInfo, error) {
	fail := func(off int64, format string, args ...any) (FenceInfo, error) {
		return FenceInfo{}, &CorruptError{Object: "fence", Reason: fmt.Sprintf(format, args...), Offset: off}
	}
	switch {
	case len(data) != FenceSize:
		return fail(0, "size %d, want %d", len(data), FenceSize)
	case !IsFence(data):
		return fail(0, "bad magic %q, want %q", data[:4], fenceMagic[:])
	case data[4] != fenceVersion:
		return fail(4, "unsupported version %d", data[4])
	case data[5] != 0 || data[6] != 0 || data[7] != 0:
		return fail(5, "reserved bytes are not 0")
	}
	if stored, computed := binary.LittleEndian.Uint32(data[40:]), crc32c(data[:40]); stored != computed {
		return fail(40, "CRC mismatch: stored %#08x, computed %#08x", stored, computed)
	}
	return FenceInfo{
		LogID:     int64(binary.LittleEndian.Uint64(data[8:])),
		SegmentID: int64(binary.LittleEndian.Uint64(data[16:])),
		BlockNo:   int64(binary.LittleEndian.Uint64(data[24:])),
		Epoch:     int64(binary.LittleEndian.Uint64(data[32:])),
	}, nil
}
