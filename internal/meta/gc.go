package meta

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/woodpecker-wal/woodpecker/internal/walerr"
)

// Garbage collection, compaction and reader positions.
//
// Garbage collection deletes a log's oldest segments in three steps, each
// resumable: mark them Deleting in etcd (one transaction that also raises
// the log's GC floor and compares that no reader published a position
// since the collector looked), delete their objects, remove their
// metadata. A reader that publishes its position before it reads is thus
// either seen by the collector, which spares every segment from that
// position on, or sees the floor and knows the data is gone.
//
// Collectors coordinate through a lock per log, a key bound to the
// collector's lease: every metadata change a collector makes compares that
// it still holds the lock.

// ErrConflict: the metadata changed between the read a change was based on
// and the change (a reader published a position, a segment changed). Read
// again and retry.
var ErrConflict = errors.New("metadata changed concurrently")

// ErrLockLost: the garbage collector no longer holds the log's lock (its
// lease expired); another collector may hold it. Stop working on the log.
var ErrLockLost = errors.New("garbage collection lock lost")

// MaxSegmentsPerTxn bounds the segments one garbage-collection transaction
// marks or removes (etcd limits the operations of a transaction, 128 by
// default).
const MaxSegmentsPerTxn = 64

func (s *Store) gcKey(id int64) string        { return fmt.Sprintf("%s/log/%d/gc", s.root, id) }
func (s *Store) retentionKey(id int64) string { return fmt.Sprintf("%s/log/%d/retention", s.root, id) }
func (s *Store) readersPrefix(id int64) string {
	return fmt.Sprintf("%s/log/%d/readers/", s.root, id)
}
func (s *Store) readerKey(id int64, lease clientv3.LeaseID) string {
	return fmt.Sprintf("%s%016x", s.readersPrefix(id), int64(lease))
}
func (s *Store) gcLockKey(id int64) string { return fmt.Sprintf("%s/gclock/%d", s.root, id) }
func (s *Store) deletedPrefix() string     { return s.root + "/deleted/" }

// ReaderPosition is what a reader publishes: the position it reads from
// (every segment from Segment on must stay), under its lease.
type ReaderPosition struct {
	Position
	Lease int64     `json:"lease"`
	Since time.Time `json:"since"`
}

// PublishReader stores the reader's position under lease, replacing what
// the same lease published before. The key vanishes when the lease ends.
func (s *Store) PublishReader(ctx context.Context, logID int64, lease clientv3.LeaseID, p Position) error {
	val, _ := json.Marshal(ReaderPosition{Position: p, Lease: int64(lease), Since: time.Now().UTC()})
	if _, err := s.cli.Put(ctx, s.readerKey(logID, lease), string(val), clientv3.WithLease(lease)); err != nil {
		return errors.Wrapf(err, "publish reader position on log %d", logID)
	}
	return nil
}

// RemoveReader deletes the reader's published position.
func (s *Store) RemoveReader(ctx context.Context, logID int64, lease clientv3.LeaseID) error {
	if _, err := s.cli.Delete(ctx, s.readerKey(logID, lease)); err != nil {
		return errors.Wrapf(err, "remove reader position on log %d", logID)
	}
	return nil
}

// GCState is what garbage collection records per log.
type GCState struct {
	// Floor is the lowest segment id garbage collection has not deleted:
	// every segment below it is deleted or being deleted. A new writer
	// never starts below it, and readers positioned below it get
	// ErrTruncated.
	Floor int64 `json:"floor"`
	// LastRun is when garbage collection last finished a pass over the log.
	LastRun time.Time `json:"lastRun,omitzero"`
	// LastCompaction is when a segment of the log was last compacted.
	LastCompaction time.Time `json:"lastCompaction,omitzero"`
	// StoredBytes and StoredObjects are what the log's storage held at the
	// end of the last pass, orphans included.
	StoredBytes   int64 `json:"storedBytes"`
	StoredObjects int64 `json:"storedObjects"`
	// Cumulative counts of what garbage collection deleted and compacted.
	DeletedSegments   int64 `json:"deletedSegments"`
	DeletedObjects    int64 `json:"deletedObjects"`
	DeletedBytes      int64 `json:"deletedBytes"`
	CompactedSegments int64 `json:"compactedSegments"`
}

// Retention is a log's own retention policy, overriding the configured
// default.
type Retention struct {
	TTL time.Duration `json:"ttl"`
}

// SetRetention sets the log's retention TTL. It fails with ErrLogNotFound
// when the log was deleted.
func (s *Store) SetRetention(ctx context.Context, logID int64, r Retention) error {
	if r.TTL < 0 {
		return errors.Newf("retention TTL %s is negative", r.TTL)
	}
	val, _ := json.Marshal(r)
	resp, err := s.cli.Txn(ctx).If(
		clientv3.Compare(clientv3.CreateRevision(s.deletedKey(logID)), "=", 0),
	).Then(clientv3.OpPut(s.retentionKey(logID), string(val))).Commit()
	if err != nil {
		return errors.Wrapf(err, "set retention of log %d", logID)
	}
	if !resp.Succeeded {
		return errors.Wrapf(walerr.ErrLogNotFound, "log %d was deleted", logID)
	}
	return nil
}

// ClearRetention removes the log's own retention policy: the configured
// default applies again.
func (s *Store) ClearRetention(ctx context.Context, logID int64) error {
	if _, err := s.cli.Delete(ctx, s.retentionKey(logID)); err != nil {
		return errors.Wrapf(err, "clear retention of log %d", logID)
	}
	return nil
}

// LogState is a consistent snapshot (one etcd revision) of what garbage
// collection needs to know about a log.
type LogState struct {
	// Revision is the etcd revision of the snapshot.
	Revision int64
	Segments []SegmentMeta
	GC       GCState
	// Truncation is the truncation point, valid when Truncated.
	Truncation Position
	Truncated  bool
	// Retention is the log's own policy, valid when HasRetention.
	Retention    Retention
	HasRetention bool
	// Readers are the published reader positions.
	Readers []ReaderPosition

	gcRev int64
}

// ReadLogState reads the log's segments, GC state, truncation point,
// retention and reader positions in one transaction.
func (s *Store) ReadLogState(ctx context.Context, logID int64) (LogState, error) {
	resp, err := s.cli.Txn(ctx).Then(
		clientv3.OpGet(s.SegmentsPrefix(logID), clientv3.WithPrefix(),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)),
		clientv3.OpGet(s.gcKey(logID)),
		clientv3.OpGet(s.truncKey(logID)),
		clientv3.OpGet(s.retentionKey(logID)),
		clientv3.OpGet(s.readersPrefix(logID), clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return LogState{}, errors.Wrapf(err, "read state of log %d", logID)
	}
	st := LogState{Revision: resp.Header.Revision}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		sm, err := DecodeSegment(kv.Value, kv.ModRevision)
		if err != nil {
			return LogState{}, errors.Wrapf(err, "log %d key %s", logID, kv.Key)
		}
		st.Segments = append(st.Segments, sm)
	}
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) == 1 {
		if err := json.Unmarshal(kvs[0].Value, &st.GC); err != nil {
			return LogState{}, errors.Wrapf(walerr.ErrCorrupt, "GC state of log %d: %v", logID, err)
		}
		st.gcRev = kvs[0].ModRevision
	}
	if kvs := resp.Responses[2].GetResponseRange().Kvs; len(kvs) == 1 {
		if err := json.Unmarshal(kvs[0].Value, &st.Truncation); err != nil {
			return LogState{}, errors.Wrapf(walerr.ErrCorrupt, "truncation point of log %d: %v", logID, err)
		}
		st.Truncated = true
	}
	if kvs := resp.Responses[3].GetResponseRange().Kvs; len(kvs) == 1 {
		if err := json.Unmarshal(kvs[0].Value, &st.Retention); err != nil {
			return LogState{}, errors.Wrapf(walerr.ErrCorrupt, "retention of log %d: %v", logID, err)
		}
		st.HasRetention = true
	}
	for _, kv := range resp.Responses[4].GetResponseRange().Kvs {
		var rp ReaderPosition
		if err := json.Unmarshal(kv.Value, &rp); err != nil {
			// A reader position no one can parse protects nothing; it
			// must not block collection forever either. Skip it.
			continue
		}
		st.Readers = append(st.Readers, rp)
	}
	return st, nil
}

// SegmentsAndFloor returns the log's segments and its GC floor (see
// GCState.Floor) as of one etcd revision.
func (s *Store) SegmentsAndFloor(ctx context.Context, logID int64) ([]SegmentMeta, int64, error) {
	resp, err := s.cli.Txn(ctx).Then(
		clientv3.OpGet(s.SegmentsPrefix(logID), clientv3.WithPrefix(),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)),
		clientv3.OpGet(s.gcKey(logID)),
	).Commit()
	if err != nil {
		return nil, 0, errors.Wrapf(err, "list segments of log %d", logID)
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	segs := make([]SegmentMeta, 0, len(kvs))
	for _, kv := range kvs {
		sm, err := DecodeSegment(kv.Value, kv.ModRevision)
		if err != nil {
			return nil, 0, errors.Wrapf(err, "log %d key %s", logID, kv.Key)
		}
		segs = append(segs, sm)
	}
	var gc GCState
	if g := resp.Responses[1].GetResponseRange().Kvs; len(g) == 1 {
		if err := json.Unmarshal(g[0].Value, &gc); err != nil {
			return nil, 0, errors.Wrapf(walerr.ErrCorrupt, "GC state of log %d: %v", logID, err)
		}
	}
	return segs, gc.Floor, nil
}

// ReadGCState returns the log's GC state (zero when garbage collection
// never touched it).
func (s *Store) ReadGCState(ctx context.Context, logID int64) (GCState, error) {
	resp, err := s.cli.Get(ctx, s.gcKey(logID))
	if err != nil {
		return GCState{}, errors.Wrapf(err, "read GC state of log %d", logID)
	}
	var gc GCState
	if len(resp.Kvs) == 1 {
		if err := json.Unmarshal(resp.Kvs[0].Value, &gc); err != nil {
			return GCState{}, errors.Wrapf(walerr.ErrCorrupt, "GC state of log %d: %v", logID, err)
		}
	}
	return gc, nil
}

// GCLock is a garbage collector's hold on one log id (live, deleted or
// unknown). Its zero value holds nothing.
type GCLock struct {
	LogID int64
	key   string
	token string
}

func (l GCLock) cmp() clientv3.Cmp {
	return clientv3.Compare(clientv3.Value(l.key), "=", l.token)
}

// TryLockGC takes the garbage-collection lock of log id for the collector
// identified by token, bound to lease. ok is false when another collector
// holds it. A lock the same token holds already (left by an earlier run of
// the same collector) is taken over and bound to lease.
func (s *Store) TryLockGC(ctx context.Context, logID int64, lease clientv3.LeaseID, token string) (GCLock, bool, error) {
	key := s.gcLockKey(logID)
	resp, err := s.cli.Txn(ctx).If(
		clientv3.Compare(clientv3.CreateRevision(key), "=", 0),
	).Then(clientv3.OpPut(key, token, clientv3.WithLease(lease))).Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return GCLock{}, false, errors.Wrapf(err, "lock log %d for garbage collection", logID)
	}
	lock := GCLock{LogID: logID, key: key, token: token}
	if resp.Succeeded {
		return lock, true, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 || string(kvs[0].Value) != token {
		return GCLock{}, false, nil
	}
	re, err := s.cli.Txn(ctx).If(lock.cmp()).Then(clientv3.OpPut(key, token, clientv3.WithLease(lease))).Commit()
	if err != nil {
		return GCLock{}, false, errors.Wrapf(err, "lock log %d for garbage collection", logID)
	}
	return lock, re.Succeeded, nil
}

// UnlockGC releases the lock if it is still held.
func (s *Store) UnlockGC(ctx context.Context, l GCLock) error {
	if l.key == "" {
		return nil
	}
	_, err := s.cli.Txn(ctx).If(l.cmp()).Then(clientv3.OpDelete(l.key)).Commit()
	return errors.Wrapf(err, "unlock log %d", l.LogID)
}

// lost tells ErrLockLost from ErrConflict after a failed transaction.
func (s *Store) lost(ctx context.Context, l GCLock, what string) error {
	resp, err := s.cli.Get(ctx, l.key)
	if err != nil {
		return errors.Wrapf(err, "%s: check the GC lock", what)
	}
	if len(resp.Kvs) == 0 || string(resp.Kvs[0].Value) != l.token {
		return errors.Wrapf(ErrLockLost, "%s on log %d", what, l.LogID)
	}
	return errors.Wrapf(ErrConflict, "%s on log %d", what, l.LogID)
}

// MarkDeleting marks segs (sealed segments of st, at most
// MaxSegmentsPerTxn, the lowest of the log in order) as being deleted and
// raises the GC floor above them, in one transaction. It compares that the
// lock is held, that no segment changed, that the GC state did not change,
// and that no reader published a position after st was read. It returns
// the marked segments with their new revision, ErrConflict when something
// changed (read the state again), or ErrLockLost.
func (s *Store) MarkDeleting(ctx context.Context, l GCLock, st LogState, segs []SegmentMeta) ([]SegmentMeta, error) {
	if len(segs) == 0 {
		return nil, nil
	}
	if len(segs) > MaxSegmentsPerTxn {
		return nil, errors.AssertionFailedf("mark %d segments in one transaction (limit %d)", len(segs), MaxSegmentsPerTxn)
	}
	cmps := []clientv3.Cmp{
		l.cmp(),
		clientv3.Compare(clientv3.ModRevision(s.gcKey(l.LogID)), "=", st.gcRev),
		clientv3.Compare(clientv3.ModRevision(s.readersPrefix(l.LogID)), "<", st.Revision+1).WithPrefix(),
	}
	ops := make([]clientv3.Op, 0, len(segs)+1)
	out := make([]SegmentMeta, len(segs))
	for i, sm := range segs {
		if sm.State != SegmentSealed {
			return nil, errors.AssertionFailedf("mark open segment %d of log %d for deletion", sm.ID, sm.LogID)
		}
		key := s.segKey(sm.LogID, sm.ID)
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", sm.Revision))
		sm.Deleting = true
		val, _ := json.Marshal(sm)
		ops = append(ops, clientv3.OpPut(key, string(val)))
		out[i] = sm
	}
	gc := st.GC
	gc.Floor = max(gc.Floor, segs[len(segs)-1].ID+1)
	val, _ := json.Marshal(gc)
	ops = append(ops, clientv3.OpPut(s.gcKey(l.LogID), string(val)))
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return nil, errors.Wrapf(err, "mark segments of log %d for deletion", l.LogID)
	}
	if !resp.Succeeded {
		return nil, s.lost(ctx, l, "mark segments for deletion")
	}
	for i := range out {
		out[i].Revision = resp.Header.Revision
	}
	return out, nil
}

// RemoveSegments deletes the metadata of segments marked Deleting whose
// objects are gone. A segment whose key is already gone is skipped.
func (s *Store) RemoveSegments(ctx context.Context, l GCLock, segs []SegmentMeta) error {
	for len(segs) > 0 {
		n := min(len(segs), MaxSegmentsPerTxn)
		batch := segs[:n]
		segs = segs[n:]
		cmps := []clientv3.Cmp{l.cmp()}
		ops := make([]clientv3.Op, 0, n)
		for _, sm := range batch {
			if !sm.Deleting {
				return errors.AssertionFailedf("remove segment %d of log %d, which is not marked for deletion", sm.ID, sm.LogID)
			}
			key := s.segKey(sm.LogID, sm.ID)
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", sm.Revision))
			// Extents of a shared segment live in etcd while it is open;
			// an upload committed after its seal may have left some.
			ops = append(ops, clientv3.OpDelete(key),
				clientv3.OpDelete(s.segmentExtentsPrefix(sm.LogID, sm.ID), clientv3.WithPrefix()))
		}
		resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		if err != nil {
			return errors.Wrapf(err, "remove segments of log %d", l.LogID)
		}
		if !resp.Succeeded {
			return s.lost(ctx, l, "remove segments")
		}
	}
	return nil
}

// CommitCompaction switches the sealed segment sm to layout generation gen
// of objects data objects, and marks the previous generation's objects as
// retiring. It compares the lock and sm's revision; this is the commit
// point of a compaction.
func (s *Store) CommitCompaction(ctx context.Context, l GCLock, sm SegmentMeta, gen, objects int64, now time.Time) (SegmentMeta, error) {
	if sm.State != SegmentSealed || sm.Deleting || sm.Retiring || gen != sm.Generation+1 {
		return SegmentMeta{}, errors.AssertionFailedf("compaction of segment %d of log %d: state %s deleting %t retiring %t generation %d -> %d",
			sm.ID, sm.LogID, sm.State, sm.Deleting, sm.Retiring, sm.Generation, gen)
	}
	sm.Generation, sm.Objects, sm.CompactedAt, sm.Retiring = gen, objects, now.UTC(), true
	return s.updateSegment(ctx, l, sm, "commit compaction")
}

// FinishRetire records that the objects the last compaction replaced are
// deleted.
func (s *Store) FinishRetire(ctx context.Context, l GCLock, sm SegmentMeta) (SegmentMeta, error) {
	sm.Retiring = false
	return s.updateSegment(ctx, l, sm, "finish retiring replaced objects")
}

func (s *Store) updateSegment(ctx context.Context, l GCLock, sm SegmentMeta, what string) (SegmentMeta, error) {
	key := s.segKey(sm.LogID, sm.ID)
	val, _ := json.Marshal(sm)
	resp, err := s.cli.Txn(ctx).If(
		l.cmp(),
		clientv3.Compare(clientv3.ModRevision(key), "=", sm.Revision),
	).Then(clientv3.OpPut(key, string(val))).Commit()
	if err != nil {
		return SegmentMeta{}, errors.Wrapf(err, "%s: segment %d of log %d", what, sm.ID, sm.LogID)
	}
	if !resp.Succeeded {
		return SegmentMeta{}, s.lost(ctx, l, fmt.Sprintf("%s: segment %d", what, sm.ID))
	}
	sm.Revision = resp.Header.Revision
	return sm, nil
}

// UpdateGCState applies fn to the log's GC state under the lock. It never
// lowers the floor.
func (s *Store) UpdateGCState(ctx context.Context, l GCLock, fn func(*GCState)) error {
	key := s.gcKey(l.LogID)
	for range 8 {
		resp, err := s.cli.Txn(ctx).Then(
			clientv3.OpGet(key),
			clientv3.OpGet(s.deletedKey(l.LogID), clientv3.WithCountOnly()),
		).Commit()
		if err != nil {
			return errors.Wrapf(err, "update GC state of log %d", l.LogID)
		}
		if resp.Responses[1].GetResponseRange().Count > 0 {
			return nil // the log was deleted; its state went with it
		}
		var gc GCState
		var rev int64
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) == 1 {
			rev = kvs[0].ModRevision
			if err := json.Unmarshal(kvs[0].Value, &gc); err != nil {
				return errors.Wrapf(walerr.ErrCorrupt, "GC state of log %d: %v", l.LogID, err)
			}
		}
		floor := gc.Floor
		fn(&gc)
		gc.Floor = max(gc.Floor, floor)
		val, _ := json.Marshal(gc)
		txn, err := s.cli.Txn(ctx).If(
			l.cmp(),
			clientv3.Compare(clientv3.ModRevision(key), "=", rev),
			clientv3.Compare(clientv3.CreateRevision(s.deletedKey(l.LogID)), "=", 0),
		).Then(clientv3.OpPut(key, string(val))).Commit()
		if err != nil {
			return errors.Wrapf(err, "update GC state of log %d", l.LogID)
		}
		if txn.Succeeded {
			return nil
		}
		if err := s.lost(ctx, l, "update GC state"); errors.Is(err, ErrLockLost) {
			return err
		}
	}
	return errors.Wrapf(ErrConflict, "update GC state of log %d: too many concurrent changes", l.LogID)
}

// LogInfos returns every live log's description, in name order.
func (s *Store) LogInfos(ctx context.Context) ([]LogInfo, error) {
	resp, err := s.cli.Get(ctx, s.logsPrefix(), clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, errors.Wrap(err, "list logs")
	}
	out := make([]LogInfo, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var info LogInfo
		if err := json.Unmarshal(kv.Value, &info); err != nil {
			return nil, errors.Wrapf(walerr.ErrCorrupt, "log metadata %s: %v", kv.Key, err)
		}
		out = append(out, info)
	}
	return out, nil
}

// DeletedLogRecord is a deleted log's record as garbage collection sees it.
type DeletedLogRecord struct {
	DeletedLog
	// CollectedAt is when garbage collection removed the log's data; zero
	// while it has not. The record itself stays as a tombstone: it is what
	// stops a stale handle from opening a writer on the deleted log's id.
	CollectedAt time.Time `json:"collectedAt,omitzero"`
}

// DeletedLogs returns the records DeleteLog left, in id order.
func (s *Store) DeletedLogs(ctx context.Context) ([]DeletedLogRecord, error) {
	resp, err := s.cli.Get(ctx, s.deletedPrefix(), clientv3.WithPrefix())
	if err != nil {
		return nil, errors.Wrap(err, "list deleted logs")
	}
	out := make([]DeletedLogRecord, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var rec DeletedLogRecord
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			return nil, errors.Wrapf(walerr.ErrCorrupt, "deleted log record %s: %v", kv.Key, err)
		}
		if rec.ID == 0 {
			id, err := strconv.ParseInt(strings.TrimPrefix(string(kv.Key), s.deletedPrefix()), 10, 64)
			if err != nil {
				return nil, errors.Wrapf(walerr.ErrCorrupt, "deleted log record %s", kv.Key)
			}
			rec.ID = id
		}
		out = append(out, rec)
	}
	slices.SortFunc(out, func(a, b DeletedLogRecord) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// ReadDeletedLog returns the deleted log's record; ok is false when there
// is none.
func (s *Store) ReadDeletedLog(ctx context.Context, logID int64) (rec DeletedLogRecord, ok bool, err error) {
	resp, err := s.cli.Get(ctx, s.deletedKey(logID))
	if err != nil {
		return DeletedLogRecord{}, false, errors.Wrapf(err, "read deleted log record %d", logID)
	}
	if len(resp.Kvs) == 0 {
		return DeletedLogRecord{}, false, nil
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &rec); err != nil {
		return DeletedLogRecord{}, false, errors.Wrapf(walerr.ErrCorrupt, "deleted log record %d: %v", logID, err)
	}
	rec.ID = logID
	return rec, true, nil
}

// MarkLogCollected records in the deleted log's tombstone that its data
// is gone.
func (s *Store) MarkLogCollected(ctx context.Context, l GCLock, rec DeletedLogRecord, now time.Time) error {
	rec.CollectedAt = now.UTC()
	val, _ := json.Marshal(rec)
	key := s.deletedKey(rec.ID)
	resp, err := s.cli.Txn(ctx).If(l.cmp(), clientv3.Compare(clientv3.CreateRevision(key), ">", 0)).
		Then(clientv3.OpPut(key, string(val))).Commit()
	if err != nil {
		return errors.Wrapf(err, "record that deleted log %d is collected", rec.ID)
	}
	if !resp.Succeeded {
		return s.lost(ctx, l, "record collection of a deleted log")
	}
	return nil
}

// LastLogID returns the highest log id allocated so far (0 when none).
func (s *Store) LastLogID(ctx context.Context) (int64, error) {
	resp, err := s.cli.Get(ctx, s.idgenKey())
	if err != nil {
		return 0, errors.Wrap(err, "read log id generator")
	}
	if len(resp.Kvs) == 0 {
		return 0, nil
	}
	id, err := strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64)
	if err != nil {
		return 0, errors.Wrapf(walerr.ErrCorrupt, "log id generator holds %q", resp.Kvs[0].Value)
	}
	return id, nil
}
