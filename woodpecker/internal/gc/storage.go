package gc

import (
	"context"
	"strconv"
	"strings"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/segment"
)

// Storage is what the collector needs of a durability backend: the object
// store that holds its segments' data, and how the keys there map to logs
// and segments. segment.ObjectBackend and segment.FileBackend implement
// it; a backend that does not cannot be collected.
type Storage interface {
	// Store returns the store holding every object of the backend's
	// segments; the collector lists and deletes through it.
	Store() objstore.Store
	// KeyRoot returns the prefix of every key of the backend's segments:
	// "" or a path ending in "/". What follows it up to the next "/" is a
	// log id.
	KeyRoot() string
	// LogKeyPrefix returns the prefix of every key of log logID's
	// segments. Listing it returns them segment by segment, in order.
	LogKeyPrefix(logID int64) string
	// SegmentKeyPrefix returns the prefix of every key of one segment.
	SegmentKeyPrefix(ref segment.Ref) string
	// ParseKey returns the segment a key holds data of; ok is false for
	// keys that are not segment data, which the collector leaves alone.
	ParseKey(key string) (ref segment.Ref, ok bool)
}

// Compactor is implemented by backends whose sealed segments are runs of
// objects that compaction can rewrite (segment.ObjectBackend). Only there
// does the collector compact, retire replaced objects, and delete objects
// of a sealed segment that its layout does not list; a segment file of
// another backend holds nothing but the segment.
type Compactor interface {
	// ReadLayout returns the layout of generation gen of a sealed segment
	// of blocks blocks.
	ReadLayout(ctx context.Context, ref segment.Ref, gen, blocks int64) (segment.Layout, error)
	// Compact writes generation gen+1 of the segment (segment.ObjectBackend.Compact).
	Compact(ctx context.Context, ref segment.Ref, gen, blocks int64, sizes map[string]int64,
		opts segment.CompactOptions) (segment.CompactResult, error)
}

var (
	_ Storage   = (*segment.ObjectBackend)(nil)
	_ Compactor = (*segment.ObjectBackend)(nil)
	_ Storage   = (*segment.FileBackend)(nil)
)

// storage is the collector's view of its backend.
type storage struct {
	Storage
	// compactor is the backend when it is a Compactor, else nil.
	compactor Compactor
}

func newStorage(b segment.Backend) (storage, error) {
	st, ok := b.(Storage)
	if !ok {
		return storage{}, errors.Newf("garbage collection does not support the %s backend", b.Describe())
	}
	c, _ := b.(Compactor)
	return storage{Storage: st, compactor: c}, nil
}

// segRef names the segment sm describes, with its placement (which tells
// shared segments from per-log ones).
func segRef(sm meta.SegmentMeta) segment.Ref {
	return segment.Ref{LogID: sm.LogID, SegmentID: sm.ID, Placement: string(sm.Placement)}
}

// afterAll sorts after every valid key that starts with the string it is
// appended to (keys are UTF-8; U+10FFFF is the highest code point).
const afterAll = "\U0010FFFF"

// storedLogIDs returns the ids of the logs that have objects in storage,
// with one listing call per log (and per foreign top-level name): it lists
// one key, then skips past every key of that key's first path element.
func storedLogIDs(ctx context.Context, s Storage) ([]int64, error) {
	root := s.KeyRoot()
	var ids []int64
	after := ""
	for {
		page, err := s.Store().List(ctx, root, after, 1)
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
