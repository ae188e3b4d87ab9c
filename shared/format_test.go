package shared

import (
	"bytes"
	"encoding/binary"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/segment"
)

var updateGolden = flag.Bool("update-shared-golden", false, "rewrite shared/testdata golden encodings")

// testBlock encodes a real block of count entries.
func testBlock(t testing.TB, logID, segID, blockNo, first int64, count int) []byte {
	t.Helper()
	entries := make([][]byte, count)
	for i := range entries {
		entries[i] = []byte{byte(logID), byte(segID), byte(blockNo), byte(i)}
	}
	b, err := segment.EncodeBlock(nil, segment.BlockHeader{LogID: logID, SegmentID: segID, BlockNo: blockNo,
		FirstEntry: first, Count: uint32(count), Epoch: 1}, entries, segment.CompressionNone)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testPieces(t testing.TB) []Piece {
	// Out of order on purpose: the encoder groups by log and segment.
	return []Piece{
		{LogID: 7, SegmentID: 0, BlockNo: 1, FirstEntry: 2, Count: 1, Data: testBlock(t, 7, 0, 1, 2, 1)},
		{LogID: 3, SegmentID: 2, BlockNo: 0, FirstEntry: 0, Count: 3, Data: testBlock(t, 3, 2, 0, 0, 3)},
		{LogID: 7, SegmentID: 0, BlockNo: 0, FirstEntry: 0, Count: 2, Data: testBlock(t, 7, 0, 0, 0, 2)},
	}
}

func decodeObject(t testing.TB, name string, obj []byte) []meta.Extent {
	t.Helper()
	at, n, err := DecodeTrailer(obj[len(obj)-TrailerSize:], int64(len(obj)))
	if err != nil {
		t.Fatal(err)
	}
	exts, err := DecodeIndex(name, obj[at:at+n], at)
	if err != nil {
		t.Fatal(err)
	}
	return exts
}

// TestObjectRoundTrip: an object's index gives back every extent, one
// log's blocks are one contiguous range in block order, and each extent's
// bytes are the block and match its CRC32C.
func TestObjectRoundTrip(t *testing.T) {
	pieces := testPieces(t)
	obj, exts := EncodeObject("shared/x", pieces)
	if got := decodeObject(t, "shared/x", obj); !slices.Equal(got, exts) {
		t.Fatalf("index %+v, encoder said %+v", got, exts)
	}
	order := [][3]int64{{3, 2, 0}, {7, 0, 0}, {7, 0, 1}}
	for i, e := range exts {
		if [3]int64{e.LogID, e.SegmentID, e.BlockNo} != order[i] {
			t.Fatalf("extent %d is %d/%d/%d, want %v", i, e.LogID, e.SegmentID, e.BlockNo, order[i])
		}
		if i > 0 && e.Offset != exts[i-1].Offset+exts[i-1].Length {
			t.Fatalf("extent %d starts at %d, not right after the previous", i, e.Offset)
		}
		data := obj[e.Offset : e.Offset+e.Length]
		if crc32c(data) != e.CRC {
			t.Fatalf("extent %d CRC", i)
		}
		h, _, err := segment.DecodeBlock(data)
		if err != nil || h.LogID != e.LogID || h.BlockNo != e.BlockNo || h.FirstEntry != e.FirstEntry {
			t.Fatalf("extent %d: %+v %v", i, h, err)
		}
	}
}

func testSeal(t testing.TB) Seal {
	obj, exts := EncodeObject("shared/a", testPieces(t))
	_ = obj
	var seg []meta.Extent
	for _, e := range exts {
		if e.LogID == 7 {
			seg = append(seg, e)
		}
	}
	// Block 2 lives in another object.
	b2 := meta.Extent{LogID: 7, SegmentID: 0, BlockNo: 2, Object: "shared/b", Offset: 40, Length: 77, FirstEntry: 3, Count: 4, CRC: 9}
	seg = append(seg, b2)
	var size int64
	for _, e := range seg {
		size += e.Length
	}
	return Seal{LogID: 7, SegmentID: 0, Epoch: 5, Info: segment.SealInfo{LastEntry: 6, Blocks: 3, Bytes: size}, Extents: seg}
}

func TestSealRoundTrip(t *testing.T) {
	s := testSeal(t)
	b, err := EncodeSeal(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeSeal(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.LogID != s.LogID || got.SegmentID != s.SegmentID || got.Epoch != s.Epoch || got.Info != s.Info || !slices.Equal(got.Extents, s.Extents) {
		t.Fatalf("decoded %+v, want %+v", got, s)
	}
	again, _ := EncodeSeal(got)
	if !bytes.Equal(again, b) {
		t.Fatal("encoding is not deterministic")
	}
	empty := Seal{LogID: 1, SegmentID: 2, Info: segment.SealInfo{LastEntry: -1}}
	b, err = EncodeSeal(empty)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeSeal(b); err != nil || got.Info != empty.Info || len(got.Extents) != 0 {
		t.Fatalf("empty seal: %+v %v", got, err)
	}
}

// TestSealRefusesWhatItCannotDescribe: a seal whose extents are not blocks
// 0..n-1 of its segment is a bug of the caller, never written.
func TestSealRefusesWhatItCannotDescribe(t *testing.T) {
	s := testSeal(t)
	s.Extents[1].BlockNo = 5
	if _, err := EncodeSeal(s); err == nil {
		t.Fatal("a gap in the blocks was encoded")
	}
	s = testSeal(t)
	s.Info.Blocks = 2
	if _, err := EncodeSeal(s); err == nil {
		t.Fatal("a block count that differs from the extents was encoded")
	}
}

// TestGoldenEncodings: version 1 bytes decode as they did when written, and
// the encoder still writes them. Run with -update-shared-golden only for a
// new format version.
func TestGoldenEncodings(t *testing.T) {
	obj, _ := EncodeObject("shared/golden", testPieces(t))
	seal, err := EncodeSeal(testSeal(t))
	if err != nil {
		t.Fatal(err)
	}
	golden := map[string][]byte{"object-v1.bin": obj, "sseal-v1.bin": seal}
	if *updateGolden {
		for name, b := range golden {
			if err := os.WriteFile(filepath.Join("testdata", name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, want := range golden {
		got, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: the encoder no longer writes the golden bytes", name)
		}
	}
	objGolden, _ := os.ReadFile(filepath.Join("testdata", "object-v1.bin"))
	if exts := decodeObject(t, "shared/golden", objGolden); len(exts) != 3 || exts[2].BlockNo != 1 || exts[2].FirstEntry != 2 {
		t.Fatalf("golden object index: %+v", exts)
	}
	sealGolden, _ := os.ReadFile(filepath.Join("testdata", "sseal-v1.bin"))
	if s, err := DecodeSeal(sealGolden); err != nil || s.Info.LastEntry != 6 || s.Extents[2].Object != "shared/b" {
		t.Fatalf("golden seal: %+v %v", s, err)
	}
}

// TestDecodersRejectDamage: every single-byte change of an index or a seal
// record is caught (CRC32C), as ErrCorrupt.
func TestDecodersRejectDamage(t *testing.T) {
	obj, _ := EncodeObject("o", testPieces(t))
	at, n, err := DecodeTrailer(obj[len(obj)-TrailerSize:], int64(len(obj)))
	if err != nil {
		t.Fatal(err)
	}
	index := obj[at : at+n]
	for i := range index {
		bad := slices.Clone(index)
		bad[i] ^= 0x40
		if _, err := DecodeIndex("o", bad, at); !errors.Is(err, walerr.ErrCorrupt) {
			t.Fatalf("index byte %d flipped: %v", i, err)
		}
	}
	seal, _ := EncodeSeal(testSeal(t))
	for i := range seal {
		bad := slices.Clone(seal)
		bad[i] ^= 0x40
		if _, err := DecodeSeal(bad); !errors.Is(err, walerr.ErrCorrupt) {
			t.Fatalf("seal byte %d flipped: %v", i, err)
		}
	}
	if _, _, err := DecodeTrailer(obj[len(obj)-TrailerSize:], int64(len(obj))+1); !errors.Is(err, walerr.ErrCorrupt) {
		t.Fatalf("trailer of another size: %v", err)
	}
}

// fixCRC recomputes a record's trailing CRC32C, so that fuzzing gets past it.
func fixCRC(b []byte) []byte {
	if len(b) >= 4 {
		binary.LittleEndian.PutUint32(b[len(b)-4:], crc32c(b[:len(b)-4]))
	}
	return b
}

func FuzzDecodeIndex(f *testing.F) {
	obj, _ := EncodeObject("o", testPieces(f))
	at, n, _ := DecodeTrailer(obj[len(obj)-TrailerSize:], int64(len(obj)))
	f.Add(obj[at:at+n], at)
	empty, _ := EncodeObject("o", nil)
	f.Add(empty[:len(empty)-TrailerSize], int64(0))
	f.Fuzz(func(t *testing.T, index []byte, at int64) {
		for _, b := range [][]byte{index, fixCRC(slices.Clone(index))} {
			exts, err := DecodeIndex("o", b, at)
			if err != nil {
				if !errors.Is(err, walerr.ErrCorrupt) {
					t.Fatalf("error without ErrCorrupt: %v", err)
				}
				continue
			}
			for _, e := range exts {
				if e.Valid() != nil || e.Offset+e.Length > at {
					t.Fatalf("accepted extent %+v beyond %d", e, at)
				}
			}
		}
	})
}

func FuzzDecodeSeal(f *testing.F) {
	b, _ := EncodeSeal(testSeal(f))
	f.Add(b)
	b, _ = EncodeSeal(Seal{LogID: 1, Info: segment.SealInfo{LastEntry: -1}})
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, d := range [][]byte{data, fixCRC(slices.Clone(data))} {
			s, err := DecodeSeal(d)
			if err != nil {
				if !errors.Is(err, walerr.ErrCorrupt) {
					t.Fatalf("error without ErrCorrupt: %v", err)
				}
				continue
			}
			// What decodes, encodes back to the same bytes.
			again, err := EncodeSeal(s)
			if err != nil || !bytes.Equal(again, d) {
				t.Fatalf("decoded %+v does not encode back (%v)", s, err)
			}
		}
	})
}

func FuzzDecodeTrailer(f *testing.F) {
	obj, _ := EncodeObject("o", testPieces(f))
	f.Add(obj[len(obj)-TrailerSize:], int64(len(obj)))
	f.Fuzz(func(t *testing.T, tail []byte, size int64) {
		at, n, err := DecodeTrailer(tail, size)
		if err != nil {
			if !errors.Is(err, walerr.ErrCorrupt) {
				t.Fatalf("error without ErrCorrupt: %v", err)
			}
			return
		}
		if at < 0 || n <= 0 || at+n+TrailerSize != size {
			t.Fatalf("accepted index at %d+%d in %d bytes", at, n, size)
		}
	})
}
