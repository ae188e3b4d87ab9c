package segment

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/errors"
)

var updateCodecGolden = flag.Bool("update-codec-golden", false, "rewrite segment/testdata golden encodings")

// testWords is the vocabulary of compressible test entries: text made of
// random words compresses about as well as typical log records.
var testWords = strings.Fields(`insert delete upsert collection partition segment vector
	float int64 varchar json primary key timestamp channel shard replica flush seal compact
	index query search limit offset filter expr output fields dim metric type nlist nprobe
	woodpecker log entry block epoch writer reader append truncate recover fence`)

// testEntries returns n deterministic entries of the given size:
// compressible ones are random words and numbers, the others random bytes.
func testEntries(seed uint64, n, size int, compressible bool) [][]byte {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	out := make([][]byte, n)
	for i := range out {
		e := make([]byte, 0, size+32)
		for len(e) < size {
			if !compressible {
				e = append(e, byte(rng.Uint32()))
				continue
			}
			e = append(e, testWords[rng.IntN(len(testWords))]...)
			e = append(e, ' ')
			if rng.IntN(4) == 0 {
				e = strconv.AppendInt(e, rng.Int64N(1e6), 10)
				e = append(e, ' ')
			}
		}
		out[i] = e[:size]
	}
	return out
}

func testHeader() BlockHeader {
	return BlockHeader{LogID: 7, SegmentID: 3, FirstEntry: 100, Epoch: 5, BlockNo: 9}
}

func mustEncodeBlock(t testing.TB, h BlockHeader, entries [][]byte, c Compression) []byte {
	t.Helper()
	b, err := EncodeBlock(nil, h, entries, c)
	if err != nil {
		t.Fatalf("EncodeBlock: %v", err)
	}
	return b
}

// requireCorrupt fails unless err wraps ErrCorrupt as a *CorruptError whose
// message contains want.
func requireCorrupt(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want corruption %q", want)
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("error %q does not wrap ErrCorrupt", err)
	}
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("error %q is not a *CorruptError", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not mention %q", err, want)
	}
}

func TestBlockRoundTrip(t *testing.T) {
	big := testEntries(1, 3, 200_000, true)
	tests := []struct {
		name    string
		entries [][]byte
	}{
		{"one byte", [][]byte{{42}}},
		{"one empty entry", [][]byte{{}}},
		{"empty among others", [][]byte{[]byte("a"), {}, []byte("ccc"), {}}},
		{"varint boundaries", [][]byte{make([]byte, 127), make([]byte, 128), make([]byte, 16383), make([]byte, 16384)}},
		{"many small", testEntries(2, 1000, 10, true)},
		{"random", testEntries(3, 20, 1000, false)},
		{"large compressible", big},
	}
	for _, tt := range tests {
		for _, c := range []Compression{CompressionNone, CompressionZstd} {
			t.Run(fmt.Sprintf("%s/%s", tt.name, c), func(t *testing.T) {
				h := testHeader()
				prefix := []byte("prefix")
				out, err := EncodeBlock(slices.Clone(prefix), h, tt.entries, c)
				if err != nil {
					t.Fatalf("EncodeBlock: %v", err)
				}
				if !bytes.HasPrefix(out, prefix) {
					t.Fatalf("EncodeBlock did not append to dst")
				}
				block := out[len(prefix):]
				got, entries, err := DecodeBlock(block)
				if err != nil {
					t.Fatalf("DecodeBlock: %v", err)
				}
				if got.LogID != h.LogID || got.SegmentID != h.SegmentID || got.FirstEntry != h.FirstEntry ||
					got.Epoch != h.Epoch || got.BlockNo != h.BlockNo || got.Count != uint32(len(tt.entries)) {
					t.Fatalf("header %+v does not match input %+v with %d entries", got, h, len(tt.entries))
				}
				if BlockSize(got) != int64(len(block)) {
					t.Fatalf("BlockSize %d, encoded %d bytes", BlockSize(got), len(block))
				}
				if got.NextEntry() != h.FirstEntry+int64(len(tt.entries)) {
					t.Fatalf("NextEntry %d", got.NextEntry())
				}
				if c == CompressionNone && got.Compression() != CompressionNone {
					t.Fatalf("uncompressed block stored as %s", got.Compression())
				}
				if got.Compression() == CompressionZstd && got.BodyLen >= got.RawLen {
					t.Fatalf("compressed body %d not smaller than raw %d", got.BodyLen, got.RawLen)
				}
				if len(entries) != len(tt.entries) {
					t.Fatalf("decoded %d entries, want %d", len(entries), len(tt.entries))
				}
				for i := range entries {
					if !bytes.Equal(entries[i], tt.entries[i]) {
						t.Fatalf("entry %d differs", i)
					}
				}
				hh, err := DecodeBlockHeader(block[:BlockHeaderSize])
				if err != nil || hh != got {
					t.Fatalf("DecodeBlockHeader = %+v, %v; want %+v", hh, err, got)
				}
			})
		}
	}
}

func TestBlockCompressionChoice(t *testing.T) {
	h := testHeader()
	random := testEntries(4, 8, 4096, false)
	plain := mustEncodeBlock(t, h, random, CompressionNone)
	z := mustEncodeBlock(t, h, random, CompressionZstd)
	if !bytes.Equal(plain, z) {
		t.Fatalf("incompressible entries with zstd should be stored uncompressed, as with none")
	}
	text := testEntries(5, 8, 4096, true)
	zh, err := DecodeBlockHeader(mustEncodeBlock(t, h, text, CompressionZstd))
	if err != nil {
		t.Fatal(err)
	}
	if zh.Compression() != CompressionZstd || zh.BodyLen*2 > zh.RawLen {
		t.Fatalf("compressible entries: stored %s, %d of %d bytes", zh.Compression(), zh.BodyLen, zh.RawLen)
	}
}

func TestEncodeBlockRejects(t *testing.T) {
	mib := make([]byte, 1<<20)
	tooBig := make([][]byte, MaxBlockRawLen>>20) // each entry also costs its length prefix
	for i := range tooBig {
		tooBig[i] = mib
	}
	tests := []struct {
		name    string
		h       BlockHeader
		entries [][]byte
		c       Compression
		want    string
	}{
		{"no entries", testHeader(), nil, CompressionNone, "at least one entry"},
		{"negative log", BlockHeader{LogID: -1}, [][]byte{{1}}, CompressionNone, "negative"},
		{"negative segment", BlockHeader{SegmentID: -1}, [][]byte{{1}}, CompressionNone, "negative"},
		{"negative first entry", BlockHeader{FirstEntry: -1}, [][]byte{{1}}, CompressionNone, "negative"},
		{"negative epoch", BlockHeader{Epoch: -1}, [][]byte{{1}}, CompressionNone, "negative"},
		{"negative block", BlockHeader{BlockNo: -1}, [][]byte{{1}}, CompressionNone, "negative"},
		{"entry id overflow", BlockHeader{FirstEntry: math.MaxInt64}, [][]byte{{1}}, CompressionNone, "overflow"},
		{"unknown compression", testHeader(), [][]byte{{1}}, Compression(9), "unknown compression"},
		{"too large", testHeader(), tooBig, CompressionZstd, "exceed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			out, err := EncodeBlock(dst, tt.h, tt.entries, tt.c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("EncodeBlock error %v, want one mentioning %q", err, tt.want)
			}
			if errors.Is(err, ErrCorrupt) {
				t.Fatalf("an invalid argument is not corruption: %v", err)
			}
			if string(out) != "keep" {
				t.Fatalf("dst changed to %q", out)
			}
		})
	}
}

// Every entry's capacity is capped, so appending to one leaves the next
// intact, for both storage kinds.
func TestDecodeBlockEntriesAreCapped(t *testing.T) {
	for _, c := range []Compression{CompressionNone, CompressionZstd} {
		block := mustEncodeBlock(t, testHeader(), testEntries(6, 4, 100, true), c)
		_, entries, err := DecodeBlock(block)
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(entries[1])
		_ = append(entries[0], 0xff, 0xff, 0xff)
		if !bytes.Equal(entries[1], want) {
			t.Fatalf("%s: appending to entry 0 changed entry 1", c)
		}
	}
}

// forge returns a copy of block with mutate applied and, when fix is set,
// both CRCs recomputed from the (possibly changed) header lengths, so that
// only the semantic checks can catch the change.
func forge(block []byte, fix bool, mutate func(b []byte) []byte) []byte {
	b := mutate(slices.Clone(block))
	if fix && len(b) >= BlockHeaderSize {
		binary.LittleEndian.PutUint32(b[offHeaderCRC:], crc32c(b[:offHeaderCRC]))
		bodyEnd := BlockHeaderSize + int(binary.LittleEndian.Uint32(b[offBodyLen:]))
		if bodyEnd+BlockTrailerSize <= len(b) {
			binary.LittleEndian.PutUint32(b[bodyEnd:], crc32c(b[BlockHeaderSize:bodyEnd]))
		}
	}
	return b
}

// rawBlock builds an uncompressed block around a hand-made entries
// section, with valid CRCs.
func rawBlock(count uint32, body []byte) []byte {
	b := make([]byte, BlockHeaderSize, BlockHeaderSize+len(body)+BlockTrailerSize)
	copy(b, blockMagic[:])
	b[offVersion] = BlockVersion
	binary.LittleEndian.PutUint32(b[offCount:], count)
	binary.LittleEndian.PutUint32(b[offBodyLen:], uint32(len(body)))
	binary.LittleEndian.PutUint32(b[offRawLen:], uint32(len(body)))
	b = append(b, body...)
	b = append(b, 0, 0, 0, 0)
	return forge(b, true, func(b []byte) []byte { return b })
}

func put32(off int, v uint32) func([]byte) []byte {
	return func(b []byte) []byte { binary.LittleEndian.PutUint32(b[off:], v); return b }
}

func put64(off int, v uint64) func([]byte) []byte {
	return func(b []byte) []byte { binary.LittleEndian.PutUint64(b[off:], v); return b }
}

func TestDecodeBlockCorruption(t *testing.T) {
	entries := [][]byte{[]byte("alpha"), []byte("beta"), []byte("gamma")}
	plain := mustEncodeBlock(t, testHeader(), entries, CompressionNone)
	zblock := mustEncodeBlock(t, testHeader(), testEntries(7, 4, 500, true), CompressionZstd)
	if h, _ := DecodeBlockHeader(zblock); h.Compression() != CompressionZstd {
		t.Fatal("test block is not compressed")
	}
	zh, _ := DecodeBlockHeader(zblock)
	tests := []struct {
		name  string
		block []byte
		want  string
	}{
		{"empty input", nil, "truncated header"},
		{"short header", plain[:BlockHeaderSize-1], "truncated header"},
		{"bad magic", forge(plain, true, func(b []byte) []byte { b[0] = 'X'; return b }), "bad magic"},
		{"fence is not a block", EncodeFence(FenceInfo{1, 2, 3, 4}), "bad magic"},
		{"bad version", forge(plain, true, func(b []byte) []byte { b[offVersion] = 2; return b }), "unsupported version 2"},
		{"header CRC", forge(plain, false, func(b []byte) []byte { b[offLogID]++; return b }), "header CRC mismatch"},
		{"reserved", forge(plain, true, func(b []byte) []byte { b[offReserved] = 1; return b }), "reserved"},
		{"unknown flag", forge(plain, true, func(b []byte) []byte { b[offFlags] |= 0x80; return b }), "unknown flags"},
		{"negative log", forge(plain, true, put64(offLogID, math.MaxUint64)), "negative id"},
		{"zero count", forge(plain, true, put32(offCount, 0)), "entry count is 0"},
		{"count more than bytes", forge(plain, true, put32(offCount, 1000)), "cannot fit"},
		{"count too high", forge(plain, true, put32(offCount, 4)), "count says 4 entries, found 3"},
		{"count too low", forge(plain, true, put32(offCount, 2)), "bytes after the last of 2 entries"},
		{"entry id overflow", forge(plain, true, put64(offFirstEntry, math.MaxInt64-1)), "overflow"},
		{"raw length above limit", forge(plain, true, put32(offRawLen, MaxBlockRawLen+1)), "format limit"},
		{"raw length lies", forge(plain, true, put32(offRawLen, uint32(len(plain))-70)), "raw length"},
		{"body length lies short", forge(plain, true, func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[offBodyLen:], 3)
			binary.LittleEndian.PutUint32(b[offRawLen:], 3)
			return b
		}), "trailing bytes"},
		{"body length lies long", forge(plain, true, func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[offBodyLen:], 500)
			binary.LittleEndian.PutUint32(b[offRawLen:], 500)
			return b
		}), "truncated"},
		{"body CRC", forge(plain, false, func(b []byte) []byte { b[BlockHeaderSize+1] ^= 1; return b }), "body CRC mismatch"},
		{"trailer", forge(plain, false, func(b []byte) []byte { b[len(b)-1] ^= 0x10; return b }), "body CRC mismatch"},
		{"trailing garbage", append(slices.Clone(plain), 0), "1 trailing bytes"},
		{"missing trailer", plain[:len(plain)-BlockTrailerSize], "truncated"},
		{"entry length overruns", rawBlock(1, []byte{5, 'a', 'b'}), "entry 0: length 5 exceeds the 2 bytes left"},
		{"non-minimal varint", rawBlock(1, []byte{0x81, 0x00, 'a'}), "not minimally encoded"},
		{"varint overflow", rawBlock(1, bytes.Repeat([]byte{0xff}, 11)), "malformed length"},
		{"compressed not smaller", forge(zblock, true, put32(offRawLen, zh.BodyLen)), "compressed length"},
		{"compressed garbage", forge(zblock, true, func(b []byte) []byte {
			for i := BlockHeaderSize; i < BlockHeaderSize+8; i++ {
				b[i] ^= 0x5a
			}
			return b
		}), "zstd"},
		{"compressed raw length lies", forge(zblock, true, put32(offRawLen, zh.RawLen+1)), "decompressed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, entries, err := DecodeBlock(tt.block)
			requireCorrupt(t, err, tt.want)
			if h != (BlockHeader{}) || entries != nil {
				t.Fatalf("failed decode returned %+v, %d entries", h, len(entries))
			}
		})
	}
}

// A CRC32C catches every single-bit error, so flipping any bit of a block
// must make it fail, and so must every truncation.
func TestDecodeBlockEveryBitFlipAndCut(t *testing.T) {
	for _, c := range []Compression{CompressionNone, CompressionZstd} {
		block := mustEncodeBlock(t, testHeader(), testEntries(8, 3, 40, true), c)
		for i := range len(block) * 8 {
			b := slices.Clone(block)
			b[i/8] ^= 1 << (i % 8)
			if _, _, err := DecodeBlock(b); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s: flipping bit %d: err %v, want ErrCorrupt", c, i, err)
			}
		}
		for n := range len(block) {
			if _, _, err := DecodeBlock(block[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s: cut at %d: err %v, want ErrCorrupt", c, n, err)
			}
		}
	}
}

// A compressed body that expands far beyond the raw length its header
// claims is cut off at that length, not decompressed in full.
func TestDecodeBlockHostileExpansion(t *testing.T) {
	block := mustEncodeBlock(t, testHeader(), [][]byte{make([]byte, 32<<20)}, CompressionZstd)
	h, _ := DecodeBlockHeader(block)
	if h.Compression() != CompressionZstd || h.BodyLen > 1<<20 {
		t.Fatalf("32 MiB of zeros stored as %s in %d bytes", h.Compression(), h.BodyLen)
	}
	lying := forge(block, true, put32(offRawLen, 1<<20))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := DecodeBlock(lying)
	runtime.ReadMemStats(&after)
	requireCorrupt(t, err, "zstd")
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Fatalf("decoding allocated %d bytes for a block claiming 1 MiB", grew)
	}
}

func TestDecodeBlockLimit(t *testing.T) {
	block := mustEncodeBlock(t, testHeader(), testEntries(9, 4, 1000, true), CompressionZstd)
	h, _ := DecodeBlockHeader(block)
	if _, _, err := DecodeBlockLimit(block, int(h.RawLen)); err != nil {
		t.Fatalf("limit = raw length: %v", err)
	}
	_, _, err := DecodeBlockLimit(block, int(h.RawLen)-1)
	requireCorrupt(t, err, "exceeds the decoder's limit")
}

func TestCorruptErrorMessage(t *testing.T) {
	err := error(&CorruptError{Object: "block", Reason: "bad thing", Offset: 12})
	if got := err.Error(); got != "corrupt block at offset 12: bad thing" {
		t.Fatalf("message %q", got)
	}
	err = &CorruptError{Object: "seal record", Reason: "worse", Offset: -1}
	if got := err.Error(); got != "corrupt seal record: worse" {
		t.Fatalf("message %q", got)
	}
	wrapped := errors.Wrap(err, "log 1 segment 2")
	if !errors.Is(wrapped, ErrCorrupt) {
		t.Fatal("wrapped CorruptError does not match ErrCorrupt")
	}
}

// buildSegment encodes n chained blocks of segment (7, 3), alternating
// compression, and returns the file content and block offsets (with the
// end offset last).
func buildSegment(t testing.TB, n int) ([]byte, []int64) {
	t.Helper()
	var data []byte
	offsets := []int64{0}
	next := int64(0)
	for i := range n {
		entries := testEntries(uint64(100+i), 1+i%3, 50+10*i, i%2 == 0)
		h := BlockHeader{LogID: 7, SegmentID: 3, Epoch: 2, BlockNo: int64(i), FirstEntry: next}
		var err error
		data, err = EncodeBlock(data, h, entries, Compression(i%2))
		if err != nil {
			t.Fatal(err)
		}
		next += int64(len(entries))
		offsets = append(offsets, int64(len(data)))
	}
	return data, offsets
}

// scanBoth runs ValidPrefix and ScanBlocks over data and checks that they
// agree.
func scanBoth(t *testing.T, data []byte) ([]BlockHeader, int64, error) {
	t.Helper()
	blocks, validLen, err := ValidPrefix(data, 7, 3)
	var viaReader []BlockHeader
	off := int64(0)
	validLen2, err2 := ScanBlocks(bytes.NewReader(data), int64(len(data)), 7, 3, func(h BlockHeader, o int64) error {
		if o != off {
			t.Fatalf("ScanBlocks offset %d, want %d", o, off)
		}
		off += BlockSize(h)
		viaReader = append(viaReader, h)
		return nil
	})
	if validLen != validLen2 || !slices.Equal(blocks, viaReader) || (err == nil) != (err2 == nil) ||
		(err != nil && err.Error() != err2.Error()) {
		t.Fatalf("ValidPrefix = %d blocks, %d, %v; ScanBlocks = %d blocks, %d, %v",
			len(blocks), validLen, err, len(viaReader), validLen2, err2)
	}
	return blocks, validLen, err
}

func TestValidPrefixIntact(t *testing.T) {
	data, offsets := buildSegment(t, 6)
	blocks, validLen, err := scanBoth(t, data)
	if err != nil || validLen != int64(len(data)) || len(blocks) != 6 {
		t.Fatalf("got %d blocks, %d of %d bytes, %v", len(blocks), validLen, len(data), err)
	}
	for i, h := range blocks {
		if h.BlockNo != int64(i) || BlockSize(h) != offsets[i+1]-offsets[i] {
			t.Fatalf("block %d: %+v", i, h)
		}
	}
	if blocks, validLen, err := scanBoth(t, nil); err != nil || validLen != 0 || len(blocks) != 0 {
		t.Fatalf("empty file: %d blocks, %d, %v", len(blocks), validLen, err)
	}
}

// Cutting the file anywhere inside the last block leaves exactly the blocks
// before it.
func TestValidPrefixTornTail(t *testing.T) {
	data, offsets := buildSegment(t, 4)
	last := offsets[3]
	for cut := last; cut < int64(len(data)); cut++ {
		blocks, validLen, err := scanBoth(t, data[:cut])
		if err != nil || validLen != last || len(blocks) != 3 {
			t.Fatalf("cut at %d: %d blocks, valid %d (want %d), %v", cut, len(blocks), validLen, last, err)
		}
	}
}

func TestValidPrefixTails(t *testing.T) {
	data, offsets := buildSegment(t, 4)
	// Blocks that could follow block 2 but for one field each.
	embedded := func(h BlockHeader) []byte {
		return mustEncodeBlock(t, h, [][]byte{[]byte("x")}, CompressionNone)
	}
	other := embedded(BlockHeader{LogID: 7, SegmentID: 4, Epoch: 2, BlockNo: 10, FirstEntry: 1000})
	otherLog := embedded(BlockHeader{LogID: 8, SegmentID: 3, Epoch: 2, BlockNo: 10, FirstEntry: 1000})
	otherEpoch := embedded(BlockHeader{LogID: 7, SegmentID: 3, Epoch: 1, BlockNo: 10, FirstEntry: 1000})
	oldBlockNo := embedded(BlockHeader{LogID: 7, SegmentID: 3, Epoch: 2, BlockNo: 2, FirstEntry: 1000})
	oldEntry := embedded(BlockHeader{LogID: 7, SegmentID: 3, Epoch: 2, BlockNo: 10, FirstEntry: 0})
	tornWith := func(payload []byte) []byte {
		return slices.Concat(data[:offsets[3]], make([]byte, 80), payload)
	}
	tests := []struct {
		name   string
		data   []byte
		blocks int
		valid  int64
	}{
		{"zeros after", append(slices.Clone(data), make([]byte, 5000)...), 4, offsets[4]},
		{"garbage after", append(slices.Clone(data), testEntries(1, 1, 3000, false)[0]...), 4, offsets[4]},
		{"magic then garbage", append(slices.Clone(data), append([]byte("WPBK"), make([]byte, 100)...)...), 4, offsets[4]},
		{"last block body flipped", flipAt(data, offsets[3]+BlockHeaderSize+2), 3, offsets[3]},
		{"last block header flipped", flipAt(data, offsets[3]+offEpoch), 3, offsets[3]},
		{"last block header zeroed", zeroRange(data, offsets[3], offsets[3]+BlockHeaderSize), 3, offsets[3]},
		{"first block torn", data[:offsets[1]-1], 0, 0},
		// A torn block whose lost header was followed by payload that
		// happens to hold a block that cannot continue this segment: still
		// a tail.
		{"other segment inside torn payload", tornWith(other), 3, offsets[3]},
		{"other log inside torn payload", tornWith(otherLog), 3, offsets[3]},
		{"other epoch inside torn payload", tornWith(otherEpoch), 3, offsets[3]},
		{"old block number inside torn payload", tornWith(oldBlockNo), 3, offsets[3]},
		{"old entry inside torn payload", tornWith(oldEntry), 3, offsets[3]},
		{"old block inside torn payload", tornWith(data[offsets[1]:offsets[2]]), 3, offsets[3]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blocks, validLen, err := scanBoth(t, tt.data)
			if err != nil || len(blocks) != tt.blocks || validLen != tt.valid {
				t.Fatalf("got %d blocks, valid %d, %v; want %d blocks, valid %d", len(blocks), validLen, err, tt.blocks, tt.valid)
			}
		})
	}
}

func flipAt(data []byte, off int64) []byte {
	b := slices.Clone(data)
	b[off] ^= 0x01
	return b
}

func zeroRange(data []byte, from, to int64) []byte {
	b := slices.Clone(data)
	clear(b[from:to])
	return b
}

func TestValidPrefixCorruptMiddle(t *testing.T) {
	data, offsets := buildSegment(t, 5)
	other := mustEncodeBlock(t, BlockHeader{LogID: 7, SegmentID: 4, Epoch: 2, BlockNo: 5}, [][]byte{[]byte("x")}, CompressionNone)
	wrongEpoch := mustEncodeBlock(t, BlockHeader{LogID: 7, SegmentID: 3, Epoch: 9, BlockNo: 5, FirstEntry: 1000}, [][]byte{[]byte("x")}, CompressionNone)
	tests := []struct {
		name   string
		data   []byte
		blocks int
		want   string
	}{
		{"body flipped", flipAt(data, offsets[2]+BlockHeaderSize+1), 2, "valid block 3 follows at offset"},
		{"header flipped", flipAt(data, offsets[1]+offBlockNo), 1, "valid block 2 follows"},
		{"header zeroed", zeroRange(data, offsets[0], offsets[0]+BlockHeaderSize), 0, "valid block 1 follows"},
		{"block rewritten after garbage", slices.Concat(data[:offsets[3]], make([]byte, 100), data[offsets[3]:]), 3, "valid block 3 follows"},
		{"block missing", slices.Concat(data[:offsets[2]], data[offsets[3]:]), 2, "block number 3 after 1"},
		{"block repeated", slices.Concat(data[:offsets[3]], data[offsets[2]:]), 3, "block number 2 after 2"},
		{"foreign block at end", slices.Concat(data, other), 5, "belongs to log 7 segment 4"},
		{"wrong file", other, 0, "belongs to log 7 segment 4"},
		{"epoch changes", slices.Concat(data, wrongEpoch), 5, "epoch 9 after epoch 2"},
		{"entry gap", slices.Concat(data, mustEncodeBlock(t,
			BlockHeader{LogID: 7, SegmentID: 3, Epoch: 2, BlockNo: 5, FirstEntry: 1000}, [][]byte{{1}}, CompressionNone)), 5, "first entry 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blocks, validLen, err := scanBoth(t, tt.data)
			requireCorrupt(t, err, tt.want)
			if len(blocks) != tt.blocks || validLen != offsets[tt.blocks] {
				t.Fatalf("got %d blocks, valid %d; want %d blocks, valid %d", len(blocks), validLen, tt.blocks, offsets[tt.blocks])
			}
		})
	}
}

// Blocks larger than the scan chunk: their CRC is computed in pieces, and a
// later block whose magic straddles a chunk boundary of the search is found.
func TestScanBlocksChunkBoundaries(t *testing.T) {
	for size1 := int64(scanChunk - 4); size1 <= scanChunk+2; size1++ {
		entry := make([]byte, size1-BlockHeaderSize-BlockTrailerSize-3) // 3-byte length prefix
		var data []byte
		var err error
		for i, e := range [][]byte{[]byte("first"), entry, []byte("third")} {
			data, err = EncodeBlock(data, BlockHeader{LogID: 7, SegmentID: 3, BlockNo: int64(i), FirstEntry: int64(i)}, [][]byte{e}, CompressionNone)
			if err != nil {
				t.Fatal(err)
			}
		}
		off1 := BlockSize(mustHeader(t, data))
		if got := BlockSize(mustHeader(t, data[off1:])); got != size1 {
			t.Fatalf("middle block is %d bytes, want %d", got, size1)
		}
		if _, validLen, err := scanBoth(t, data); err != nil || validLen != int64(len(data)) {
			t.Fatalf("size %d: intact file: valid %d of %d, %v", size1, validLen, len(data), err)
		}
		_, validLen, err := scanBoth(t, flipAt(data, off1+offCount))
		requireCorrupt(t, err, "valid block 2 follows")
		if validLen != off1 {
			t.Fatalf("size %d: valid %d, want %d", size1, validLen, off1)
		}
	}
}

func mustHeader(t testing.TB, b []byte) BlockHeader {
	t.Helper()
	h, err := DecodeBlockHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

type failingReaderAt struct {
	data   []byte
	failAt int64
}

func (r failingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > r.failAt {
		return 0, errors.New("disk on fire")
	}
	return copy(p, r.data[off:]), nil
}

func TestScanBlocksErrors(t *testing.T) {
	data, offsets := buildSegment(t, 3)
	t.Run("callback error", func(t *testing.T) {
		stop := errors.New("stop")
		validLen, err := ScanBlocks(bytes.NewReader(data), int64(len(data)), 7, 3, func(h BlockHeader, _ int64) error {
			if h.BlockNo == 1 {
				return stop
			}
			return nil
		})
		if err != stop || validLen != offsets[1] {
			t.Fatalf("got %d, %v; want %d, stop", validLen, err, offsets[1])
		}
	})
	t.Run("read error", func(t *testing.T) {
		validLen, err := ScanBlocks(failingReaderAt{data, offsets[2] + 10}, int64(len(data)), 7, 3,
			func(BlockHeader, int64) error { return nil })
		if err == nil || errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "disk on fire") {
			t.Fatalf("got %v, want the read error", err)
		}
		if validLen != offsets[2] {
			t.Fatalf("valid %d, want %d", validLen, offsets[2])
		}
	})
	t.Run("size beyond data", func(t *testing.T) {
		_, err := ScanBlocks(bytes.NewReader(data), int64(len(data))+100, 7, 3,
			func(BlockHeader, int64) error { return nil })
		if err == nil || errors.Is(err, ErrCorrupt) {
			t.Fatalf("got %v, want a read error", err)
		}
	})
}

// Golden encodings pin the format: a change to the encoder that alters the
// bytes of version 1 fails here. Run with -update-codec-golden after a
// deliberate format change (which also needs a new version number).
func TestGoldenEncodings(t *testing.T) {
	entries := [][]byte{[]byte("first entry"), {}, bytes.Repeat([]byte("compress me "), 40)}
	h := BlockHeader{LogID: 12, SegmentID: 34, FirstEntry: 56, Epoch: 78, BlockNo: 90}
	seal := SealRecord{
		LogID: 12, SegmentID: 34, Epoch: 78, LastEntry: 58, EntryCount: 3, TotalBytes: 491, FenceBlockNo: 91,
		Objects: []SealObject{{Name: BlockName(90), FirstEntry: 56, Count: 3, Size: 200}},
	}
	sealBytes, err := EncodeSeal(seal)
	if err != nil {
		t.Fatal(err)
	}
	golden := map[string][]byte{
		"block-v1-none.bin": mustEncodeBlock(t, h, entries, CompressionNone),
		"seal-v1.bin":       sealBytes,
		"fence-v1.bin":      EncodeFence(FenceInfo{LogID: 12, SegmentID: 34, BlockNo: 91, Epoch: 79}),
	}
	// Compressed bytes depend on the zstd library version, so that golden
	// file is only decoded, never compared.
	zpath := filepath.Join("testdata", "block-v1-zstd.bin")
	if *updateCodecGolden {
		for name, b := range golden {
			if err := os.WriteFile(filepath.Join("testdata", name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(zpath, mustEncodeBlock(t, h, entries, CompressionZstd), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range golden {
		got, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: encoding changed:\n got  %x\n want %x", name, want, got)
		}
	}
	for _, name := range []string{"block-v1-none.bin", "block-v1-zstd.bin"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		gh, ge, err := DecodeBlock(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if gh.LogID != 12 || gh.SegmentID != 34 || gh.FirstEntry != 56 || gh.Epoch != 78 || gh.BlockNo != 90 ||
			!slices.EqualFunc(ge, entries, bytes.Equal) {
			t.Errorf("%s decodes to %+v", name, gh)
		}
		if name == "block-v1-zstd.bin" && gh.Compression() != CompressionZstd {
			t.Errorf("%s is not compressed", name)
		}
	}
	b, err := os.ReadFile(filepath.Join("testdata", "seal-v1.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeSeal(b); err != nil || !sealEqual(got, seal) {
		t.Errorf("seal-v1.bin decodes to %+v, %v", got, err)
	}
}

func benchBlock(b *testing.B) [][]byte {
	b.Helper()
	return testEntries(42, 64, 64<<10, true) // 4 MiB of 64 KiB entries
}

func BenchmarkEncodeBlock(b *testing.B) {
	entries := benchBlock(b)
	for _, c := range []Compression{CompressionNone, CompressionZstd} {
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(64 * 64 << 10)
			var buf []byte
			for b.Loop() {
				var err error
				buf, err = EncodeBlock(buf[:0], testHeader(), entries, c)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(buf))/float64(64*64<<10), "stored/raw")
		})
	}
}

func BenchmarkDecodeBlock(b *testing.B) {
	entries := benchBlock(b)
	for _, c := range []Compression{CompressionNone, CompressionZstd} {
		b.Run(c.String(), func(b *testing.B) {
			block := mustEncodeBlock(b, testHeader(), entries, c)
			b.SetBytes(64 * 64 << 10)
			for b.Loop() {
				if _, _, err := DecodeBlock(block); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkValidPrefix(b *testing.B) {
	entries := benchBlock(b)
	var data []byte
	for i := range 8 {
		var err error
		data, err = EncodeBlock(data, BlockHeader{LogID: 7, SegmentID: 3, BlockNo: int64(i), FirstEntry: int64(64 * i)}, entries, CompressionNone)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, n, err := ValidPrefix(data, 7, 3); err != nil || n != int64(len(data)) {
			b.Fatal(n, err)
		}
	}
}
