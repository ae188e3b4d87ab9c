package woodpecker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/woodpecker/internal/gc"
)

// TruncatedError says that a position lies below the first entry still
// stored: garbage collection deleted the data. errors.Is(err,
// ErrTruncated) holds; use errors.As to get the first available entry.
type TruncatedError struct {
	// Log is the log's name.
	Log string
	// Position is the position the reader wanted to read.
	Position EntryID
	// First is the first entry still available.
	First EntryID
}

// Error implements error.
func (e *TruncatedError) Error() string {
	return fmt.Sprintf("log %q: %s is truncated, its data was deleted; the first available entry is %s",
		e.Log, e.Position, e.First)
}

// Unwrap returns ErrTruncated.
func (e *TruncatedError) Unwrap() error { return walerr.ErrTruncated }

// RetentionStats is the retention and garbage-collection part of a log's
// Stats.
type RetentionStats struct {
	// FirstAvailable is the lowest entry id garbage collection has not
	// deleted: the segments below it are gone.
	FirstAvailable EntryID
	// HeldBytes and HeldObjects are what the log's data occupies in
	// storage: as measured by the last garbage-collection pass (orphans
	// and replaced objects included) when HeldMeasured, else estimated
	// from the metadata of sealed segments.
	HeldBytes, HeldObjects int64
	HeldMeasured           bool
	// ReclaimableBytes is what sealed segments wholly below the truncation
	// point hold: garbage collection deletes it once retention allows and
	// no reader is positioned in it.
	ReclaimableBytes int64
	// Retention is the TTL that applies to the log: its own when
	// OwnRetention, else the configured retention.ttl.
	Retention    time.Duration
	OwnRetention bool
	// LastGC and LastCompaction are when garbage collection last passed
	// over the log and last compacted one of its segments (zero: never).
	LastGC, LastCompaction time.Time
	// Cumulative counts of what garbage collection did to the log.
	DeletedSegments, DeletedObjects, DeletedBytes, CompactedSegments int64
	// Readers is the number of readers with a published position.
	Readers int
}

// retentionStats fills st.RetentionStats; segs are the segments Stats read.
func (l *Log) retentionStats(ctx context.Context, segs []meta.SegmentMeta, st *Stats) error {
	ls, err := l.c.meta.ReadLogState(ctx, l.info.ID)
	if err != nil {
		return err
	}
	rs := RetentionStats{
		FirstAvailable: EntryID{Segment: ls.GC.Floor},
		Retention:      l.c.cfg.Retention.TTL, OwnRetention: ls.HasRetention,
		LastGC: ls.GC.LastRun, LastCompaction: ls.GC.LastCompaction,
		DeletedSegments: ls.GC.DeletedSegments, DeletedObjects: ls.GC.DeletedObjects,
		DeletedBytes: ls.GC.DeletedBytes, CompactedSegments: ls.GC.CompactedSegments,
		Readers: len(ls.Readers),
	}
	if ls.HasRetention {
		rs.Retention = ls.Retention.TTL
	}
	for _, sm := range segs {
		if sm.State != meta.SegmentSealed {
			continue
		}
		objects := sm.Objects
		if objects == 0 {
			objects = sm.Blocks
		}
		rs.HeldBytes += sm.Bytes
		rs.HeldObjects += objects + 1 // and the seal record
		if sm.Deleting || (st.Truncated && (sm.ID < st.Truncation.Segment ||
			(sm.ID == st.Truncation.Segment && sm.LastEntry < st.Truncation.Entry))) {
			rs.ReclaimableBytes += sm.Bytes
		}
	}
	if !ls.GC.LastRun.IsZero() {
		rs.HeldBytes, rs.HeldObjects, rs.HeldMeasured = ls.GC.StoredBytes, ls.GC.StoredObjects, true
	}
	st.RetentionStats = rs
	return nil
}

// SetRetention gives the log its own retention TTL: garbage collection
// deletes a segment wholly below the truncation point once it has been
// sealed for ttl. ErrLogNotFound when the log was deleted.
func (l *Log) SetRetention(ctx context.Context, ttl time.Duration) error {
	if ttl < 0 {
		return errors.Newf("set retention of log %q: TTL %s is negative", l.info.Name, ttl)
	}
	return l.c.meta.SetRetention(ctx, l.info.ID, meta.Retention{TTL: ttl})
}

// ClearRetention makes the configured retention.ttl apply to the log again.
func (l *Log) ClearRetention(ctx context.Context) error {
	return l.c.meta.ClearRetention(ctx, l.info.ID)
}

// GCReport sums up one garbage-collection pass.
type GCReport struct {
	// Logs counts the logs worked on; Skipped those another process's
	// collector was working on.
	Logs, Skipped int
	// DeletedSegments, DeletedObjects and DeletedBytes count what the pass
	// deleted; OrphanObjects and RetiredObjects are the unreferenced
	// objects and the objects compaction replaced among them.
	DeletedSegments, DeletedObjects, DeletedBytes int64
	OrphanObjects, RetiredObjects                 int64
	// CollectedLogs counts deleted logs whose data the pass removed.
	CollectedLogs int64
	// CompactedSegments counts segments compacted.
	CompactedSegments int64
	// Errors are failures of single logs; the pass went on with the others.
	Errors []error
}

// GCMetrics counts what this client's garbage collector did since the
// client was created.
type GCMetrics struct {
	Passes                               int64
	DeletedSegments, DeletedObjects      int64
	DeletedBytes                         int64
	OrphanObjects, RetiredObjects        int64
	CollectedLogs                        int64
	CompactedSegments, CompactionObjects int64
	CompactionBytes                      int64
	Errors                               int64
}

// gcRunner is the client's garbage collector, created on first use.
type gcRunner struct {
	once   sync.Once
	col    *gc.Collector
	err    error
	cancel context.CancelFunc
	done   chan struct{}
}

func (c *Client) collector() (*gc.Collector, error) {
	c.gc.once.Do(func() {
		cfg := gc.FromOptions(c.cfg.Retention)
		cfg.Logger = c.logger
		cfg.LockTTL = max(c.cfg.Retention.ReaderLeaseTTL, 10*time.Second)
		c.gc.col, c.gc.err = gc.New(c.meta, c.backend, cfg)
	})
	return c.gc.col, c.gc.err
}

// startGC runs garbage collection every retention.gcInterval until Close.
func (c *Client) startGC() error {
	col, err := c.collector()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.gc.cancel, c.gc.done = cancel, make(chan struct{})
	go func() {
		defer close(c.gc.done)
		col.Run(ctx, c.cfg.Retention.GCInterval)
	}()
	return nil
}

func (c *Client) stopGC() {
	if c.gc.cancel != nil {
		c.gc.cancel()
		<-c.gc.done
	}
}

// RunGC runs one garbage-collection pass over every log now, whether or
// not retention.gcEnabled runs passes in the background: it deletes
// segments wholly below their log's truncation point that have been sealed
// for the log's retention TTL and that no reader is positioned at or below,
// the data of deleted logs, and objects no metadata refers to that are
// older than retention.orphanGracePeriod; with retention.compaction.enabled
// it also compacts sealed segments. Several processes may run it at once.
// It returns an error when the pass could not run; failures of single logs
// are in the report.
func (c *Client) RunGC(ctx context.Context) (GCReport, error) {
	if err := c.usable(); err != nil {
		return GCReport{}, err
	}
	col, err := c.collector()
	if err != nil {
		return GCReport{}, err
	}
	r, err := col.RunOnce(ctx)
	return GCReport{
		Logs: r.Logs, Skipped: r.Skipped,
		DeletedSegments: r.DeletedSegments, DeletedObjects: r.DeletedObjects, DeletedBytes: r.DeletedBytes,
		OrphanObjects: r.OrphanObjects, RetiredObjects: r.RetiredObjects, CollectedLogs: r.CollectedLogs,
		CompactedSegments: r.CompactedSegments, Errors: r.Errors,
	}, err
}

// GCMetrics returns the counters of this client's garbage collector (zero
// when it never ran).
func (c *Client) GCMetrics() GCMetrics {
	col, err := c.collector()
	if err != nil {
		return GCMetrics{}
	}
	m := col.Metrics().Snapshot()
	return GCMetrics{
		Passes: m.Passes, DeletedSegments: m.DeletedSegments, DeletedObjects: m.DeletedObjects,
		DeletedBytes: m.DeletedBytes, OrphanObjects: m.OrphanObjects, RetiredObjects: m.RetiredObjects,
		CollectedLogs: m.CollectedLogs, CompactedSegments: m.CompactedSegments,
		CompactionObjects: m.CompactionObjects, CompactionBytes: m.CompactionBytes, Errors: m.Errors,
	}
}
