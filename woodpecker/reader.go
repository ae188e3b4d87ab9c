package woodpecker

import (
	"context"
	"sync"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/segment"
)

type startKind int

const (
	startEarliest startKind = iota
	startLatest
	startAt
	startAfter
)

// StartPosition says where a reader starts.
type StartPosition struct {
	kind startKind
	id   EntryID
}

// Earliest starts at the log's first entry: its truncation point if it was
// truncated.
func Earliest() StartPosition { return StartPosition{kind: startEarliest} }

// Latest starts after the last entry durable when the reader opens: the
// reader sees only later appends.
func Latest() StartPosition { return StartPosition{kind: startLatest} }

// At starts at id, inclusive.
func At(id EntryID) StartPosition { return StartPosition{kind: startAt, id: id} }

// After starts after id, exclusive.
func After(id EntryID) StartPosition { return StartPosition{kind: startAfter, id: id} }

// Entry is one entry read from a log.
type Entry struct {
	ID EntryID
	// Payload belongs to the caller.
	Payload []byte
}

// Reader reads a log in order and follows its tail. It is not safe for
// concurrent use, except Close, which may be called from any goroutine and
// makes a blocked Next return ErrClosed.
//
// A reader returns only entries that are durable and can never disappear:
// what it returns from a segment a crashed writer left open is exactly what
// recovery will keep.
type Reader struct {
	log  *Log
	next EntryID // the lowest id Next may return

	segs   []meta.SegmentMeta
	dirty  bool // segment metadata changed since segs was read
	cur    segment.Cursor
	curSeg meta.SegmentMeta
	buf    [][]byte
	bufAt  EntryID

	backoff time.Duration
	events  chan struct{} // segment metadata changed
	closeCh chan struct{}
	life    context.Context // ends at Close
	stop    context.CancelFunc
	nextMu  sync.Mutex // held by Next; Close takes it to release the cursor
	wg      sync.WaitGroup
	once    sync.Once
}

// OpenReader opens a reader at from. Positions past the end wait for the
// entries to be written; positions in segments that do not exist move to
// the next segment that does.
func (l *Log) OpenReader(ctx context.Context, from StartPosition) (*Reader, error) {
	if err := l.c.usable(); err != nil {
		return nil, err
	}
	wctx, stop := context.WithCancel(context.Background())
	r := &Reader{log: l, events: make(chan struct{}, 1), closeCh: make(chan struct{}), life: wctx, stop: stop}
	// Watch before listing, so no change between the two is missed.
	r.wg.Add(1)
	go r.watchSegments(wctx)
	if err := r.reload(ctx); err != nil {
		r.Close()
		return nil, err
	}
	switch from.kind {
	case startEarliest:
		trunc, ok, err := l.TruncationPoint(ctx)
		if err != nil {
			r.Close()
			return nil, err
		}
		if ok {
			r.next = trunc
		}
	case startLatest:
		end, err := r.end(ctx)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.next = end
	case startAt, startAfter:
		if !from.id.Valid() {
			r.Close()
			return nil, errors.Wrapf(walerr.ErrInvalidID, "open reader on log %q at %s", l.info.Name, from.id)
		}
		r.next = from.id
		if from.kind == startAfter {
			r.next.Entry++
		}
	}
	r.resetBackoff()
	return r, nil
}

// end returns the position after the last durable entry.
func (r *Reader) end(ctx context.Context) (EntryID, error) {
	if len(r.segs) == 0 {
		return EntryID{}, nil
	}
	last := r.segs[len(r.segs)-1]
	if last.State == meta.SegmentSealed {
		return EntryID{Segment: last.ID + 1}, nil
	}
	info, err := r.log.c.backend.Scan(ctx, segment.Ref{LogID: last.LogID, SegmentID: last.ID})
	if err != nil {
		return EntryID{}, errors.Wrapf(err, "find the end of log %q", r.log.info.Name)
	}
	return EntryID{Segment: last.ID, Entry: info.LastEntry + 1}, nil
}

func (r *Reader) watchSegments(ctx context.Context) {
	defer r.wg.Done()
	for ctx.Err() == nil {
		for resp := range r.log.c.meta.WatchSegments(ctx, r.log.info.ID, 0) {
			if resp.Canceled {
				break
			}
			r.signal()
		}
		// The watch ended (etcd restarted, or compaction): what changed
		// meanwhile is unknown, so make the reader look again.
		r.signal()
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (r *Reader) signal() {
	select {
	case r.events <- struct{}{}:
	default:
	}
}

func (r *Reader) reload(ctx context.Context) error {
	segs, err := r.log.c.meta.Segments(ctx, r.log.info.ID)
	if err != nil {
		return err
	}
	r.segs, r.dirty = segs, false
	if r.cur != nil {
		for _, sm := range segs {
			if sm.ID == r.curSeg.ID && sm.State != r.curSeg.State {
				r.curSeg = sm
				r.cur.SetLimit(sm.Blocks)
			}
		}
	}
	return nil
}

// Next returns the next entry, waiting for it to be written if needed. It
// returns ctx's error when ctx ends, and ErrClosed once Close was called.
func (r *Reader) Next(ctx context.Context) (Entry, error) {
	r.nextMu.Lock()
	defer r.nextMu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(r.life, cancel)()
	e, err := r.next1(ctx)
	if err != nil && r.life.Err() != nil {
		return Entry{}, errors.Wrap(walerr.ErrClosed, "reader")
	}
	return e, err
}

func (r *Reader) next1(ctx context.Context) (Entry, error) {
	for {
		select {
		case <-r.closeCh:
			return Entry{}, errors.Wrap(walerr.ErrClosed, "reader")
		default:
		}
		for len(r.buf) > 0 {
			id, p := r.bufAt, r.buf[0]
			r.buf, r.bufAt.Entry = r.buf[1:], r.bufAt.Entry+1
			if id.Less(r.next) {
				continue
			}
			r.next = EntryID{Segment: id.Segment, Entry: id.Entry + 1}
			return Entry{ID: id, Payload: p}, nil
		}
		if r.dirty {
			if err := r.reload(ctx); err != nil {
				return Entry{}, err
			}
		}
		if r.cur == nil && !r.openSegment() {
			if err := r.wait(ctx, nil); err != nil {
				return Entry{}, err
			}
			continue
		}
		hubCh, _, _ := r.log.c.hub.watch(r.log.info.ID)
		h, entries, err := r.cur.Next(ctx)
		switch {
		case err == nil:
			r.buf, r.bufAt = entries, EntryID{Segment: h.SegmentID, Entry: h.FirstEntry}
			r.resetBackoff()
		case errors.Is(err, segment.ErrEndOfSegment) && r.curSeg.State == meta.SegmentSealed:
			r.next = EntryID{Segment: r.curSeg.ID + 1}
			r.closeCursor()
		case errors.Is(err, segment.ErrEndOfSegment), errors.Is(err, segment.ErrNoBlockYet):
			// The tail: wait for the writer, or for the seal a fence
			// announces.
			if err := r.wait(ctx, hubCh); err != nil {
				return Entry{}, err
			}
		default:
			return Entry{}, errors.Wrapf(err, "read log %q segment %d", r.log.info.Name, r.curSeg.ID)
		}
	}
}

// openSegment opens a cursor on the segment holding r.next, or reports that
// no such segment exists yet.
func (r *Reader) openSegment() bool {
	for _, sm := range r.segs {
		if sm.ID < r.next.Segment {
			continue
		}
		if sm.ID > r.next.Segment {
			r.next = EntryID{Segment: sm.ID}
		}
		if sm.State == meta.SegmentSealed && sm.LastEntry < r.next.Entry {
			r.next = EntryID{Segment: sm.ID + 1}
			continue
		}
		r.curSeg = sm
		r.cur = r.log.c.backend.OpenCursor(segment.Ref{LogID: sm.LogID, SegmentID: sm.ID})
		if sm.State == meta.SegmentSealed {
			r.cur.SetLimit(sm.Blocks)
		}
		return true
	}
	return false
}

func (r *Reader) closeCursor() {
	if r.cur != nil {
		_ = r.cur.Close()
		r.cur = nil
	}
	r.buf = nil
}

func (r *Reader) resetBackoff() { r.backoff = r.log.c.cfg.Reader.TailBackoffMin }

// wait blocks until something may have changed: a writer of this process
// made more durable (hubCh), segment metadata changed, or the backoff for
// writers in other processes passed.
func (r *Reader) wait(ctx context.Context, hubCh <-chan struct{}) error {
	timer := time.NewTimer(r.backoff)
	defer timer.Stop()
	select {
	case <-hubCh:
	case <-r.events:
		r.dirty = true
	case <-timer.C:
		r.backoff = min(2*r.backoff, r.log.c.cfg.Reader.TailBackoffMax)
	case <-ctx.Done():
		return ctx.Err()
	case <-r.closeCh:
		return errors.Wrap(walerr.ErrClosed, "reader")
	}
	return nil
}

// Close stops the reader and releases its resources. It is idempotent.
func (r *Reader) Close() error {
	r.once.Do(func() {
		close(r.closeCh)
		r.stop()
		r.wg.Wait()
		r.nextMu.Lock()
		r.closeCursor()
		r.nextMu.Unlock()
	})
	return nil
}
