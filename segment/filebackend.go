package segment

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/localfs"
	"github.com/woodpecker-wal/woodpecker/internal/vfs"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
)

// FileBackend keeps each segment as one append-only file in a local
// directory: blocks are appended and fsynced one flush at a time, and a torn
// tail left by a crash is found by its CRC and cut off by recovery.
//
// Fencing across processes uses a fence file beside the segment: recovery
// creates it (create-only, durable) before it reads the segment, and a
// writer checks for it after each fsync and before it acknowledges.
//
// A failed write or fsync breaks the segment's sink for good (the
// PostgreSQL "fsyncgate" lesson): after a failed fsync the kernel may have
// dropped the data while a later fsync succeeds, so nothing written since
// the last good fsync is ever acknowledged, and no write or fsync is
// retried on that file. The next writer's recovery reads the file from disk
// and seals what it finds there. Layout:
//
//	<dir>/<logID>/<segmentID, 19 digits>.seg     the blocks
//	<dir>/<logID>/<segmentID, 19 digits>.fence   present once a newer writer fenced the segment
//	<dir>/<logID>/<segmentID, 19 digits>.seal    the seal record
type FileBackend struct {
	dir   string
	fs    vfs.FS
	small *localfs.Store // fence and seal files: create-only and durable
	// logDirs holds the log directories known to be durable in dir.
	logDirs sync.Map
}

// NewFileBackend keeps segments under dir, creating it when missing.
func NewFileBackend(ctx context.Context, dir string) (*FileBackend, error) {
	return NewFileBackendFS(ctx, vfs.Default, dir)
}

// NewFileBackendFS is NewFileBackend on file system fsys: every file
// operation of the backend, its writers and its readers goes through fsys.
func NewFileBackendFS(ctx context.Context, fsys vfs.FS, dir string) (*FileBackend, error) {
	small, err := localfs.Open(ctx, localfs.Config{Dir: dir, CreateDir: true, FS: fsys})
	if err != nil {
		return nil, err
	}
	return &FileBackend{dir: small.Root(), fs: fsys, small: small}, nil
}

// Store returns the local store holding the backend's files, keyed
// "<logID>/<segmentID, 19 digits>.<seg|fence|seal>", for garbage
// collection.
func (b *FileBackend) Store() objstore.Store { return b.small }

// Parallel implements Backend: blocks are appended one at a time.
func (b *FileBackend) Parallel() int { return 1 }

// Describe implements Backend.
func (b *FileBackend) Describe() string { return fmt.Sprintf("local directory %s", b.dir) }

func (b *FileBackend) name(ref Ref, ext string) string {
	return strconv.FormatInt(ref.LogID, 10) + "/" + padID(ref.SegmentID) + ext
}

func (b *FileBackend) segPath(ref Ref) string {
	return filepath.Join(b.dir, filepath.FromSlash(b.name(ref, ".seg")))
}

// fenced reports whether a newer writer fenced the segment. It runs after
// every fsync, so it is a bare stat: the usual answer, "no fence", must not
// cost an error value with a stack trace.
func (b *FileBackend) fenced(ctx context.Context, ref Ref) (bool, error) {
	_, err := b.fs.Stat(filepath.Join(b.dir, filepath.FromSlash(b.name(ref, ".fence"))))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, errors.Wrapf(err, "check the fence of segment %d of log %d", ref.SegmentID, ref.LogID)
	}
}

// CreateSink implements Backend: it creates the segment file, exclusively.
func (b *FileBackend) CreateSink(ctx context.Context, ref Ref, epoch int64) (Sink, error) {
	path := b.segPath(ref)
	dir := filepath.Dir(path)
	if err := b.makeLogDir(dir); err != nil {
		return nil, err
	}
	f, err := b.fs.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil, errors.Wrapf(walerr.ErrFenced, "segment file %s exists already", path)
	}
	if err != nil {
		return nil, errors.Wrapf(err, "create segment file %s", path)
	}
	if err := vfs.SyncDir(b.fs, dir); err != nil {
		_ = f.Close()
		return nil, errors.Wrapf(err, "fsync directory %s", dir)
	}
	return &fileSink{b: b, ref: ref, f: f}, nil
}

// makeLogDir creates the log directory dir, durably: its entry in the
// backend's directory is fsynced once per process, even when it existed
// (another process may have made it and not yet fsynced it).
func (b *FileBackend) makeLogDir(dir string) error {
	if _, ok := b.logDirs.Load(dir); ok {
		return nil
	}
	if err := b.fs.MkdirAll(dir, 0o755); err != nil {
		return errors.Wrapf(err, "create directory %s", dir)
	}
	if err := vfs.SyncDir(b.fs, b.dir); err != nil {
		return errors.Wrapf(err, "fsync directory %s", b.dir)
	}
	b.logDirs.Store(dir, struct{}{})
	return nil
}

// fileSink appends a segment's blocks to its file. The writer calls it
// from one goroutine at a time (the backend's Parallel is 1).
type fileSink struct {
	b      *FileBackend
	ref    Ref
	f      vfs.File
	off    int64
	broken error // set by the first failure; every later call returns it
}

// WriteBlock appends and fsyncs the block, then checks the fence. A failed
// write or fsync breaks the sink for good: what reached the disk is unknown,
// and a later fsync's success would prove nothing about it. The error is
// marked walerr.ErrUnknownOutcome, which the writer never retries.
func (s *fileSink) WriteBlock(ctx context.Context, blockNo int64, block []byte) error {
	if s.broken != nil {
		return s.broken
	}
	if _, err := s.f.WriteAt(block, s.off); err != nil {
		s.broken = walerr.Mark(errors.Wrapf(err, "append block %d to %s", blockNo, s.f.Name()), walerr.ErrUnknownOutcome)
		return s.broken
	}
	if err := s.f.Sync(); err != nil {
		s.broken = walerr.Mark(errors.Wrapf(err, "fsync %s", s.f.Name()), walerr.ErrUnknownOutcome)
		return s.broken
	}
	fenced, err := s.b.fenced(ctx, s.ref)
	if err == nil && fenced {
		err = errors.Wrapf(walerr.ErrFenced, "segment %s was fenced by a newer writer", s.f.Name())
	}
	if err != nil {
		// The block is on disk; whether recovery counted it is unknown.
		s.broken = walerr.Mark(err, walerr.ErrUnknownOutcome)
		return s.broken
	}
	s.off += int64(len(block))
	return nil
}

// WriteSeal writes the seal file, unless the sink is broken: a seal must
// not count blocks whose fsync failed.
func (s *fileSink) WriteSeal(ctx context.Context, info SealInfo, record []byte) error {
	if s.broken != nil {
		return s.broken
	}
	return createOnce(ctx, s.b.small, s.b.name(s.ref, ".seal"), record)
}

func (s *fileSink) Close() error { return s.f.Close() }

// Recover implements Backend with RecoverSegment: create the fence file,
// validate the blocks, cut a torn tail, make the file durable, write the
// seal.
func (b *FileBackend) Recover(ctx context.Context, ref Ref, epoch int64) (SealInfo, error) {
	return RecoverSegment(ctx, fileRecovery{b}, ref, epoch)
}

// fileRecovery is the local backend's Recoverable. Its fence is a file
// beside the segment, not a block slot: any fence ends the segment file
// wherever its valid blocks end, so FindEnd only reports whether one is
// there, and ReadTail finds the end.
type fileRecovery struct{ b *FileBackend }

func (r fileRecovery) ReadSeal(ctx context.Context, ref Ref) (SealInfo, bool, error) {
	info, err := r.b.readSeal(ctx, ref)
	if errors.Is(err, objstore.ErrNotFound) {
		return SealInfo{}, false, nil
	}
	return info, err == nil, err
}

func (r fileRecovery) FindEnd(ctx context.Context, ref Ref, from Tail) (Tail, error) {
	fenced, err := r.b.fenced(ctx, ref)
	if err != nil {
		return Tail{}, err
	}
	from.Fenced = fenced
	return from, nil
}

// Fence creates the fence file, create-only and durable. A fence file
// that exists already (another recovery's) fences the segment as well.
func (r fileRecovery) Fence(ctx context.Context, ref Ref, epoch int64, at Tail) (bool, error) {
	fence := EncodeFence(FenceInfo{LogID: ref.LogID, SegmentID: ref.SegmentID, BlockNo: -1, Epoch: epoch})
	err := r.b.small.Put(ctx, r.b.name(ref, ".fence"), fence, objstore.PutOptions{IfNotExists: true})
	if err != nil && !errors.Is(err, objstore.ErrAlreadyExists) {
		return false, err
	}
	return true, nil
}

// ReadTail validates every block of the segment file, cuts a torn tail
// and fsyncs the file, so that the seal never counts a block that a crash
// of this machine could still take away.
func (r fileRecovery) ReadTail(ctx context.Context, ref Ref, at Tail) (SealInfo, error) {
	return r.b.scanFile(ref, true)
}

func (r fileRecovery) WriteSeal(ctx context.Context, ref Ref, record []byte) (bool, error) {
	err := r.b.small.Put(ctx, r.b.name(ref, ".seal"), record, objstore.PutOptions{IfNotExists: true})
	if errors.Is(err, objstore.ErrAlreadyExists) {
		return false, nil
	}
	return err == nil, err
}

// Scan implements Backend.
func (b *FileBackend) Scan(ctx context.Context, ref Ref) (SealInfo, error) {
	if info, err := b.readSeal(ctx, ref); err == nil {
		return info, nil
	} else if !errors.Is(err, objstore.ErrNotFound) {
		return SealInfo{}, err
	}
	return b.scanFile(ref, false)
}

// scanFile finds the segment file's valid prefix and, with cut, truncates
// the torn tail after it.
func (b *FileBackend) scanFile(ref Ref, cut bool) (SealInfo, error) {
	info := SealInfo{LastEntry: -1}
	path := b.segPath(ref)
	flag := os.O_RDONLY
	if cut {
		flag = os.O_RDWR
	}
	f, err := b.fs.OpenFile(path, flag, 0)
	if errors.Is(err, os.ErrNotExist) {
		return info, nil // the writer died before its first block
	}
	if err != nil {
		return info, errors.Wrapf(err, "open %s", path)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return info, errors.Wrapf(err, "stat %s", path)
	}
	// Every block is validated whole: a damaged block in the middle of the
	// file is corruption to report, never a tail to cut, since the blocks
	// after it may hold acknowledged entries.
	var last *BlockHeader
	var blocks int64
	off, err := ScanBlocks(f, st.Size(), ref.LogID, ref.SegmentID, func(h BlockHeader, _ int64) error {
		last = &h
		blocks++
		return nil
	})
	if err != nil {
		return info, errors.Wrapf(err, "scan %s", path)
	}
	if cut {
		if off < st.Size() {
			if err := f.Truncate(off); err != nil {
				return info, errors.Wrapf(err, "cut torn tail of %s at %d", path, off)
			}
		}
		// The writer may have died between a write and its fsync: what
		// the seal counts must be on disk first.
		if err := f.Sync(); err != nil {
			return info, errors.Wrapf(err, "fsync %s", path)
		}
	}
	if last != nil {
		info.LastEntry = last.NextEntry() - 1
		info.Blocks = blocks
		info.Bytes = off
	}
	return info, nil
}

func (b *FileBackend) readSeal(ctx context.Context, ref Ref) (SealInfo, error) {
	data, err := b.small.Get(ctx, b.name(ref, ".seal"))
	if err != nil {
		return SealInfo{}, err
	}
	info, err := DecodeSealInfo(data)
	if err != nil {
		return SealInfo{}, errors.Wrapf(err, "seal record of segment %d of log %d", ref.SegmentID, ref.LogID)
	}
	return info, nil
}

// OpenCursor implements Backend.
func (b *FileBackend) OpenCursor(ref Ref) Cursor {
	return &fileCursor{b: b, ref: ref, limit: -1}
}

type fileCursor struct {
	b     *FileBackend
	ref   Ref
	f     vfs.File
	off   int64
	next  int64
	limit int64
}

func (c *fileCursor) SetLimit(blocks int64) { c.limit = blocks }

// Skip is a hint; a file is read from its start.
func (c *fileCursor) Skip(int64) {}

func (c *fileCursor) Next(ctx context.Context) (BlockHeader, [][]byte, error) {
	if c.limit >= 0 && c.next >= c.limit {
		return BlockHeader{}, nil, ErrEndOfSegment
	}
	// Past the sealed block count nothing is missing: a short or invalid
	// block there is corruption. Before the seal it may be a write in
	// progress.
	notYet := func(what string) (BlockHeader, [][]byte, error) {
		if c.limit >= 0 {
			return BlockHeader{}, nil, errors.Wrapf(walerr.ErrCorrupt, "segment %d of log %d, block %d at offset %d: %s",
				c.ref.SegmentID, c.ref.LogID, c.next, c.off, what)
		}
		return BlockHeader{}, nil, ErrNoBlockYet
	}
	if c.f == nil {
		f, err := c.b.fs.OpenFile(c.b.segPath(c.ref), os.O_RDONLY, 0)
		if errors.Is(err, os.ErrNotExist) {
			return notYet("segment file is missing")
		}
		if err != nil {
			return BlockHeader{}, nil, errors.Wrapf(err, "open segment %d of log %d", c.ref.SegmentID, c.ref.LogID)
		}
		c.f = f
	}
	head := make([]byte, BlockHeaderSize)
	if _, err := c.f.ReadAt(head, c.off); err != nil {
		if errors.Is(err, io.EOF) {
			return notYet("file ends")
		}
		return BlockHeader{}, nil, errors.Wrapf(err, "read %s", c.f.Name())
	}
	h, err := DecodeBlockHeader(head)
	if err != nil {
		return notYet(err.Error())
	}
	data := make([]byte, BlockSize(h))
	if _, err := c.f.ReadAt(data, c.off); err != nil {
		if errors.Is(err, io.EOF) {
			return notYet("file ends inside the block")
		}
		return BlockHeader{}, nil, errors.Wrapf(err, "read %s", c.f.Name())
	}
	h, entries, err := DecodeBlock(data)
	if err != nil {
		return notYet(err.Error())
	}
	if h.LogID != c.ref.LogID || h.SegmentID != c.ref.SegmentID || h.BlockNo != c.next {
		return BlockHeader{}, nil, errors.Wrapf(walerr.ErrCorrupt, "%s at offset %d: block claims log %d segment %d block %d",
			c.f.Name(), c.off, h.LogID, h.SegmentID, h.BlockNo)
	}
	if c.limit < 0 {
		// A block read after the segment was fenced may lie beyond the
		// seal recovery is about to write: wait for the seal instead.
		if fenced, err := c.b.fenced(ctx, c.ref); err != nil || fenced {
			if err != nil {
				return BlockHeader{}, nil, err
			}
			return BlockHeader{}, nil, ErrNoBlockYet
		}
	}
	c.off += int64(len(data))
	c.next++
	return h, entries, nil
}

func (c *fileCursor) Close() error {
	if c.f != nil {
		return c.f.Close()
	}
	return nil
}

// createOnce creates key holding data in store. A retry after a lost
// response finds its own earlier write and succeeds; any other content
// means a newer writer got there first.
func createOnce(ctx context.Context, store objstore.Store, key string, data []byte) error {
	err := store.Put(ctx, key, data, objstore.PutOptions{IfNotExists: true})
	if !errors.Is(err, objstore.ErrAlreadyExists) {
		return err
	}
	got, gerr := store.Get(ctx, key)
	if gerr != nil {
		return errors.Wrapf(gerr, "check existing object %s", key)
	}
	if string(got) == string(data) {
		return nil
	}
	what := "another writer's data"
	if IsFence(got) {
		what = "a fence"
	}
	return errors.Wrapf(walerr.ErrFenced, "object %s holds %s", key, what)
}
