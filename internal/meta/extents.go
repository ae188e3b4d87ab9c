package meta

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/woodpecker-wal/woodpecker/internal/walerr"
)

// Extents of shared objects (docs/shared-objects.md).
//
// A block written into a shared object becomes part of its log when its
// extent key is in etcd:
//
//	<root>/log/<id>/ext/<segid:19>/<block:19>   Extent of one block
//	<root>/shobj/<object>                       SharedObject: which segments an object serves
//
// Extent keys exist only while their segment is open: the seal transaction
// deletes them, the seal record in object storage holding them from then on.

// MaxTxnOps is the number of operations etcd accepts in one branch of a
// transaction (its --max-txn-ops default). CommitObject uses at most
// extents+1.
const MaxTxnOps = 128

// Extent says where one block of a segment lives in a shared object.
type Extent struct {
	LogID     int64 `json:"-"`
	SegmentID int64 `json:"-"`
	BlockNo   int64 `json:"-"`
	// Object is the shared object's key in the object store.
	Object string `json:"o"`
	// Offset and Length are the block's bytes within the object.
	Offset int64 `json:"off"`
	Length int64 `json:"len"`
	// FirstEntry and Count are the entries the block holds.
	FirstEntry int64  `json:"fe"`
	Count      uint32 `json:"n"`
	// CRC is the CRC32C of the block's bytes.
	CRC uint32 `json:"crc"`
}

// Valid reports what is wrong with an extent read back, nil when nothing.
func (e Extent) Valid() error {
	switch {
	case e.Object == "":
		return errors.New("no object")
	case e.Offset < 0 || e.Length <= 0:
		return errors.Newf("bytes %d+%d", e.Offset, e.Length)
	case e.FirstEntry < 0 || e.Count == 0:
		return errors.Newf("entries %d+%d", e.FirstEntry, e.Count)
	}
	return nil
}

// SharedObject is the record of a committed shared object: the segments
// whose blocks it holds, for garbage collection.
type SharedObject struct {
	Segments    [][2]int64 `json:"segs"` // (log id, segment id) pairs
	CommittedAt time.Time  `json:"at"`
}

// String returns the token as the writer key stores it: "<epoch>:<nonce>".
func (t WriterToken) String() string { return t.value() }

// ParseWriterToken parses what WriterToken.String returned.
func ParseWriterToken(logID int64, s string) (WriterToken, error) {
	e, nonce, ok := strings.Cut(s, ":")
	if !ok || nonce == "" {
		return WriterToken{}, errors.Newf("writer token %q is not <epoch>:<nonce>", s)
	}
	epoch, err := strconv.ParseInt(e, 10, 64)
	if err != nil {
		return WriterToken{}, errors.Wrapf(err, "writer token %q", s)
	}
	return WriterToken{LogID: logID, Epoch: epoch, Nonce: nonce}, nil
}

func (s *Store) extentsPrefix(logID int64) string {
	return fmt.Sprintf("%s/log/%d/ext/", s.root, logID)
}

// segmentExtentsPrefix ends with a slash, so segment 1's prefix is not a
// prefix of segment 10's.
func (s *Store) segmentExtentsPrefix(logID, segID int64) string {
	return fmt.Sprintf("%s%019d/", s.extentsPrefix(logID), segID)
}

func (s *Store) extentKey(logID, segID, block int64) string {
	return fmt.Sprintf("%s%019d", s.segmentExtentsPrefix(logID, segID), block)
}

func (s *Store) sharedObjectKey(object string) string { return s.root + "/shobj/" + object }

// SharedObjectsPrefix is the prefix of every SharedObject record.
func (s *Store) SharedObjectsPrefix() string { return s.root + "/shobj/" }

// ObjectCommit is one shared object's commit: its extents, and the owner
// token of the writer of each log they belong to.
type ObjectCommit struct {
	Object  string
	Owners  map[int64]WriterToken // by log id
	Extents []Extent
}

// CommitObject makes the extents part of their logs in one transaction
// that compares every log's owner. When the compare fails it commits
// nothing and returns the logs whose owner changed (their blocks can never
// become visible through this object); the caller commits the rest again.
// Committing the same extents twice is harmless.
func (s *Store) CommitObject(ctx context.Context, c ObjectCommit) (fenced []int64, err error) {
	if len(c.Extents) == 0 {
		return nil, nil
	}
	if len(c.Extents)+1 > MaxTxnOps {
		return nil, errors.AssertionFailedf("commit of %d extents exceeds %d operations", len(c.Extents), MaxTxnOps)
	}
	logs := make([]int64, 0, len(c.Owners))
	for id := range c.Owners {
		logs = append(logs, id)
	}
	cmps := make([]clientv3.Cmp, 0, len(logs))
	gets := make([]clientv3.Op, 0, len(logs))
	for _, id := range logs {
		cmps = append(cmps, s.ownerCmp(c.Owners[id]))
		gets = append(gets, clientv3.OpGet(s.writerKey(id)))
	}
	rec := SharedObject{CommittedAt: time.Now().UTC()}
	seen := make(map[[2]int64]bool)
	puts := make([]clientv3.Op, 0, len(c.Extents)+1)
	for _, e := range c.Extents {
		if _, ok := c.Owners[e.LogID]; !ok {
			return nil, errors.AssertionFailedf("extent of log %d without its owner", e.LogID)
		}
		val, _ := json.Marshal(e)
		puts = append(puts, clientv3.OpPut(s.extentKey(e.LogID, e.SegmentID, e.BlockNo), string(val)))
		if k := [2]int64{e.LogID, e.SegmentID}; !seen[k] {
			seen[k] = true
			rec.Segments = append(rec.Segments, k)
		}
	}
	val, _ := json.Marshal(rec)
	puts = append(puts, clientv3.OpPut(s.sharedObjectKey(c.Object), string(val)))
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(puts...).Else(gets...).Commit()
	if err != nil {
		return nil, errors.Wrapf(err, "commit shared object %s", c.Object)
	}
	if resp.Succeeded {
		return nil, nil
	}
	for i, id := range logs {
		kv := elseKV(resp, i)
		if kv == nil || string(kv.Value) != c.Owners[id].value() {
			fenced = append(fenced, id)
		}
	}
	if len(fenced) == 0 {
		// Every owner matched when read, yet the compare failed: an owner
		// changed and changed back between the two, which CAS on a fresh
		// nonce makes impossible.
		return nil, errors.AssertionFailedf("commit of shared object %s failed with every owner in place", c.Object)
	}
	return fenced, nil
}

// Extents returns the extents of the segment's blocks from block from on,
// in block order, at most limit of them (0: all).
func (s *Store) Extents(ctx context.Context, logID, segID, from int64, limit int) ([]Extent, error) {
	prefix := s.segmentExtentsPrefix(logID, segID)
	opts := []clientv3.OpOption{clientv3.WithRange(clientv3.GetPrefixRangeEnd(prefix)),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)}
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(int64(limit)))
	}
	resp, err := s.cli.Get(ctx, s.extentKey(logID, segID, from), opts...)
	if err != nil {
		return nil, errors.Wrapf(err, "read extents of segment %d of log %d", segID, logID)
	}
	out := make([]Extent, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		e, err := decodeExtent(prefix, kv.Key, kv.Value)
		if err != nil {
			return nil, errors.Wrapf(err, "log %d segment %d", logID, segID)
		}
		e.LogID, e.SegmentID = logID, segID
		out = append(out, e)
	}
	return out, nil
}

func decodeExtent(prefix string, key, val []byte) (Extent, error) {
	var e Extent
	name, ok := strings.CutPrefix(string(key), prefix)
	if !ok {
		return Extent{}, errors.AssertionFailedf("extent key %q outside %q", key, prefix)
	}
	no, err := strconv.ParseInt(name, 10, 64)
	if err != nil || no < 0 {
		return Extent{}, errors.Wrapf(walerr.ErrCorrupt, "extent key %q", key)
	}
	e.BlockNo = no
	if err := json.Unmarshal(val, &e); err != nil {
		return Extent{}, errors.Wrapf(walerr.ErrCorrupt, "extent %q: %v", key, err)
	}
	if err := e.Valid(); err != nil {
		return Extent{}, errors.Wrapf(walerr.ErrCorrupt, "extent %q: %v", key, err)
	}
	return e, nil
}

// WatchExtents streams changes of the log's extent keys from now on: a
// block committed into a shared object. The channel closes when ctx ends.
func (s *Store) WatchExtents(ctx context.Context, logID int64) clientv3.WatchChan {
	return s.cli.Watch(ctx, s.extentsPrefix(logID), clientv3.WithPrefix(), clientv3.WithCreatedNotify())
}

// SharedObjects returns the records of committed shared objects, in key
// order, from after startAfter (empty: from the first), at most limit.
func (s *Store) SharedObjects(ctx context.Context, startAfter string, limit int) (map[string]SharedObject, []string, error) {
	prefix := s.SharedObjectsPrefix()
	from := prefix
	if startAfter != "" {
		from = s.sharedObjectKey(startAfter) + "\x00"
	}
	opts := []clientv3.OpOption{clientv3.WithRange(clientv3.GetPrefixRangeEnd(prefix)),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)}
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(int64(limit)))
	}
	resp, err := s.cli.Get(ctx, from, opts...)
	if err != nil {
		return nil, nil, errors.Wrap(err, "list shared objects")
	}
	recs := make(map[string]SharedObject, len(resp.Kvs))
	names := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		name := strings.TrimPrefix(string(kv.Key), prefix)
		var rec SharedObject
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			return nil, nil, errors.Wrapf(walerr.ErrCorrupt, "shared object record %q: %v", kv.Key, err)
		}
		recs[name] = rec
		names = append(names, name)
	}
	return recs, names, nil
}

// RemoveSharedObject deletes the record of a shared object whose data no
// segment needs any more (after the object itself was deleted).
func (s *Store) RemoveSharedObject(ctx context.Context, object string) error {
	if _, err := s.cli.Delete(ctx, s.sharedObjectKey(object)); err != nil {
		return errors.Wrapf(err, "remove shared object record %s", object)
	}
	return nil
}
