package journal

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cockroachdb/errors"
	"go.uber.org/goleak"

	"github.com/woodpecker-wal/woodpecker/internal/vfs"
	"github.com/woodpecker-wal/woodpecker/internal/vfs/errorfs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T, fsys vfs.FS, dir string) *Dir {
	t.Helper()
	d, err := Open(fsys, dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func replay(t *testing.T, d *Dir) []Segment {
	t.Helper()
	segs, err := d.Replay()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range segs {
			if s.File != nil {
				_ = s.File.Close()
			}
		}
	})
	return segs
}

// faultyFile creates the file of log 1 segment 2 in a fresh journal, on a
// file system that injects the faults the test asks for.
func faultyFile(t *testing.T) (string, *errorfs.FS, *File) {
	t.Helper()
	dir := t.TempDir()
	efs := errorfs.Wrap(vfs.Default)
	f, err := open(t, efs, dir).Create(1, 2)
	if err != nil {
		t.Fatal(err)
	}
	return dir, efs, f
}

func blockRec(n int64, size int) Record {
	return Record{Kind: KindBlock, N: n, Data: bytes.Repeat([]byte{byte('a' + n)}, size)}
}

func equalRecords(a, b []Record) bool {
	return slices.EqualFunc(a, b, func(x, y Record) bool {
		return x.Kind == y.Kind && x.N == y.N && bytes.Equal(x.Data, y.Data)
	})
}

func TestAppendedRecordsAreReplayedInOrderAfterAReopen(t *testing.T) {
	dir := t.TempDir()
	d := open(t, nil, dir)
	f, err := d.Create(7, 3)
	if err != nil {
		t.Fatal(err)
	}
	// Small records go out with their header, large ones from the
	// caller's bytes: both kinds, in one append and across appends.
	want := []Record{blockRec(0, 100), blockRec(1, 64<<10), {Kind: KindDropped, N: 0}}
	if err := f.Append(want[0], want[1]); err != nil {
		t.Fatal(err)
	}
	if err := f.Append(want[2]); err != nil {
		t.Fatal(err)
	}
	want = append(want, Record{Kind: KindFence})
	if err := f.Append(want[3]); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()

	segs := replay(t, open(t, nil, dir))
	if len(segs) != 1 || segs[0].Log != 7 || segs[0].Seg != 3 || segs[0].Released {
		t.Fatalf("replayed %+v, want one open segment 7/3", segs)
	}
	if !equalRecords(segs[0].Records, want) {
		t.Fatalf("replayed %d records, want the %d appended, in order", len(segs[0].Records), len(want))
	}
	// The replayed file takes more records after the ones it holds.
	more := blockRec(2, 10)
	if err := segs[0].File.Append(more); err != nil {
		t.Fatal(err)
	}
	_ = segs[0].File.Close()
	again := replay(t, open(t, nil, dir))
	if !equalRecords(again[0].Records, append(want, more)) {
		t.Fatalf("after an append to the replayed file: %d records, want %d", len(again[0].Records), len(want)+1)
	}
}

func TestReplayCutsATornTailAndKeepsWhatCameBefore(t *testing.T) {
	dir, efs, f := faultyFile(t)
	if err := f.Append(blockRec(0, 5000)); err != nil {
		t.Fatal(err)
	}
	// A crash in the middle of the next block's write: its header and
	// part of its bytes reached the file, and the truncation that would
	// undo them never ran.
	efs.Inject(errorfs.Rule{Op: errorfs.OpWrite, Nth: 2, TornAfter: 1000})
	efs.Inject(errorfs.Rule{Op: errorfs.OpTruncate})
	err := f.Append(blockRec(1, 5000))
	if !errors.Is(err, ErrBroken) {
		t.Fatalf("append whose write failed and could not be undone: %v, want ErrBroken", err)
	}
	if err := f.Append(blockRec(2, 10)); !errors.Is(err, ErrBroken) {
		t.Fatalf("append to a broken file: %v, want ErrBroken", err)
	}
	_ = f.Close()
	efs.ClearRules()

	segs := replay(t, open(t, nil, dir))
	if len(segs) != 1 || !equalRecords(segs[0].Records, []Record{blockRec(0, 5000)}) {
		t.Fatalf("replayed %+v, want block 0 only", segs)
	}
	if err := segs[0].File.Append(blockRec(3, 10)); err != nil {
		t.Fatal(err)
	}
	_ = segs[0].File.Close()
	if got := replay(t, open(t, nil, dir))[0].Records; !equalRecords(got, []Record{blockRec(0, 5000), blockRec(3, 10)}) {
		t.Fatalf("a record appended after the cut is lost to the next replay: %d records", len(got))
	}
}

func TestFailedWriteIsUndoneAndTheFileStaysUsable(t *testing.T) {
	dir, efs, f := faultyFile(t)
	inj := efs.Inject(errorfs.Rule{Op: errorfs.OpWrite, TornAfter: 7})
	if err := f.Append(blockRec(0, 100)); err == nil || errors.Is(err, ErrBroken) {
		t.Fatalf("append whose write failed: %v, want a plain error", err)
	}
	inj.Remove()
	if err := f.Append(blockRec(1, 100)); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	if got := replay(t, open(t, nil, dir))[0].Records; !equalRecords(got, []Record{blockRec(1, 100)}) {
		t.Fatalf("replayed %d records, want block 1 only", len(got))
	}
}

func TestFailedSyncBreaksTheFileUntilARewrite(t *testing.T) {
	dir, efs, f := faultyFile(t)
	if err := f.Append(blockRec(0, 100)); err != nil {
		t.Fatal(err)
	}
	inj := efs.Inject(errorfs.Rule{Op: errorfs.OpSync, DropUnsynced: true})
	if err := f.Append(blockRec(1, 100)); !errors.Is(err, ErrBroken) {
		t.Fatalf("append whose sync failed: %v, want ErrBroken", err)
	}
	inj.Remove()
	if err := f.Append(blockRec(2, 100)); !errors.Is(err, ErrBroken) {
		t.Fatalf("append after a failed sync: %v, want ErrBroken (what the sync covered may be gone)", err)
	}
	want := []Record{{Kind: KindFence}, blockRec(0, 100), blockRec(2, 100)}
	if err := f.Rewrite(want...); err != nil {
		t.Fatal(err)
	}
	more := Record{Kind: KindDropped, N: 0}
	if err := f.Append(more); err != nil {
		t.Fatalf("append after a rewrite: %v", err)
	}
	_ = f.Close()
	segs := replay(t, open(t, nil, dir))
	if len(segs) != 1 || !equalRecords(segs[0].Records, append(want, more)) {
		t.Fatalf("replayed %+v, want the rewritten records and the one after", segs)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, segmentsDir)); len(entries) != 1 {
		t.Fatalf("the segments directory holds %d files after a rewrite, want 1", len(entries))
	}
}

func TestReleasedSegmentIsATombstoneUntilForgotten(t *testing.T) {
	dir := t.TempDir()
	d := open(t, nil, dir)
	f, err := d.Create(4, 9)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Append(blockRec(0, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := f.Release(); err != nil {
		t.Fatal(err)
	}
	_ = f.Close() // idempotent after Release
	// A file made for the segment again before its tombstone went does
	// not bring it back.
	again, err := d.Create(4, 9)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Append(blockRec(1, 10)); err != nil {
		t.Fatal(err)
	}
	_ = again.Close()
	segs := replay(t, open(t, nil, dir))
	if len(segs) != 1 || !segs[0].Released || segs[0].File != nil || len(segs[0].Records) != 0 {
		t.Fatalf("replayed %+v, want the tombstone of 4/9", segs)
	}
	info, err := os.Stat(filepath.Join(dir, segmentsDir, "4-9.released"))
	if err != nil || info.Size() != 0 {
		t.Fatalf("tombstone: %v, %v; want an empty file", info, err)
	}
	if err := d.Forget(4, 9); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, segmentsDir, "4-9.wal")); err != nil {
		t.Fatal(err)
	}
	if segs := replay(t, open(t, nil, dir)); len(segs) != 0 {
		t.Fatalf("replayed %+v after Forget, want nothing", segs)
	}
}

func TestInterruptedCreateLeavesNoSegment(t *testing.T) {
	dir := t.TempDir()
	open(t, nil, dir)
	// The file exists but its header never made it.
	if err := os.WriteFile(filepath.Join(dir, segmentsDir, "5-6.wal"), []byte("wpj"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Leftovers of an interrupted rewrite are not segments either.
	if err := os.WriteFile(filepath.Join(dir, segmentsDir, "5-7.tmp123"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if segs := replay(t, open(t, nil, dir)); len(segs) != 0 {
		t.Fatalf("replayed %+v, want nothing", segs)
	}
	if _, err := os.Stat(filepath.Join(dir, segmentsDir, "5-6.wal")); !os.IsNotExist(err) {
		t.Fatalf("the unfinished file is still there: %v", err)
	}
}

func TestReplayRefusesAFileOfAnotherSegment(t *testing.T) {
	dir := t.TempDir()
	d := open(t, nil, dir)
	f, err := d.Create(1, 1)
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	segs := filepath.Join(dir, segmentsDir)
	if err := os.Rename(filepath.Join(segs, "1-1.wal"), filepath.Join(segs, "1-2.wal")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Replay(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("replay of a file named for another segment: %v, want ErrCorrupt", err)
	}
}

func TestRevisionIsTheFirstRegistrationsAndTheDirectoryOneNodes(t *testing.T) {
	dir := t.TempDir()
	d := open(t, nil, dir)
	if rev, err := d.Revision("ls-1", 40); err != nil || rev != 40 {
		t.Fatalf("first use: %d, %v; want 40", rev, err)
	}
	d = open(t, nil, dir)
	if rev, err := d.Revision("ls-1", 90); err != nil || rev != 40 {
		t.Fatalf("after a restart registered at 90: %d, %v; want the first registration's 40", rev, err)
	}
	if _, err := d.Revision("ls-2", 95); err == nil {
		t.Fatal("another node took over the directory")
	}
	if _, err := d.Revision("ls-1", 30); err == nil {
		t.Fatal("the journal of revision 40 was taken by an etcd at revision 30 (another cluster)")
	}
}

func FuzzDecodeRecords(f *testing.F) {
	var seed []byte
	for _, r := range []Record{blockRec(0, 30), {Kind: KindFence}, {Kind: KindDropped, N: 5}} {
		seed = AppendRecord(seed, r)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)-3])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, n := DecodeRecords(b)
		if n < 0 || n > len(b) {
			t.Fatalf("valid prefix %d of %d bytes", n, len(b))
		}
		// The valid prefix is exactly the records, re-encoded.
		var again []byte
		for _, r := range recs {
			again = AppendRecord(again, r)
		}
		if !bytes.Equal(again, b[:n]) {
			t.Fatalf("re-encoding %d records gives %d bytes, not the %d-byte prefix", len(recs), len(again), n)
		}
	})
}
