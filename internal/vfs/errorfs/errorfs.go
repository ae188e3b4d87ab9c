// Package errorfs wraps a vfs.FS and injects faults into the operations
// that rules select: fail the Nth fsync of a segment file, tear a write
// after k bytes, run out of space. Rules are predicates over the operation
// (its kind, its file's name, anything a Match function checks), in the
// manner of pebble's errorfs and of memstore's rules for object stores.
package errorfs

import (
	"io/fs"
	"path/filepath"
	"sync"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/vfs"
)

// Op is a kind of file system operation, for rules and counters.
type Op int

// The operation kinds. OpAny matches every kind in a Rule and sums all
// counters in Count.
const (
	OpAny      Op = iota
	OpOpen        // FS.OpenFile, FS.CreateTemp
	OpRead        // File.Read, File.ReadAt
	OpWrite       // File.Write, File.WriteAt
	OpSync        // File.Sync, of a file or a directory
	OpTruncate    // File.Truncate
	OpStat        // FS.Stat, FS.Lstat, File.Stat
	OpMkdir       // FS.Mkdir, FS.MkdirAll
	OpRemove      // FS.Remove
	OpRename      // FS.Rename
	OpLink        // FS.Link
	OpReadDir     // FS.ReadDir
	numOps
)

// String returns the kind's name, as used in error messages.
func (o Op) String() string {
	switch o {
	case OpAny:
		return "any"
	case OpOpen:
		return "open"
	case OpRead:
		return "read"
	case OpWrite:
		return "write"
	case OpSync:
		return "sync"
	case OpTruncate:
		return "truncate"
	case OpStat:
		return "stat"
	case OpMkdir:
		return "mkdir"
	case OpRemove:
		return "remove"
	case OpRename:
		return "rename"
	case OpLink:
		return "link"
	case OpReadDir:
		return "readdir"
	default:
		return "op(?)"
	}
}

// ErrInjected is the error a firing Rule returns when its Err is nil.
var ErrInjected = errors.New("errorfs: injected fault")

// Info describes an operation to a rule.
type Info struct {
	Op Op
	// Path is the name the operation acts on: the file's name as it was
	// opened, the directory for CreateTemp, the new name for Rename and
	// Link.
	Path string
	// Len is the length of a write.
	Len int
}

// Rule selects operations and says how they fail. A rule matches an
// operation when Op matches (OpAny matches all), the base name of its path
// matches Pattern (a filepath.Match glob, e.g. "*.seg"; empty matches all)
// and Match, when set, returns true.
//
// Each rule counts the operations it matches. It fires on the Nth match
// (1-based) and the Times-1 matches after it; Nth 0 means from the first
// match; Times 0 means once when Nth > 0 and forever when Nth == 0; Times < 0
// means forever. When several rules fire for one operation, the earliest
// injected one decides; the others still count the match.
//
// A firing rule fails the operation with Err (ErrInjected when nil), wrapped
// in an *fs.PathError as package os reports errors, so errors.Is finds an
// errno such as syscall.ENOSPC. The operation is not performed, except as
// TornAfter and DropUnsynced say.
type Rule struct {
	Op      Op
	Pattern string
	Match   func(Info) bool
	Nth     int
	Times   int
	Err     error
	// TornAfter is, for a write, how many of its first bytes reach the file
	// before it fails: a torn write. 0 writes nothing.
	TornAfter int
	// DropUnsynced makes a failing sync also take from the file what was
	// written to it since its last successful sync (or its opening), the
	// way Linux may drop pages whose writeback failed. It models files
	// that only grow, such as segment files.
	DropUnsynced bool
}

func (r *Rule) matches(in Info) bool {
	if r.Op != OpAny && r.Op != in.Op {
		return false
	}
	if r.Pattern != "" {
		if ok, err := filepath.Match(r.Pattern, filepath.Base(in.Path)); err != nil || !ok {
			return false
		}
	}
	return r.Match == nil || r.Match(in)
}

// Injection is an injected Rule: it reports how often the rule fired and
// removes it. Its methods are safe for concurrent use.
type Injection struct {
	fs    *FS
	rule  Rule
	seen  int // matches so far; guarded by fs.mu
	fired int // guarded by fs.mu
}

// fires reports whether the match just counted in seen fires the rule.
// Requires fs.mu held.
func (inj *Injection) fires() bool {
	first := max(inj.rule.Nth, 1)
	if inj.seen < first {
		return false
	}
	times := inj.rule.Times
	switch {
	case times < 0, times == 0 && inj.rule.Nth <= 0:
		return true
	case times == 0:
		times = 1
	}
	return inj.seen < first+times
}

// Fired returns how many operations the rule has failed.
func (inj *Injection) Fired() int {
	inj.fs.mu.Lock()
	defer inj.fs.mu.Unlock()
	return inj.fired
}

// Remove takes the rule out of its file system; operations it already
// failed are not affected. Removing twice is harmless.
func (inj *Injection) Remove() {
	inj.fs.mu.Lock()
	defer inj.fs.mu.Unlock()
	for i, r := range inj.fs.rules {
		if r == inj {
			inj.fs.rules = append(inj.fs.rules[:i:i], inj.fs.rules[i+1:]...)
			return
		}
	}
}

// FS is a vfs.FS that passes operations to another and fails those its
// rules select. It is safe for concurrent use.
type FS struct {
	inner vfs.FS

	mu     sync.Mutex
	rules  []*Injection
	counts [numOps]int64
}

var _ vfs.FS = (*FS)(nil)

// Wrap returns a file system passing every operation to inner, with no
// rules yet.
func Wrap(inner vfs.FS) *FS { return &FS{inner: inner} }

// Inject adds a rule, effective for operations that start afterwards.
func (f *FS) Inject(r Rule) *Injection {
	inj := &Injection{fs: f, rule: r}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, inj)
	return inj
}

// ClearRules removes every rule.
func (f *FS) ClearRules() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = nil
}

// Count returns how many operations of kind op were attempted (performed
// or failed); OpAny sums them all.
func (f *FS) Count(op Op) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if op != OpAny {
		return f.counts[op]
	}
	var n int64
	for _, c := range f.counts {
		n += c
	}
	return n
}

// check counts the operation and returns the rule that fails it, or nil.
func (f *FS) check(in Info) *Rule {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts[in.Op]++
	var fire *Injection
	for _, inj := range f.rules {
		if !inj.rule.matches(in) {
			continue
		}
		inj.seen++
		if fire == nil && inj.fires() {
			fire = inj
		}
	}
	if fire == nil {
		return nil
	}
	fire.fired++
	return &fire.rule
}

// fail is the error a firing rule returns for operation in.
func (r *Rule) fail(in Info) error {
	err := r.Err
	if err == nil {
		err = ErrInjected
	}
	return &fs.PathError{Op: in.Op.String(), Path: in.Path, Err: err}
}

// do runs a path operation unless a rule fails it.
func (f *FS) do(op Op, path string, run func() error) error {
	in := Info{Op: op, Path: path}
	if r := f.check(in); r != nil {
		return r.fail(in)
	}
	return run()
}

// OpenFile implements vfs.FS.
func (f *FS) OpenFile(name string, flag int, perm fs.FileMode) (vfs.File, error) {
	var inner vfs.File
	err := f.do(OpOpen, name, func() (err error) {
		inner, err = f.inner.OpenFile(name, flag, perm)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &file{fs: f, inner: inner, synced: -1}, nil
}

// CreateTemp implements vfs.FS.
func (f *FS) CreateTemp(dir, pattern string) (vfs.File, error) {
	var inner vfs.File
	err := f.do(OpOpen, dir, func() (err error) {
		inner, err = f.inner.CreateTemp(dir, pattern)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &file{fs: f, inner: inner, synced: 0}, nil
}

// Mkdir implements vfs.FS.
func (f *FS) Mkdir(name string, perm fs.FileMode) error {
	return f.do(OpMkdir, name, func() error { return f.inner.Mkdir(name, perm) })
}

// MkdirAll implements vfs.FS.
func (f *FS) MkdirAll(name string, perm fs.FileMode) error {
	return f.do(OpMkdir, name, func() error { return f.inner.MkdirAll(name, perm) })
}

// Remove implements vfs.FS.
func (f *FS) Remove(name string) error {
	return f.do(OpRemove, name, func() error { return f.inner.Remove(name) })
}

// Rename implements vfs.FS.
func (f *FS) Rename(oldname, newname string) error {
	return f.do(OpRename, newname, func() error { return f.inner.Rename(oldname, newname) })
}

// Link implements vfs.FS.
func (f *FS) Link(oldname, newname string) error {
	return f.do(OpLink, newname, func() error { return f.inner.Link(oldname, newname) })
}

// Stat implements vfs.FS.
func (f *FS) Stat(name string) (fi fs.FileInfo, err error) {
	err = f.do(OpStat, name, func() error { fi, err = f.inner.Stat(name); return err })
	return fi, err
}

// Lstat implements vfs.FS.
func (f *FS) Lstat(name string) (fi fs.FileInfo, err error) {
	err = f.do(OpStat, name, func() error { fi, err = f.inner.Lstat(name); return err })
	return fi, err
}

// ReadDir implements vfs.FS.
func (f *FS) ReadDir(name string) (des []fs.DirEntry, err error) {
	err = f.do(OpReadDir, name, func() error { des, err = f.inner.ReadDir(name); return err })
	return des, err
}

// file is an open file of an FS.
type file struct {
	fs    *FS
	inner vfs.File

	mu sync.Mutex
	// synced is the file's size at its last successful sync, or at its
	// opening; -1 until known (it is read before the first write).
	synced int64
}

func (f *file) Name() string { return f.inner.Name() }
func (f *file) Close() error { return f.inner.Close() }

func (f *file) Stat() (fi fs.FileInfo, err error) {
	err = f.fs.do(OpStat, f.Name(), func() error { fi, err = f.inner.Stat(); return err })
	return fi, err
}

func (f *file) Read(p []byte) (n int, err error) {
	err = f.fs.do(OpRead, f.Name(), func() error { n, err = f.inner.Read(p); return err })
	return n, err
}

func (f *file) ReadAt(p []byte, off int64) (n int, err error) {
	err = f.fs.do(OpRead, f.Name(), func() error { n, err = f.inner.ReadAt(p, off); return err })
	return n, err
}

func (f *file) Truncate(size int64) error {
	return f.fs.do(OpTruncate, f.Name(), func() error { return f.inner.Truncate(size) })
}

func (f *file) Write(p []byte) (int, error) {
	return f.write(p, func(p []byte) (int, error) { return f.inner.Write(p) })
}

func (f *file) WriteAt(p []byte, off int64) (int, error) {
	return f.write(p, func(p []byte) (int, error) { return f.inner.WriteAt(p, off) })
}

// write performs a write with put, tearing it when a rule says so.
func (f *file) write(p []byte, put func([]byte) (int, error)) (int, error) {
	if err := f.noteSynced(); err != nil {
		return 0, err
	}
	in := Info{Op: OpWrite, Path: f.Name(), Len: len(p)}
	r := f.fs.check(in)
	if r == nil {
		return put(p)
	}
	n := 0
	if k := min(r.TornAfter, len(p)); k > 0 {
		var err error
		if n, err = put(p[:k]); err != nil {
			return n, err
		}
	}
	return n, r.fail(in)
}

// noteSynced learns the file's size before its first write, where a
// dropping sync will cut it back to.
func (f *file) noteSynced() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.synced >= 0 {
		return nil
	}
	fi, err := f.inner.Stat()
	if err != nil {
		return err
	}
	f.synced = fi.Size()
	return nil
}

func (f *file) Sync() error {
	in := Info{Op: OpSync, Path: f.Name()}
	if r := f.fs.check(in); r != nil {
		if r.DropUnsynced {
			if err := f.dropUnsynced(); err != nil {
				return errors.CombineErrors(r.fail(in), err)
			}
		}
		return r.fail(in)
	}
	if err := f.inner.Sync(); err != nil {
		return err
	}
	fi, err := f.inner.Stat()
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.synced = fi.Size()
	f.mu.Unlock()
	return nil
}

func (f *file) dropUnsynced() error {
	f.mu.Lock()
	synced := f.synced
	f.mu.Unlock()
	if synced < 0 {
		return nil // nothing written through this handle
	}
	fi, err := f.inner.Stat()
	if err != nil || fi.IsDir() || fi.Size() <= synced {
		return err
	}
	return f.inner.Truncate(synced)
}
