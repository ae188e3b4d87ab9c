package segment

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"sync"

	"github.com/cockroachdb/errors"
	"github.com/klauspost/compress/zstd"

	"github.com/woodpecker-wal/woodpecker/internal/walerr"
)

// Block format, version 1. All integers are little-endian.
//
//	offset size field
//	     0    4 magic "WPBK"
//	     4    1 version (1)
//	     5    1 flags (bit 0: entries section is zstd-compressed; others 0)
//	     6    2 reserved (0)
//	     8    8 logID       (>= 0)
//	    16    8 segmentID   (>= 0)
//	    24    8 firstEntry  (>= 0)
//	    32    8 epoch       (>= 0)
//	    40    8 blockNo     (>= 0)
//	    48    4 count       (number of entries, >= 1)
//	    52    4 bodyLen     (length of the entries section as stored)
//	    56    4 rawLen      (length of the entries section uncompressed)
//	    60    4 headerCRC   (CRC32C of bytes 0..59)
//	    64    bodyLen bytes: entries section
//	     .    4 bodyCRC     (CRC32C of the entries section as stored)
//
// The uncompressed entries section is, for each entry, uvarint(len) (minimal
// encoding) followed by the entry's bytes. Uncompressed blocks have
// bodyLen == rawLen; compressed blocks have bodyLen < rawLen (the encoder
// stores a block uncompressed when zstd does not make it smaller), so the
// flag never costs space.
const (
	// BlockHeaderSize is the size of the fixed block header. Reading the
	// first BlockHeaderSize bytes of a block is enough for
	// DecodeBlockHeader.
	BlockHeaderSize = 64
	// BlockTrailerSize is the size of the trailing body CRC.
	BlockTrailerSize = 4
	// BlockVersion is the block format version this package writes and
	// reads.
	BlockVersion = 1
	// MaxBlockRawLen bounds the uncompressed entries section of a block
	// (256 MiB). EncodeBlock refuses larger blocks and DecodeBlock rejects
	// headers that claim more.
	MaxBlockRawLen = 256 << 20
)

// Block header flags.
const (
	// FlagZstd marks a block whose entries section is zstd-compressed.
	FlagZstd uint8 = 1 << 0

	knownBlockFlags = FlagZstd
)

// Header field offsets.
const (
	offMagic      = 0
	offVersion    = 4
	offFlags      = 5
	offReserved   = 6
	offLogID      = 8
	offSegmentID  = 16
	offFirstEntry = 24
	offEpoch      = 32
	offBlockNo    = 40
	offCount      = 48
	offBodyLen    = 52
	offRawLen     = 56
	offHeaderCRC  = 60
)

var blockMagic = [4]byte{'W', 'P', 'B', 'K'}

// castagnoli is the CRC32C table used by every checksum of this package.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// ErrCorrupt is the sentinel every decoding failure of this package wraps:
// a block, seal record or fence object that fails validation (bad magic or
// version, CRC mismatch, inconsistent lengths or counts, trailing bytes).
// Test with errors.Is; use errors.As with *CorruptError for the details.
// Callers add the log, segment and block the data came from. It is
// walerr.ErrCorrupt (woodpecker.ErrCorrupt), not a look-alike: the standard
// library's errors.Is compares identity, not the message.
var ErrCorrupt = walerr.ErrCorrupt

// CorruptError describes why data failed validation. It wraps ErrCorrupt.
type CorruptError struct {
	// Object is what was being decoded: "block", "seal record" or "fence".
	Object string
	// Reason says what is wrong, with the values found.
	Reason string
	// Offset is the byte offset in the decoded input where the problem was
	// found (for ScanBlocks and ValidPrefix: in the whole file), or -1 when
	// the problem has no single position (for example inside a
	// decompressed entries section; Reason then gives the position).
	Offset int64
}

// Error implements error.
func (e *CorruptError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("corrupt %s at offset %d: %s", e.Object, e.Offset, e.Reason)
	}
	return fmt.Sprintf("corrupt %s: %s", e.Object, e.Reason)
}

// Unwrap returns ErrCorrupt, so errors.Is(err, ErrCorrupt) holds.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

func corruptBlock(off int64, format string, args ...any) *CorruptError {
	return &CorruptError{Object: "block", Reason: fmt.Sprintf(format, args...), Offset: off}
}

// Compression selects how EncodeBlock stores the entries section.
type Compression uint8

const (
	// CompressionNone stores entries as they are.
	CompressionNone Compression = iota
	// CompressionZstd compresses the entries section with zstd (fastest
	// level). A block that zstd does not shrink is stored uncompressed.
	CompressionZstd
)

// String returns "none" or "zstd".
func (c Compression) String() string {
	switch c {
	case CompressionNone:
		return "none"
	case CompressionZstd:
		return "zstd"
	default:
		return fmt.Sprintf("Compression(%d)", uint8(c))
	}
}

// BlockHeader is the decoded fixed header of a block.
type BlockHeader struct {
	LogID      int64
	SegmentID  int64
	FirstEntry int64 // id of the block's first entry within the segment
	Count      uint32
	Epoch      int64 // epoch of the writer that wrote the block
	BlockNo    int64 // position of the block in its segment: 0, 1, 2, ...
	// Flags, BodyLen and RawLen describe the stored encoding. EncodeBlock
	// computes them and ignores the values passed in.
	Flags   uint8
	BodyLen uint32
	RawLen  uint32
}

// Compression reports how the block's entries section is stored.
func (h BlockHeader) Compression() Compression {
	if h.Flags&FlagZstd != 0 {
		return CompressionZstd
	}
	return CompressionNone
}

// NextEntry returns the entry id that follows the block's last entry.
func (h BlockHeader) NextEntry() int64 { return h.FirstEntry + int64(h.Count) }

// BlockSize returns the total encoded length of the block h describes:
// header, entries section and trailer. A reader of a local segment file
// steps from one block to the next by this amount.
func BlockSize(h BlockHeader) int64 {
	return BlockHeaderSize + int64(h.BodyLen) + BlockTrailerSize
}

// zstd coder state, created on first use. EncodeAll and DecodeAll are safe
// for concurrent use and start no goroutines.
var (
	zstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
		return zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderCRC(false), // the block's body CRC covers it
		)
	})
	zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
		return zstd.NewReader(nil,
			zstd.WithDecoderMaxMemory(MaxBlockRawLen),
			// Each DecodeAll may produce at most cap(dst)-len(dst) bytes:
			// the rawLen the caller allowed, whatever the frame claims.
			zstd.WithDecodeAllCapLimit(true),
		)
	})
	rawBufPool sync.Pool // *[]byte, uncompressed entries sections
)

// uvarintLen returns the length of the minimal uvarint encoding of v.
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// validateBlockIDs checks the header fields a caller provides.
func validateBlockIDs(h BlockHeader, count int) error {
	switch {
	case h.LogID < 0, h.SegmentID < 0, h.FirstEntry < 0, h.Epoch < 0, h.BlockNo < 0:
		return errors.Newf("segment: block header has a negative field (log %d, segment %d, first entry %d, epoch %d, block %d)",
			h.LogID, h.SegmentID, h.FirstEntry, h.Epoch, h.BlockNo)
	case h.FirstEntry > math.MaxInt64-int64(count):
		return errors.Newf("segment: block entry ids overflow int64 (first entry %d, %d entries)", h.FirstEntry, count)
	}
	return nil
}

// EncodeBlock appends the encoded block to dst and returns the extended
// slice. h supplies LogID, SegmentID, FirstEntry, Epoch and BlockNo (all
// non-negative); Count is set to len(entries), and Flags, BodyLen and RawLen
// are computed. A block holds at least one entry; zero-length entries are
// allowed by the format (the writer API rejects them). The uncompressed
// entries section may not exceed MaxBlockRawLen.
//
// entries are read, not retained, and must not overlap dst's spare
// capacity. On error dst is returned unchanged in length. EncodeBlock is safe
// for concurrent use.
func EncodeBlock(dst []byte, h BlockHeader, entries [][]byte, c Compression) ([]byte, error) {
	if len(entries) == 0 {
		return dst, errors.New("segment: a block needs at least one entry")
	}
	if uint64(len(entries)) > math.MaxUint32 {
		return dst, errors.Newf("segment: too many entries for one block: %d", len(entries))
	}
	if err := validateBlockIDs(h, len(entries)); err != nil {
		return dst, err
	}
	if c != CompressionNone && c != CompressionZstd {
		return dst, errors.Newf("segment: unknown compression %s", c)
	}
	rawLen := 0
	for _, e := range entries {
		rawLen += uvarintLen(uint64(len(e))) + len(e)
		if rawLen > MaxBlockRawLen {
			return dst, errors.Newf("segment: block entries exceed %d bytes", MaxBlockRawLen)
		}
	}

	start := len(dst)
	bodyStart := start + BlockHeaderSize
	dst = growTo(dst, bodyStart+rawLen+BlockTrailerSize)
	flags := uint8(0)
	switch c {
	case CompressionNone:
		dst = dst[:bodyStart+rawLen]
		putEntries(dst[bodyStart:], entries)
	case CompressionZstd:
		enc, err := zstdEncoder()
		if err != nil {
			return dst[:start], errors.Wrap(err, "segment: creating zstd encoder")
		}
		rawp := getRawBuf(rawLen)
		raw := (*rawp)[:rawLen]
		putEntries(raw, entries)
		dst = enc.EncodeAll(raw, dst[:bodyStart])
		if len(dst)-bodyStart < rawLen {
			flags = FlagZstd
		} else { // zstd did not help: store as is
			dst = append(dst[:bodyStart], raw...)
		}
		rawBufPool.Put(rawp)
	}
	bodyLen := len(dst) - bodyStart

	hdr := dst[start:bodyStart]
	copy(hdr[offMagic:], blockMagic[:])
	hdr[offVersion] = BlockVersion
	hdr[offFlags] = flags
	binary.LittleEndian.PutUint16(hdr[offReserved:], 0)
	binary.LittleEndian.PutUint64(hdr[offLogID:], uint64(h.LogID))
	binary.LittleEndian.PutUint64(hdr[offSegmentID:], uint64(h.SegmentID))
	binary.LittleEndian.PutUint64(hdr[offFirstEntry:], uint64(h.FirstEntry))
	binary.LittleEndian.PutUint64(hdr[offEpoch:], uint64(h.Epoch))
	binary.LittleEndian.PutUint64(hdr[offBlockNo:], uint64(h.BlockNo))
	binary.LittleEndian.PutUint32(hdr[offCount:], uint32(len(entries)))
	binary.LittleEndian.PutUint32(hdr[offBodyLen:], uint32(bodyLen))
	binary.LittleEndian.PutUint32(hdr[offRawLen:], uint32(rawLen))
	binary.LittleEndian.PutUint32(hdr[offHeaderCRC:], crc32c(hdr[:offHeaderCRC]))
	return binary.LittleEndian.AppendUint32(dst, crc32c(dst[bodyStart:])), nil
}

// growTo returns b with capacity for at least n bytes, keeping its length.
func growTo(b []byte, n int) []byte {
	if cap(b) >= n {
		return b
	}
	nb := make([]byte, len(b), n)
	copy(nb, b)
	return nb
}

func getRawBuf(n int) *[]byte {
	if p, ok := rawBufPool.Get().(*[]byte); ok && cap(*p) >= n {
		return p
	}
	b := make([]byte, n)
	return &b
}

// putEntries writes the uncompressed entries section into b, which has
// exactly the right length.
func putEntries(b []byte, entries [][]byte) {
	pos := 0
	for _, e := range entries {
		pos += binary.PutUvarint(b[pos:], uint64(len(e)))
		pos += copy(b[pos:], e)
	}
}

// parseBlockHeader validates the header at the start of b. base is the
// offset of b in the caller's input, for error messages.
func parseBlockHeader(b []byte, base int64) (BlockHeader, *CorruptError) {
	var h BlockHeader
	if len(b) >= len(blockMagic) && [4]byte(b[offMagic:offMagic+4]) != blockMagic {
		return h, corruptBlock(base, "bad magic %q, want %q", b[offMagic:offMagic+4], blockMagic[:])
	}
	if len(b) < BlockHeaderSize {
		return h, corruptBlock(base, "truncated header: %d of %d bytes", len(b), BlockHeaderSize)
	}
	if v := b[offVersion]; v != BlockVersion {
		return h, corruptBlock(base+offVersion, "unsupported version %d (this build reads version %d)", v, BlockVersion)
	}
	stored := binary.LittleEndian.Uint32(b[offHeaderCRC:])
	if computed := crc32c(b[:offHeaderCRC]); stored != computed {
		return h, corruptBlock(base+offHeaderCRC, "header CRC mismatch: stored %#08x, computed %#08x", stored, computed)
	}
	h = BlockHeader{
		LogID:      int64(binary.LittleEndian.Uint64(b[offLogID:])),
		SegmentID:  int64(binary.LittleEndian.Uint64(b[offSegmentID:])),
		FirstEntry: int64(binary.LittleEndian.Uint64(b[offFirstEntry:])),
		Epoch:      int64(binary.LittleEndian.Uint64(b[offEpoch:])),
		BlockNo:    int64(binary.LittleEndian.Uint64(b[offBlockNo:])),
		Count:      binary.LittleEndian.Uint32(b[offCount:]),
		Flags:      b[offFlags],
		BodyLen:    binary.LittleEndian.Uint32(b[offBodyLen:]),
		RawLen:     binary.LittleEndian.Uint32(b[offRawLen:]),
	}
	if r := binary.LittleEndian.Uint16(b[offReserved:]); r != 0 {
		return h, corruptBlock(base+offReserved, "reserved field is %#04x, want 0", r)
	}
	if f := h.Flags &^ knownBlockFlags; f != 0 {
		return h, corruptBlock(base+offFlags, "unknown flags %#02x", f)
	}
	if h.LogID < 0 || h.SegmentID < 0 || h.FirstEntry < 0 || h.Epoch < 0 || h.BlockNo < 0 {
		return h, corruptBlock(base, "negative id (log %d, segment %d, first entry %d, epoch %d, block %d)",
			h.LogID, h.SegmentID, h.FirstEntry, h.Epoch, h.BlockNo)
	}
	if h.Count == 0 {
		return h, corruptBlock(base+offCount, "entry count is 0")
	}
	if h.FirstEntry > math.MaxInt64-int64(h.Count) {
		return h, corruptBlock(base+offCount, "entry ids overflow: first entry %d, count %d", h.FirstEntry, h.Count)
	}
	if h.RawLen > MaxBlockRawLen {
		return h, corruptBlock(base+offRawLen, "raw length %d exceeds the format limit %d", h.RawLen, MaxBlockRawLen)
	}
	if h.Count > h.RawLen { // every entry takes at least one byte
		return h, corruptBlock(base+offCount, "count %d cannot fit in %d raw bytes", h.Count, h.RawLen)
	}
	if h.Flags&FlagZstd != 0 {
		if h.BodyLen == 0 || h.BodyLen >= h.RawLen {
			return h, corruptBlock(base+offBodyLen, "compressed length %d is not in [1, raw length %d)", h.BodyLen, h.RawLen)
		}
	} else if h.BodyLen != h.RawLen {
		return h, corruptBlock(base+offBodyLen, "uncompressed block has body length %d but raw length %d", h.BodyLen, h.RawLen)
	}
	return h, nil
}

// DecodeBlockHeader validates the header at the start of data and returns
// it. data needs only the first BlockHeaderSize bytes (a range read of an
// object, the tail of a file); what follows is not examined. Errors wrap
// ErrCorrupt. Safe for concurrent use.
func DecodeBlockHeader(data []byte) (BlockHeader, error) {
	h, cerr := parseBlockHeader(data, 0)
	if cerr != nil {
		return BlockHeader{}, cerr
	}
	return h, nil
}

// DecodeBlock validates a whole block (header, lengths, body CRC, entry
// structure, no trailing bytes) and returns its header and entries. It is
// DecodeBlockLimit with the format's limit MaxBlockRawLen.
func DecodeBlock(data []byte) (BlockHeader, [][]byte, error) {
	return DecodeBlockLimit(data, MaxBlockRawLen)
}

// DecodeBlockLimit is DecodeBlock that refuses to decompress a block whose
// header claims more than maxRawLen uncompressed bytes, so a hostile header
// cannot make it allocate more than maxRawLen. data must be exactly one
// block.
//
// Ownership: for an uncompressed block the entries are sub-slices of data
// (no copy); for a compressed block they are sub-slices of one new buffer.
// Either way the caller must keep data unmodified while it uses the entries,
// and copy an entry to keep it past a reuse of data. Entries have their
// capacity capped, so appending to one never overwrites another.
//
// Errors wrap ErrCorrupt (a *CorruptError says what and where). Safe for
// concurrent use; never panics; allocates at most the entries slice
// (bounded by the entry count, itself bounded by the body length) and, for
// compressed blocks, rawLen bytes.
func DecodeBlockLimit(data []byte, maxRawLen int) (BlockHeader, [][]byte, error) {
	h, cerr := parseBlockHeader(data, 0)
	if cerr != nil {
		return BlockHeader{}, nil, cerr
	}
	size := BlockSize(h)
	if int64(len(data)) < size {
		return BlockHeader{}, nil, corruptBlock(int64(len(data)), "truncated: header says %d bytes, have %d", size, len(data))
	}
	if int64(len(data)) > size {
		return BlockHeader{}, nil, corruptBlock(size, "%d trailing bytes after the block", int64(len(data))-size)
	}
	bodyEnd := BlockHeaderSize + int(h.BodyLen)
	body := data[BlockHeaderSize:bodyEnd]
	stored := binary.LittleEndian.Uint32(data[bodyEnd:])
	if computed := crc32c(body); stored != computed {
		return BlockHeader{}, nil, corruptBlock(int64(bodyEnd), "body CRC mismatch: stored %#08x, computed %#08x", stored, computed)
	}
	raw, rawBase := body, int64(BlockHeaderSize)
	if h.Flags&FlagZstd != 0 {
		if int64(h.RawLen) > int64(maxRawLen) {
			return BlockHeader{}, nil, corruptBlock(offRawLen, "raw length %d exceeds the decoder's limit %d", h.RawLen, maxRawLen)
		}
		dec, err := zstdDecoder()
		if err != nil {
			return BlockHeader{}, nil, errors.Wrap(err, "segment: creating zstd decoder")
		}
		out, err := dec.DecodeAll(body, make([]byte, 0, h.RawLen))
		if err != nil {
			return BlockHeader{}, nil, corruptBlock(BlockHeaderSize, "zstd: %v", err)
		}
		if len(out) != int(h.RawLen) {
			return BlockHeader{}, nil, corruptBlock(BlockHeaderSize, "decompressed to %d bytes, header says %d", len(out), h.RawLen)
		}
		raw, rawBase = out, -1
	}
	entries, cerr := parseEntries(raw, h.Count, rawBase)
	if cerr != nil {
		return BlockHeader{}, nil, cerr
	}
	return h, entries, nil
}

// parseEntries splits an uncompressed entries section. base is the offset
// of raw in the input, or -1 when raw is decompressed.
func parseEntries(raw []byte, count uint32, base int64) ([][]byte, *CorruptError) {
	fail := func(pos int, format string, args ...any) *CorruptError {
		reason := fmt.Sprintf(format, args...)
		if base < 0 {
			return corruptBlock(-1, "%s (at byte %d of the decompressed entries)", reason, pos)
		}
		return corruptBlock(base+int64(pos), "%s", reason)
	}
	entries := make([][]byte, 0, count)
	pos := 0
	for i := uint32(0); i < count; i++ {
		if pos == len(raw) {
			return nil, fail(pos, "count says %d entries, found %d", count, i)
		}
		n, k := binary.Uvarint(raw[pos:])
		if k <= 0 {
			return nil, fail(pos, "entry %d: malformed length", i)
		}
		if k != uvarintLen(n) {
			return nil, fail(pos, "entry %d: length %d is not minimally encoded", i, n)
		}
		pos += k
		if n > uint64(len(raw)-pos) {
			return nil, fail(pos, "entry %d: length %d exceeds the %d bytes left", i, n, len(raw)-pos)
		}
		end := pos + int(n)
		entries = append(entries, raw[pos:end:end])
		pos = end
	}
	if pos != len(raw) {
		return nil, fail(pos, "%d bytes after the last of %d entries", len(raw)-pos, count)
	}
	return entries, nil
}

// scanChunk bounds the buffers ScanBlocks uses on an io.ReaderAt.
const scanChunk = 1 << 20

// blockSource is what a scan reads from: a byte slice or an io.ReaderAt.
type blockSource interface {
	// readAt returns up to n bytes at off (fewer only at the end of the
	// input). The result may alias buf, or the input itself, and is valid
	// until buf is reused.
	readAt(buf []byte, off int64, n int) ([]byte, error)
}

type bytesSource []byte

func (s bytesSource) readAt(_ []byte, off int64, n int) ([]byte, error) {
	if off >= int64(len(s)) {
		return nil, nil
	}
	return s[off:min(off+int64(n), int64(len(s)))], nil
}

type readerAtSource struct {
	r    io.ReaderAt
	size int64
}

func (s readerAtSource) readAt(buf []byte, off int64, n int) ([]byte, error) {
	n = int(min(int64(n), s.size-off))
	if n <= 0 {
		return nil, nil
	}
	m, err := s.r.ReadAt(buf[:n], off)
	if m == n {
		return buf[:n], nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return nil, errors.Wrapf(err, "segment: reading %d bytes at offset %d", n, off)
}

// blockScanner walks concatenated blocks of one segment.
type blockScanner struct {
	src       blockSource
	size      int64
	logID     int64
	segmentID int64
	buf       []byte // candidate and CRC reads
	searchBuf []byte // magic search
}

// ValidPrefix walks data, the content of a local segment file of segment
// segmentID of log logID (concatenated blocks), and returns the headers of
// its valid leading blocks and the length they cover. Blocks are offsets
// 0, BlockSize(blocks[0]), ... . Bytes after validLen that do not form
// valid blocks of the segment are a torn tail (a write cut short by a
// crash) and are no error: the caller truncates the file to validLen.
//
// A block belongs to the valid prefix when its header and body CRC are
// valid and it continues the chain: same log and segment as requested, same
// epoch as the first block, block number one more and first entry equal to
// the previous block's NextEntry. The first block may start at any block
// number and entry. Entries are not parsed (DecodeBlock does that).
//
// ValidPrefix returns an error wrapping ErrCorrupt, with the valid prefix
// before the problem, when the data cannot be a torn tail: a block with a
// valid header CRC that does not continue the chain (wrong segment, epoch,
// block number or entry), or an invalid block followed somewhere by a valid
// block that could continue the chain (same segment and epoch, a higher
// block number, no lower first entry): damage in the middle of the file,
// or a block rewritten after a failed write, which may hold acknowledged
// entries and must not be cut off silently. A writer that fails a write
// must therefore truncate the file back to its last good length (or stop
// using the file) before writing again.
//
// data is not retained. Safe for concurrent use.
func ValidPrefix(data []byte, logID, segmentID int64) (blocks []BlockHeader, validLen int64, err error) {
	validLen, err = scanBlocks(bytesSource(data), int64(len(data)), logID, segmentID,
		func(h BlockHeader, _ int64) error {
			blocks = append(blocks, h)
			return nil
		})
	return blocks, validLen, err
}

// ScanBlocks is ValidPrefix over the first size bytes of r, reading at most
// 1 MiB at a time, and calling fn with each valid block's header and offset
// in order instead of collecting them. An error from fn stops the scan and
// is returned as is, with validLen the offset of that block. Read errors
// are returned wrapped (they do not wrap ErrCorrupt).
func ScanBlocks(r io.ReaderAt, size int64, logID, segmentID int64, fn func(h BlockHeader, offset int64) error) (validLen int64, err error) {
	return scanBlocks(readerAtSource{r: r, size: size}, size, logID, segmentID, fn)
}

func scanBlocks(src blockSource, size, logID, segmentID int64, fn func(BlockHeader, int64) error) (int64, error) {
	s := &blockScanner{src: src, size: size, logID: logID, segmentID: segmentID}
	if _, ok := src.(readerAtSource); ok {
		s.buf = make([]byte, min(int64(scanChunk), max(size, 0)))
		s.searchBuf = make([]byte, min(int64(scanChunk), max(size, 0)))
	}
	var prev *BlockHeader
	off := int64(0)
	for off < size {
		if size-off < BlockHeaderSize {
			return off, s.checkNoLaterBlock(off, off+1, prev, corruptBlock(off, "truncated header"))
		}
		hb, err := src.readAt(s.buf, off, BlockHeaderSize)
		if err != nil {
			return off, err
		}
		h, cerr := parseBlockHeader(hb, off)
		if cerr != nil {
			return off, s.checkNoLaterBlock(off, off+1, prev, cerr)
		}
		// A header with a valid CRC is what some writer wrote here; a torn
		// write cannot produce one that does not belong to the chain.
		if reason := chainMismatch(h, logID, segmentID, prev); reason != "" {
			return off, corruptBlock(off, "block %d does not continue the segment: %s", h.BlockNo, reason)
		}
		bsize := BlockSize(h)
		if bsize > size-off {
			return off, nil // torn: the block's end was never written
		}
		ok, err := s.bodyValid(off, h)
		if err != nil {
			return off, err
		}
		if !ok {
			return off, s.checkNoLaterBlock(off, off+bsize, prev,
				corruptBlock(off+BlockHeaderSize, "block %d: body CRC mismatch", h.BlockNo))
		}
		if err := fn(h, off); err != nil {
			return off, err
		}
		prev = &h
		off += bsize
	}
	return off, nil
}

// chainMismatch says why h cannot follow prev in segment (logID,
// segmentID), or returns "".
func chainMismatch(h BlockHeader, logID, segmentID int64, prev *BlockHeader) string {
	switch {
	case h.LogID != logID || h.SegmentID != segmentID:
		return fmt.Sprintf("it belongs to log %d segment %d, want log %d segment %d", h.LogID, h.SegmentID, logID, segmentID)
	case prev == nil:
		return ""
	case h.Epoch != prev.Epoch:
		return fmt.Sprintf("epoch %d after epoch %d", h.Epoch, prev.Epoch)
	case h.BlockNo != prev.BlockNo+1:
		return fmt.Sprintf("block number %d after %d", h.BlockNo, prev.BlockNo)
	case h.FirstEntry != prev.NextEntry():
		return fmt.Sprintf("first entry %d, want %d", h.FirstEntry, prev.NextEntry())
	}
	return ""
}

// bodyValid checks the body CRC of the block with header h at off, which
// lies wholly within the input.
func (s *blockScanner) bodyValid(off int64, h BlockHeader) (bool, error) {
	pos, end := off+BlockHeaderSize, off+BlockHeaderSize+int64(h.BodyLen)
	crc := uint32(0)
	for pos < end {
		b, err := s.src.readAt(s.buf, pos, int(min(end-pos, scanChunk)))
		if err != nil {
			return false, err
		}
		if len(b) == 0 { // cannot happen: the block lies within the input
			return false, errors.AssertionFailedf("segment: block at %d extends past the input", off)
		}
		crc = crc32.Update(crc, castagnoli, b)
		pos += int64(len(b))
	}
	tb, err := s.src.readAt(s.buf, end, BlockTrailerSize)
	if err != nil {
		return false, err
	}
	return binary.LittleEndian.Uint32(tb) == crc, nil
}

// checkNoLaterBlock is called when the block expected at off is invalid
// (bad). It searches from `from` on for a valid block that can continue
// the chain after prev: same segment and epoch, a higher block number, a
// first entry not below prev's next (a copy of the expected block written
// after a failed write counts: it may hold acknowledged entries). Finding
// one means the damage is in the middle, and the result is bad with that
// detail; otherwise the rest is a torn tail and the result is nil. Blocks
// at or below prev (old data inside a torn block's payload) do not count.
func (s *blockScanner) checkNoLaterBlock(off, from int64, prev *BlockHeader, bad *CorruptError) error {
	pos := from
	for pos+BlockHeaderSize <= s.size {
		n := int(min(scanChunk, s.size-pos))
		b, err := s.src.readAt(s.searchBuf, pos, n)
		if err != nil {
			return err
		}
		for j := 0; ; {
			i := bytes.Index(b[j:], blockMagic[:])
			if i < 0 {
				break
			}
			c := pos + int64(j+i)
			if c+BlockHeaderSize > s.size {
				return nil
			}
			later, ok, err := s.laterBlockAt(c, prev)
			if err != nil {
				return err
			}
			if ok {
				bad.Reason = fmt.Sprintf("%s, but valid block %d follows at offset %d", bad.Reason, later.BlockNo, c)
				return bad
			}
			j += i + 1
		}
		if pos+int64(n) >= s.size {
			break
		}
		pos += int64(n) - int64(len(blockMagic)-1) // overlap for a magic across chunks
	}
	return nil
}

// laterBlockAt reports whether a whole valid block at c can continue the
// chain after prev (see checkNoLaterBlock).
func (s *blockScanner) laterBlockAt(c int64, prev *BlockHeader) (BlockHeader, bool, error) {
	hb, err := s.src.readAt(s.buf, c, BlockHeaderSize)
	if err != nil {
		return BlockHeader{}, false, err
	}
	h, cerr := parseBlockHeader(hb, c)
	if cerr != nil || h.LogID != s.logID || h.SegmentID != s.segmentID {
		return h, false, nil
	}
	if prev != nil && (h.Epoch != prev.Epoch || h.BlockNo <= prev.BlockNo || h.FirstEntry < prev.NextEntry()) {
		return h, false, nil
	}
	if BlockSize(h) > s.size-c {
		return h, false, nil
	}
	ok, err := s.bodyValid(c, h)
	return h, ok, err
}
