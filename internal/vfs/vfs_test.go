package vfs_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/vfs"
)

// Link never replaces: a taken name fails with fs.ErrExist and keeps its
// content.
func TestLinkNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	for name, data := range map[string]string{a: "a", b: "b"} {
		if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := vfs.Default.Link(a, b); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("link onto an existing name: %v, want fs.ErrExist", err)
	}
	if data, err := vfs.ReadFile(vfs.Default, b); err != nil || string(data) != "b" {
		t.Fatalf("b holds %q %v after a refused link", data, err)
	}
	if err := vfs.Default.Link(a, c); err != nil {
		t.Fatal(err)
	}
	if data, err := vfs.ReadFile(vfs.Default, c); err != nil || string(data) != "a" {
		t.Fatalf("c holds %q %v, want a", data, err)
	}
	if err := vfs.SyncDir(vfs.Default, dir); err != nil {
		t.Fatal(err)
	}
}

// A failed open returns a nil File, not a typed nil.
func TestOpenFailureIsNil(t *testing.T) {
	f, err := vfs.Default.OpenFile(filepath.Join(t.TempDir(), "missing"), os.O_RDONLY, 0)
	if !errors.Is(err, fs.ErrNotExist) || f != nil {
		t.Fatalf("open of a missing file: %v, %v", f, err)
	}
}
