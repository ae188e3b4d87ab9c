// Package localfs is an objstore.Store on a local directory, for single-node
// use. Keys map to files under the root ("a/b/c" is <root>/a/b/c).
//
// Durability: Put returns after the data and its directory entry are on
// disk. A put writes a temporary file in the target directory, fsyncs it,
// moves it into place (rename for a plain put; link(2), which fails when the
// name is taken, for a create-only put) and fsyncs the directory. Parent
// directories it creates are fsynced into their own parents. A crash at any
// point leaves either no object or the whole object, never a partial one;
// leftover temporary files (named with TempPrefix) are never listed.
//
// Limitation: a key cannot also be a directory of other keys ("a" and
// "a/b" cannot both exist), since a name is either a file or a directory;
// such a put fails with ErrKeyConflict.
package localfs

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/vfs"
)

// TempPrefix starts the names of temporary files. Keys with a segment that
// starts with it are rejected with objstore.ErrInvalidKey.
const TempPrefix = ".wp-tmp-"

// ErrKeyConflict: a put's key names a directory holding other keys, or one
// of its parents is an object ("a/b" when "a" exists). S3 allows both; a
// file system does not.
var ErrKeyConflict = errors.New("key conflicts with an existing object or directory of objects")

// DefaultListLimit is the page size List uses when called with limit <= 0.
const DefaultListLimit = 1000

// putRetries bounds how often Put retries when a concurrent Delete removed
// the (empty) directory it was about to write into.
const putRetries = 8

// Config says where the store lives.
type Config struct {
	// Dir is the root directory. A relative path is made absolute.
	Dir string
	// CreateDir creates Dir (and its parents) when it does not exist.
	CreateDir bool
	// FS is the file system the store works on; nil means vfs.Default.
	FS vfs.FS
}

// Store is a directory used as an object store. It is safe for concurrent
// use, also by several processes sharing the directory (create-only puts
// stay exclusive across processes).
type Store struct {
	root string
	fs   vfs.FS
	// durableDirs holds directories (absolute paths) known to exist with a
	// durable entry in their parent, so Put can skip fsyncing parents.
	durableDirs sync.Map
}

var _ objstore.Store = (*Store)(nil)

// Open checks that cfg.Dir is a writable directory (creating it when
// cfg.CreateDir is set) and returns a store on it.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, errors.Wrap(err, "open local object store")
	}
	if cfg.Dir == "" {
		return nil, errors.New("open local object store: no directory configured: set storage.rootPath")
	}
	root, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, errors.Wrapf(err, "open local object store %q", cfg.Dir)
	}
	s := &Store{root: root, fs: cfg.FS}
	if s.fs == nil {
		s.fs = vfs.Default
	}
	fi, err := s.fs.Stat(root)
	switch {
	case errors.Is(err, fs.ErrNotExist) && cfg.CreateDir:
		if err := s.fs.MkdirAll(root, 0o755); err != nil {
			return nil, errors.Wrapf(err, "open local object store: create %q", root)
		}
		if err := s.syncDir(filepath.Dir(root)); err != nil {
			return nil, errors.Wrapf(err, "open local object store: sync parent of %q", root)
		}
	case errors.Is(err, fs.ErrNotExist):
		return nil, errors.Newf("local object store directory %q does not exist: create it or set storage.createBucket: true", root)
	case err != nil:
		return nil, errors.Wrapf(err, "open local object store %q", root)
	case !fi.IsDir():
		return nil, errors.Newf("local object store path %q is not a directory", root)
	}
	// Prove we can write there, with the same calls Put makes.
	f, err := s.fs.CreateTemp(root, TempPrefix+"open-*")
	if err != nil {
		return nil, errors.Wrapf(err, "local object store directory %q is not writable", root)
	}
	name := f.Name()
	err = errors.CombineErrors(f.Close(), s.fs.Remove(name))
	if err != nil {
		return nil, errors.Wrapf(err, "local object store directory %q: remove probe file", root)
	}
	s.durableDirs.Store(root, struct{}{})
	return s, nil
}

// Root returns the absolute root directory.
func (s *Store) Root() string { return s.root }

// Close releases nothing and exists for symmetry with the network backends;
// it is idempotent.
func (s *Store) Close() error { return nil }

// path checks key and ctx before operation op and maps key to its file.
// The key is checked first, so a malformed key is reported as such even on
// a cancelled context.
func (s *Store) path(ctx context.Context, op, key string) (string, error) {
	if err := objstore.ValidateKey(key); err != nil {
		return "", errors.Wrapf(err, "localfs %s", op)
	}
	if hasTempSegment(key) {
		return "", errors.Wrapf(objstore.ErrInvalidKey,
			"localfs %s: key %q has a segment starting with %q, reserved for temporary files", op, key, TempPrefix)
	}
	if err := ctx.Err(); err != nil {
		return "", opErr(err, op, key)
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

func hasTempSegment(key string) bool {
	for seg := range strings.SplitSeq(key, "/") {
		if strings.HasPrefix(seg, TempPrefix) {
			return true
		}
	}
	return false
}

func opErr(err error, op, key string) error {
	return errors.Wrapf(err, "localfs %s %q", op, key)
}

// notFound maps "no such file" (also: a path component is a file, or the
// key names a directory) to objstore.ErrNotFound.
func notFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR)
}

// Put implements objstore.Store.
func (s *Store) Put(ctx context.Context, key string, data []byte, opts objstore.PutOptions) error {
	p, err := s.path(ctx, "put", key)
	if err != nil {
		return err
	}
	dir := filepath.Dir(p)
	for attempt := 0; ; attempt++ {
		tmp, d, err := s.writeTemp(dir, data)
		if errors.Is(err, fs.ErrNotExist) && attempt < putRetries {
			// A concurrent Delete removed the empty directory between our
			// mkdir and create; forget it and make it again.
			s.forgetDirs(dir)
			continue
		}
		if errors.Is(err, syscall.ENOTDIR) {
			return errors.Wrapf(ErrKeyConflict, "localfs put %q: a parent of the key is an object", key)
		}
		if err != nil {
			return opErr(err, "put", key)
		}
		err = s.place(ctx, tmp, d, p, key, opts)
		return errors.CombineErrors(err, d.Close())
	}
}

// writeTemp makes dir, writes data to a new temporary file in it and
// fsyncs the file. It returns the file's path and an open handle on dir
// for the final fsync (valid even if dir is removed meanwhile).
func (s *Store) writeTemp(dir string, data []byte) (tmp string, d vfs.File, err error) {
	if err := s.mkdirAll(dir); err != nil {
		return "", nil, err
	}
	f, err := s.fs.CreateTemp(dir, TempPrefix+"*")
	if err != nil {
		return "", nil, err
	}
	tmp = f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = s.fs.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return "", nil, errors.Wrap(err, "write temporary file")
	}
	if err = f.Sync(); err != nil {
		return "", nil, errors.Wrap(err, "fsync temporary file")
	}
	if err = f.Close(); err != nil {
		return "", nil, errors.Wrap(err, "close temporary file")
	}
	// The temporary file keeps dir non-empty, so a concurrent Delete
	// cannot remove it until we are done.
	if d, err = s.fs.OpenFile(dir, os.O_RDONLY, 0); err != nil {
		return "", nil, errors.Wrap(err, "open directory")
	}
	return tmp, d, nil
}

// place moves the fsynced temporary file tmp to p and fsyncs dir d.
func (s *Store) place(ctx context.Context, tmp string, d vfs.File, p, key string, opts objstore.PutOptions) error {
	if err := ctx.Err(); err != nil {
		_ = s.fs.Remove(tmp)
		return opErr(err, "put", key)
	}
	if opts.IfNotExists {
		err := s.fs.Link(tmp, p)
		// The name is now either ours (linked) or someone else's; the
		// temporary name goes either way.
		if rmErr := s.fs.Remove(tmp); rmErr != nil && err == nil && !errors.Is(rmErr, fs.ErrNotExist) {
			err = errors.Wrap(rmErr, "remove temporary file")
		}
		if errors.Is(err, fs.ErrExist) {
			if s.isDir(p) {
				return errors.Wrapf(ErrKeyConflict, "localfs put %q: the key names a directory of other keys", key)
			}
			return errors.Wrapf(objstore.ErrAlreadyExists, "localfs put %q", key)
		}
		if err != nil {
			return opErr(err, "put", key)
		}
	} else if err := s.fs.Rename(tmp, p); err != nil {
		_ = s.fs.Remove(tmp)
		if s.isDir(p) {
			return errors.Wrapf(ErrKeyConflict, "localfs put %q: the key names a directory of other keys", key)
		}
		return opErr(err, "put", key)
	}
	if err := d.Sync(); err != nil {
		return opErr(errors.Wrap(err, "fsync directory"), "put", key)
	}
	return nil
}

// mkdirAll creates dir and its missing parents, each fsynced into its
// parent, so that an object written into dir survives a crash.
func (s *Store) mkdirAll(dir string) error {
	if _, ok := s.durableDirs.Load(dir); ok {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir && dir != s.root {
		if err := s.mkdirAll(parent); err != nil {
			return err
		}
	}
	if err := s.fs.Mkdir(dir, 0o755); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return errors.Wrapf(err, "create directory %q", dir)
		}
		fi, err := s.fs.Lstat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// A concurrent Delete removed it, empty, after Mkdir saw it:
			// Put makes it again (its retry on ErrNotExist).
			return errors.Wrapf(err, "create directory %q: removed meanwhile", dir)
		case err != nil:
			return errors.Wrapf(err, "create directory %q", dir)
		case !fi.IsDir():
			return errors.Wrapf(syscall.ENOTDIR, "create directory %q: an object has that name", dir)
		}
	}
	// Sync the parent even when the directory already existed: another
	// writer may have created it and not yet synced its entry.
	if err := s.syncDir(parent); err != nil {
		return err
	}
	s.durableDirs.Store(dir, struct{}{})
	return nil
}

// forgetDirs drops dir and its parents below the root from durableDirs.
func (s *Store) forgetDirs(dir string) {
	for d := dir; d != s.root && strings.HasPrefix(d, s.root); d = filepath.Dir(d) {
		s.durableDirs.Delete(d)
	}
}

func (s *Store) isDir(p string) bool {
	fi, err := s.fs.Lstat(p)
	return err == nil && fi.IsDir()
}

func (s *Store) syncDir(dir string) error {
	return errors.Wrapf(vfs.SyncDir(s.fs, dir), "fsync directory %q", dir)
}

// Get implements objstore.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	p, err := s.path(ctx, "get", key)
	if err != nil {
		return nil, err
	}
	data, err := vfs.ReadFile(s.fs, p)
	if notFound(err) {
		return nil, errors.Wrapf(objstore.ErrNotFound, "localfs get %q", key)
	}
	if err != nil {
		return nil, opErr(err, "get", key)
	}
	return data, nil
}

// GetRange implements objstore.Store.
func (s *Store) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	p, err := s.path(ctx, "get range", key)
	if err != nil {
		return nil, err
	}
	f, err := s.fs.OpenFile(p, os.O_RDONLY, 0)
	if notFound(err) {
		return nil, errors.Wrapf(objstore.ErrNotFound, "localfs get range %q", key)
	}
	if err != nil {
		return nil, opErr(err, "get range", key)
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return nil, opErr(err, "get range", key)
	}
	if fi.IsDir() {
		return nil, errors.Wrapf(objstore.ErrNotFound, "localfs get range %q", key)
	}
	end, err := objstore.RangeEnd(fi.Size(), offset, length)
	if err != nil {
		return nil, opErr(err, "get range", key)
	}
	buf := make([]byte, end-offset)
	if _, err := f.ReadAt(buf, offset); err != nil && !(errors.Is(err, io.EOF) && len(buf) == 0) {
		return nil, opErr(err, "get range", key)
	}
	return buf, nil
}

// Stat implements objstore.Store.
func (s *Store) Stat(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	p, err := s.path(ctx, "stat", key)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	fi, err := s.fs.Stat(p)
	if notFound(err) || (err == nil && !fi.Mode().IsRegular()) {
		return objstore.ObjectInfo{}, errors.Wrapf(objstore.ErrNotFound, "localfs stat %q", key)
	}
	if err != nil {
		return objstore.ObjectInfo{}, opErr(err, "stat", key)
	}
	return objstore.ObjectInfo{Key: key, Size: fi.Size(), LastModified: fi.ModTime()}, nil
}

// Delete implements objstore.Store. It also removes directories left
// empty, up to the root.
func (s *Store) Delete(ctx context.Context, key string) error {
	p, err := s.path(ctx, "delete", key)
	if err != nil {
		return err
	}
	fi, err := s.fs.Lstat(p)
	if notFound(err) {
		return nil
	}
	if err != nil {
		return opErr(err, "delete", key)
	}
	if fi.IsDir() {
		return nil // a directory of other keys: there is no object "key"
	}
	if err := s.fs.Remove(p); err != nil {
		if notFound(err) {
			return nil
		}
		return opErr(err, "delete", key)
	}
	dir := filepath.Dir(p)
	if err := s.syncDir(dir); err != nil && !notFound(err) {
		return opErr(err, "delete", key)
	}
	// Remove directories the delete left empty. Forget them first, so a
	// concurrent Put makes them again (see Put's retry).
	for d := dir; d != s.root && strings.HasPrefix(d, s.root); d = filepath.Dir(d) {
		s.durableDirs.Delete(d)
		if s.fs.Remove(d) != nil {
			break // not empty (or gone): stop here
		}
	}
	return nil
}

// List implements objstore.Store. Keys come in byte-wise lexicographic
// order of the whole key, across directories ("a-b" < "a/b" < "a0").
func (s *Store) List(ctx context.Context, prefix, startAfter string, limit int) (objstore.ListPage, error) {
	if err := objstore.ValidatePrefix(prefix); err != nil {
		return objstore.ListPage{}, errors.Wrap(err, "localfs list")
	}
	if err := ctx.Err(); err != nil {
		return objstore.ListPage{}, errors.Wrapf(err, "localfs list %q", prefix)
	}
	if limit <= 0 || limit > DefaultListLimit {
		limit = DefaultListLimit
	}
	w := walker{ctx: ctx, fs: s.fs, root: s.root, prefix: prefix, startAfter: startAfter, want: limit + 1}
	// Start in the deepest directory the prefix names completely.
	startDir := prefix[:strings.LastIndexByte(prefix, '/')+1]
	if err := w.walk(startDir); err != nil {
		return objstore.ListPage{}, errors.Wrapf(err, "localfs list %q after %q", prefix, startAfter)
	}
	page := objstore.ListPage{Objects: w.out}
	if len(page.Objects) > limit {
		page.Objects, page.More = page.Objects[:limit], true
	}
	return page, nil
}

type walker struct {
	ctx                context.Context
	fs                 vfs.FS
	root               string
	prefix, startAfter string
	want               int
	out                []objstore.ObjectInfo
}

type dirEntry struct {
	sortKey string // name, plus "/" for a directory: sorts like the keys under it
	entry   fs.DirEntry
}

// walk lists the directory whose keys start with rel ("" or ending in "/")
// in key order, until w.want objects are collected.
func (w *walker) walk(rel string) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	entries, err := w.fs.ReadDir(filepath.Join(w.root, filepath.FromSlash(rel)))
	if notFound(err) {
		return nil // no such directory (or removed meanwhile): no keys
	}
	if err != nil {
		return err
	}
	sorted := make([]dirEntry, 0, len(entries))
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, TempPrefix) {
			continue
		}
		k := name
		if e.IsDir() {
			k += "/"
		}
		sorted = append(sorted, dirEntry{sortKey: k, entry: e})
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].sortKey < sorted[j].sortKey })

	for _, de := range sorted {
		full := rel + de.sortKey
		if de.entry.IsDir() {
			// Every key below starts with full; skip the subtree when none
			// can match the prefix or sort after startAfter.
			if !strings.HasPrefix(full, w.prefix) && !strings.HasPrefix(w.prefix, full) {
				continue
			}
			if w.startAfter >= full && !strings.HasPrefix(w.startAfter, full) {
				continue
			}
			if err := w.walk(full); err != nil {
				return err
			}
		} else {
			if !de.entry.Type().IsRegular() || !strings.HasPrefix(full, w.prefix) || full <= w.startAfter {
				continue
			}
			fi, err := de.entry.Info()
			if notFound(err) {
				continue // deleted meanwhile
			}
			if err != nil {
				return err
			}
			w.out = append(w.out, objstore.ObjectInfo{Key: full, Size: fi.Size(), LastModified: fi.ModTime()})
		}
		if len(w.out) >= w.want {
			return nil
		}
	}
	return nil
}
