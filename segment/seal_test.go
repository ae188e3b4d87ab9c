package segment

import (
	"encoding/binary"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/errors"
)

func sealEqual(a, b SealRecord) bool {
	if !slices.Equal(a.Objects, b.Objects) {
		return false
	}
	a.Objects, b.Objects = nil, nil
	return reflect.DeepEqual(a, b)
}

func testSeal() SealRecord {
	return SealRecord{
		LogID: 7, SegmentID: 3, Epoch: 2, LastEntry: 9, EntryCount: 10, TotalBytes: 12345, FenceBlockNo: -1,
		Objects: []SealObject{
			{Name: BlockName(0), FirstEntry: 0, Count: 4, Size: 1000},
			{Name: BlockName(1), FirstEntry: 4, Count: 1, Size: 70},
			{Name: BlockName(2), FirstEntry: 5, Count: 5, Size: 3000},
		},
	}
}

func TestSealRoundTrip(t *testing.T) {
	fenced := testSeal()
	fenced.FenceBlockNo = 3
	tests := []struct {
		name string
		r    SealRecord
	}{
		{"empty segment", SealRecord{LogID: 1, SegmentID: 0, Epoch: 0, LastEntry: -1, FenceBlockNo: 0}},
		{"empty unfenced", SealRecord{LogID: 1, SegmentID: 2, Epoch: 3, LastEntry: -1, FenceBlockNo: -1}},
		{"three blocks", testSeal()},
		{"fenced", fenced},
		{"starts above zero", SealRecord{
			LogID: 1, SegmentID: 2, LastEntry: 104, EntryCount: 5, FenceBlockNo: -1,
			Objects: []SealObject{{Name: "c-0000000000000000100", FirstEntry: 100, Count: 5, Size: 1}},
		}},
		{"index-less", SealRecord{LogID: 1, SegmentID: 2, Epoch: 3, LastEntry: 99, EntryCount: 100, TotalBytes: 5000, FenceBlockNo: -1, BlockCount: 10}},
		{"index-less fenced", SealRecord{LogID: 1, SegmentID: 2, Epoch: 3, LastEntry: 9, EntryCount: 10, FenceBlockNo: 10, BlockCount: 10}},
		{"huge values", SealRecord{
			LogID: math.MaxInt64, SegmentID: math.MaxInt64, Epoch: math.MaxInt64,
			LastEntry: math.MaxInt64 - 1, EntryCount: math.MaxUint32, TotalBytes: math.MaxInt64, FenceBlockNo: math.MaxInt64,
			Objects: []SealObject{{Name: BlockName(math.MaxInt64 - 1), FirstEntry: math.MaxInt64 - math.MaxUint32, Count: math.MaxUint32, Size: math.MaxInt64}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := EncodeSeal(tt.r)
			if err != nil {
				t.Fatalf("EncodeSeal: %v", err)
			}
			got, err := DecodeSeal(b)
			if err != nil {
				t.Fatalf("DecodeSeal: %v", err)
			}
			if !sealEqual(got, tt.r) {
				t.Fatalf("round trip:\n got  %+v\n want %+v", got, tt.r)
			}
			if len(tt.r.Objects) > 0 && &got.Objects[0] == &tt.r.Objects[0] {
				t.Fatal("decoded objects alias the input")
			}
		})
	}
}

func TestEncodeSealRejects(t *testing.T) {
	mod := func(f func(r *SealRecord)) SealRecord {
		r := testSeal()
		r.Objects = slices.Clone(r.Objects)
		f(&r)
		return r
	}
	tests := []struct {
		name string
		r    SealRecord
		want string
	}{
		{"negative log", mod(func(r *SealRecord) { r.LogID = -1 }), "negative id"},
		{"negative epoch", mod(func(r *SealRecord) { r.Epoch = -1 }), "negative id"},
		{"negative bytes", mod(func(r *SealRecord) { r.TotalBytes = -1 }), "negative total bytes"},
		{"bad fence", mod(func(r *SealRecord) { r.FenceBlockNo = -2 }), "fence block -2"},
		{"empty with last entry", SealRecord{LastEntry: 0, FenceBlockNo: -1}, "no objects"},
		{"empty with count", SealRecord{LastEntry: -1, EntryCount: 1, FenceBlockNo: -1}, "no objects"},
		{"gap", mod(func(r *SealRecord) { r.Objects[1].FirstEntry = 5 }), "not contiguous"},
		{"overlap", mod(func(r *SealRecord) { r.Objects[2].FirstEntry = 4 }), "not contiguous"},
		{"negative first", mod(func(r *SealRecord) {
			for i := range r.Objects {
				r.Objects[i].FirstEntry -= 10
			}
			r.LastEntry -= 10
		}), "negative first entry"},
		{"zero count", mod(func(r *SealRecord) { r.Objects[1].Count = 0 }), "no entries"},
		{"zero size", mod(func(r *SealRecord) { r.Objects[1].Size = 0 }), "size 0"},
		{"empty name", mod(func(r *SealRecord) { r.Objects[0].Name = "" }), "invalid name"},
		{"slash in name", mod(func(r *SealRecord) { r.Objects[0].Name = "a/b" }), "invalid name"},
		{"long name", mod(func(r *SealRecord) { r.Objects[0].Name = strings.Repeat("a", 1025) }), "invalid name"},
		{"names out of order", mod(func(r *SealRecord) { r.Objects[0], r.Objects[1] = r.Objects[1], r.Objects[0] }), "does not sort after"},
		{"duplicate name", mod(func(r *SealRecord) { r.Objects[1].Name = r.Objects[0].Name }), "does not sort after"},
		{"count wrong", mod(func(r *SealRecord) { r.EntryCount = 11 }), "entry count 11, but the objects hold 10"},
		{"last entry wrong", mod(func(r *SealRecord) { r.LastEntry = 10 }), "last entry 10, but the objects end at 9"},
		{"block at fence", mod(func(r *SealRecord) { r.FenceBlockNo = 2 }), "at or above the fence"},
		{"negative block count", SealRecord{LastEntry: -1, FenceBlockNo: -1, BlockCount: -1}, "block count -1"},
		{"block count and index", mod(func(r *SealRecord) { r.BlockCount = 3 }), "block count 3 with 3 indexed objects"},
		{"blocks without entries", SealRecord{LastEntry: -1, FenceBlockNo: -1, BlockCount: 2}, "2 blocks but entry count 0"},
		{"fewer entries than blocks", SealRecord{LastEntry: 0, EntryCount: 1, FenceBlockNo: -1, BlockCount: 2}, "2 blocks but entry count 1"},
		{"index-less count wrong", SealRecord{LastEntry: 9, EntryCount: 9, FenceBlockNo: -1, BlockCount: 2}, "entry count 9 and last entry 9"},
		{"index-less blocks reach fence", SealRecord{LastEntry: 9, EntryCount: 10, FenceBlockNo: 1, BlockCount: 2}, "reach the fence"},
		{"overflow", SealRecord{LastEntry: 0, FenceBlockNo: -1, Objects: []SealObject{
			{Name: "a", FirstEntry: math.MaxInt64, Count: 1, Size: 1}}}, "overflow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := EncodeSeal(tt.r)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("EncodeSeal error %v, want one mentioning %q", err, tt.want)
			}
			if errors.Is(err, ErrCorrupt) {
				t.Fatalf("an invalid argument is not corruption: %v", err)
			}
		})
	}
}

// fixSealCRC recomputes the trailing CRC so that only structural and
// semantic checks can reject b.
func fixSealCRC(b []byte) []byte {
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32c(b[:len(b)-4]))
	return b
}

func TestDecodeSealCorruption(t *testing.T) {
	good, err := EncodeSeal(testSeal())
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(b []byte) []byte) []byte { return fixSealCRC(f(slices.Clone(good))) }
	firstObj := sealFixedSize // offset of the first object's name length
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"short", good[:sealFixedSize+3], "truncated"},
		{"bad magic", edit(func(b []byte) []byte { b[0] = 'X'; return b }), "bad magic"},
		{"block is not a seal", mustEncodeBlock(t, testHeader(), [][]byte{make([]byte, 100)}, CompressionNone), "bad magic"},
		{"bad version", edit(func(b []byte) []byte { b[4] = 7; return b }), "unsupported version 7"},
		{"crc", flipAt(good, 30), "CRC mismatch"},
		{"reserved", edit(func(b []byte) []byte { b[7] = 1; return b }), "reserved"},
		{"object count huge", edit(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[72:], math.MaxUint32); return b }), "cannot fit"},
		{"object count high", edit(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[72:], 4); return b }), "overruns"},
		{"object count low", edit(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[72:], 2); return b }), "bytes after the last object"},
		{"trailing byte", fixSealCRC(append(slices.Clone(good[:len(good)-4]), 0, 0, 0, 0, 0)), "bytes after the last object"},
		{"name length long", edit(func(b []byte) []byte { b[firstObj] = 100; return b }), "overruns"},
		{"name length non-minimal", fixSealCRC(slices.Concat(good[:firstObj], []byte{0x95, 0x00}, good[firstObj+1:])), "not minimally encoded"},
		{"name length malformed", edit(func(b []byte) []byte {
			return slices.Concat(b[:firstObj], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, b[firstObj+1:])
		}), "malformed"},
		{"block count with index", edit(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[64:], 1); return b }), "block count 1 with 3 indexed objects"},
		{"count inconsistent", edit(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[40:], 3); return b }), "entry count 3"},
		{"last entry inconsistent", edit(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[32:], 3); return b }), "last entry 3"},
		{"object entries not contiguous", edit(func(b []byte) []byte {
			// second object's firstEntry: after the first object's name and fields
			off := firstObj + 1 + len(BlockName(0)) + 20 + 1 + len(BlockName(1))
			binary.LittleEndian.PutUint64(b[off:], 99)
			return b
		}), "not contiguous"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := DecodeSeal(tt.data)
			requireCorrupt(t, err, tt.want)
			if r.Objects != nil || r.LogID != 0 {
				t.Fatalf("failed decode returned %+v", r)
			}
		})
	}
	for i := range len(good) * 8 {
		b := slices.Clone(good)
		b[i/8] ^= 1 << (i % 8)
		if _, err := DecodeSeal(b); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flipping bit %d: %v", i, err)
		}
	}
	for n := range len(good) {
		if _, err := DecodeSeal(good[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut at %d: %v", n, err)
		}
	}
}
