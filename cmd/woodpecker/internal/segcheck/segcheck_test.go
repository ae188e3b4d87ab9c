package segcheck

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/segment"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	logID = 4
	segID = 2
	epoch = 3
)

// blocks encodes n blocks of segment segID, each of per entries "e<id>".
func blocks(t *testing.T, n, per int) [][]byte {
	t.Helper()
	var out [][]byte
	next := int64(0)
	for b := range n {
		var entries [][]byte
		for range per {
			entries = append(entries, fmt.Appendf(nil, "e%d", next))
			next++
		}
		h := segment.BlockHeader{LogID: logID, SegmentID: segID, FirstEntry: next - int64(per), Epoch: epoch, BlockNo: int64(b)}
		data, err := segment.EncodeBlock(nil, h, entries, segment.CompressionNone)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

func seal(t *testing.T, blocks int64, last int64) []byte {
	t.Helper()
	rec, err := segment.EncodeSealInfo(logID, segID, epoch, segment.SealInfo{LastEntry: last, Blocks: blocks, Bytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func fileOf(data []byte, sealRec []byte) File {
	return File{Seg: bytes.NewReader(data), Size: int64(len(data)), Path: "seg", Seal: sealRec, SealPath: "seal", FencePath: "fence"}
}

func sealed(blocks, last int64) Expect {
	return Expect{LogID: logID, SegmentID: segID, Sealed: true, Blocks: blocks, LastEntry: last}
}

var open = Expect{LogID: logID, SegmentID: segID, LastEntry: -1}

// wantFindings checks a report: problems and notes each containing the
// substrings given, in order, and nothing else.
func wantFindings(t *testing.T, r *Report, problems, notes []string) {
	t.Helper()
	var got []string
	for _, p := range r.Problems {
		got = append(got, p.What)
	}
	match := func(kind string, got, want []string) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: got %d %q, want %d matching %q", kind, len(got), got, len(want), want)
			return
		}
		for i := range want {
			if !strings.Contains(got[i], want[i]) {
				t.Errorf("%s %d: %q does not contain %q", kind, i, got[i], want[i])
			}
		}
	}
	match("problems", got, problems)
	match("notes", r.Notes, notes)
}

func TestFileHealthy(t *testing.T) {
	bs := blocks(t, 3, 4)
	r, err := CheckFile(fileOf(bytes.Join(bs, nil), seal(t, 3, 11)), sealed(3, 11), Options{KeepEntries: true})
	if err != nil {
		t.Fatal(err)
	}
	wantFindings(t, r, nil, nil)
	if r.Entries != 12 || r.LastEntry != 11 || len(r.Blocks) != 3 {
		t.Fatalf("report: %d entries, last %d, %d blocks; want 12, 11, 3", r.Entries, r.LastEntry, len(r.Blocks))
	}
	if got := string(r.Blocks[2].Entries[3]); got != "e11" {
		t.Fatalf("kept entry = %q, want e11", got)
	}
	if r.Blocks[1].Loc.Offset != int64(len(bs[0])) {
		t.Fatalf("block 1 at offset %d, want %d", r.Blocks[1].Loc.Offset, len(bs[0]))
	}
	if got := r.Summary(); got != "3 blocks, entries 0..11 (12)" {
		t.Fatalf("Summary = %q", got)
	}
}

func TestFileDamage(t *testing.T) {
	bs := blocks(t, 3, 4)
	whole := bytes.Join(bs, nil)
	off1 := int64(len(bs[0]))
	off2 := off1 + int64(len(bs[1]))
	flip := func(at int64) []byte {
		d := bytes.Clone(whole)
		d[at] ^= 0x40
		return d
	}
	tests := []struct {
		name     string
		data     []byte
		sealRec  []byte
		ex       Expect
		problems []string
		notes    []string
		entries  int64
		summary  string
	}{
		{
			name: "body byte of a middle block", summary: "3 blocks (1 corrupt), entries 0..11 (8 readable)",
			data: flip(off1 + segment.BlockHeaderSize + 2), sealRec: seal(t, 3, 11), ex: sealed(3, 11),
			problems: []string{fmt.Sprintf("block 1: corrupt block at byte %d of the block (file offset %d): body CRC mismatch",
				segment.BlockHeaderSize+len(bs[1])-segment.BlockHeaderSize-4, off1+int64(len(bs[1]))-4)},
			entries: 8,
		},
		{
			name: "header byte of a middle block",
			data: flip(off1 + 20), sealRec: seal(t, 3, 11), ex: sealed(3, 11),
			problems: []string{fmt.Sprintf("bytes %d..%d, where block 1 should be, are not a valid block", off1, off2-1)},
			entries:  8,
		},
		{
			name: "valid blocks with a gap in the entries",
			data: func() []byte {
				b1, err := segment.EncodeBlock(nil, segment.BlockHeader{LogID: logID, SegmentID: segID, FirstEntry: 5, Epoch: epoch, BlockNo: 1},
					[][]byte{[]byte("x")}, segment.CompressionNone)
				if err != nil {
					t.Fatal(err)
				}
				return append(bytes.Clone(bs[0]), b1...)
			}(),
			ex:       open,
			problems: []string{"block 1 starts at entry 5, want 4"},
			entries:  5,
		},
		{
			name: "torn tail of an open segment",
			data: whole[:off2+30], ex: open,
			notes:   []string{fmt.Sprintf("torn tail: the last 30 bytes (from offset %d, where block 2 would be)", off2)},
			entries: 8,
		},
		{
			name: "last block of an open segment cut inside its body",
			data: whole[:len(whole)-3], ex: open,
			notes:   []string{"block 2 is cut short"},
			entries: 8,
		},
		{
			name: "sealed segment missing its last block",
			data: whole[:off2], sealRec: seal(t, 3, 11), ex: sealed(3, 11),
			problems: []string{"the file ends where block 2 should start, but the seal says it holds blocks up to 2"},
			entries:  8,
		},
		{
			name: "bytes after the sealed blocks",
			data: whole, sealRec: seal(t, 2, 7), ex: sealed(2, 7),
			notes:   []string{fmt.Sprintf("%d bytes of the file after block 1 (from offset %d)", len(bs[2]), off2)},
			entries: 8,
		},
		{
			name: "seal record missing",
			data: whole, ex: sealed(3, 11),
			problems: []string{"seal record seal is missing"},
			entries:  12,
		},
		{
			name: "seal record disagrees with etcd",
			data: whole, sealRec: seal(t, 3, 11), ex: sealed(3, 12),
			problems: []string{"seal record says 3 blocks ending at entry 11, etcd says 3 blocks ending at entry 12"},
			entries:  12,
		},
		{
			name: "corrupt seal record",
			data: whole, sealRec: func() []byte { s := seal(t, 3, 11); s[10] ^= 1; return s }(), ex: sealed(3, 11),
			problems: []string{"seal record: corrupt seal record"},
			entries:  12,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := CheckFile(fileOf(tt.data, tt.sealRec), tt.ex, Options{})
			if err != nil {
				t.Fatal(err)
			}
			wantFindings(t, r, tt.problems, tt.notes)
			if r.Entries != tt.entries {
				t.Errorf("entries = %d, want %d", r.Entries, tt.entries)
			}
			if tt.summary != "" && r.Summary() != tt.summary {
				t.Errorf("Summary = %q, want %q", r.Summary(), tt.summary)
			}
		})
	}
}

// TestFileBlockOfAnotherSegment: a valid block that does not belong is
// named as such.
func TestFileBlockOfAnotherSegment(t *testing.T) {
	bs := blocks(t, 2, 1)
	other, err := segment.EncodeBlock(nil, segment.BlockHeader{LogID: logID, SegmentID: segID + 1, FirstEntry: 1, Epoch: epoch, BlockNo: 1},
		[][]byte{[]byte("x")}, segment.CompressionNone)
	if err != nil {
		t.Fatal(err)
	}
	r, err := CheckFile(fileOf(append(bytes.Clone(bs[0]), other...), nil), open, Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantFindings(t, r, []string{fmt.Sprintf("block 1 belongs to log %d segment %d", logID, segID+1)}, nil)
}

func TestFileMissing(t *testing.T) {
	r, err := CheckFile(File{Path: "seg", SealPath: "seal", Seal: seal(t, 2, 5)}, sealed(2, 5), Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantFindings(t, r, []string{"segment file seg is missing but the seal says it holds 2 blocks"}, nil)

	r, err = CheckFile(File{Path: "seg"}, open, Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantFindings(t, r, nil, nil)
}

func TestObjects(t *testing.T) {
	ctx := context.Background()
	prefix := segment.SegmentPrefix("", logID, segID)
	put := func(t *testing.T, s *memstore.Store, key string, data []byte) {
		t.Helper()
		if err := s.Put(ctx, key, data, objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	fence := func(no int64) []byte {
		return segment.EncodeFence(segment.FenceInfo{LogID: logID, SegmentID: segID, BlockNo: no, Epoch: epoch + 1})
	}
	bs := blocks(t, 4, 2)
	tests := []struct {
		name     string
		slots    map[int64][]byte
		sealRec  []byte
		ex       Expect
		problems []string
		notes    []string
		entries  int64
	}{
		{
			name:    "healthy sealed",
			slots:   map[int64][]byte{0: bs[0], 1: bs[1], 2: bs[2]},
			sealRec: seal(t, 3, 5), ex: sealed(3, 5), entries: 6,
		},
		{
			name: "corrupt block",
			slots: map[int64][]byte{0: bs[0], 1: func() []byte {
				d := bytes.Clone(bs[1])
				d[len(d)-6] ^= 1
				return d
			}(), 2: bs[2]},
			sealRec: seal(t, 3, 5), ex: sealed(3, 5),
			problems: []string{"block 1: corrupt block at byte"},
			entries:  4,
		},
		{
			name:    "missing block",
			slots:   map[int64][]byte{0: bs[0], 2: bs[2]},
			sealRec: seal(t, 3, 5), ex: sealed(3, 5),
			problems: []string{"block 1 is missing"},
			entries:  4,
		},
		{
			name:    "recovered: fence and a zombie's block above it",
			slots:   map[int64][]byte{0: bs[0], 1: bs[1], 2: fence(2), 3: bs[3]},
			sealRec: seal(t, 2, 3), ex: sealed(2, 3),
			notes:   []string{"fence in slot 2 placed by recovery", "1 objects above the segment's end (slot 2)"},
			entries: 4,
		},
		{
			name:    "open with an upload in flight",
			slots:   map[int64][]byte{0: bs[0], 1: bs[1], 3: bs[3]},
			ex:      open,
			notes:   []string{"block 2 is not written yet"},
			entries: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := memstore.New()
			for no, data := range tt.slots {
				put(t, s, prefix+segment.BlockName(no), data)
			}
			if tt.sealRec != nil {
				put(t, s, prefix+segment.SealName, tt.sealRec)
			}
			put(t, s, segment.SegmentPrefix("", logID, segID+1)+segment.BlockName(0), bs[0]) // another segment: ignored
			r, err := CheckObjects(ctx, s, prefix, tt.ex, Options{})
			if err != nil {
				t.Fatal(err)
			}
			wantFindings(t, r, tt.problems, tt.notes)
			if r.Entries != tt.entries {
				t.Errorf("entries = %d, want %d", r.Entries, tt.entries)
			}
			for _, p := range r.Problems {
				if p.Block >= 0 && !strings.HasPrefix(p.Loc.Key, prefix) {
					t.Errorf("problem %q located at %q, want a key under %s", p.What, p.Loc, prefix)
				}
			}
		})
	}
}

// TestCompactedLayout checks a segment compacted once: blocks 0 and 1
// merged into one object, block 2 left as it was, and the replaced block
// objects still there for their grace period.
func TestCompactedLayout(t *testing.T) {
	ctx := context.Background()
	prefix := segment.SegmentPrefix("", logID, segID)
	bs := blocks(t, 3, 2)
	merged := segment.MergedObjectName(0, 1)
	mergedData := append(bytes.Clone(bs[0]), bs[1]...)
	rec, err := segment.EncodeSeal(segment.SealRecord{LogID: logID, SegmentID: segID, Epoch: epoch, LastEntry: 5, EntryCount: 6,
		TotalBytes: 12, FenceBlockNo: -1, Objects: []segment.SealObject{
			{Name: merged, FirstEntry: 0, Count: 4, Size: int64(len(mergedData))},
			{Name: segment.BlockName(2), FirstEntry: 4, Count: 2, Size: int64(len(bs[2]))},
		}})
	if err != nil {
		t.Fatal(err)
	}
	ex := Expect{LogID: logID, SegmentID: segID, Sealed: true, Blocks: 3, LastEntry: 5, Generation: 1}
	build := func(t *testing.T, mergedData []byte) *memstore.Store {
		t.Helper()
		s := memstore.New()
		for key, data := range map[string][]byte{
			prefix + segment.BlockName(0): bs[0], prefix + segment.BlockName(1): bs[1], prefix + segment.BlockName(2): bs[2],
			prefix + segment.SealName: seal(t, 3, 5), prefix + merged: mergedData, prefix + segment.LayoutSealName(1): rec,
		} {
			if err := s.Put(ctx, key, data, objstore.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}

	r, err := CheckObjects(ctx, build(t, mergedData), prefix, ex, Options{KeepEntries: true})
	if err != nil {
		t.Fatal(err)
	}
	wantFindings(t, r, nil, []string{"3 objects are not part of layout 1"})
	if r.Entries != 6 || len(r.Blocks) != 3 || r.Blocks[1].Loc.String() != fmt.Sprintf("%s%s at offset %d", prefix, merged, len(bs[0])) {
		t.Fatalf("compacted layout: %d entries, blocks %+v", r.Entries, r.Blocks)
	}

	bad := bytes.Clone(mergedData)
	bad[len(bs[0])+segment.BlockHeaderSize+1] ^= 0x10 // inside block 1's entries
	r, err = CheckObjects(ctx, build(t, bad), prefix, ex, Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantFindings(t, r, []string{fmt.Sprintf("block 1: corrupt block at byte %d of the block (object offset %d): body CRC mismatch",
		len(bs[1])-4, len(mergedData)-4)}, []string{"3 objects are not part of layout 1"})
	if got := r.Problems[0].Loc.String(); got != fmt.Sprintf("%s%s at offset %d", prefix, merged, len(bs[0])) {
		t.Errorf("problem located at %q", got)
	}

	r, err = CheckObjects(ctx, build(t, mergedData[:len(bs[0])]), prefix, ex, Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantFindings(t, r, []string{
		fmt.Sprintf("object %s%s holds %d bytes, the index says %d", prefix, merged, len(bs[0]), len(mergedData)),
		"ends where block 1 should start, but the layout says it holds blocks up to 1",
	}, []string{"3 objects are not part of layout 1"})
}
