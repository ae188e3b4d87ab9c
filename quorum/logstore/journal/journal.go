// Package journal keeps what a LogStore replica must not forget on local
// disk, for replicas configured to survive a crash of their process or
// machine (logstore --data-dir): the blocks it acknowledged and the fences
// it answered, synced before it answers. Without one a restarted replica
// knows nothing and may vouch only for segments created after its
// restart; with one it replays its state and vouches from its first start.
//
// A directory holds one file per segment, segments/<log>-<segment>.wal,
// that only grows (see record.go for the layout) until it is rewritten
// with what is still needed, and a released segment's file becomes a
// tombstone, <log>-<segment>.released, so that the fence survives too.
// node.json holds the etcd revision of the replica's first registration.
//
// The package does I/O only; what the records mean to a replica is the
// logstore package's business.
package journal

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/vfs"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
)

const (
	segmentsDir   = "segments"
	nodeFile      = "node.json"
	walSuffix     = ".wal"
	releasedSufix = ".released"
)

// ErrBroken marks a file that failed in a way that leaves its content
// unknown (a failed sync, or a failed write that could not be undone):
// nothing more can be appended to it.
var ErrBroken = errors.New("journal: file broken by an earlier failure")

// Dir is a journal directory. Safe for concurrent use; each File is used
// by one goroutine at a time.
type Dir struct {
	fs   vfs.FS
	path string
	segs string
	mu   sync.Mutex // serializes directory changes and their syncs
}

// Open opens (creating it if needed) the journal directory path.
func Open(fsys vfs.FS, path string) (*Dir, error) {
	if fsys == nil {
		fsys = vfs.Default
	}
	d := &Dir{fs: fsys, path: path, segs: filepath.Join(path, segmentsDir)}
	if err := fsys.MkdirAll(d.segs, 0o755); err != nil {
		return nil, errors.Wrapf(err, "journal: create %s", d.segs)
	}
	if err := d.syncDir(path); err != nil {
		return nil, err
	}
	if err := d.syncDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	return d, nil
}

// Path is the directory's path.
func (d *Dir) Path() string { return d.path }

func (d *Dir) syncDir(path string) error {
	f, err := d.fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return errors.Wrapf(err, "journal: open directory %s", path)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return errors.Wrapf(err, "journal: sync directory %s", path)
}

type nodeInfo struct {
	// Revision is the etcd revision of the replica's first registration
	// with this directory: its memory dates from it.
	Revision int64  `json:"registeredRevision"`
	NodeID   string `json:"nodeID"`
}

// Revision returns the revision from which the journal remembers
// everything: the one recorded at the directory's first use, or current
// (then recorded) on a new directory. A directory used by another node id
// is refused: its segments are another replica's; so is one whose revision
// is past current: it was made against another etcd.
func (d *Dir) Revision(nodeID string, current int64) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	path := filepath.Join(d.path, nodeFile)
	b, err := readFile(d.fs, path)
	switch {
	case err == nil:
		var info nodeInfo
		if err := json.Unmarshal(b, &info); err != nil || info.Revision <= 0 {
			return 0, errors.Wrapf(ErrCorrupt, "journal: %s does not hold a registration revision (%v)", path, err)
		}
		if info.NodeID != nodeID {
			return 0, errors.Newf("journal: %s belongs to LogStore %q, not %q: give each LogStore its own data directory",
				d.path, info.NodeID, nodeID)
		}
		if current < info.Revision {
			// etcd's revisions only grow: this etcd is not the one the
			// journal's segments were created in.
			return 0, errors.Newf("journal: %s dates from etcd revision %d, and etcd is at revision %d now: "+
				"the journal belongs to another etcd cluster (or etcd lost its data); empty the directory to start afresh",
				d.path, info.Revision, current)
		}
		return info.Revision, nil
	case !errors.Is(err, fs.ErrNotExist):
		return 0, errors.Wrapf(err, "journal: read %s", path)
	}
	b, _ = json.Marshal(nodeInfo{Revision: current, NodeID: nodeID})
	if err := d.writeAtomic(d.path, nodeFile, b); err != nil {
		return 0, err
	}
	return current, nil
}

// writeAtomic makes dir/name hold b, durably: a temporary file, synced,
// renamed over it, the directory synced. Requires d.mu.
func (d *Dir) writeAtomic(dir, name string, b []byte) error {
	f, err := d.fs.CreateTemp(dir, name+".tmp*")
	if err != nil {
		return errors.Wrapf(err, "journal: create a temporary file in %s", dir)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = d.fs.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		_ = d.fs.Remove(tmp)
		return errors.Wrapf(err, "journal: write %s", filepath.Join(dir, name))
	}
	return d.syncDir(dir)
}

func readFile(fsys vfs.FS, path string) ([]byte, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func (d *Dir) name(log, seg int64, suffix string) string {
	return filepath.Join(d.segs, fmt.Sprintf("%d-%d%s", log, seg, suffix))
}

// Segment is what Replay found of one segment.
type Segment struct {
	Log, Seg int64
	// Released: the segment's file is a tombstone (Records is empty).
	Released bool
	// Records are the valid records, in the order they were written.
	Records []Record
	// File is the segment's file, open for appending after Records; nil
	// when Released.
	File *File
}

// Replay reads every segment's file. A torn tail (the part of a write a
// crash cut off, see record.go) is cut from its file. Files it does not
// know are skipped; a file whose header is not one of ours, or names
// another segment than its name, fails the replay (ErrCorrupt): the
// directory is not this replica's journal, or was damaged.
func (d *Dir) Replay() ([]Segment, error) {
	entries, err := d.fs.ReadDir(d.segs)
	if err != nil {
		return nil, errors.Wrapf(err, "journal: list %s", d.segs)
	}
	type key struct{ log, seg int64 }
	parse := func(name, suffix string) (key, bool) {
		base, ok := strings.CutSuffix(name, suffix)
		var k key
		if n, err := fmt.Sscanf(base, "%d-%d", &k.log, &k.seg); !ok || n != 2 || err != nil || fmt.Sprintf("%d-%d", k.log, k.seg) != base {
			return key{}, false
		}
		return k, true
	}
	// Tombstones first: a segment that has one was released, whatever
	// else is left of it (a file created for it again before its
	// tombstone was forgotten).
	var out []Segment
	released := map[key]bool{}
	for _, e := range entries {
		if k, ok := parse(e.Name(), releasedSufix); ok {
			released[k] = true
			out = append(out, Segment{Log: k.log, Seg: k.seg, Released: true})
		}
	}
	for _, e := range entries {
		k, ok := parse(e.Name(), walSuffix)
		if !ok || released[k] {
			continue // not a segment's file (a rewrite's temporary file), or released
		}
		s, err := d.replayFile(k.log, k.seg)
		if err != nil {
			for _, o := range out {
				if o.File != nil {
					_ = o.File.Close()
				}
			}
			return nil, err
		}
		if s.File != nil {
			out = append(out, s)
		}
	}
	return out, nil
}

func (d *Dir) replayFile(log, seg int64) (Segment, error) {
	path := d.name(log, seg, walSuffix)
	f, err := d.fs.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return Segment{}, errors.Wrapf(err, "journal: open %s", path)
	}
	b, err := io.ReadAll(f)
	if err == nil && len(b) < HeaderSize {
		// A Create that a crash interrupted: it never returned, so nothing
		// was written to the segment.
		_ = f.Close()
		if err := d.fs.Remove(path); err != nil {
			return Segment{}, errors.Wrapf(err, "journal: remove the unfinished %s", path)
		}
		return Segment{Log: log, Seg: seg}, nil
	}
	if err == nil {
		var hl, hs int64
		hl, hs, err = DecodeHeader(b)
		if err == nil && (hl != log || hs != seg) {
			err = errors.Wrapf(ErrCorrupt, "the header names log %d segment %d", hl, hs)
		}
	}
	if err != nil {
		_ = f.Close()
		return Segment{}, errors.Wrapf(err, "journal: replay %s", path)
	}
	recs, n := DecodeRecords(b[HeaderSize:])
	size := int64(HeaderSize + n)
	if size < int64(len(b)) {
		// The torn tail goes, or the next append would follow it and be
		// lost to the next replay.
		err := f.Truncate(size)
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			_ = f.Close()
			return Segment{}, errors.Wrapf(err, "journal: cut the torn tail of %s", path)
		}
	}
	return Segment{Log: log, Seg: seg, Records: recs, File: &File{d: d, log: log, seg: seg, f: f, size: size}}, nil
}

// Create creates the file of segment seg of log, durably, and returns it
// open for appending. An existing file is replaced.
func (d *Dir) Create(log, seg int64) (*File, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	path := d.name(log, seg, walSuffix)
	f, err := d.fs.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, errors.Wrapf(err, "journal: create %s", path)
	}
	hdr := AppendHeader(nil, log, seg)
	_, err = f.WriteAt(hdr, 0)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = d.syncDir(d.segs)
	}
	if err != nil {
		_ = f.Close()
		_ = d.fs.Remove(path)
		return nil, errors.Wrapf(err, "journal: create %s", path)
	}
	return &File{d: d, log: log, seg: seg, f: f, size: int64(len(hdr))}, nil
}

// Forget removes the tombstone of a released segment.
func (d *Dir) Forget(log, seg int64) error {
	err := d.fs.Remove(d.name(log, seg, releasedSufix))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return errors.Wrap(err, "journal: forget a released segment")
	}
	return nil
}

// File is one segment's journal file, open for appending. Used by one
// goroutine at a time.
type File struct {
	d        *Dir
	log, seg int64
	f        vfs.File
	size     int64
	broken   error
	closed   bool
	buf      []byte
}

// Size is the file's length.
func (f *File) Size() int64 { return f.size }

// Append writes recs after the file's records and syncs: when it returns
// nil they survive a crash. On failure they are not in the file (or the
// file is broken: see ErrBroken).
func (f *File) Append(recs ...Record) error {
	if f.broken != nil {
		return f.broken
	}
	start := f.size
	off := start
	for _, r := range recs {
		// A small record goes out with its header; a block's bytes are
		// written from where they are rather than copied.
		f.buf = appendRecordHeader(f.buf[:0], r)
		if len(r.Data) <= 4<<10 {
			f.buf = append(f.buf, r.Data...)
		}
		if err := f.writeAt(f.buf, off); err != nil {
			return f.undo(start, err)
		}
		off += int64(len(f.buf))
		if len(r.Data) > 4<<10 {
			if err := f.writeAt(r.Data, off); err != nil {
				return f.undo(start, err)
			}
			off += int64(len(r.Data))
		}
	}
	if err := f.f.Sync(); err != nil {
		// What the failed sync covered may be gone whatever the file now
		// says (vfs): nothing more goes into it.
		f.broken = walerr.Mark(errors.Wrapf(err, "journal: sync %s", f.f.Name()), ErrBroken)
		return f.broken
	}
	f.size = off
	return nil
}

func (f *File) writeAt(b []byte, off int64) error {
	n, err := f.f.WriteAt(b, off)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	return err
}

// undo cuts what a failed append wrote.
func (f *File) undo(size int64, err error) error {
	err = errors.Wrapf(err, "journal: write %s", f.f.Name())
	if terr := f.f.Truncate(size); terr != nil {
		f.broken = walerr.Mark(errors.CombineErrors(err, terr), ErrBroken)
		return f.broken
	}
	return err
}

// Rewrite replaces the file with one holding recs only, durably (a
// temporary file, synced, renamed over it). A rewrite that fails leaves the
// file as it was.
func (f *File) Rewrite(recs ...Record) error {
	d := f.d
	d.mu.Lock()
	defer d.mu.Unlock()
	nf, err := d.fs.CreateTemp(d.segs, fmt.Sprintf("%d-%d.tmp*", f.log, f.seg))
	if err != nil {
		return errors.Wrap(err, "journal: rewrite")
	}
	tmp := nf.Name()
	b := AppendHeader(nil, f.log, f.seg)
	for _, r := range recs {
		b = AppendRecord(b, r)
	}
	_, err = nf.WriteAt(b, 0)
	if err == nil {
		err = nf.Sync()
	}
	if err == nil {
		err = d.fs.Rename(tmp, d.name(f.log, f.seg, walSuffix))
	}
	if err != nil {
		_ = nf.Close()
		_ = d.fs.Remove(tmp)
		return errors.Wrapf(err, "journal: rewrite log %d segment %d", f.log, f.seg)
	}
	// The new file is in place; a failed directory sync leaves it unknown
	// which file a crash brings back, and both are valid.
	_ = f.f.Close()
	f.f, f.size, f.broken = nf, int64(len(b)), nil
	if err := d.syncDir(d.segs); err != nil {
		f.broken = walerr.Mark(err, ErrBroken)
		return f.broken
	}
	return nil
}

// Release turns the file into the segment's tombstone and closes it.
func (f *File) Release() error {
	d := f.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if !f.closed {
		_ = f.f.Close()
	}
	f.closed = true
	f.broken = walerr.Mark(errors.New("journal: segment released"), ErrBroken)
	tomb := d.name(f.log, f.seg, releasedSufix)
	if err := d.fs.Rename(d.name(f.log, f.seg, walSuffix), tomb); err != nil {
		return errors.Wrapf(err, "journal: release log %d segment %d", f.log, f.seg)
	}
	if err := d.syncDir(d.segs); err != nil {
		return err
	}
	// The tombstone's content is never read: free the space.
	if t, err := d.fs.OpenFile(tomb, os.O_RDWR, 0); err == nil {
		_ = t.Truncate(0)
		_ = t.Close()
	}
	return nil
}

// Close closes the file.
func (f *File) Close() error {
	if f.broken == nil {
		f.broken = walerr.Mark(errors.New("journal: file closed"), ErrBroken)
	}
	if f.closed {
		return nil
	}
	f.closed = true
	return f.f.Close()
}
