// Package gc is Woodpecker's garbage collector: it applies retention to
// logs (deletes segments wholly below a log's truncation point once their
// TTL has passed), removes the data of deleted logs, removes objects no
// metadata refers to, and compacts sealed segments' small block objects.
//
// It needs no open writer and runs in any process that enables it. Several
// collectors may run at once: each log is worked on by at most one of
// them at a time, through a lock in etcd bound to the collector's lease,
// and every metadata change compares that lock. Deleting twice is
// harmless, so a collector that lost its lock mid-way does no damage.
//
// Every step is resumable. Deleting segments: mark them in etcd (the
// commit point: from there readers see them as truncated), delete their
// objects, remove their metadata; a crash anywhere is finished by the next
// pass, and metadata never points at deleted objects unless it is marked
// as being deleted. Compacting a segment: write the new layout's objects
// and seal record (invisible until committed), switch the segment's
// metadata to the new generation (the commit point), delete the replaced
// objects after a grace period; a crash before the switch leaves orphans
// the sweep removes, a crash after it leaves replaced objects the next
// pass removes.
//
// See meta/gc.go for the etcd side and segment/compact.go for layouts.
package gc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/errors"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/shared"
)

// Point names a step of a pass, for Config.Hook.
type Point string

// The steps a pass takes that change something, in the order they come
// for one segment.
const (
	PointMark          Point = "mark"            // before marking segments for deletion
	PointDeleteObject  Point = "delete-object"   // before deleting an object of a marked segment
	PointRemoveMeta    Point = "remove-meta"     // before removing marked segments' metadata
	PointDeleteOrphan  Point = "delete-orphan"   // before deleting an unreferenced object
	PointDeleteRetired Point = "delete-retired"  // before deleting an object a compaction replaced
	PointFinishRetire  Point = "finish-retire"   // before recording that replaced objects are gone
	PointCompactWrite  Point = "compact-write"   // before writing a compacted layout
	PointCompactCommit Point = "compact-commit"  // before switching a segment to its compacted layout
	PointDeleteLogData Point = "delete-log-data" // before deleting an object of a deleted log
	PointCollectedLog  Point = "collected-log"   // before recording that a deleted log's data is gone
	PointUpdateState   Point = "update-state"    // before recording a log's GC state after its pass
	// Shared objects (shared.go).
	PointDeleteShared       Point = "delete-shared"        // before deleting a shared object no segment needs
	PointRemoveSharedRecord Point = "remove-shared-record" // before removing the record of a deleted shared object
)

// Config controls a Collector. Use FromOptions for the values of a
// configuration file.
type Config struct {
	// TTL is the default retention: a segment wholly below its log's
	// truncation point is deleted once it has been sealed for TTL. A log
	// may set its own (meta.Store.SetRetention).
	TTL time.Duration
	// OrphanGracePeriod is how old (by LastModified) an object no metadata
	// refers to must be before it is deleted.
	OrphanGracePeriod time.Duration
	Compaction        CompactionConfig
	// LockTTL is the TTL of the lease that holds this collector's locks:
	// how long a log stays locked after the collector dies. Rounded up to
	// whole seconds; default 10s.
	LockTTL time.Duration
	// Identity names the collector in its locks; default random. A
	// collector restarted with the same identity takes its locks over at
	// once. Two live collectors must not share one.
	Identity string
	// Now is the clock (default time.Now). Tests move it forward.
	Now func() time.Time
	// Hook, when set, is called before every step that changes something;
	// a non-nil error aborts the pass with that error, as a crash would.
	// For fault-injection tests.
	Hook func(Point) error
	// Logger (default none).
	Logger *zap.Logger
}

// CompactionConfig controls compaction (see segment.Compact).
type CompactionConfig struct {
	Enabled           bool
	TargetObjectBytes int64
	// MinBlocks is the number of objects smaller than the target a sealed
	// segment needs before it is compacted.
	MinBlocks int
	// OldBlocksGracePeriod is how long the objects a compaction replaced
	// are kept, for readers still reading them.
	OldBlocksGracePeriod time.Duration
}

// FromOptions returns the collector configuration of r.
func FromOptions(r options.RetentionConfig) Config {
	return Config{
		TTL:               r.TTL,
		OrphanGracePeriod: r.OrphanGracePeriod,
		Compaction: CompactionConfig{
			Enabled:              r.Compaction.Enabled,
			TargetObjectBytes:    r.Compaction.TargetObjectBytes,
			MinBlocks:            r.Compaction.MinBlocks,
			OldBlocksGracePeriod: r.Compaction.OldBlocksGracePeriod,
		},
	}
}

// Metrics counts what a collector did, since it was created. Fields are
// updated atomically; read them with Load or take a Snapshot. Objects
// are counted when a pass deletes what its own listing found, so a pass
// that finishes the work of a crashed one counts only what was left.
type Metrics struct {
	Passes            atomic.Int64 // passes run, including failed ones
	DeletedSegments   atomic.Int64
	DeletedObjects    atomic.Int64 // every object deleted, for any reason
	DeletedBytes      atomic.Int64
	OrphanObjects     atomic.Int64 // of which unreferenced objects
	RetiredObjects    atomic.Int64 // of which objects a compaction replaced
	CollectedLogs     atomic.Int64 // deleted logs whose data was removed
	CompactedSegments atomic.Int64
	CompactionObjects atomic.Int64 // merged objects written
	CompactionBytes   atomic.Int64
	Errors            atomic.Int64
}

// MetricsSnapshot is a copy of Metrics, field for field.
type MetricsSnapshot struct {
	Passes, DeletedSegments, DeletedObjects, DeletedBytes, OrphanObjects, RetiredObjects int64
	CollectedLogs, CompactedSegments, CompactionObjects, CompactionBytes, Errors         int64
}

// Snapshot returns the current values.
func (m *Metrics) Snapshot() MetricsSnapshot {
	return MetricsSnapshot{
		Passes: m.Passes.Load(), DeletedSegments: m.DeletedSegments.Load(), DeletedObjects: m.DeletedObjects.Load(),
		DeletedBytes: m.DeletedBytes.Load(), OrphanObjects: m.OrphanObjects.Load(), RetiredObjects: m.RetiredObjects.Load(),
		CollectedLogs: m.CollectedLogs.Load(), CompactedSegments: m.CompactedSegments.Load(),
		CompactionObjects: m.CompactionObjects.Load(), CompactionBytes: m.CompactionBytes.Load(), Errors: m.Errors.Load(),
	}
}

// Report sums up one pass.
type Report struct {
	// Logs counts the log ids worked on; Skipped those another collector
	// held.
	Logs, Skipped     int
	DeletedSegments   int64
	DeletedObjects    int64
	DeletedBytes      int64
	OrphanObjects     int64
	RetiredObjects    int64
	CollectedLogs     int64
	CompactedSegments int64
	// Errors are the failures of individual logs; the pass went on.
	Errors []error
}

// Collector runs garbage collection passes. It is safe for concurrent
// use; passes of one collector are serialised.
type Collector struct {
	cfg     Config
	meta    *meta.Store
	st      storage
	log     *zap.Logger
	metrics Metrics
	passMu  sync.Mutex
}

// New returns a collector of the logs in m whose data backend b holds; b
// must implement Storage (and Compactor, for compaction). The caller keeps
// ownership of both.
func New(m *meta.Store, b segment.Backend, cfg Config) (*Collector, error) {
	st, err := newStorage(b)
	if err != nil {
		return nil, err
	}
	if cfg.TTL < 0 || cfg.OrphanGracePeriod < 0 || cfg.Compaction.OldBlocksGracePeriod < 0 {
		return nil, errors.New("garbage collection: negative TTL or grace period")
	}
	if cfg.Compaction.Enabled && cfg.Compaction.TargetObjectBytes <= 0 {
		return nil, errors.New("garbage collection: compaction needs a positive target object size")
	}
	if cfg.LockTTL <= 0 {
		cfg.LockTTL = 10 * time.Second
	}
	if cfg.Identity == "" {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, errors.Wrap(err, "garbage collection identity")
		}
		cfg.Identity = "gc-" + hex.EncodeToString(b[:])
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Collector{cfg: cfg, meta: m, st: st, log: cfg.Logger}, nil
}

// Metrics returns the collector's counters.
func (c *Collector) Metrics() *Metrics { return &c.metrics }

// Run runs a pass every interval until ctx ends. Failures are logged and
// counted; the next pass retries.
func (c *Collector) Run(ctx context.Context, interval time.Duration) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		rep, err := c.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			c.log.Warn("garbage collection pass failed", zap.Error(err))
		}
		for _, e := range rep.Errors {
			c.log.Warn("garbage collection of a log failed", zap.Error(e))
		}
		timer.Reset(interval)
	}
}

func (c *Collector) hook(p Point) error {
	if c.cfg.Hook == nil {
		return nil
	}
	return c.cfg.Hook(p)
}

// hookErr marks errors that come from the hook: they abort the pass.
type hookErr struct{ error }

func (e hookErr) Unwrap() error { return e.error }

func (c *Collector) step(p Point) error {
	if err := c.hook(p); err != nil {
		return hookErr{err}
	}
	return nil
}

// pass is the state of one pass.
type pass struct {
	c     *Collector
	now   time.Time
	lease clientv3.LeaseID
	rep   *Report
}

// RunOnce makes one pass over every log: live logs (retention, orphans,
// compaction), deleted logs (all their data), and logs storage holds but
// etcd does not know (orphans). It returns the report and an error when
// the pass could not run or was aborted (a Hook error); failures of single
// logs are in the report and do not stop the pass.
func (c *Collector) RunOnce(ctx context.Context) (Report, error) {
	c.passMu.Lock()
	defer c.passMu.Unlock()
	rep := Report{}
	err := c.runOnce(ctx, &rep)
	c.metrics.Passes.Add(1)
	c.metrics.Errors.Add(int64(len(rep.Errors)))
	if err != nil {
		c.metrics.Errors.Add(1)
	}
	return rep, err
}

func (c *Collector) runOnce(ctx context.Context, rep *Report) error {
	cli := c.meta.Client()
	ttl := int64((c.cfg.LockTTL + time.Second - 1) / time.Second)
	grant, err := cli.Grant(ctx, ttl)
	if err != nil {
		return errors.Wrap(err, "garbage collection: grant the lock lease")
	}
	kctx, stopKeep := context.WithCancel(ctx)
	keep, err := cli.KeepAlive(kctx, grant.ID)
	if err != nil {
		stopKeep()
		return errors.Wrap(err, "garbage collection: keep the lock lease alive")
	}
	var drained sync.WaitGroup
	drained.Add(1)
	go func() {
		defer drained.Done()
		for range keep {
		}
	}()
	defer func() {
		stopKeep()
		drained.Wait()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = cli.Revoke(rctx, grant.ID) // releases every lock of the pass
	}()

	p := &pass{c: c, now: c.cfg.Now(), lease: grant.ID, rep: rep}
	logs, err := c.meta.LogInfos(ctx)
	if err != nil {
		return err
	}
	deleted, err := c.meta.DeletedLogs(ctx)
	if err != nil {
		return err
	}
	// Storage is listed after etcd was read: a log created in between has
	// only young objects, which the orphan grace period protects.
	stored, err := storedLogIDs(ctx, c.st)
	if err != nil {
		return err
	}
	known := make(map[int64]bool, len(logs)+len(deleted))
	for _, info := range logs {
		known[info.ID] = true
		if err := p.locked(ctx, info.ID, func(l meta.GCLock) error { return p.collectLog(ctx, l) }); err != nil {
			return err
		}
	}
	for _, rec := range deleted {
		if !rec.CollectedAt.IsZero() {
			continue // a tombstone; late objects are swept as unknown
		}
		known[rec.ID] = true
		if err := p.locked(ctx, rec.ID, func(l meta.GCLock) error { return p.collectDeleted(ctx, l, rec) }); err != nil {
			return err
		}
	}
	for _, id := range stored {
		if known[id] {
			continue
		}
		if err := p.locked(ctx, id, func(l meta.GCLock) error { return p.sweepUnknown(ctx, l) }); err != nil {
			return err
		}
	}
	// After the logs: segments this pass deleted or compacted release
	// their shared objects in the same pass.
	return p.locked(ctx, SharedObjectsLockID, func(l meta.GCLock) error { return p.sweepShared(ctx, l) })
}

// locked runs fn under the log's lock, unless another collector holds it.
// Errors of fn are recorded in the report, except hook errors, which abort
// the pass.
func (p *pass) locked(ctx context.Context, logID int64, fn func(meta.GCLock) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l, ok, err := p.c.meta.TryLockGC(ctx, logID, p.lease, p.c.cfg.Identity)
	if err != nil {
		p.rep.Errors = append(p.rep.Errors, err)
		return nil
	}
	if !ok {
		p.rep.Skipped++
		return nil
	}
	p.rep.Logs++
	err = fn(l)
	var he hookErr
	if errors.As(err, &he) {
		return he.error // a simulated crash: leave the lock to the lease
	}
	_ = p.c.meta.UnlockGC(context.WithoutCancel(ctx), l)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.rep.Errors = append(p.rep.Errors, errors.Wrapf(err, "garbage collection of log %d", logID))
	}
	return nil
}

// deleteObject deletes one object and counts it.
func (p *pass) deleteObject(ctx context.Context, point Point, o objstore.ObjectInfo) error {
	if err := p.c.step(point); err != nil {
		return err
	}
	if err := p.c.st.Store().Delete(ctx, o.Key); err != nil {
		return errors.Wrapf(err, "delete %s", o.Key)
	}
	p.rep.DeletedObjects++
	p.rep.DeletedBytes += o.Size
	p.c.metrics.DeletedObjects.Add(1)
	p.c.metrics.DeletedBytes.Add(o.Size)
	switch point {
	case PointDeleteOrphan:
		p.rep.OrphanObjects++
		p.c.metrics.OrphanObjects.Add(1)
	case PointDeleteRetired:
		p.rep.RetiredObjects++
		p.c.metrics.RetiredObjects.Add(1)
	}
	return nil
}

// logTally is what a log pass counted, for its GC state.
type logTally struct {
	deletedSegments, deletedObjects, deletedBytes int64
	storedBytes, storedObjects                    int64
	compacted                                     int64
}

// collectLog is the pass over one live log.
func (p *pass) collectLog(ctx context.Context, l meta.GCLock) error {
	var t logTally
	if err := p.deleteExpired(ctx, l, &t); err != nil {
		return err
	}
	if err := p.sweepLog(ctx, l, &t); err != nil {
		return err
	}
	if err := p.c.step(PointUpdateState); err != nil {
		return err
	}
	return p.c.meta.UpdateGCState(ctx, l, func(g *meta.GCState) {
		g.LastRun = p.now.UTC()
		if t.compacted > 0 {
			g.LastCompaction = p.now.UTC()
		}
		g.StoredBytes, g.StoredObjects = t.storedBytes, t.storedObjects
		g.DeletedSegments += t.deletedSegments
		g.DeletedObjects += t.deletedObjects
		g.DeletedBytes += t.deletedBytes
		g.CompactedSegments += t.compacted
	})
}

// deleteExpired marks the segments retention lets go, deletes their
// objects and removes their metadata; it first finishes segments an
// earlier pass marked.
func (p *pass) deleteExpired(ctx context.Context, l meta.GCLock, t *logTally) error {
	for conflicts := 0; ; {
		st, err := p.c.meta.ReadLogState(ctx, l.LogID)
		if err != nil {
			return err
		}
		ttl := p.c.cfg.TTL
		if st.HasRetention {
			ttl = st.Retention.TTL
		}
		var doomed []meta.SegmentMeta
		for _, sm := range st.Segments {
			if sm.Deleting {
				doomed = append(doomed, sm)
			}
		}
		cand := eligible(st, ttl, p.now, meta.MaxSegmentsPerTxn)
		if len(doomed) == 0 && len(cand) == 0 {
			return nil
		}
		if len(doomed) == 0 {
			if err := p.c.step(PointMark); err != nil {
				return err
			}
			doomed, err = p.c.meta.MarkDeleting(ctx, l, st, cand)
			if errors.Is(err, meta.ErrConflict) && conflicts < 5 {
				conflicts++
				continue // a reader published a position, or the like: look again
			}
			if err != nil {
				return err
			}
		}
		for _, sm := range doomed {
			objs, err := objstore.ListAll(ctx, p.c.st.Store(), p.c.st.SegmentKeyPrefix(segRef(sm)), "")
			if err != nil {
				return errors.Wrapf(err, "list segment %d", sm.ID)
			}
			for _, o := range objs {
				if err := p.deleteObject(ctx, PointDeleteObject, o); err != nil {
					return err
				}
				t.deletedObjects++
				t.deletedBytes += o.Size
			}
		}
		if err := p.c.step(PointRemoveMeta); err != nil {
			return err
		}
		if err := p.c.meta.RemoveSegments(ctx, l, doomed); err != nil {
			return err
		}
		t.deletedSegments += int64(len(doomed))
		p.rep.DeletedSegments += int64(len(doomed))
		p.c.metrics.DeletedSegments.Add(int64(len(doomed)))
	}
}

// sweepLog lists the log's objects segment by segment and, per segment,
// deletes orphans and retired objects that are due, finishes retirements
// and compacts.
func (p *pass) sweepLog(ctx context.Context, l meta.GCLock, t *logTally) error {
	st, err := p.c.meta.ReadLogState(ctx, l.LogID)
	if err != nil {
		return err
	}
	segs := make(map[int64]meta.SegmentMeta, len(st.Segments))
	for _, sm := range st.Segments {
		segs[sm.ID] = sm
	}
	var errs []error
	err = p.forEachSegment(ctx, l.LogID, func(segID int64, objs []objstore.ObjectInfo) error {
		sm, ok := segs[segID]
		var smp *meta.SegmentMeta
		if ok {
			smp = &sm
		}
		kept, err := p.sweepSegment(ctx, l, smp, objs, t)
		for _, o := range kept {
			t.storedObjects++
			t.storedBytes += o.Size
		}
		var he hookErr
		if errors.As(err, &he) || ctx.Err() != nil {
			return err
		}
		if err != nil {
			errs = append(errs, errors.Wrapf(err, "segment %d", segID))
		}
		return nil
	})
	if err != nil {
		return err
	}
	return errors.Join(errs...)
}

// forEachSegment lists the log's objects in key order and calls fn with
// the objects of one segment at a time; keys that are not segment data
// are skipped.
func (p *pass) forEachSegment(ctx context.Context, logID int64, fn func(segID int64, objs []objstore.ObjectInfo) error) error {
	prefix := p.c.st.LogKeyPrefix(logID)
	var (
		cur   int64 = -1
		batch []objstore.ObjectInfo
		after string
	)
	for {
		page, err := p.c.st.Store().List(ctx, prefix, after, 0)
		if err != nil {
			return errors.Wrapf(err, "list log %d", logID)
		}
		for _, o := range page.Objects {
			ref, ok := p.c.st.ParseKey(o.Key)
			if !ok || ref.LogID != logID {
				continue
			}
			sid := ref.SegmentID
			if sid != cur && len(batch) > 0 {
				if err := fn(cur, batch); err != nil {
					return err
				}
				batch = nil
			}
			cur = sid
			batch = append(batch, o)
		}
		if !page.More || len(page.Objects) == 0 {
			break
		}
		after = page.Objects[len(page.Objects)-1].Key
	}
	if len(batch) > 0 {
		return fn(cur, batch)
	}
	return nil
}

// sweepSegment handles one segment's objects (sm nil: the segment has no
// metadata) and returns those it kept.
func (p *pass) sweepSegment(ctx context.Context, l meta.GCLock, sm *meta.SegmentMeta, objs []objstore.ObjectInfo, t *logTally) ([]objstore.ObjectInfo, error) {
	cfg := p.c.cfg
	if sm == nil {
		// Nothing refers to the segment: its creation failed, garbage
		// collection removed it and a zombie wrote more, or it is so new
		// that it was created after the metadata was read.
		var kept []objstore.ObjectInfo
		for i, o := range objs {
			if !due(orphan, meta.SegmentMeta{}, o.LastModified, p.now, cfg) {
				kept = append(kept, o)
				continue
			}
			if err := p.deleteObject(ctx, PointDeleteOrphan, o); err != nil {
				return append(kept, objs[i:]...), err
			}
		}
		return kept, nil
	}
	if sm.State != meta.SegmentSealed || sm.Deleting || p.c.st.compactor == nil {
		// Open segments belong to their writer; local segment files hold
		// nothing but the segment.
		return objs, nil
	}
	var index map[string]bool
	if sm.Generation > 0 {
		lay, err := p.c.st.compactor.ReadLayout(ctx, segRef(*sm), sm.Generation, sm.Blocks)
		if err != nil {
			return objs, err // never guess what to delete
		}
		index = lay.Names()
	}
	prefix := p.c.st.SegmentKeyPrefix(segRef(*sm))
	var kept []objstore.ObjectInfo
	oldLeft := 0
	for i, o := range objs {
		name := strings.TrimPrefix(o.Key, prefix)
		v := classifySealed(*sm, index, name, o.Size)
		if v == retired {
			oldLeft++
		}
		if !due(v, *sm, o.LastModified, p.now, cfg) {
			kept = append(kept, o)
			continue
		}
		point := PointDeleteOrphan
		if v == retired {
			point = PointDeleteRetired
		}
		if err := p.deleteObject(ctx, point, o); err != nil {
			return append(kept, objs[i:]...), err
		}
		if v == retired {
			oldLeft--
		}
	}
	if sm.Retiring {
		if oldLeft > 0 || !due(retired, *sm, time.Time{}, p.now, cfg) {
			return kept, nil
		}
		if err := p.c.step(PointFinishRetire); err != nil {
			return kept, err
		}
		_, err := p.c.meta.FinishRetire(ctx, l, *sm)
		return kept, err
	}
	if !cfg.Compaction.Enabled {
		return kept, nil
	}
	written, err := p.compact(ctx, l, *sm, kept, t)
	return append(kept, written...), err
}

// compact compacts the sealed segment sm when it has enough small
// objects. objs is its listing.
func (p *pass) compact(ctx context.Context, l meta.GCLock, sm meta.SegmentMeta, objs []objstore.ObjectInfo, t *logTally) ([]objstore.ObjectInfo, error) {
	cc := p.c.cfg.Compaction
	if sm.Blocks < 2 {
		return nil, nil
	}
	prefix := p.c.st.SegmentKeyPrefix(segRef(sm))
	sizes := make(map[string]int64, len(objs))
	switch {
	case sm.Generation == 0 && shared.IsShared(string(sm.Placement)):
		// Every block sits in a shared object: copy them all out.
		if sm.Blocks < int64(cc.MinBlocks) {
			return nil, nil
		}
	case sm.Generation == 0:
		small := 0
		for _, o := range objs {
			name := strings.TrimPrefix(o.Key, prefix)
			if n := segment.ParseObjectName(name); n.Kind == segment.ObjectBlock && n.Block < sm.Blocks {
				sizes[name] = o.Size
				if o.Size < cc.TargetObjectBytes {
					small++
				}
			}
		}
		if small < cc.MinBlocks {
			return nil, nil
		}
	case sm.Objects < int64(cc.MinBlocks):
		return nil, nil
	}
	if err := p.c.step(PointCompactWrite); err != nil {
		return nil, err
	}
	res, err := p.c.st.compactor.Compact(ctx, segRef(sm), sm.Generation, sm.Blocks, sizes,
		segment.CompactOptions{TargetObjectBytes: cc.TargetObjectBytes, MinSmallObjects: cc.MinBlocks})
	if errors.Is(err, segment.ErrNothingToCompact) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var written []objstore.ObjectInfo
	for _, o := range res.Layout.Objects {
		if segment.ParseObjectName(o.Name).Generation == res.Layout.Generation {
			written = append(written, objstore.ObjectInfo{Key: prefix + o.Name, Size: o.Size})
		}
	}
	if err := p.c.step(PointCompactCommit); err != nil {
		return written, err
	}
	if _, err := p.c.meta.CommitCompaction(ctx, l, sm, res.Layout.Generation, int64(len(res.Layout.Objects)), p.now); err != nil {
		return written, err
	}
	t.compacted++
	p.rep.CompactedSegments++
	p.c.metrics.CompactedSegments.Add(1)
	p.c.metrics.CompactionObjects.Add(int64(res.Written))
	p.c.metrics.CompactionBytes.Add(res.Bytes)
	return written, nil
}

// collectDeleted removes every object of a deleted log, then records in
// its tombstone that it is collected.
func (p *pass) collectDeleted(ctx context.Context, l meta.GCLock, rec meta.DeletedLogRecord) error {
	// Another collector may have finished it since the list was read.
	rec, ok, err := p.c.meta.ReadDeletedLog(ctx, l.LogID)
	if err != nil || !ok || !rec.CollectedAt.IsZero() {
		return err
	}
	err = p.forEachSegment(ctx, l.LogID, func(_ int64, objs []objstore.ObjectInfo) error {
		for _, o := range objs {
			if err := p.deleteObject(ctx, PointDeleteLogData, o); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := p.c.step(PointCollectedLog); err != nil {
		return err
	}
	if err := p.c.meta.MarkLogCollected(ctx, l, rec, p.now); err != nil {
		return err
	}
	p.rep.CollectedLogs++
	p.c.metrics.CollectedLogs.Add(1)
	return nil
}

// sweepUnknown removes the objects of a log id etcd does not know once
// they are older than the orphan grace period.
func (p *pass) sweepUnknown(ctx context.Context, l meta.GCLock) error {
	return p.forEachSegment(ctx, l.LogID, func(_ int64, objs []objstore.ObjectInfo) error {
		_, err := p.sweepSegment(ctx, l, nil, objs, &logTally{})
		return err
	})
}
