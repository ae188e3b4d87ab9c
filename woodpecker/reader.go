package woodpecker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/errors"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

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
//
// A reader publishes its position in etcd under a lease it renews while it
// lives (retention.readerLeaseTTL), so garbage collection spares every
// segment from that position on, even below the truncation point. Once the
// data at its position is gone (the reader was opened below the first entry
// still stored, or its lease lapsed), Next returns an error wrapping
// ErrTruncated and a *TruncatedError that gives the first available entry.
//
// When the log is deleted (while the reader follows it, or before it
// opens), Next, like OpenReader, returns an error wrapping ErrLogNotFound.
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
	blocks  chan struct{} // a block was committed into a shared object, or pushed (segment.BlockWatcher)
	closeCh chan struct{}
	life    context.Context // ends at Close
	stop    context.CancelFunc
	nextMu  sync.Mutex // held by Next; Close takes it to release the cursor
	wg      sync.WaitGroup
	once    sync.Once

	floor int64 // the log's GC floor as of the last reload
	gone  error // sticky once the reader's data is gone: *TruncatedError, or ErrLogNotFound
	pos   positionPublisher
	// recheck: the log may have been deleted since it was last seen to
	// exist (a deleted-log record changed, or its watch restarted); the
	// next reload looks.
	recheck atomic.Bool

	// tailStop stops the backend's watch of the open segment cur reads
	// (segment.BlockWatcher), which feeds blocks; nil when none runs.
	tailStop func()
}

// OpenReader opens a reader at from. Positions past the end wait for the
// entries to be written; positions in segments that do not exist move to
// the next segment that does. A log deleted since it was opened gives an
// error wrapping ErrLogNotFound, an invalid position one wrapping
// ErrInvalidID, both at once. Transient failures (etcd or the replicas
// unreachable) are retried with backoff for as long as ctx lasts, as Next
// retries them; when ctx ends first, the error wraps ctx's error and tells
// the last failure.
func (l *Log) OpenReader(ctx context.Context, from StartPosition) (*Reader, error) {
	if err := l.c.usable(); err != nil {
		return nil, err
	}
	if (from.kind == startAt || from.kind == startAfter) && !from.id.Valid() {
		return nil, errors.Wrapf(walerr.ErrInvalidID, "open reader on log %q at %s", l.info.Name, from.id)
	}
	wctx, stop := context.WithCancel(context.Background())
	r := &Reader{log: l, events: make(chan struct{}, 1), blocks: make(chan struct{}, 1),
		closeCh: make(chan struct{}), life: wctx, stop: stop}
	r.recheck.Store(true)
	// Watch before listing, so no change between the two is missed.
	r.wg.Add(3)
	go r.watchSegments(wctx)
	go r.watchDeleted(wctx)
	go r.watchExtents(wctx)
	r.resetBackoff()
	for _, step := range []func() error{
		func() error { return r.place(ctx, from) },
		// Publish the position, then look again: either garbage
		// collection sees the position and spares the data, or this
		// reload sees the floor it raised.
		func() error { return r.pos.start(ctx, r, r.next.Segment) },
		func() error { return r.reload(ctx) },
	} {
		if err := r.retryOpen(ctx, step); err != nil {
			r.Close()
			return nil, err
		}
	}
	if (from.kind == startEarliest || from.kind == startLatest) && r.next.Segment < r.floor {
		r.next = EntryID{Segment: r.floor}
		r.pos.want(r.next.Segment)
	}
	r.resetBackoff()
	return r, nil
}

// place lists the log's segments and sets r.next to from.
func (r *Reader) place(ctx context.Context, from StartPosition) error {
	if err := r.reload(ctx); err != nil {
		return err
	}
	switch from.kind {
	case startEarliest:
		trunc, ok, err := r.log.TruncationPoint(ctx)
		if err != nil {
			return err
		}
		if ok {
			r.next = trunc
		}
	case startLatest:
		end, err := r.end(ctx)
		if err != nil {
			return err
		}
		r.next = end
	case startAt, startAfter:
		r.next = from.id
		if from.kind == startAfter {
			r.next.Entry++
		}
	}
	return nil
}

// retryOpen runs step, a step of OpenReader, until it succeeds, fails
// definitely (the log is gone, the client closed, corrupt metadata), or
// ctx ends; between attempts it waits with the reader's backoff.
func (r *Reader) retryOpen(ctx context.Context, step func() error) error {
	for {
		err := step()
		if err == nil {
			return nil
		}
		if cerr := r.log.c.usable(); cerr != nil {
			return cerr
		}
		if definite(err) || errors.Is(err, walerr.ErrInvalidID) || errors.Is(err, walerr.ErrCorrupt) {
			return err
		}
		if ctx.Err() != nil {
			return errors.Wrapf(ctx.Err(), "open reader on log %q (last failure: %v)", r.log.info.Name, err)
		}
		r.log.c.logger.Warn("opening a reader failed; retrying", zap.String("log", r.log.info.Name), zap.Error(err))
		if werr := r.wait(ctx, nil); werr != nil {
			return errors.Wrapf(werr, "open reader on log %q (last failure: %v)", r.log.info.Name, err)
		}
	}
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
	// Latest must not start before an entry acknowledged before the
	// reader opened; a backend whose Scan can end before one says so.
	scan := r.log.c.backend.Scan
	if ls, ok := r.log.c.backend.(segment.LatestScanner); ok {
		scan = ls.ScanLatest
	}
	info, err := scan(ctx, segmentRef(last))
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

// watchExtents wakes the reader when a writer in any process commits a
// block of the log into a shared object (docs/shared-objects.md): tail
// readers are pushed, not polling.
func (r *Reader) watchExtents(ctx context.Context) {
	defer r.wg.Done()
	for ctx.Err() == nil {
		for resp := range r.log.c.meta.WatchExtents(ctx, r.log.info.ID) {
			if resp.Canceled {
				break
			}
			select {
			case r.blocks <- struct{}{}:
			default:
			}
		}
		r.signal()
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// watchDeleted makes the reader check that its log still exists whenever
// the log's deleted-log record changes, and whenever the watch (re)starts,
// since a deletion may have happened while nothing watched.
func (r *Reader) watchDeleted(ctx context.Context) {
	defer r.wg.Done()
	for ctx.Err() == nil {
		for resp := range r.log.c.meta.WatchDeleted(ctx, r.log.info.ID) {
			if resp.Canceled {
				break
			}
			r.recheck.Store(true)
			r.signal()
		}
		r.recheck.Store(true)
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
	segs, floor, err := r.log.c.meta.SegmentsAndFloor(ctx, r.log.info.ID)
	if err != nil {
		return err
	}
	if r.recheck.Swap(false) {
		if err := r.checkExists(ctx); err != nil {
			return err
		}
	}
	r.segs, r.dirty, r.floor = segs, false, floor
	if r.cur != nil {
		for _, sm := range segs {
			if sm.ID == r.curSeg.ID && sm.State != r.curSeg.State {
				r.curSeg = sm
				r.cur.SetLimit(sm.Blocks)
				r.stopTail() // sealed: the rest is in storage
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
	select {
	case <-r.closeCh:
	default:
		// The next entry is in the block read last: no wait, so no
		// context to bind to the reader's life (a catch-up read returns
		// most entries so).
		if r.gone == nil {
			if e, ok := r.fromBuffer(); ok {
				return e, nil
			}
		}
	}
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
		if r.gone != nil {
			return Entry{}, r.gone
		}
		if e, ok := r.fromBuffer(); ok {
			return e, nil
		}
		if r.dirty {
			if err := r.reload(ctx); err != nil {
				if cerr := r.log.c.usable(); cerr != nil {
					return Entry{}, cerr
				}
				if r.gone != nil || ctx.Err() != nil || definite(err) {
					return Entry{}, err
				}
				// An etcd outage looks like a slow tail too, as a
				// storage outage does: retry with backoff for as long as
				// the caller waits (the metadata stays dirty).
				r.log.c.logger.Warn("reading the log's segments failed; retrying", zap.String("log", r.log.info.Name),
					zap.Error(err))
				if err := r.wait(ctx, nil); err != nil {
					return Entry{}, err
				}
				continue
			}
		}
		if r.cur == nil && r.next.Segment < r.floor {
			return Entry{}, r.truncated(ctx)
		}
		if r.cur == nil && !r.openSegment(ctx) {
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
			if ctx.Err() == nil && r.reload(ctx) == nil && r.curSeg.ID < r.floor {
				// Garbage collection deleted the segment under the reader
				// (its lease lapsed): the data is gone, not corrupt.
				return Entry{}, r.truncated(ctx)
			}
			if ctx.Err() == nil && !errors.Is(err, walerr.ErrCorrupt) {
				// A storage outage looks like a slow tail: retry with
				// backoff for as long as the caller waits.
				r.log.c.logger.Warn("read failed; retrying", zap.String("log", r.log.info.Name),
					zap.Int64("segment", r.curSeg.ID), zap.Error(err))
				if err := r.wait(ctx, nil); err != nil {
					return Entry{}, err
				}
				continue
			}
			return Entry{}, errors.Wrapf(err, "read log %q segment %d", r.log.info.Name, r.curSeg.ID)
		}
	}
}

// fromBuffer returns the next entry of the block read last, if it holds
// one.
func (r *Reader) fromBuffer() (Entry, bool) {
	for len(r.buf) > 0 {
		id, p := r.bufAt, r.buf[0]
		r.buf, r.bufAt.Entry = r.buf[1:], r.bufAt.Entry+1
		if id.Less(r.next) {
			continue
		}
		r.next = EntryID{Segment: id.Segment, Entry: id.Entry + 1}
		if m := r.log.c.metrics; m != nil {
			m.ObserveRead(1, int64(len(p)))
		}
		return Entry{ID: id, Payload: p}, true
	}
	return Entry{}, false
}

// definite reports whether a failure to read the log's metadata is an
// answer rather than an outage: the log is gone or truncated, or the
// client closed.
func definite(err error) bool {
	var te *TruncatedError
	return errors.Is(err, walerr.ErrLogNotFound) || errors.Is(err, walerr.ErrClosed) ||
		errors.Is(err, walerr.ErrTruncated) || errors.As(err, &te)
}

// openSegment opens a cursor on the segment holding r.next, or reports that
// no such segment exists yet.
func (r *Reader) openSegment(ctx context.Context) bool {
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
		r.pos.want(sm.ID)
		r.cur = r.log.c.backend.OpenCursor(segmentRef(sm))
		if pc, ok := r.cur.(segment.PrefetchCursor); ok {
			pc.SetPrefetch(r.log.c.cfg.Reader.PrefetchBlocks)
		}
		if bc, ok := r.cur.(segment.BufferCursor); ok {
			bc.SetMaxBuffer(r.log.c.cfg.Reader.MaxBufferBytes)
		}
		if bw, ok := r.log.c.backend.(segment.BlockWatcher); ok && sm.State != meta.SegmentSealed && !r.writtenHere(sm.ID) {
			// Tail reads are pushed: the backend wakes the reader when
			// a block of the open segment may have become readable.
			r.tailStop = bw.WatchBlocks(r.life, segmentRef(sm), r.blocks)
		}
		if sm.State == meta.SegmentSealed {
			r.cur.SetLimit(sm.Blocks)
			if gc, ok := r.cur.(segment.GenerationCursor); ok && sm.Generation > 0 {
				gc.UseGeneration(sm.Generation)
			}
			r.skipToEntry(ctx, sm)
		}
		return true
	}
	return false
}

// skipToEntry moves a fresh cursor on a sealed segment to the block holding
// r.next, so a reader opened in the middle of a large segment does not read
// everything before its position. It is an optimisation: on any failure the
// cursor reads from the segment's start and entries before r.next are
// skipped as usual.
func (r *Reader) skipToEntry(ctx context.Context, sm meta.SegmentMeta) {
	loc, ok := r.log.c.backend.(segment.BlockLocator)
	if !ok || r.next.Entry == 0 || sm.Blocks < 2 || sm.Generation > 0 {
		return
	}
	block, err := loc.LocateBlock(ctx, segmentRef(sm), sm.Blocks, r.next.Entry)
	if err != nil {
		r.log.c.logger.Debug("locate block failed; reading the segment from its start", zap.Error(err))
		return
	}
	if block > 0 {
		r.cur.Skip(block)
	}
}

func (r *Reader) closeCursor() {
	r.stopTail()
	if r.cur != nil {
		_ = r.cur.Close()
		r.cur = nil
	}
	r.buf = nil
}

// writtenHere reports whether a writer of this client writes segment
// segID: the hub then wakes the reader, and the backend's watch would only
// repeat it.
func (r *Reader) writtenHere(segID int64) bool {
	_, durable, ok := r.log.c.hub.watch(r.log.info.ID)
	return ok && durable.Segment == segID
}

// stopTail stops the backend's watch of the open segment, if one runs.
func (r *Reader) stopTail() {
	if r.tailStop != nil {
		r.tailStop()
		r.tailStop = nil
	}
}

func (r *Reader) resetBackoff() { r.backoff = r.log.c.cfg.Reader.TailBackoffMin }

// wait blocks until something may have changed: a writer of this process
// made more durable (hubCh), segment metadata changed, a block was
// committed or pushed (blocks), or the backoff for writers in other
// processes passed: the fallback where nothing pushes.
func (r *Reader) wait(ctx context.Context, hubCh <-chan struct{}) error {
	timer := time.NewTimer(r.backoff)
	defer timer.Stop()
	select {
	case <-hubCh:
	case <-r.events:
		r.dirty = true
	case <-r.blocks:
		r.resetBackoff()
	case <-timer.C:
		r.backoff = min(2*r.backoff, r.log.c.cfg.Reader.TailBackoffMax)
	case <-ctx.Done():
		return ctx.Err()
	case <-r.closeCh:
		return errors.Wrap(walerr.ErrClosed, "reader")
	}
	return nil
}

// checkExists returns nil while the reader's log exists. Once it was
// deleted (its name is gone, or names a log created since), the reader's
// data is gone for good: it releases what it holds and returns the sticky
// error, wrapping ErrLogNotFound.
func (r *Reader) checkExists(ctx context.Context) error {
	info, err := r.log.c.meta.GetLog(ctx, r.log.info.Name)
	switch {
	case err == nil && info.ID == r.log.info.ID:
		return nil
	case err != nil && !errors.Is(err, walerr.ErrLogNotFound):
		r.recheck.Store(true) // unknown: look again next time
		return err
	}
	r.closeCursor()
	r.gone = errors.Wrapf(walerr.ErrLogNotFound, "log %q was deleted", r.log.info.Name)
	r.pos.withdraw(ctx)
	return r.gone
}

// truncated makes the reader's data gone for good: it releases the
// cursor and the published position (which would otherwise hold back
// garbage collection of the whole log) and returns the sticky error.
func (r *Reader) truncated(ctx context.Context) error {
	r.closeCursor()
	r.gone = &TruncatedError{Log: r.log.info.Name, Position: r.next, First: EntryID{Segment: r.floor}}
	r.pos.withdraw(ctx)
	return r.gone
}

// Close stops the reader and releases its resources, including its
// published position. It is idempotent.
func (r *Reader) Close() error {
	r.once.Do(func() {
		close(r.closeCh)
		r.stop()
		r.wg.Wait()
		r.nextMu.Lock()
		r.closeCursor()
		r.nextMu.Unlock()
		r.pos.close()
	})
	return nil
}

// positionPublisher keeps a reader's position in etcd: under a lease of
// its own, renewed by KeepAlive until the reader closes, and raised (in the
// background, so Next never waits for etcd) as the reader moves to later
// segments. A position that lags behind the reader only protects more. If
// the lease lapses (etcd was unreachable for longer than its TTL), a new
// one is taken and the position published again; meanwhile garbage
// collection may delete the reader's data, which it then reports as
// ErrTruncated.
type positionPublisher struct {
	r       *Reader
	mu      sync.Mutex
	lease   clientv3.LeaseID // guarded by mu
	wanted  int64            // segment the reader reads from; guarded by mu
	done    int64            // segment published; owned by loop
	changed chan struct{}
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func (p *positionPublisher) ttl() int64 {
	return max(int64(p.r.log.c.cfg.Retention.ReaderLeaseTTL/time.Second), 1)
}

// start grants the lease, publishes seg synchronously, and starts renewing.
func (p *positionPublisher) start(ctx context.Context, r *Reader, seg int64) error {
	p.r = r
	keep, err := p.establish(ctx, context.Background(), seg)
	if err != nil {
		return errors.Wrapf(err, "open reader on log %q", r.log.info.Name)
	}
	p.wanted, p.done = seg, seg
	p.changed = make(chan struct{}, 1)
	kctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Add(1)
	go p.loop(kctx, keep)
	return nil
}

// establish takes a new lease, publishes seg under it and keeps it alive
// for as long as life lasts. It replaces (and revokes) the previous lease.
func (p *positionPublisher) establish(ctx, life context.Context, seg int64) (<-chan *clientv3.LeaseKeepAliveResponse, error) {
	cli := p.r.log.c.meta.Client()
	grant, err := cli.Grant(ctx, p.ttl())
	if err != nil {
		return nil, errors.Wrap(err, "grant the reader's position lease")
	}
	revokeNew := func() {
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, _ = cli.Revoke(rctx, grant.ID)
	}
	if err := p.r.log.c.meta.PublishReader(ctx, p.r.log.info.ID, grant.ID, meta.Position{Segment: seg}); err != nil {
		revokeNew()
		return nil, err
	}
	keep, err := cli.KeepAlive(life, grant.ID)
	if err != nil {
		revokeNew()
		return nil, errors.Wrap(err, "keep the reader's position lease alive")
	}
	p.mu.Lock()
	old := p.lease
	p.lease = grant.ID
	p.mu.Unlock()
	if old != 0 {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, _ = cli.Revoke(rctx, old)
		cancel()
	}
	return keep, nil
}

func (p *positionPublisher) loop(ctx context.Context, keep <-chan *clientv3.LeaseKeepAliveResponse) {
	defer p.wg.Done()
	var retry <-chan time.Time
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-keep:
			if !ok {
				keep, retry = nil, time.After(backoff)
			}
		case <-retry:
			retry = nil
			var err error
			if keep, err = p.establish(ctx, ctx, p.done); err != nil {
				backoff = min(2*backoff, 5*time.Second)
				retry = time.After(backoff)
			} else {
				backoff = 100 * time.Millisecond
			}
		case <-p.changed:
			p.mu.Lock()
			seg, lease := p.wanted, p.lease
			p.mu.Unlock()
			if seg <= p.done {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := p.r.log.c.meta.PublishReader(pctx, p.r.log.info.ID, lease, meta.Position{Segment: seg})
			cancel()
			if err == nil {
				p.done = seg
			}
		}
	}
}

// want raises the published position to seg (asynchronously).
func (p *positionPublisher) want(seg int64) {
	if p.changed == nil {
		return
	}
	p.mu.Lock()
	raise := seg > p.wanted
	if raise {
		p.wanted = seg
	}
	p.mu.Unlock()
	if raise {
		select {
		case p.changed <- struct{}{}:
		default:
		}
	}
}

// withdraw stops protecting anything: the reader's data is gone.
func (p *positionPublisher) withdraw(ctx context.Context) {
	p.mu.Lock()
	lease := p.lease
	p.mu.Unlock()
	if lease != 0 {
		_ = p.r.log.c.meta.RemoveReader(ctx, p.r.log.info.ID, lease)
	}
}

// close stops renewing and revokes the lease, which removes the published
// position at once.
func (p *positionPublisher) close() {
	if p.cancel != nil {
		p.cancel()
		p.wg.Wait()
	}
	p.mu.Lock()
	lease := p.lease
	p.lease = 0
	p.mu.Unlock()
	if lease == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = p.r.log.c.meta.Client().Revoke(ctx, lease)
}
