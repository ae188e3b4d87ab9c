// Package vfs is the file system the local durability backend works on:
// a small interface over the calls it makes, and Default, the operating
// system's. Tests wrap it to inject faults (package errorfs).
//
// Contracts follow package os: errors match fs.ErrNotExist, fs.ErrExist and
// the syscall errnos as os's do. A File's Sync is the durability point: data
// written before a Sync that returned nil is on stable storage. After a
// Sync that failed, nothing written to the file since its last successful
// Sync may be assumed on disk, not even if a later Sync succeeds: Linux
// reports a writeback error once and may drop the pages that failed. A
// caller must treat such a file as broken.
package vfs

import (
	"io"
	"io/fs"
	"os"

	"github.com/cockroachdb/errors"
)

// FS is a file system. Names are paths as package os takes them.
// Implementations are safe for concurrent use.
type FS interface {
	// OpenFile opens name with os.OpenFile's flags (O_RDONLY also opens a
	// directory, for Sync).
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	// CreateTemp creates a new file in dir, named from pattern as
	// os.CreateTemp names it, open for reading and writing.
	CreateTemp(dir, pattern string) (File, error)
	// Mkdir creates directory name; its parent must exist.
	Mkdir(name string, perm fs.FileMode) error
	// MkdirAll creates directory name and any missing parents. It does not
	// make them durable: Sync each parent for that.
	MkdirAll(name string, perm fs.FileMode) error
	// Remove removes the file or empty directory name.
	Remove(name string) error
	// Rename moves oldname to newname, replacing newname.
	Rename(oldname, newname string) error
	// Link makes newname name the file oldname names, failing with an
	// error matching fs.ErrExist when newname exists: it never replaces.
	// Where the file system has no hard links it may rename oldname
	// without replacement instead; oldname is then gone.
	Link(oldname, newname string) error
	// Stat describes the file name, following symbolic links.
	Stat(name string) (fs.FileInfo, error)
	// Lstat describes the file name, not following a symbolic link.
	Lstat(name string) (fs.FileInfo, error)
	// ReadDir lists directory name, sorted by file name.
	ReadDir(name string) ([]fs.DirEntry, error)
}

// File is an open file. A File is used by one goroutine at a time, except
// ReadAt and WriteAt, which may run concurrently.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.WriterAt
	io.Closer
	// Name is the name the file was opened with.
	Name() string
	Stat() (fs.FileInfo, error)
	// Sync flushes the file's data and metadata to stable storage; see
	// the package comment for what a failure means.
	Sync() error
	Truncate(size int64) error
}

// Default is the operating system's file system.
var Default FS = osFS{}

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err // a nil *os.File must not become a non-nil File
	}
	return f, nil
}

func (osFS) CreateTemp(dir, pattern string) (File, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (osFS) Mkdir(name string, perm fs.FileMode) error    { return os.Mkdir(name, perm) }
func (osFS) MkdirAll(name string, perm fs.FileMode) error { return os.MkdirAll(name, perm) }
func (osFS) Remove(name string) error                     { return os.Remove(name) }
func (osFS) Rename(oldname, newname string) error         { return os.Rename(oldname, newname) }
func (osFS) Link(oldname, newname string) error           { return linkNoReplace(oldname, newname) }
func (osFS) Stat(name string) (fs.FileInfo, error)        { return os.Stat(name) }
func (osFS) Lstat(name string) (fs.FileInfo, error)       { return os.Lstat(name) }
func (osFS) ReadDir(name string) ([]fs.DirEntry, error)   { return os.ReadDir(name) }

// SyncDir fsyncs directory dir, making the names created in it durable.
func SyncDir(fsys FS, dir string) error {
	d, err := fsys.OpenFile(dir, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	return errors.CombineErrors(d.Sync(), d.Close())
}

// ReadFile reads the whole file name.
func ReadFile(fsys FS, name string) ([]byte, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
