package segment

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/cockroachdb/errors"
)

func TestKeyLayout(t *testing.T) {
	tests := []struct {
		root                 string
		logPrefix, segPrefix string
		block, seal          string
	}{
		{"", "5/", "5/0000000000000000012/", "5/0000000000000000012/b-0000000000000000007", "5/0000000000000000012/seal"},
		{"wal", "wal/5/", "wal/5/0000000000000000012/", "wal/5/0000000000000000012/b-0000000000000000007", "wal/5/0000000000000000012/seal"},
		{"/a/b/", "a/b/5/", "a/b/5/0000000000000000012/", "a/b/5/0000000000000000012/b-0000000000000000007", "a/b/5/0000000000000000012/seal"},
	}
	for _, tt := range tests {
		t.Run(tt.root, func(t *testing.T) {
			if got := LogPrefix(tt.root, 5); got != tt.logPrefix {
				t.Errorf("LogPrefix = %q, want %q", got, tt.logPrefix)
			}
			if got := SegmentPrefix(tt.root, 5, 12); got != tt.segPrefix {
				t.Errorf("SegmentPrefix = %q, want %q", got, tt.segPrefix)
			}
			if got := BlockKey(tt.root, 5, 12, 7); got != tt.block {
				t.Errorf("BlockKey = %q, want %q", got, tt.block)
			}
			if got := SealKey(tt.root, 5, 12); got != tt.seal {
				t.Errorf("SealKey = %q, want %q", got, tt.seal)
			}
			l, s, b, ok := ParseBlockKey(tt.block)
			if !ok || l != 5 || s != 12 || b != 7 {
				t.Errorf("ParseBlockKey(%q) = %d, %d, %d, %v", tt.block, l, s, b, ok)
			}
			l, s, name, ok := ParseSegmentKey(tt.seal)
			if !ok || l != 5 || s != 12 || name != SealName {
				t.Errorf("ParseSegmentKey(%q) = %d, %d, %q, %v", tt.seal, l, s, name, ok)
			}
		})
	}
}

// Block keys sort like their block numbers, the seal sorts after every
// block, and segment prefixes sort like segment numbers.
func TestKeyOrdering(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	nums := []int64{0, 1, 9, 10, 99, 100, 1 << 31, math.MaxInt64 - 1, math.MaxInt64}
	for range 200 {
		nums = append(nums, rng.Int64N(1<<uint(rng.IntN(62)+1)))
	}
	slices.Sort(nums)
	nums = slices.Compact(nums)
	blocks := make([]string, len(nums))
	segs := make([]string, len(nums))
	for i, n := range nums {
		blocks[i] = BlockKey("r", 3, 4, n)
		segs[i] = SegmentPrefix("r", 3, n)
	}
	if !sort.StringsAreSorted(blocks) {
		t.Fatal("block keys do not sort in block order")
	}
	if !sort.StringsAreSorted(segs) {
		t.Fatal("segment prefixes do not sort in segment order")
	}
	if seal := SealKey("r", 3, 4); seal <= blocks[len(blocks)-1] {
		t.Fatalf("seal key %q sorts before block key %q", seal, blocks[len(blocks)-1])
	}
	for i, k := range blocks {
		if !strings.HasPrefix(k, SegmentPrefix("r", 3, 4)) {
			t.Fatalf("block key %q outside its segment prefix", k)
		}
		if _, _, b, ok := ParseBlockKey(k); !ok || b != nums[i] {
			t.Fatalf("ParseBlockKey(%q) = %d, %v", k, b, ok)
		}
	}
	// A log's prefix does not cover another log whose id shares its digits.
	if strings.HasPrefix(BlockKey("r", 55, 0, 0), LogPrefix("r", 5)) {
		t.Fatal("log 5's prefix covers log 55")
	}
}

func TestParseBlockKeyRejects(t *testing.T) {
	for _, key := range []string{
		"",
		"b-0000000000000000001",
		"0000000000000000001/b-0000000000000000001",
		"5/0000000000000000001/seal",
		"5/0000000000000000001/b-1",
		"5/0000000000000000001/b-00000000000000000001",
		"5/0000000000000000001/b--000000000000000001",
		"5/0000000000000000001/b-+000000000000000001",
		"5/0000000000000000001/b-9999999999999999999", // overflows int64
		"5/0000000000000000001/c-0000000000000000001",
		"5/1/b-0000000000000000001",
		"5/000000000000000000x/b-0000000000000000001",
		"05/0000000000000000001/b-0000000000000000001",
		"-5/0000000000000000001/b-0000000000000000001",
		"+5/0000000000000000001/b-0000000000000000001",
		"/0000000000000000001/b-0000000000000000001",
		"5/0000000000000000001/b-0000000000000000001/",
		"5/0000000000000000001/b-000000000000000000 1",
	} {
		if l, s, b, ok := ParseBlockKey(key); ok {
			t.Errorf("ParseBlockKey(%q) = %d, %d, %d, ok", key, l, s, b)
		}
	}
	if _, ok := ParseBlockName(BlockName(math.MaxInt64)); !ok {
		t.Error("ParseBlockName rejects the largest block number")
	}
	if _, _, _, ok := ParseBlockKey(BlockKey("", 0, 0, 0)); !ok {
		t.Error("ParseBlockKey rejects log 0 segment 0 block 0")
	}
}

func TestFenceRoundTrip(t *testing.T) {
	for _, f := range []FenceInfo{{}, {1, 2, 3, 4}, {1, 2, -1, 4}, {math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt64}} {
		b := EncodeFence(f)
		if len(b) != FenceSize || !IsFence(b) {
			t.Fatalf("EncodeFence(%+v) = %x", f, b)
		}
		got, err := DecodeFence(b)
		if err != nil || got != f {
			t.Fatalf("DecodeFence = %+v, %v; want %+v", got, err, f)
		}
	}
	if FenceSize >= BlockHeaderSize+BlockTrailerSize+1 {
		t.Fatalf("a fence (%d bytes) is not smaller than the smallest block", FenceSize)
	}
	block := mustEncodeBlock(t, testHeader(), [][]byte{{}}, CompressionNone)
	if int64(len(block)) != BlockHeaderSize+BlockTrailerSize+1 {
		t.Fatalf("smallest block is %d bytes", len(block))
	}
	if IsFence(block) || IsFence(nil) || IsFence([]byte("WPF")) {
		t.Fatal("IsFence accepts a non-fence")
	}
}

func TestFenceCorruption(t *testing.T) {
	good := EncodeFence(FenceInfo{1, 2, 3, 4})
	withCRC := func(mutate func([]byte)) []byte {
		b := slices.Clone(good)
		mutate(b)
		binary.LittleEndian.PutUint32(b[40:], crc32c(b[:40]))
		return b
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "size 0"},
		{"short", good[:FenceSize-1], "size 43"},
		{"long", append(slices.Clone(good), 0), "size 45"},
		{"block", append([]byte("WPBK"), good[4:]...), "bad magic"},
		{"version", withCRC(func(b []byte) { b[4] = 9 }), "unsupported version 9"},
		{"reserved", withCRC(func(b []byte) { b[6] = 1 }), "reserved"},
		{"crc", flipAt(good, 20), "CRC mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeFence(tt.data)
			requireCorrupt(t, err, tt.want)
		})
	}
	for i := range FenceSize * 8 {
		b := slices.Clone(good)
		b[i/8] ^= 1 << (i % 8)
		if _, err := DecodeFence(b); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flipping bit %d: %v", i, err)
		}
	}
}
