package segment

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/errors"
	"golang.org/x/sync/semaphore"

	"github.com/woodpecker-wal/woodpecker/internal/walerr"
)

// WriterConfig configures a Writer. Zero values are not defaults: the
// client fills every field from options.
type WriterConfig struct {
	LogID int64
	Epoch int64
	// FirstSegment is the id of the segment the writer starts; it is created
	// in metadata when its first block is cut.
	FirstSegment int64

	MaxEntryBytes int64
	MaxBlockBytes int64
	// FlushDelay is how long a partial block may wait for more entries
	// while other uploads are in flight. A block is cut at once when no
	// upload is in flight.
	FlushDelay   time.Duration
	MaxInflight  int
	MemoryBudget int64
	Compression  Compression

	RollMaxBytes  int64
	RollMaxAge    time.Duration
	RollMaxBlocks int64

	RetryInitialBackoff time.Duration
	RetryMaxBackoff     time.Duration
	// RetryTimeout bounds the retries of one block; past it the block's
	// entries fail with walerr.ErrUnknownOutcome.
	RetryTimeout time.Duration

	// Metrics, when not nil, learns what the writer does. It is the one
	// optional field: nil reports nothing.
	Metrics Metrics
}

// Meta is the metadata a writer changes, bound to the writer's ownership:
// both calls fail with walerr.ErrFenced once a newer writer owns the log.
type Meta interface {
	CreateSegment(ctx context.Context, segID int64, placement string) (revision int64, err error)
	SealSegment(ctx context.Context, segID, revision int64, info SealInfo) error
}

// Observer learns what became durable, for tail readers in this process.
// Calls are made in log order with the writer's lock held: they must be
// quick and must not call back into the writer.
type Observer interface {
	// Durable reports that every entry up to (segID, entry) is durable.
	Durable(segID, entry int64)
	// Sealed reports that segment segID is sealed with info.
	Sealed(segID int64, info SealInfo)
}

// Metrics learns what a writer does, for monitoring. The writer calls it
// from its own goroutines and the appending ones, concurrently, never with
// its lock held; implementations must be safe for concurrent use, must not
// block, and must not call back into the writer.
type Metrics interface {
	// AppendDone reports the outcome of one append, exactly once: bytes of
	// payload, d from the call of AppendAsync (or Append) until the
	// outcome was known, and err, nil when the entry is durable. Appends
	// that AppendAsync rejects are reported too, with its error.
	AppendDone(bytes int, d time.Duration, err error)
	// BlockWriteStarted reports that one attempt to write a block to the
	// backend starts; retry is set when an earlier attempt of the same
	// block failed. BlockWriteDone ends the attempt: the block's encoded
	// size, how long the attempt took, and its error.
	BlockWriteStarted(retry bool)
	BlockWriteDone(bytes int, d time.Duration, err error)
	// SegmentSealed reports that the writer sealed segment segID, in
	// storage and in metadata.
	SegmentSealed(segID int64)
	// Fenced reports that the writer learnt a newer writer owns the log.
	// It is reported at most once per writer.
	Fenced()
}

// noMetrics is the Metrics of a writer configured without one.
type noMetrics struct{}

func (noMetrics) AppendDone(int, time.Duration, error)     {}
func (noMetrics) BlockWriteStarted(bool)                   {}
func (noMetrics) BlockWriteDone(int, time.Duration, error) {}
func (noMetrics) SegmentSealed(int64)                      {}
func (noMetrics) Fenced()                                  {}

// Future is the pending result of an append.
type Future struct {
	done  chan struct{}
	seg   int64
	entry int64
	err   error
}

// Done is closed when the append has succeeded or failed.
func (f *Future) Done() <-chan struct{} { return f.done }

// Result returns the entry's id, or why the append failed. Call it after
// Done is closed.
func (f *Future) Result() (seg, entry int64, err error) { return f.seg, f.entry, f.err }

type pendingEntry struct {
	payload []byte
	fut     *Future
	start   time.Time // when AppendAsync was called; set when metrics are reported
}

// block is a cut batch on its way to storage.
type block struct {
	seg     *openSegment
	no      int64
	first   int64
	entries []pendingEntry
	weight  int64 // budget held by the entries
	size    int64 // encoded size, known after upload
	started bool
	// attempted is set once a write of the block was issued: from then on
	// the block may be in storage whatever the writer hears back.
	attempted atomic.Bool
	done      bool
	err       error
}

// openSegment is a segment the writer writes, or finished writing and has
// yet to seal.
type openSegment struct {
	id        int64
	nextEntry int64
	nextBlock int64
	bytes     int64 // payload bytes cut into blocks
	createdAt time.Time
	cutDone   bool // no more blocks will be cut

	ready    chan struct{} // closed when metadata and sink exist
	readyErr error
	sink     Sink
	revision int64

	ackedBlocks int64
	ackedBytes  int64
	lastAcked   int64
}

// Writer appends entries to a log's segments: it batches entries into
// blocks, uploads several blocks at once, acknowledges entries strictly in
// log order, rolls segments and seals them. It is safe for concurrent use.
//
// After any failure the writer is failed for good: every pending and later
// append fails, and the caller opens a new writer (whose recovery seals what
// this one left).
type Writer struct {
	cfg     WriterConfig
	backend Backend
	meta    Meta
	obs     Observer
	metrics Metrics // never nil
	report  bool    // metrics were configured: measure for them
	budget  *semaphore.Weighted
	ctx     context.Context // cancelled by abort
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu         sync.Mutex
	cur        *openSegment
	batch      []pendingEntry
	batchBytes int64
	batchStart time.Time
	timer      *time.Timer
	queue      []*block // cut, not yet resolved, in log order
	inflight   int
	failed     error
	closing    bool
	idle       chan struct{} // closed and replaced when the queue drains
	// settled are the entries resolved under the lock and not yet reported
	// to the metrics, and fenced says the writer's fencing is unreported:
	// unlock reports them once the lock is released.
	settled []pendingEntry
	fenced  bool
}

// NewWriter returns a writer that starts segment cfg.FirstSegment.
func NewWriter(cfg WriterConfig, backend Backend, meta Meta, obs Observer) *Writer {
	ctx, cancel := context.WithCancel(context.Background())
	w := &Writer{
		cfg: cfg, backend: backend, meta: meta, obs: obs,
		metrics: cfg.Metrics, report: cfg.Metrics != nil,
		budget: semaphore.NewWeighted(cfg.MemoryBudget),
		ctx:    ctx, cancel: cancel,
		idle: make(chan struct{}),
	}
	if w.metrics == nil {
		w.metrics = noMetrics{}
	}
	w.cur = w.newSegmentLocked(cfg.FirstSegment)
	return w
}

// entryOverhead is what the budget charges per entry beyond its payload.
const entryOverhead = 32

func (w *Writer) weight(n int) int64 {
	wt := int64(n) + entryOverhead
	return min(wt, w.cfg.MemoryBudget)
}

// AppendAsync queues payload and returns its future. It blocks, honouring
// ctx, while the memory budget is exhausted. The writer keeps payload until
// the future is done: the caller must not modify it before then.
func (w *Writer) AppendAsync(ctx context.Context, payload []byte) (*Future, error) {
	var start time.Time
	if w.report {
		start = time.Now()
	}
	fut, err := w.appendAsync(ctx, payload, start)
	if err != nil && w.report {
		w.metrics.AppendDone(len(payload), time.Since(start), err)
	}
	return fut, err
}

func (w *Writer) appendAsync(ctx context.Context, payload []byte, start time.Time) (*Future, error) {
	switch {
	case len(payload) == 0:
		return nil, errors.Wrap(walerr.ErrEmptyEntry, "append")
	case int64(len(payload)) > w.cfg.MaxEntryBytes:
		return nil, errors.Wrapf(walerr.ErrEntryTooLarge,
			"append: entry of %d bytes exceeds writer.maxEntryBytes (%d)", len(payload), w.cfg.MaxEntryBytes)
	}
	wt := w.weight(len(payload))
	if err := w.budget.Acquire(ctx, wt); err != nil {
		return nil, errors.Wrap(err, "append: waiting for memory budget")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usableLocked(); err != nil {
		w.budget.Release(wt)
		return nil, err
	}
	seg := w.cur
	fut := &Future{done: make(chan struct{}), seg: seg.id, entry: seg.nextEntry}
	seg.nextEntry++
	if len(w.batch) == 0 {
		w.batchStart = time.Now()
	}
	w.batch = append(w.batch, pendingEntry{payload: payload, fut: fut, start: start})
	w.batchBytes += int64(len(payload))
	w.maybeCutLocked()
	return fut, nil
}

// Append appends payload and waits until it is durable. It returns the
// entry's segment and entry id. On ctx's end it returns ctx's error marked
// walerr.ErrUnknownOutcome: the entry may still become durable.
func (w *Writer) Append(ctx context.Context, payload []byte) (seg, entry int64, err error) {
	fut, err := w.AppendAsync(ctx, payload)
	if err != nil {
		return 0, 0, err
	}
	select {
	case <-fut.Done():
		return fut.Result()
	case <-ctx.Done():
		return 0, 0, walerr.Mark(errors.Wrap(ctx.Err(), "append: gave up waiting"), walerr.ErrUnknownOutcome)
	}
}

func (w *Writer) usableLocked() error {
	if w.failed != nil {
		// The entry was not accepted: a definite failure. Keep only the
		// fenced identity of the cause, which tells the caller to reopen.
		if errors.Is(w.failed, walerr.ErrFenced) {
			return errors.Wrapf(walerr.ErrFenced, "writer failed earlier (%s); open a new writer", w.failed.Error())
		}
		return errors.Newf("writer failed earlier (%s); open a new writer", w.failed.Error())
	}
	if w.closing {
		return errors.Wrap(walerr.ErrClosed, "writer")
	}
	return nil
}

// maybeCutLocked cuts the batch into a block when it is full, when nothing
// is in flight, or when it waited FlushDelay and an upload slot is free.
func (w *Writer) maybeCutLocked() {
	if len(w.batch) == 0 {
		return
	}
	parallel := w.parallel()
	waiting := w.unstartedLocked()
	switch {
	case w.batchBytes >= w.cfg.MaxBlockBytes:
	case w.inflight == 0 && waiting == 0:
	case w.inflight+waiting < parallel && time.Since(w.batchStart) >= w.cfg.FlushDelay:
	default:
		if w.timer == nil && w.inflight+waiting < parallel {
			w.timer = time.AfterFunc(w.cfg.FlushDelay-time.Since(w.batchStart), w.onTimer)
		}
		return
	}
	w.cutLocked()
}

func (w *Writer) onTimer() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer = nil
	if w.failed == nil {
		w.maybeCutLocked()
	}
}

func (w *Writer) parallel() int { return min(w.backend.Parallel(), w.cfg.MaxInflight) }

func (w *Writer) unstartedLocked() int {
	n := 0
	for i := len(w.queue) - 1; i >= 0 && !w.queue[i].started; i-- {
		n++
	}
	return n
}

func (w *Writer) cutLocked() {
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	seg := w.cur
	b := &block{seg: seg, no: seg.nextBlock, first: w.batch[0].fut.entry, entries: w.batch}
	for _, e := range w.batch {
		b.weight += w.weight(len(e.payload))
	}
	seg.nextBlock++
	seg.bytes += w.batchBytes
	w.batch, w.batchBytes = nil, 0
	if b.no == 0 {
		w.startSegment(seg)
	}
	w.queue = append(w.queue, b)
	if w.shouldRoll(seg) {
		seg.cutDone = true
		w.cur = w.newSegmentLocked(seg.id + 1)
	}
	w.startUploadsLocked()
}

func (w *Writer) shouldRoll(seg *openSegment) bool {
	return seg.bytes >= w.cfg.RollMaxBytes || seg.nextBlock >= w.cfg.RollMaxBlocks ||
		(w.cfg.RollMaxAge > 0 && time.Since(seg.createdAt) >= w.cfg.RollMaxAge)
}

func (w *Writer) newSegmentLocked(id int64) *openSegment {
	return &openSegment{id: id, createdAt: time.Now(), ready: make(chan struct{}), lastAcked: -1}
}

// startSegment creates the segment's metadata and sink in the background;
// its uploads wait for them.
func (w *Writer) startSegment(seg *openSegment) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer close(seg.ready)
		ref := Ref{LogID: w.cfg.LogID, SegmentID: seg.id}
		if p, ok := w.backend.(Placer); ok {
			placement, err := p.Place(w.ctx, ref)
			if err != nil {
				seg.readyErr = errors.Wrapf(err, "place segment %d of log %d", seg.id, w.cfg.LogID)
				return
			}
			ref.Placement = placement
		}
		rev, err := w.meta.CreateSegment(w.ctx, seg.id, ref.Placement)
		if err != nil {
			seg.readyErr = errors.Wrapf(err, "create segment %d of log %d", seg.id, w.cfg.LogID)
			return
		}
		sink, err := w.backend.CreateSink(w.ctx, ref, w.cfg.Epoch)
		if err != nil {
			seg.readyErr = errors.Wrapf(err, "open segment %d of log %d for writing", seg.id, w.cfg.LogID)
			return
		}
		w.mu.Lock()
		seg.sink, seg.revision = sink, rev
		w.mu.Unlock()
	}()
}

func (w *Writer) startUploadsLocked() {
	for _, b := range w.queue {
		if w.inflight >= w.parallel() {
			return
		}
		if b.started {
			continue
		}
		// A segment's blocks wait until every block of the segments before
		// it is acknowledged. Otherwise a block of segment S+1 could land
		// while a block of S is lost, and recovery, which fences gaps within
		// a segment, would keep an entry that follows a lost one.
		if b.seg != w.queue[0].seg {
			return
		}
		b.started = true
		w.inflight++
		w.wg.Add(1)
		go w.upload(b)
	}
}

func (w *Writer) upload(b *block) {
	defer w.wg.Done()
	err := w.writeBlock(b)
	w.mu.Lock()
	b.done, b.err = true, err
	w.inflight--
	w.resolveLocked()
	if w.failed == nil {
		w.startUploadsLocked()
		w.maybeCutLocked()
	}
	w.unlock()
}

// unlock releases w.mu, then reports to the metrics what settled while it
// was held. Use it wherever the lock was held across resolveLocked or
// failLocked.
func (w *Writer) unlock() {
	settled, fenced := w.settled, w.fenced
	w.settled, w.fenced = nil, false
	w.mu.Unlock()
	if fenced {
		w.metrics.Fenced()
	}
	if len(settled) == 0 {
		return
	}
	now := time.Now()
	for _, e := range settled {
		// The future is done: its err is final.
		w.metrics.AppendDone(len(e.payload), now.Sub(e.start), e.fut.err)
	}
}

// settledLocked notes resolved entries for unlock to report.
func (w *Writer) settledLocked(entries []pendingEntry) {
	if w.report {
		w.settled = append(w.settled, entries...)
	}
}

func (w *Writer) writeBlock(b *block) error {
	select {
	case <-b.seg.ready:
	case <-w.ctx.Done():
		return errors.Wrap(walerr.ErrClosed, "writer aborted")
	}
	if b.seg.readyErr != nil {
		return b.seg.readyErr
	}
	payloads := make([][]byte, len(b.entries))
	for i, e := range b.entries {
		payloads[i] = e.payload
	}
	buf := getBlockBuf()
	data, err := EncodeBlock((*buf)[:0], BlockHeader{
		LogID: w.cfg.LogID, SegmentID: b.seg.id, FirstEntry: b.first,
		Count: uint32(len(b.entries)), Epoch: w.cfg.Epoch, BlockNo: b.no,
	}, payloads, w.cfg.Compression)
	if err != nil {
		return errors.Wrapf(err, "encode block %d of segment %d", b.no, b.seg.id)
	}
	b.size = int64(len(data))
	attempts := 0
	err = w.retry(w.ctx, func(ctx context.Context) error {
		// Once the writer failed, issue no more writes: the block's
		// entries were already failed, definitely if it was never written.
		w.mu.Lock()
		failed := w.failed
		if failed == nil {
			b.attempted.Store(true)
		}
		w.mu.Unlock()
		if failed != nil {
			return errors.Wrap(failed, "writer failed")
		}
		attempts++
		w.metrics.BlockWriteStarted(attempts > 1)
		start := time.Now()
		err := b.seg.sink.WriteBlock(ctx, b.no, data)
		w.metrics.BlockWriteDone(len(data), time.Since(start), err)
		return err
	}, "write block %d of segment %d of log %d", b.no, b.seg.id, w.cfg.LogID)
	if err == nil {
		// Only after a success is nothing reading the buffer any more: an
		// HTTP transport may still send a failed request's body after the
		// call returned, so a failed block's buffer is left to the GC.
		*buf = data
		putBlockBuf(buf)
	}
	return err
}

// blockBufs recycles encoded-block buffers: allocating (and zeroing) a fresh
// multi-MiB buffer per block costs more CPU than encoding it.
var blockBufs sync.Pool

func getBlockBuf() *[]byte {
	if p, ok := blockBufs.Get().(*[]byte); ok {
		return p
	}
	return new([]byte)
}

func putBlockBuf(p *[]byte) { blockBufs.Put(p) }

// retry runs op with ctx until it succeeds, fails for good (fenced), ctx
// ends, or the retry timeout passes; then the outcome is unknown. An
// attempt ends with ctx: give a ctx with a deadline where an attempt may
// otherwise hang.
func (w *Writer) retry(ctx context.Context, op func(context.Context) error, format string, args ...any) error {
	deadline := time.Now().Add(w.cfg.RetryTimeout)
	backoff := w.cfg.RetryInitialBackoff
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		// Fenced is final; an error already marked unknown-outcome comes
		// from a sink that cannot be retried (a failed fsync).
		if err == nil || errors.Is(err, walerr.ErrFenced) || errors.Is(err, walerr.ErrUnknownOutcome) {
			return err
		}
		w.mu.Lock()
		failed := w.failed != nil
		w.mu.Unlock()
		if failed {
			return err
		}
		if ctx.Err() != nil || time.Now().Add(backoff).After(deadline) {
			return walerr.Mark(errors.Wrapf(err, format+": gave up after %d attempts",
				append(args, attempt)...), walerr.ErrUnknownOutcome)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(2*backoff, w.cfg.RetryMaxBackoff)
	}
}

// resolveLocked acknowledges the done blocks at the head of the queue, in
// order, and fails everything after a failed block.
func (w *Writer) resolveLocked() {
	for len(w.queue) > 0 {
		b := w.queue[0]
		if w.failed == nil && b.done && b.err != nil {
			var fenced *block
			if errors.Is(b.err, walerr.ErrFenced) && !errors.Is(b.err, walerr.ErrUnknownOutcome) {
				fenced = b
			}
			w.failLocked(b.err, fenced)
			return
		}
		if w.failed != nil || !b.done {
			return
		}
		w.queue = w.queue[1:]
		seg := b.seg
		for _, e := range b.entries {
			close(e.fut.done)
		}
		w.settledLocked(b.entries)
		w.budget.Release(b.weight)
		seg.ackedBlocks++
		seg.ackedBytes += b.size
		seg.lastAcked = b.first + int64(len(b.entries)) - 1
		if w.obs != nil {
			w.obs.Durable(seg.id, seg.lastAcked)
		}
		if seg.cutDone && seg.ackedBlocks == seg.nextBlock {
			w.sealInBackground(seg)
		}
	}
	close(w.idle)
	w.idle = make(chan struct{})
}

// failLocked fails the writer with cause: every unresolved entry fails.
// fenced is the block whose own slot a newer writer fenced, when that is
// the cause. Entries of a block whose write was issued get an error marked
// walerr.ErrUnknownOutcome, because the block may be in storage where a
// recovery keeps it, unless it lies above fenced in fenced's segment: a
// fence ends its segment, so those blocks can never become visible.
func (w *Writer) failLocked(cause error, fenced *block) {
	w.failed = cause
	w.fenced = errors.Is(cause, walerr.ErrFenced)
	for _, b := range w.queue {
		err := cause
		if b != fenced && b.err != cause {
			err = errors.Wrapf(cause, "an earlier block of the log failed")
			aboveFence := fenced != nil && b.seg == fenced.seg && b.no > fenced.no
			if b.attempted.Load() && !aboveFence {
				err = walerr.Mark(err, walerr.ErrUnknownOutcome)
			}
		}
		for _, e := range b.entries {
			e.fut.err = err
			close(e.fut.done)
		}
		w.settledLocked(b.entries)
		w.budget.Release(b.weight)
	}
	w.queue = nil
	for _, e := range w.batch {
		e.fut.err = errors.Wrap(cause, "an earlier block of the log failed")
		close(e.fut.done)
		w.budget.Release(w.weight(len(e.payload)))
	}
	w.settledLocked(w.batch)
	w.batch, w.batchBytes = nil, 0
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	close(w.idle)
	w.idle = make(chan struct{})
}

// sealInBackground writes the seal of a rolled segment whose blocks are all
// acknowledged. A failure fails the writer: the segment stays open in
// metadata and the next writer's recovery seals it.
func (w *Writer) sealInBackground(seg *openSegment) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		if err := w.seal(w.ctx, seg); err != nil {
			w.mu.Lock()
			if w.failed == nil {
				w.failLocked(err, nil)
			}
			w.unlock()
		}
	}()
}

// seal writes the segment's seal record and marks it sealed in metadata.
// It gives up when ctx ends, and each of the two steps, with its retries
// and every attempt, within the retry timeout.
func (w *Writer) seal(ctx context.Context, seg *openSegment) error {
	info := SealInfo{LastEntry: seg.lastAcked, Blocks: seg.ackedBlocks, Bytes: seg.ackedBytes}
	rec, err := EncodeSealInfo(w.cfg.LogID, seg.id, w.cfg.Epoch, info)
	if err != nil {
		return err
	}
	step := func(op func(context.Context) error, format string, args ...any) error {
		sctx, cancel := context.WithTimeout(ctx, w.cfg.RetryTimeout)
		defer cancel()
		return w.retry(sctx, op, format, args...)
	}
	err = step(func(ctx context.Context) error {
		return seg.sink.WriteSeal(ctx, info, rec)
	}, "write seal of segment %d of log %d", seg.id, w.cfg.LogID)
	if err == nil {
		err = step(func(ctx context.Context) error {
			return w.meta.SealSegment(ctx, seg.id, seg.revision, info)
		}, "seal segment %d of log %d in metadata", seg.id, w.cfg.LogID)
	}
	_ = seg.sink.Close()
	if err != nil {
		return err
	}
	w.metrics.SegmentSealed(seg.id)
	if w.obs != nil {
		w.mu.Lock()
		w.obs.Sealed(seg.id, info)
		w.mu.Unlock()
	}
	return nil
}

// Close flushes what is pending, waits until it is durable (or ctx ends),
// and seals the current segment. It returns the writer's failure, if any.
// When ctx ends, Close stops waiting and sealing and returns; a segment
// left open is sealed by the next writer's recovery. After Close, appends
// fail with walerr.ErrClosed. Close is idempotent.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		w.wg.Wait()
		return nil
	}
	w.closing = true
	if len(w.batch) > 0 {
		w.cutLocked()
	}
	seg := w.cur
	for len(w.queue) > 0 && w.failed == nil {
		idle := w.idle
		w.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			w.abort()
			return walerr.Mark(errors.Wrap(ctx.Err(), "close writer: pending appends"), walerr.ErrUnknownOutcome)
		}
		w.mu.Lock()
	}
	failed := w.failed
	sealNow := failed == nil && seg.nextBlock > 0 && seg.ackedBlocks == seg.nextBlock
	w.mu.Unlock()
	// A segment whose last block was acknowledged before Close was sealed by
	// resolveLocked only if it had rolled; the current one is sealed here.
	var err error
	if sealNow {
		// The seal ends with ctx, or with the writer.
		sctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(w.ctx, cancel)
		err = w.seal(sctx, seg)
		stop()
		cancel()
		if errors.Is(err, walerr.ErrFenced) {
			w.metrics.Fenced() // the writer is not failed: nothing else reports it
		}
	}
	if failed != nil {
		// Uploads of a failed writer may still be retrying: stop them.
		w.cancel()
		w.wg.Wait()
		return failed
	}
	// Only background seals and segment creation remain: let them finish,
	// or stop them when ctx ends.
	stop := context.AfterFunc(ctx, w.cancel)
	w.wg.Wait()
	stop()
	w.cancel()
	if err == nil {
		// A background seal that failed (or was stopped) failed the writer.
		w.mu.Lock()
		err = w.failed
		w.mu.Unlock()
	}
	return err
}

// abort stops every upload and fails what is pending.
func (w *Writer) abort() {
	w.cancel()
	w.wg.Wait()
	w.mu.Lock()
	if w.failed == nil {
		w.failLocked(walerr.Mark(errors.Wrap(walerr.ErrClosed, "writer aborted"), walerr.ErrUnknownOutcome), nil)
	}
	w.unlock()
}
