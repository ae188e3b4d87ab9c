package errorfs_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/woodpecker-wal/woodpecker/internal/vfs"
	"github.com/woodpecker-wal/woodpecker/internal/vfs/errorfs"
)

func create(t *testing.T, fsys vfs.FS, name string) vfs.File {
	t.Helper()
	f, err := fsys.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func fileSize(t *testing.T, name string) int64 {
	t.Helper()
	st, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// Which of a run of fsyncs a rule fails, by Nth and Times.
func TestRuleFiresOnTheNthMatch(t *testing.T) {
	for _, tc := range []struct {
		nth, times int
		want       string // one letter per sync: F failed, . succeeded
	}{
		{0, 0, "FFFFFF"},
		{1, 0, "F....."},
		{3, 0, "..F..."},
		{2, 2, ".FF..."},
		{4, -1, "...FFF"},
		{0, 2, "FF...."},
	} {
		t.Run(tc.want, func(t *testing.T) {
			fsys := errorfs.Wrap(vfs.Default)
			f := create(t, fsys, filepath.Join(t.TempDir(), "x.seg"))
			inj := fsys.Inject(errorfs.Rule{Op: errorfs.OpSync, Nth: tc.nth, Times: tc.times})
			var got strings.Builder
			for range len(tc.want) {
				if err := f.Sync(); errors.Is(err, errorfs.ErrInjected) {
					got.WriteByte('F')
				} else if err != nil {
					t.Fatal(err)
				} else {
					got.WriteByte('.')
				}
			}
			if got.String() != tc.want {
				t.Fatalf("syncs %s, want %s", got.String(), tc.want)
			}
			if n := strings.Count(tc.want, "F"); inj.Fired() != n {
				t.Fatalf("Fired() = %d, want %d", inj.Fired(), n)
			}
		})
	}
}

// Rules select by kind, by the base name's pattern and by predicate.
func TestRuleSelects(t *testing.T) {
	dir := t.TempDir()
	fsys := errorfs.Wrap(vfs.Default)
	seg := create(t, fsys, filepath.Join(dir, "a.seg"))
	other := create(t, fsys, filepath.Join(dir, "a.seal"))
	fsys.Inject(errorfs.Rule{Op: errorfs.OpSync, Pattern: "*.seg", Times: -1})
	fsys.Inject(errorfs.Rule{Op: errorfs.OpWrite, Times: -1, Match: func(in errorfs.Info) bool { return in.Len > 10 }})
	if err := other.Sync(); err != nil {
		t.Fatalf("sync of a file the pattern does not match: %v", err)
	}
	if err := seg.Sync(); !errors.Is(err, errorfs.ErrInjected) {
		t.Fatalf("sync of a .seg file: %v, want the injected error", err)
	}
	if _, err := seg.Write(make([]byte, 10)); err != nil {
		t.Fatalf("short write: %v", err)
	}
	if _, err := seg.Write(make([]byte, 11)); !errors.Is(err, errorfs.ErrInjected) {
		t.Fatalf("long write: %v, want the injected error", err)
	}
	var pe *fs.PathError
	if err := seg.Sync(); !errors.As(err, &pe) || pe.Op != "sync" || pe.Path != seg.Name() {
		t.Fatalf("injected error %v is not a *fs.PathError naming the sync and the file", err)
	}
	if got := fsys.Count(errorfs.OpSync); got != 3 {
		t.Fatalf("Count(OpSync) = %d, want 3", got)
	}
	fsys.ClearRules()
	if err := seg.Sync(); err != nil {
		t.Fatalf("sync after ClearRules: %v", err)
	}
}

// A torn write puts its first bytes in the file, then fails; an errno
// given as the error is what errors.Is finds.
func TestTornWriteWithoutSpace(t *testing.T) {
	name := filepath.Join(t.TempDir(), "x.seg")
	fsys := errorfs.Wrap(vfs.Default)
	f := create(t, fsys, name)
	fsys.Inject(errorfs.Rule{Op: errorfs.OpWrite, Nth: 2, TornAfter: 3, Err: syscall.ENOSPC})
	if _, err := f.WriteAt([]byte("hello"), 0); err != nil {
		t.Fatal(err)
	}
	n, err := f.WriteAt([]byte("world"), 5)
	if n != 3 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("torn write: %d, %v; want 3, ENOSPC", n, err)
	}
	data, err := os.ReadFile(name)
	if err != nil || string(data) != "hellowor" {
		t.Fatalf("file holds %q %v, want %q", data, err, "hellowor")
	}
}

// A sync that drops unsynced data cuts the file back to its size at the
// last successful sync.
func TestFailedSyncDropsUnsyncedData(t *testing.T) {
	name := filepath.Join(t.TempDir(), "x.seg")
	fsys := errorfs.Wrap(vfs.Default)
	f := create(t, fsys, name)
	if _, err := f.Write([]byte("durable")); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	fsys.Inject(errorfs.Rule{Op: errorfs.OpSync, Times: 1, DropUnsynced: true, Err: syscall.EIO})
	if _, err := f.Write([]byte("lost")); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("sync: %v, want EIO", err)
	}
	if got := fileSize(t, name); got != int64(len("durable")) {
		t.Fatalf("file is %d bytes after the failed sync, want %d", got, len("durable"))
	}
}

// A removed rule stops firing; path operations are selected too.
func TestRemoveRuleAndPathOperations(t *testing.T) {
	dir := t.TempDir()
	fsys := errorfs.Wrap(vfs.Default)
	inj := fsys.Inject(errorfs.Rule{Op: errorfs.OpMkdir, Pattern: "sub", Err: syscall.EACCES, Times: -1})
	if err := fsys.MkdirAll(filepath.Join(dir, "sub"), 0o755); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("mkdir: %v, want EACCES", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "sub")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a failed mkdir made the directory (%v)", err)
	}
	inj.Remove()
	inj.Remove()
	if err := fsys.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatalf("mkdir after Remove: %v", err)
	}
	if inj.Fired() != 1 {
		t.Fatalf("Fired() = %d, want 1", inj.Fired())
	}
}
