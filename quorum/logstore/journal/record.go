package journal

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/cockroachdb/errors"
)

// Kind is what a record says.
type Kind uint8

// The record kinds.
const (
	// KindBlock: the replica holds block N; Data is the block's bytes.
	KindBlock Kind = 1
	// KindFence: the segment is fenced; the replica takes no more blocks.
	KindFence Kind = 2
	// KindDropped: every block at or below N is in object storage and was
	// dropped; the blocks recorded before at or below N are not needed.
	KindDropped Kind = 3
)

// Record is one entry of a segment's journal.
type Record struct {
	Kind Kind
	N    int64
	Data []byte
}

// Layout. A file is a header, then records.
//
//	header: magic (8) | log id (8) | segment id (8) | CRC32C of the 24 bytes before (4)
//	record: kind (1) | n (8) | data length (4) | CRC32C of the 13 bytes before and the data (4) | data
//
// Integers are little-endian. A record whose CRC does not match, or that
// the file ends inside, ends the journal: it is the tail of a write that a
// crash cut off (a write is synced before the replica answers, so nothing
// after it was acknowledged).
const (
	magic        = "wpjrnl01"
	HeaderSize   = 28
	recordHeader = 17
	// MaxData bounds a record's data: larger than any block.
	MaxData = 1 << 30
)

// ErrCorrupt marks a journal file whose header is not one of ours or names
// another segment.
var ErrCorrupt = errors.New("journal: corrupt file")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// AppendHeader appends the header of segment seg of log to dst.
func AppendHeader(dst []byte, log, seg int64) []byte {
	start := len(dst)
	dst = append(dst, magic...)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(log))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(seg))
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// DecodeHeader returns the log and segment a file's header names.
func DecodeHeader(b []byte) (log, seg int64, err error) {
	if len(b) < HeaderSize || string(b[:len(magic)]) != magic {
		return 0, 0, errors.Wrap(ErrCorrupt, "no journal header")
	}
	if crc32.Checksum(b[:HeaderSize-4], castagnoli) != binary.LittleEndian.Uint32(b[HeaderSize-4:]) {
		return 0, 0, errors.Wrap(ErrCorrupt, "header CRC mismatch")
	}
	return int64(binary.LittleEndian.Uint64(b[8:])), int64(binary.LittleEndian.Uint64(b[16:])), nil
}

// appendRecordHeader appends the header of r (whose data follows it) to dst.
func appendRecordHeader(dst []byte, r Record) []byte {
	start := len(dst)
	dst = append(dst, byte(r.Kind))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(r.N))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(r.Data)))
	crc := crc32.Checksum(dst[start:], castagnoli)
	crc = crc32.Update(crc, castagnoli, r.Data)
	return binary.LittleEndian.AppendUint32(dst, crc)
}

// AppendRecord appends r, encoded, to dst.
func AppendRecord(dst []byte, r Record) []byte {
	return append(appendRecordHeader(dst, r), r.Data...)
}

// DecodeRecords decodes the records of b (a file's bytes after its
// header) and returns them with the length of the valid prefix: a record
// cut off or failing its CRC ends the journal there. Records' Data share
// b.
func DecodeRecords(b []byte) ([]Record, int) {
	var out []Record
	off := 0
	for len(b)-off >= recordHeader {
		h := b[off : off+recordHeader]
		kind := Kind(h[0])
		n := int64(binary.LittleEndian.Uint64(h[1:]))
		size := int(binary.LittleEndian.Uint32(h[9:]))
		if size > MaxData || size > len(b)-off-recordHeader || kind < KindBlock || kind > KindDropped {
			break
		}
		data := b[off+recordHeader : off+recordHeader+size]
		crc := crc32.Checksum(h[:13], castagnoli)
		if crc32.Update(crc, castagnoli, data) != binary.LittleEndian.Uint32(h[13:]) {
			break
		}
		out = append(out, Record{Kind: kind, N: n, Data: data[:size:size]})
		off += recordHeader + size
	}
	return out, off
}
