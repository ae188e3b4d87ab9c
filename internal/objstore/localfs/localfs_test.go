package localfs

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/errors"
	"go.uber.org/goleak"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/vfs"
	"github.com/woodpecker-wal/woodpecker/internal/vfs/errorfs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openDir(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(t.Context(), Config{Dir: dir})
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	return s
}

func listKeys(t *testing.T, s objstore.Store, prefix string) []string {
	t.Helper()
	objs, err := objstore.ListAll(t.Context(), s, prefix, "")
	if err != nil {
		t.Fatalf("list %q: %v", prefix, err)
	}
	keys := []string{}
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	return keys
}

// filesUnder lists every file and directory below dir, relative, sorted.
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			if d.IsDir() {
				rel += "/"
			}
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// TestCrashBeforeLink: a put that dies after writing and syncing its
// temporary file, before linking it into place, leaves no visible object;
// the slot stays free for a create-only put, and the leftover is never
// listed.
func TestCrashBeforeLink(t *testing.T) {
	for _, createOnly := range []bool{true, false} {
		t.Run(fmt.Sprintf("createOnly=%v", createOnly), func(t *testing.T) {
			s := openDir(t, t.TempDir())
			key := "seg/1/b-6"
			dir := filepath.Dir(filepath.Join(s.Root(), filepath.FromSlash(key)))
			tmp, d, err := s.writeTemp(dir, []byte("zombie data"))
			if err != nil {
				t.Fatal(err)
			}
			_ = d.Close() // the process "dies" here: no link, no rename

			if _, err := os.Stat(tmp); err != nil {
				t.Fatalf("the temporary file should be left behind: %v", err)
			}
			ctx := t.Context()
			if _, err := s.Stat(ctx, key); !errors.Is(err, objstore.ErrNotFound) {
				t.Fatalf("stat after a crash before link: %v, want ErrNotFound", err)
			}
			if keys := listKeys(t, s, ""); len(keys) != 0 {
				t.Fatalf("list after a crash before link: %v, want nothing", keys)
			}
			if err := s.Put(ctx, key, []byte("recovery"), objstore.PutOptions{IfNotExists: createOnly}); err != nil {
				t.Fatalf("put into the slot: %v", err)
			}
			if keys := listKeys(t, s, ""); len(keys) != 1 || keys[0] != key {
				t.Fatalf("list = %v, want just %q", keys, key)
			}
			got, err := s.Get(ctx, key)
			if err != nil || string(got) != "recovery" {
				t.Fatalf("get = %q, %v", got, err)
			}
		})
	}
}

// TestLeftoverTempFilesIgnored: temporary files anywhere (also matching a
// prefix ending mid-name) are neither listed nor reachable as keys, and
// do not break deletes.
func TestLeftoverTempFilesIgnored(t *testing.T) {
	root := t.TempDir()
	s := openDir(t, root)
	ctx := t.Context()
	for _, k := range []string{"a/b-1", "a/b-2", "c"} {
		if err := s.Put(ctx, k, []byte(k), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{TempPrefix + "1", "a/" + TempPrefix + "2", "a/" + TempPrefix + "b-3"} {
		if err := os.WriteFile(filepath.Join(root, p), []byte("junk"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, TempPrefix+"dir", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	for prefix, want := range map[string]string{
		"":        "a/b-1,a/b-2,c",
		"a/":      "a/b-1,a/b-2",
		"a/.wp":   "",
		".wp-tmp": "",
	} {
		if got := strings.Join(listKeys(t, s, prefix), ","); got != want {
			t.Errorf("list %q = %q, want %q", prefix, got, want)
		}
	}
	if _, err := s.Get(ctx, "a/"+TempPrefix+"2"); !errors.Is(err, objstore.ErrInvalidKey) {
		t.Errorf("get of a temporary file: %v, want ErrInvalidKey", err)
	}
	if err := s.Put(ctx, TempPrefix+"x/y", []byte("x"), objstore.PutOptions{}); !errors.Is(err, objstore.ErrInvalidKey) {
		t.Errorf("put under a temporary name: %v, want ErrInvalidKey", err)
	}
	for _, k := range []string{"a/b-1", "a/b-2"} {
		if err := s.Delete(ctx, k); err != nil {
			t.Fatalf("delete %q next to leftovers: %v", k, err)
		}
	}
}

// TestPutLeavesNoTempFiles: successful, refused and conflicting puts
// leave only the objects themselves on disk.
func TestPutLeavesNoTempFiles(t *testing.T) {
	root := t.TempDir()
	s := openDir(t, root)
	ctx := t.Context()
	co := objstore.PutOptions{IfNotExists: true}
	_ = s.Put(ctx, "x/a", []byte("1"), objstore.PutOptions{})
	_ = s.Put(ctx, "x/a", []byte("2"), objstore.PutOptions{})
	_ = s.Put(ctx, "x/b", []byte("1"), co)
	if err := s.Put(ctx, "x/b", []byte("2"), co); !errors.Is(err, objstore.ErrAlreadyExists) {
		t.Fatalf("second create: %v", err)
	}
	_ = s.Put(ctx, "x", []byte("conflict"), co)
	_ = s.Put(ctx, "x", []byte("conflict"), objstore.PutOptions{})
	_ = s.Put(ctx, "x/a/below", []byte("conflict"), co)
	if got := strings.Join(filesUnder(t, root), ","); got != "x/,x/a,x/b" {
		t.Fatalf("on disk: %s; want x/,x/a,x/b", got)
	}
}

func TestKeyConflicts(t *testing.T) {
	s := openDir(t, t.TempDir())
	ctx := t.Context()
	if err := s.Put(ctx, "file", []byte("1"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "dir/obj", []byte("1"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		key  string
		opts objstore.PutOptions
	}{
		{"file/below", objstore.PutOptions{}},
		{"file/below", objstore.PutOptions{IfNotExists: true}},
		{"file/deeper/below", objstore.PutOptions{}},
		{"dir", objstore.PutOptions{}},
		{"dir", objstore.PutOptions{IfNotExists: true}},
	} {
		err := s.Put(ctx, c.key, []byte("x"), c.opts)
		if !errors.Is(err, ErrKeyConflict) {
			t.Errorf("put %q (create-only %v): %v, want ErrKeyConflict", c.key, c.opts.IfNotExists, err)
		}
		if errors.Is(err, objstore.ErrAlreadyExists) {
			t.Errorf("put %q: a conflict must not read as ErrAlreadyExists", c.key)
		}
	}
	if got := strings.Join(listKeys(t, s, ""), ","); got != "dir/obj,file" {
		t.Fatalf("list = %s", got)
	}
}

// TestKeysCannotEscape: no key reaches outside the root.
func TestKeysCannotEscape(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	s := openDir(t, root)
	ctx := t.Context()
	for _, key := range []string{"../escaped", "a/../../escaped", "/escaped", filepath.Join(parent, "escaped")[1:] + "/../../x", ".."} {
		if err := s.Put(ctx, key, []byte("x"), objstore.PutOptions{}); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("put %q: %v, want ErrInvalidKey", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("delete %q: %v, want ErrInvalidKey", key, err)
		}
	}
	if _, err := s.List(ctx, "../", "", 0); !errors.Is(err, objstore.ErrInvalidKey) {
		t.Errorf("list ../: %v, want ErrInvalidKey", err)
	}
	if got := filesUnder(t, parent); len(got) != 1 || got[0] != "root/" {
		t.Fatalf("files under the root's parent: %v, want only root/", got)
	}
}

// TestDeleteRemovesEmptyDirectories: deleting the last object of a
// directory removes the directories left empty, never the root, and a
// later put recreates them.
func TestDeleteRemovesEmptyDirectories(t *testing.T) {
	root := t.TempDir()
	s := openDir(t, root)
	ctx := t.Context()
	for _, k := range []string{"logs/1/seg/0/b-0", "logs/1/seg/0/b-1", "logs/1/keep"} {
		if err := s.Put(ctx, k, []byte("x"), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"logs/1/seg/0/b-0", "logs/1/seg/0/b-1"} {
		if err := s.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(filesUnder(t, root), ","); got != "logs/,logs/1/,logs/1/keep" {
		t.Fatalf("on disk after deletes: %s", got)
	}
	if err := s.Delete(ctx, "logs/1/keep"); err != nil {
		t.Fatal(err)
	}
	if got := filesUnder(t, root); len(got) != 0 {
		t.Fatalf("on disk after deleting everything: %v", got)
	}
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("root removed: %v", err)
	}
	if err := s.Put(ctx, "logs/1/seg/0/b-0", []byte("again"), objstore.PutOptions{IfNotExists: true}); err != nil {
		t.Fatalf("put after the directories were removed: %v", err)
	}
}

// TestConcurrentPutDeleteSameDirectory: puts keep working while deletes
// of the directory's other objects remove and recreate it underneath them.
func TestConcurrentPutDeleteSameDirectory(t *testing.T) {
	s := openDir(t, t.TempDir())
	ctx := t.Context()
	const workers, rounds = 8, 60
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				key := fmt.Sprintf("d/e/w%d-%d", w, i)
				if err := s.Put(ctx, key, []byte(key), objstore.PutOptions{IfNotExists: true}); err != nil {
					errs <- errors.Wrapf(err, "put %q", key)
					return
				}
				if got, err := s.Get(ctx, key); err != nil || string(got) != key {
					errs <- errors.Newf("get %q right after put: %q, %v", key, got, err)
					return
				}
				if err := s.Delete(ctx, key); err != nil {
					errs <- errors.Wrapf(err, "delete %q", key)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if keys := listKeys(t, s, ""); len(keys) != 0 {
		t.Fatalf("left over: %v", keys)
	}
}

// TestCreateOnlyAcrossStores: two stores on one directory (two processes)
// still let exactly one create win.
func TestCreateOnlyAcrossStores(t *testing.T) {
	dir := t.TempDir()
	stores := []*Store{openDir(t, dir), openDir(t, dir)}
	for round := range 5 {
		key := fmt.Sprintf("slot/%d", round)
		var wg sync.WaitGroup
		results := make([]error, 16)
		for i := range results {
			wg.Go(func() {
				results[i] = stores[i%2].Put(t.Context(), key, []byte{byte(i)}, objstore.PutOptions{IfNotExists: true})
			})
		}
		wg.Wait()
		winners := 0
		winner := -1
		for i, err := range results {
			if err == nil {
				winners++
				winner = i
			} else if !errors.Is(err, objstore.ErrAlreadyExists) {
				t.Fatalf("racer %d: %v", i, err)
			}
		}
		if winners != 1 {
			t.Fatalf("round %d: %d winners, want 1", round, winners)
		}
		got, err := stores[0].Get(t.Context(), key)
		if err != nil || len(got) != 1 || int(got[0]) != winner {
			t.Fatalf("round %d: object %v, %v; want the winner's byte %d", round, got, err, winner)
		}
	}
}

func TestOpen(t *testing.T) {
	parent := t.TempDir()
	file := filepath.Join(parent, "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		cfg     Config
		wantMsg string // "" means success
	}{
		{"missing", Config{Dir: filepath.Join(parent, "missing")}, "does not exist"},
		{"create", Config{Dir: filepath.Join(parent, "new", "deeper"), CreateDir: true}, ""},
		{"existing", Config{Dir: parent}, ""},
		{"a file", Config{Dir: file}, "not a directory"},
		{"empty", Config{}, "no directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Open(t.Context(), c.cfg)
			if c.wantMsg == "" {
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				if fi, err := os.Stat(s.Root()); err != nil || !fi.IsDir() {
					t.Fatalf("root %s: %v", s.Root(), err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantMsg) {
				t.Fatalf("open: %v, want an error mentioning %q", err, c.wantMsg)
			}
		})
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Open(ctx, Config{Dir: parent}); !errors.Is(err, context.Canceled) {
		t.Fatalf("open with a cancelled context: %v", err)
	}
}

// TestOpenReadOnlyDirectory: a directory we cannot write to is refused at
// Open, not at the first put.
func TestOpenReadOnlyDirectory(t *testing.T) {
	dir := t.TempDir()
	switch {
	case os.Geteuid() != 0:
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
	case runtime.GOOS == "linux":
		dir = "/proc" // root may write anywhere, but not there
	default:
		t.Skip("running as root, and no read-only directory is known on " + runtime.GOOS)
	}
	if _, err := Open(t.Context(), Config{Dir: dir}); err == nil || !strings.Contains(err.Error(), "not writable") {
		t.Fatalf("open of read-only %s: %v, want 'not writable'", dir, err)
	}
}

// TestPutRemakesADirectoryRemovedUnderIt: a concurrent Delete may remove a
// directory, empty, between a Put's mkdir finding it and its look at what
// it found. The Put makes it again, as when the directory goes before its
// temporary file is created; it is no key conflict (under load,
// TestConcurrentPutDeleteSameDirectory failed so).
func TestPutRemakesADirectoryRemovedUnderIt(t *testing.T) {
	efs := errorfs.Wrap(vfs.Default)
	s, err := Open(context.Background(), Config{Dir: t.TempDir(), FS: efs})
	if err != nil {
		t.Fatal(err)
	}
	// The first mkdir of "e" reports it existing, when it does not: what
	// it sees when the Delete removes it right after.
	efs.Inject(errorfs.Rule{Op: errorfs.OpMkdir, Pattern: "e", Nth: 1, Err: fs.ErrExist})
	if err := s.Put(context.Background(), "d/e/k", []byte("v"), objstore.PutOptions{IfNotExists: true}); err != nil {
		t.Fatalf("put into a directory removed under it: %v", err)
	}
	if got, err := s.Get(context.Background(), "d/e/k"); err != nil || string(got) != "v" {
		t.Fatalf("get: %q %v", got, err)
	}
}
