package gc

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/segment"
)

// storage is how the collector sees a segment backend's objects: one
// object store whose keys it can map to logs and segments.
type storage interface {
	store() objstore.Store
	// root is the prefix of every log's objects.
	root() string
	logPrefix(logID int64) string
	segmentPrefix(logID, segID int64) string
	// parse maps a key to its log, segment and name within the segment;
	// ok is false for keys that are not segment data.
	parse(key string) (logID, segID int64, name string, ok bool)
	// objects is the object backend when segments are object runs that
	// compaction can rewrite; nil for local segment files.
	objects() *segment.ObjectBackend
}

func newStorage(b segment.Backend) (storage, error) {
	switch b := b.(type) {
	case *segment.ObjectBackend:
		return objectStorage{b: b, r: strings.Trim(b.Root(), "/")}, nil
	case *segment.FileBackend:
		return fileStorage{s: b.Store()}, nil
	default:
		return nil, errors.Newf("garbage collection does not support the %s backend", b.Describe())
	}
}

// objectStorage: <root>/<log>/<segment 19 digits>/<name>.
type objectStorage struct {
	b *segment.ObjectBackend
	r string
}

func (o objectStorage) store() objstore.Store           { return o.b.Store() }
func (o objectStorage) objects() *segment.ObjectBackend { return o.b }
func (o objectStorage) root() string {
	if o.r == "" {
		return ""
	}
	return o.r + "/"
}
func (o objectStorage) logPrefix(logID int64) string { return segment.LogPrefix(o.r, logID) }
func (o objectStorage) segmentPrefix(logID, segID int64) string {
	return segment.SegmentPrefix(o.r, logID, segID)
}
func (o objectStorage) parse(key string) (int64, int64, string, bool) {
	rest, ok := strings.CutPrefix(key, o.root())
	if !ok || strings.Count(rest, "/") != 2 {
		return 0, 0, "", false
	}
	return segment.ParseSegmentKey(rest)
}

// fileStorage: <log>/<segment 19 digits>.<seg|fence|seal> in the local
// directory.
type fileStorage struct{ s objstore.Store }

func (f fileStorage) store() objstore.Store           { return f.s }
func (f fileStorage) objects() *segment.ObjectBackend { return nil }
func (f fileStorage) root() string                    { return "" }
func (f fileStorage) logPrefix(logID int64) string {
	return strconv.FormatInt(logID, 10) + "/"
}
func (f fileStorage) segmentPrefix(logID, segID int64) string {
	return fmt.Sprintf("%s%019d.", f.logPrefix(logID), segID)
}
func (f fileStorage) parse(key string) (int64, int64, string, bool) {
	logStr, file, ok := strings.Cut(key, "/")
	if !ok || strings.Contains(file, "/") || (len(logStr) > 1 && logStr[0] == '0') {
		return 0, 0, "", false
	}
	segStr, ext, ok := strings.Cut(file, ".")
	if !ok || len(segStr) != 19 {
		return 0, 0, "", false
	}
	logID, err1 := strconv.ParseInt(logStr, 10, 64)
	segID, err2 := strconv.ParseInt(segStr, 10, 64)
	if err1 != nil || err2 != nil || logID < 0 || segID < 0 || strings.ContainsAny(logStr+segStr, "+-") {
		return 0, 0, "", false
	}
	return logID, segID, ext, true
}

// afterAll sorts after every valid key that starts with the string it is
// appended to (keys are UTF-8; U+10FFFF is the highest code point).
const afterAll = "\U0010FFFF"

// storedLogIDs returns the ids of the logs that have objects in storage,
// with one listing call per log (and per foreign top-level name): it lists
// one key, then skips past every key of that key's first path element.
func storedLogIDs(ctx context.Context, s storage) ([]int64, error) {
	root := s.root()
	var ids []int64
	after := ""
	for {
		page, err := s.store().List(ctx, root, after, 1)
		if err != nil {
			return nil, errors.Wrap(err, "list the logs in storage")
		}
		if len(page.Objects) == 0 {
			return ids, nil
		}
		key := page.Objects[0].Key
		first, _, hasSlash := strings.Cut(strings.TrimPrefix(key, root), "/")
		if !hasSlash {
			after = key // a lone object at the top: not ours
			continue
		}
		if id, err := strconv.ParseInt(first, 10, 64); err == nil && id >= 0 && strconv.FormatInt(id, 10) == first {
			ids = append(ids, id)
		}
		after = root + first + "/" + afterAll
	}
}
