package woodpecker

import (
	"context"
	"sync"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/segment"
)

// Log is a handle on one log. It is safe for concurrent use and holds no
// resources of its own.
type Log struct {
	c    *Client
	info meta.LogInfo
}

// Name returns the log's name.
func (l *Log) Name() string { return l.info.Name }

// ID returns the log's numeric id.
func (l *Log) ID() int64 { return l.info.ID }

// OpenWriter makes a new writer at epoch the log's only writer. It fails
// with ErrFenced when a writer of a higher epoch has opened the log. Any
// earlier writer (of a lower or the same epoch) is fenced: its segments are
// sealed in storage and in etcd before this call returns, and its later
// appends fail with ErrFenced. An epoch outside 0..MaxEpoch fails with
// ErrInvalidEpoch and changes nothing.
func (l *Log) OpenWriter(ctx context.Context, epoch int64) (*Writer, error) {
	if err := l.c.usable(); err != nil {
		return nil, err
	}
	if epoch < 0 || epoch > MaxEpoch {
		return nil, errors.Wrapf(walerr.ErrInvalidEpoch, "open writer on log %q: epoch %d is outside 0..%d", l.info.Name, epoch, MaxEpoch)
	}
	if l.c.weakFence != nil {
		return nil, l.c.weakFence
	}
	tok, err := l.c.meta.AcquireWriter(ctx, l.info.ID, epoch)
	if err != nil {
		return nil, errors.Wrapf(err, "open writer on log %q", l.info.Name)
	}
	segs, floor, err := l.c.meta.SegmentsAndFloor(ctx, l.info.ID)
	if err != nil {
		return nil, err
	}
	// Garbage collection may have deleted every segment: never reuse the
	// id of one it deleted.
	next := floor
	for _, sm := range segs {
		next = max(next, sm.ID+1)
		if sm.State != meta.SegmentOpen {
			continue
		}
		if err := l.recoverSegment(ctx, tok, sm); err != nil {
			return nil, errors.Wrapf(err, "open writer on log %q: seal segment %d of the previous writer", l.info.Name, sm.ID)
		}
	}
	w := l.c.cfg.Writer
	flushDelay := w.FlushDelay
	if l.c.cfg.Storage.Type == options.StorageLocal {
		flushDelay = w.LocalFlushDelay
	}
	sw := segment.NewWriter(segment.WriterConfig{
		LogID: l.info.ID, Epoch: epoch, Owner: tok.String(), FirstSegment: next,
		MaxEntryBytes: w.MaxEntryBytes, MaxBlockBytes: w.MaxBlockBytes, FlushDelay: flushDelay,
		MaxInflight: w.MaxInflightUploads, MemoryBudget: w.MemoryBudgetBytes, ClientBudget: l.c.budget,
		Compression:  compression(w.Compression),
		RollMaxBytes: w.RollMaxBytes, RollMaxAge: w.RollMaxAge, RollMaxBlocks: int64(w.RollMaxBlocks),
		RetryInitialBackoff: w.UploadRetry.InitialBackoff, RetryMaxBackoff: w.UploadRetry.MaxBackoff,
		RetryTimeout: w.UploadRetry.TotalTimeout,
		Metrics:      l.c.segmentMetrics(),
	}, l.c.backend, &writerMeta{store: l.c.meta, tok: tok, created: map[int64]meta.SegmentMeta{}},
		hubObserver{hub: l.c.hub, logID: l.info.ID})
	return &Writer{w: sw, log: l, epoch: epoch, tok: tok}, nil
}

// segmentRef names a segment for its backend, with its placement.
func segmentRef(sm meta.SegmentMeta) segment.Ref {
	return segment.Ref{LogID: sm.LogID, SegmentID: sm.ID, Placement: string(sm.Placement)}
}

func compression(c options.Compression) segment.Compression {
	if c == options.CompressionZstd {
		return segment.CompressionZstd
	}
	return segment.CompressionNone
}

// recoverSegment seals a segment a previous writer left open.
func (l *Log) recoverSegment(ctx context.Context, tok meta.WriterToken, sm meta.SegmentMeta) error {
	ref := segmentRef(sm)
	ref.Owner = tok.String() // copies a recovery commits are this writer's
	info, err := l.c.backend.Recover(ctx, ref, tok.Epoch)
	if err != nil {
		return err
	}
	sm.LastEntry, sm.Blocks, sm.Bytes = info.LastEntry, info.Blocks, info.Bytes
	if _, err := l.c.meta.SealSegment(ctx, tok, sm); err != nil {
		return err
	}
	if m := l.c.metrics; m != nil {
		m.SegmentSealed()
		m.Fencing(FenceSegmentRecovered)
	}
	l.c.hub.notify(l.info.ID, nil)
	return nil
}

// writerMeta binds segment metadata changes to one writer's ownership.
type writerMeta struct {
	mu      sync.Mutex
	store   *meta.Store
	tok     meta.WriterToken
	created map[int64]meta.SegmentMeta // segments this writer created, by id
}

func (m *writerMeta) CreateSegment(ctx context.Context, segID int64, placement string) (int64, error) {
	sm, err := m.store.CreateSegment(ctx, m.tok, segID, []byte(placement))
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	m.created[segID] = sm
	m.mu.Unlock()
	return sm.Revision, nil
}

func (m *writerMeta) SealSegment(ctx context.Context, segID, revision int64, info segment.SealInfo) error {
	m.mu.Lock()
	sm := m.created[segID]
	m.mu.Unlock()
	sm.Revision, sm.LastEntry, sm.Blocks, sm.Bytes = revision, info.LastEntry, info.Blocks, info.Bytes
	if _, err := m.store.SealSegment(ctx, m.tok, sm); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.created, segID)
	m.mu.Unlock()
	return nil
}

// Truncate is an administrator's truncation: it marks every entry before
// id as no longer needed, whichever writer owns the log, so readers opened
// at Earliest start at id. Writers truncate with Writer.Truncate, which a
// newer writer fences. The point only moves forward; a lower id changes
// nothing and is not an error. The highest valid id is the one right after
// the log's last durable entry (same segment, entry + 1), which truncates
// everything written so far; a higher id fails with ErrBeyondEnd and
// changes nothing. Data below the point is
// removed later by garbage collection.
func (l *Log) Truncate(ctx context.Context, id EntryID) error {
	return l.truncate(ctx, id, nil)
}

func (l *Log) truncate(ctx context.Context, id EntryID, owner *meta.WriterToken) error {
	if !id.Valid() {
		return errors.Wrapf(walerr.ErrInvalidID, "truncate log %q at %s", l.info.Name, id)
	}
	if err := l.c.usable(); err != nil {
		return err
	}
	if owner != nil {
		// A superseded writer learns that first, whatever id it gave.
		if err := l.c.meta.CheckOwner(ctx, *owner); err != nil {
			return errors.Wrapf(err, "truncate log %q at %s", l.info.Name, id)
		}
	}
	if err := l.checkDurable(ctx, id); err != nil {
		return err
	}
	err := l.c.meta.Truncate(ctx, l.info.ID, meta.Position{Segment: id.Segment, Entry: id.Entry}, owner)
	return errors.Wrapf(err, "truncate log %q at %s", l.info.Name, id)
}

// checkDurable fails with ErrBeyondEnd when id lies beyond the id that
// follows the log's last durable entry. Truncating there would hide entries
// appended later: they would take ids below id.
func (l *Log) checkDurable(ctx context.Context, id EntryID) error {
	segs, err := l.c.meta.Segments(ctx, l.info.ID)
	if err != nil {
		return err
	}
	var st Stats
	if err := l.findEnds(ctx, segs, &st); err != nil {
		return err
	}
	if !st.NonEmpty {
		// A deleted log has no segments either: say which it is.
		info, err := l.c.meta.GetLog(ctx, l.info.Name)
		if err != nil && !errors.Is(err, walerr.ErrLogNotFound) {
			return err
		}
		if err != nil || info.ID != l.info.ID {
			return errors.Wrapf(walerr.ErrLogNotFound, "truncate log %q: the log was deleted", l.info.Name)
		}
		return errors.Wrapf(walerr.ErrBeyondEnd, "truncate log %q at %s: the log holds no entry", l.info.Name, id)
	}
	// The id right after the last entry truncates everything written so
	// far and nothing appended later: later ids of that segment are at or
	// above it, and later segments are above.
	if next := (EntryID{Segment: st.Last.Segment, Entry: st.Last.Entry + 1}); next.Less(id) {
		return errors.Wrapf(walerr.ErrBeyondEnd, "truncate log %q at %s: its last durable entry is %s, so the highest point is %s",
			l.info.Name, id, st.Last, next)
	}
	return nil
}

// TruncationPoint returns the log's truncation point; ok is false when the
// log was never truncated.
func (l *Log) TruncationPoint(ctx context.Context) (id EntryID, ok bool, err error) {
	p, ok, err := l.c.meta.Truncation(ctx, l.info.ID)
	return EntryID{Segment: p.Segment, Entry: p.Entry}, ok, err
}

// SegmentInfo describes one segment, for statistics and tools.
type SegmentInfo struct {
	ID    int64
	Epoch int64
	// Sealed segments have a known LastEntry (-1 if empty), Blocks and Bytes.
	Sealed    bool
	LastEntry int64
	Blocks    int64
	Bytes     int64
	CreatedAt time.Time
	SealedAt  time.Time
	// Generation is the segment's compaction generation (0: never
	// compacted), Objects the number of data objects of its layout, and
	// CompactedAt when its last compaction was committed.
	Generation  int64
	Objects     int64
	CompactedAt time.Time
	// Deleting is set while garbage collection deletes the segment.
	Deleting bool
	// Placement is where the backend placed the segment (QuorumBuffer:
	// its ensemble of LogStores, as JSON); empty for other backends.
	Placement string
}

// Stats summarises a log.
type Stats struct {
	Name string
	ID   int64
	// Truncation is the truncation point, valid when Truncated.
	Truncation EntryID
	Truncated  bool
	// Segments lists the log's segments in order.
	Segments []SegmentInfo
	// SealedBytes and SealedEntries count what sealed segments hold.
	SealedBytes   int64
	SealedEntries int64
	// First and Last are the ids of the first entry a reader from Earliest
	// gets and of the last durable entry, valid when NonEmpty. Last
	// includes entries of an open segment, found by reading its tail.
	First, Last EntryID
	NonEmpty    bool
	// Retention and garbage collection (see retention.go).
	RetentionStats
}

// Stats reads the log's metadata.
func (l *Log) Stats(ctx context.Context) (Stats, error) {
	st := Stats{Name: l.info.Name, ID: l.info.ID}
	trunc, ok, err := l.TruncationPoint(ctx)
	if err != nil {
		return Stats{}, err
	}
	st.Truncation, st.Truncated = trunc, ok
	segs, err := l.c.meta.Segments(ctx, l.info.ID)
	if err != nil {
		return Stats{}, err
	}
	for _, sm := range segs {
		si := SegmentInfo{ID: sm.ID, Epoch: sm.Epoch, Sealed: sm.State == meta.SegmentSealed,
			LastEntry: sm.LastEntry, Blocks: sm.Blocks, Bytes: sm.Bytes, CreatedAt: sm.CreatedAt, SealedAt: sm.SealedAt,
			Generation: sm.Generation, Objects: sm.Objects, CompactedAt: sm.CompactedAt, Deleting: sm.Deleting,
			Placement: string(sm.Placement)}
		if si.Objects == 0 {
			si.Objects = sm.Blocks
		}
		if si.Sealed {
			st.SealedBytes += sm.Bytes
			st.SealedEntries += sm.LastEntry + 1
		}
		st.Segments = append(st.Segments, si)
	}
	if err := l.retentionStats(ctx, segs, &st); err != nil {
		return Stats{}, err
	}
	return st, l.findEnds(ctx, segs, &st)
}

// findEnds fills st.First and st.Last.
func (l *Log) findEnds(ctx context.Context, segs []meta.SegmentMeta, st *Stats) error {
	var first, last *EntryID
	for _, sm := range segs {
		lastEntry := sm.LastEntry
		if sm.State == meta.SegmentOpen {
			info, err := l.c.backend.Scan(ctx, segmentRef(sm))
			if err != nil {
				return errors.Wrapf(err, "stats of log %q: scan open segment %d", l.info.Name, sm.ID)
			}
			lastEntry = info.LastEntry
		}
		if lastEntry < 0 {
			continue
		}
		lo, hi := EntryID{Segment: sm.ID}, EntryID{Segment: sm.ID, Entry: lastEntry}
		if st.Truncated && hi.Less(st.Truncation) {
			continue
		}
		if st.Truncated && lo.Less(st.Truncation) {
			lo = st.Truncation
		}
		if first == nil {
			first = &lo
		}
		last = &hi
	}
	if first != nil {
		st.First, st.Last, st.NonEmpty = *first, *last, true
	}
	return nil
}

// Writer appends to a log. It is safe for concurrent use: appends from
// several goroutines are ordered as they enter Append / AppendAsync, and
// acknowledged in that order.
type Writer struct {
	w     *segment.Writer
	log   *Log
	epoch int64
	tok   meta.WriterToken
}

// Epoch returns the writer's epoch.
func (w *Writer) Epoch() int64 { return w.epoch }

// Append writes payload and returns its id once it is durable.
//
// Outcomes: nil error means durable. An error marked ErrUnknownOutcome
// (errors.Is) means the entry may or may not be in the log: readers will
// see it exactly if it is. Any other error means it is not in the log.
// ErrFenced means a newer writer owns the log. Empty payloads fail with
// ErrEmptyEntry and payloads over writer.maxEntryBytes with ErrEntryTooLarge,
// changing nothing. payload must not be modified until Append returns.
func (w *Writer) Append(ctx context.Context, payload []byte) (EntryID, error) {
	seg, ent, err := w.w.Append(ctx, payload)
	if err != nil {
		return EntryID{}, w.wrap(err)
	}
	return EntryID{Segment: seg, Entry: ent}, nil
}

// AppendAsync queues payload and returns a future for its outcome, so one
// goroutine can keep many appends in flight. It blocks (honouring ctx)
// while the writer's memory budget is full. payload must not be modified
// until the future is done.
func (w *Writer) AppendAsync(ctx context.Context, payload []byte) (*AppendFuture, error) {
	f, err := w.w.AppendAsync(ctx, payload)
	if err != nil {
		return nil, w.wrap(err)
	}
	return &AppendFuture{f: f, w: w}, nil
}

func (w *Writer) wrap(err error) error {
	return errors.Wrapf(err, "append to log %q", w.log.info.Name)
}

// Truncate marks every entry before id as no longer needed, as
// Log.Truncate does, but as this writer: the change compares in the same
// etcd transaction that the writer still owns the log, so a writer that a
// newer one superseded fails with ErrFenced and changes nothing. It fails
// with ErrBeyondEnd, changing nothing, when id lies beyond the log's last
// durable entry (an entry still in flight is not durable yet).
func (w *Writer) Truncate(ctx context.Context, id EntryID) error {
	return w.log.truncate(ctx, id, &w.tok)
}

// Close waits until what was appended is durable (or ctx ends), seals the
// current segment, and releases the writer. The log keeps the epoch: a
// later writer needs an epoch at least as high. Close is idempotent.
func (w *Writer) Close(ctx context.Context) error {
	if err := w.w.Close(ctx); err != nil {
		return errors.Wrapf(err, "close writer of log %q", w.log.info.Name)
	}
	return nil
}

// AppendFuture is the pending outcome of AppendAsync.
type AppendFuture struct {
	f *segment.Future
	w *Writer
}

// Done is closed once the outcome is known.
func (f *AppendFuture) Done() <-chan struct{} { return f.f.Done() }

// Wait blocks until the outcome is known or ctx ends, and returns it with
// the meaning Append's result has. When ctx ends first the error is marked
// ErrUnknownOutcome.
func (f *AppendFuture) Wait(ctx context.Context) (EntryID, error) {
	select {
	case <-f.f.Done():
	case <-ctx.Done():
		return EntryID{}, walerr.Mark(errors.Wrap(ctx.Err(), "wait for append"), walerr.ErrUnknownOutcome)
	}
	seg, ent, err := f.f.Result()
	if err != nil {
		return EntryID{}, f.w.wrap(err)
	}
	return EntryID{Segment: seg, Entry: ent}, nil
}

// WriterEpoch returns the epoch of the log's latest writer; ok is false when
// no writer ever opened the log. A new writer needs an epoch at least as
// high.
func (l *Log) WriterEpoch(ctx context.Context) (epoch int64, ok bool, err error) {
	return l.c.meta.WriterEpoch(ctx, l.info.ID)
}
