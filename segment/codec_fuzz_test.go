package segment

import (
	"bytes"
	"github.com/cockroachdb/errors"
	"slices"
	"testing"
)

// Fuzz targets. Run one locally with, for example,
//
//	go test ./segment/ -run '^$' -fuzz '^FuzzDecodeBlock$' -fuzztime 30s -fuzzminimizetime 3s
//
// (CRC32C takes length-dependent paths, so the fuzzer keeps finding "new"
// long inputs it cannot shrink; the default minute of minimization per
// input stalls it.) Without -fuzz they run their seed corpus as ordinary
// tests.

func addBlockSeeds(f *testing.F) {
	f.Helper()
	for _, c := range []Compression{CompressionNone, CompressionZstd} {
		for _, entries := range [][][]byte{
			{{1}},
			{{}, []byte("two"), {}},
			testEntries(11, 5, 300, true),
			testEntries(12, 2, 200, false),
		} {
			b, err := EncodeBlock(nil, testHeader(), entries, c)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte{})
	f.Add([]byte("WPBK"))
	f.Add(EncodeFence(FenceInfo{1, 2, 3, 4}))
}

// FuzzDecodeBlock: no input panics; only ErrCorrupt is returned; what
// decodes re-encodes to the same bytes (uncompressed) or to the same
// content (compressed: zstd output is not canonical). Each input is also
// tried with both CRCs repaired, so the fuzzer gets past them to the field,
// length, decompression and entry checks.
func FuzzDecodeBlock(f *testing.F) {
	addBlockSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodeBlock(t, data, MaxBlockRawLen)
		// A repaired header may claim up to MaxBlockRawLen raw bytes; keep
		// each run's allocation small.
		checkDecodeBlock(t, forge(data, true, func(b []byte) []byte { return b }), 1<<20)
	})
}

func checkDecodeBlock(t *testing.T, data []byte, limit int) {
	t.Helper()
	hh, herr := DecodeBlockHeader(data)
	h, entries, err := DecodeBlockLimit(data, limit)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("DecodeBlock returned a non-corruption error: %v", err)
		}
		return
	}
	if herr != nil || hh != h {
		t.Fatalf("DecodeBlock accepts what DecodeBlockHeader rejects: %v", herr)
	}
	if len(entries) != int(h.Count) || BlockSize(h) != int64(len(data)) {
		t.Fatalf("header %+v, %d entries, %d bytes", h, len(entries), len(data))
	}
	re, err := EncodeBlock(nil, h, entries, h.Compression())
	if err != nil {
		t.Fatalf("re-encoding a decoded block: %v", err)
	}
	if h.Compression() == CompressionNone {
		if !bytes.Equal(re, data) {
			t.Fatalf("re-encoding differs:\n in  %x\n out %x", data, re)
		}
		return
	}
	h2, entries2, err := DecodeBlock(re)
	if err != nil {
		t.Fatalf("decoding a re-encoded block: %v", err)
	}
	h2.Flags, h2.BodyLen, h.Flags, h.BodyLen = 0, 0, 0, 0
	if h2 != h || !slices.EqualFunc(entries, entries2, bytes.Equal) {
		t.Fatalf("re-encoded block decodes differently: %+v vs %+v", h2, h)
	}
}

// FuzzDecodeSeal: no input panics; only ErrCorrupt is returned; what decodes
// re-encodes to the same bytes.
func FuzzDecodeSeal(f *testing.F) {
	fenced := testSeal()
	fenced.FenceBlockNo = 3
	for _, r := range []SealRecord{testSeal(), fenced, {LogID: 1, LastEntry: -1, FenceBlockNo: 0},
		{LogID: 1, SegmentID: 2, Epoch: 3, LastEntry: 9, EntryCount: 10, FenceBlockNo: 10, BlockCount: 10}} {
		b, err := EncodeSeal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("WPSL"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodeSeal(t, data)
		if len(data) >= 4 { // and with the CRC repaired, to get past it
			checkDecodeSeal(t, fixSealCRC(slices.Clone(data)))
		}
	})
}

func checkDecodeSeal(t *testing.T, data []byte) {
	t.Helper()
	r, err := DecodeSeal(data)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("DecodeSeal returned a non-corruption error: %v", err)
		}
		return
	}
	re, err := EncodeSeal(r)
	if err != nil {
		t.Fatalf("re-encoding a decoded seal: %v", err)
	}
	if !bytes.Equal(re, data) {
		t.Fatalf("re-encoding differs:\n in  %x\n out %x", data, re)
	}
}

// FuzzDecodeFence: no input panics; what decodes re-encodes to the same
// bytes.
func FuzzDecodeFence(f *testing.F) {
	f.Add(EncodeFence(FenceInfo{1, 2, 3, 4}))
	f.Add([]byte("WPFN"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fi, err := DecodeFence(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("non-corruption error: %v", err)
			}
			return
		}
		if !IsFence(data) || !bytes.Equal(EncodeFence(fi), data) {
			t.Fatalf("fence %+v does not re-encode to its input", fi)
		}
	})
}

// FuzzValidPrefix: no input panics; the slice and reader forms agree; the
// valid prefix is a whole number of blocks that scans again to itself with no
// error.
func FuzzValidPrefix(f *testing.F) {
	data, offsets := buildSegment(f, 4)
	f.Add(data)
	f.Add(data[:offsets[3]+10])
	f.Add(flipAt(data, offsets[1]+5))
	f.Add(flipAt(data, offsets[2]+BlockHeaderSize+1))
	f.Add(append(slices.Clone(data), make([]byte, 70)...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		blocks, validLen, err := ValidPrefix(data, 7, 3)
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("ValidPrefix returned a non-corruption error: %v", err)
		}
		if validLen < 0 || validLen > int64(len(data)) {
			t.Fatalf("validLen %d of %d bytes", validLen, len(data))
		}
		var viaReader []BlockHeader
		validLen2, err2 := ScanBlocks(bytes.NewReader(data), int64(len(data)), 7, 3, func(h BlockHeader, _ int64) error {
			viaReader = append(viaReader, h)
			return nil
		})
		if validLen2 != validLen || !slices.Equal(viaReader, blocks) || (err == nil) != (err2 == nil) {
			t.Fatalf("ScanBlocks = %d, %v; ValidPrefix = %d, %v", validLen2, err2, validLen, err)
		}
		off := int64(0)
		for _, h := range blocks {
			if _, err := DecodeBlockHeader(data[off:]); err != nil {
				t.Fatalf("block at %d: %v", off, err)
			}
			off += BlockSize(h)
		}
		if off != validLen {
			t.Fatalf("blocks cover %d bytes, validLen %d", off, validLen)
		}
		again, validLen3, err := ValidPrefix(data[:validLen], 7, 3)
		if err != nil || validLen3 != validLen || !slices.Equal(again, blocks) {
			t.Fatalf("the valid prefix does not rescan to itself: %d, %v", validLen3, err)
		}
	})
}
