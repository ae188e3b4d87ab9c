package segment

import (
	"context"
	"sync"
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
	// Owner is the writer's ownership token, passed to the backend in
	// every Ref (see Ref.Owner).
	Owner string
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
	// ClientBudget, when not nil, bounds what every writer sharing it
	// holds together, on top of MemoryBudget (writer.clientMemoryBudgetBytes).
	ClientBudget *Budget
	Compression  Compression

	RollMaxBytes  int64
	RollMaxAge    time.Duration
	RollMaxBlocks int64

	RetryInitialBackoff time.Duration
	RetryMaxBackoff     time.Duration
	// RetryTimeout bounds the retries of one block; past it the block's
	// entries fail with walerr.ErrUnknownOutcome. It bounds a segment's
	// creation in metadata, and each of its seal's two steps, in the same
	// way, and every attempt of those.
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

// pendingEntry is the driver's entry in the core: what an append gave and
// the future that tells its outcome.
type pendingEntry struct {
	payload []byte
	fut     *Future
	start   time.Time // when AppendAsync was called; set when metrics are reported
}

// segIO is what the driver holds for a segment it created.
type segIO struct {
	placed    bool // placement was chosen: retries of the creation reuse it
	placement string
	sink      Sink
	revision  int64
}

// Writer appends entries to a log's segments: it batches entries into
// blocks, uploads several blocks at once, acknowledges entries strictly in
// log order, rolls segments and seals them. It is safe for concurrent use.
//
// After any failure the writer is failed for good: every pending and later
// append fails, and the caller opens a new writer (whose recovery seals what
// this one left).
//
// The decisions are writeCore's; Writer is its driver. It feeds the core
// events under its lock (an append, an operation's result, a timer tick,
// Close), then carries out the core's output under the same lock: it
// resolves futures and tells the observer in log order, and starts each
// operation (create a segment, write a block, write a seal, seal in
// metadata) in a goroutine of its own, which reports the result back.
type Writer struct {
	cfg     WriterConfig
	backend Backend
	placer  Placer // the backend, when it places segments
	meta    Meta
	obs     Observer
	metrics Metrics // never nil
	report  bool    // metrics were configured: measure for them
	budget  *semaphore.Weighted
	ctx     context.Context // every operation's; cancelled when Close gives up or ends
	cancel  context.CancelFunc
	wg      sync.WaitGroup // the operations' goroutines

	mu   sync.Mutex
	core *writeCore[pendingEntry]
	segs map[int64]*segIO
	// encoded holds the encoded bytes of the blocks being written, from
	// their first attempt until they are written or settled, for retries.
	encoded map[*coreBlock[pendingEntry]]*[]byte
	timer   *time.Timer
	timerAt time.Time     // when timer fires
	timerNo uint64        // counts timers, so that a stale one is told apart
	closed  bool          // Close was called
	changed chan struct{} // once closed: closed and replaced after every event
	// What unlock reports once the lock is released: settled entries,
	// sealed segments, the writer's fencing, and sinks to close.
	settled []pendingEntry
	sealed  []int64
	fenced  bool
	release []Sink
}

// NewWriter returns a writer that starts segment cfg.FirstSegment.
func NewWriter(cfg WriterConfig, backend Backend, meta Meta, obs Observer) *Writer {
	ctx, cancel := context.WithCancel(context.Background())
	w := &Writer{
		cfg: cfg, backend: backend, meta: meta, obs: obs,
		metrics: cfg.Metrics, report: cfg.Metrics != nil,
		budget: semaphore.NewWeighted(cfg.MemoryBudget),
		ctx:    ctx, cancel: cancel,
		core:    newWriteCore[pendingEntry](coreConfigOf(cfg, min(backend.Parallel(), cfg.MaxInflight)), time.Now()),
		segs:    map[int64]*segIO{},
		encoded: map[*coreBlock[pendingEntry]]*[]byte{},
	}
	w.placer, _ = backend.(Placer)
	if w.metrics == nil {
		w.metrics = noMetrics{}
	}
	return w
}

// entryOverhead is what the budget charges per entry beyond its payload.
const entryOverhead = 32

func (w *Writer) weight(n int) int64 {
	wt := min(int64(n)+entryOverhead, w.cfg.MemoryBudget)
	if b := w.cfg.ClientBudget; b != nil {
		wt = min(wt, b.size)
	}
	return wt
}

// acquireBudget takes wt bytes of the writer's budget and of the client's.
func (w *Writer) acquireBudget(ctx context.Context, wt int64) error {
	if err := w.budget.Acquire(ctx, wt); err != nil {
		return errors.Wrapf(err, "append: waiting for the writer's memory budget (writer.memoryBudgetBytes, %d bytes)", w.cfg.MemoryBudget)
	}
	if b := w.cfg.ClientBudget; b != nil {
		if err := b.sem.Acquire(ctx, wt); err != nil {
			w.budget.Release(wt)
			return errors.Wrapf(err, "append: waiting for the client's memory budget, which its writers share (writer.clientMemoryBudgetBytes, %d bytes)", b.size)
		}
	}
	return nil
}

// releaseBudget gives back what acquireBudget took.
func (w *Writer) releaseBudget(wt int64) {
	if b := w.cfg.ClientBudget; b != nil {
		b.sem.Release(wt)
	}
	w.budget.Release(wt)
}

// Budget is a memory budget shared by writers: the bytes of their entries
// appended and not yet acknowledged.
type Budget struct {
	sem  *semaphore.Weighted
	size int64
}

// NewBudget returns a budget of size bytes.
func NewBudget(size int64) *Budget { return &Budget{sem: semaphore.NewWeighted(size), size: size} }

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
	if err := w.acquireBudget(ctx, wt); err != nil {
		return nil, err
	}
	fut := &Future{done: make(chan struct{})}
	w.mu.Lock()
	seg, entry, err := w.core.append(time.Now(), pendingEntry{payload: payload, fut: fut, start: start}, int64(len(payload)))
	if err != nil {
		w.mu.Unlock()
		w.releaseBudget(wt)
		return nil, err
	}
	fut.seg, fut.entry = seg, entry
	w.apply()
	w.unlock()
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

// apply carries out the core's output. w.mu is held.
func (w *Writer) apply() {
	rd := w.core.ready()
	for i := range rd.settled {
		s := &rd.settled[i]
		var weight int64
		for _, e := range s.entries {
			if s.err != nil {
				e.fut.err = s.err
			}
			close(e.fut.done)
			weight += w.weight(len(e.payload))
		}
		w.releaseBudget(weight)
		if s.block != nil {
			delete(w.encoded, s.block)
		}
		if s.err == nil && w.obs != nil {
			w.obs.Durable(s.segID, s.last())
		}
		if w.report {
			w.settled = append(w.settled, s.entries...)
		}
	}
	for _, s := range rd.sealed {
		w.sealed = append(w.sealed, s.segID)
		if w.obs != nil {
			w.obs.Sealed(s.segID, s.info)
		}
	}
	for _, id := range rd.release {
		if sio := w.segs[id]; sio != nil {
			delete(w.segs, id)
			if sio.sink != nil {
				w.release = append(w.release, sio.sink)
			}
		}
	}
	w.fenced = w.fenced || rd.fenced
	for _, op := range rd.ops {
		w.wg.Add(1)
		go w.run(op)
	}
	w.core.advance()
	w.armTimer()
	if w.closed {
		close(w.changed)
		w.changed = make(chan struct{})
	}
}

// unlock releases w.mu, then reports to the metrics what settled while it
// was held, and closes the sinks the core released.
func (w *Writer) unlock() {
	settled, sealed, fenced, release := w.settled, w.sealed, w.fenced, w.release
	w.settled, w.sealed, w.fenced, w.release = nil, nil, false, nil
	w.mu.Unlock()
	for _, s := range release {
		_ = s.Close()
	}
	if fenced {
		w.metrics.Fenced()
	}
	for _, id := range sealed {
		w.metrics.SegmentSealed(id)
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

// armTimer makes the timer fire when the core wants a tick. A timer that
// fires early is harmless: the tick finds nothing due. w.mu is held.
func (w *Writer) armTimer() {
	wake := w.core.wake()
	switch {
	case wake.IsZero():
		if w.timer != nil {
			w.timer.Stop()
			w.timer, w.timerAt = nil, time.Time{}
		}
	case w.timer == nil || wake.Before(w.timerAt):
		if w.timer != nil {
			w.timer.Stop()
		}
		w.timerNo++
		no := w.timerNo
		w.timer, w.timerAt = time.AfterFunc(time.Until(wake), func() { w.onTimer(no) }), wake
	}
}

func (w *Writer) onTimer(no uint64) {
	w.mu.Lock()
	if no == w.timerNo {
		w.timer, w.timerAt = nil, time.Time{}
	}
	w.core.tick(time.Now())
	w.apply()
	w.unlock()
}

// run carries out one attempt at an operation and reports its result.
func (w *Writer) run(op coreOp[pendingEntry]) {
	defer w.wg.Done()
	var r opResult
	var buf *[]byte // a written block's buffer, to recycle
	switch op.kind {
	case opWrite:
		var ok bool
		if r, buf, ok = w.writeBlock(op); !ok {
			return
		}
	case opCreate:
		r = w.createSegment(op)
	case opSealWrite:
		r = w.writeSeal(op)
	case opSealMeta:
		r = w.sealMeta(op)
	}
	w.mu.Lock()
	if buf != nil {
		delete(w.encoded, op.block)
	}
	w.core.done(time.Now(), op, r)
	w.apply()
	w.unlock()
	if buf != nil {
		putBlockBuf(buf)
	}
}

// attemptContext is the context of one attempt at op.
func (w *Writer) attemptContext(op coreOp[pendingEntry]) (context.Context, context.CancelFunc) {
	if op.deadline.IsZero() {
		return w.ctx, func() {}
	}
	return context.WithDeadline(w.ctx, op.deadline)
}

// createSegment places the segment (once), records it in metadata, and
// opens its sink.
func (w *Writer) createSegment(op coreOp[pendingEntry]) opResult {
	ctx, cancel := w.attemptContext(op)
	defer cancel()
	ref := Ref{LogID: w.cfg.LogID, SegmentID: op.segID, Owner: w.cfg.Owner}
	w.mu.Lock()
	sio := w.segs[op.segID]
	if sio == nil {
		sio = &segIO{}
		w.segs[op.segID] = sio
	}
	placed, placement := sio.placed, sio.placement
	w.mu.Unlock()
	if !placed {
		if w.placer != nil {
			p, err := w.placer.Place(ctx, ref)
			if err != nil {
				// Retried like the creation: placing has no effect
				// until the segment is created, and a LogStore that is
				// restarting is registered again within seconds.
				return opResult{err: errors.Wrapf(err, "place segment %d of log %d", op.segID, w.cfg.LogID),
					ctxDone: ctx.Err() != nil}
			}
			placement = p
		}
		w.mu.Lock()
		sio.placed, sio.placement = true, placement
		w.mu.Unlock()
	}
	ref.Placement = placement
	rev, err := w.meta.CreateSegment(ctx, op.segID, placement)
	if err != nil {
		return opResult{err: err, ctxDone: ctx.Err() != nil}
	}
	sink, err := w.backend.CreateSink(ctx, ref, w.cfg.Epoch)
	if err != nil {
		return opResult{err: errors.Wrapf(err, "open segment %d of log %d for writing", op.segID, w.cfg.LogID), final: true}
	}
	w.mu.Lock()
	sio.sink, sio.revision = sink, rev
	w.mu.Unlock()
	return opResult{}
}

// writeBlock makes one attempt to write a block: the first encodes it, a
// retry writes the same bytes. ok is false when the core refused the
// attempt (the writer failed): nothing is reported then. On success, buf
// is the block's buffer, to recycle once the core no longer holds it.
func (w *Writer) writeBlock(op coreOp[pendingEntry]) (r opResult, buf *[]byte, ok bool) {
	b := op.block
	var data []byte
	if op.attempt == 1 {
		payloads := make([][]byte, len(b.entries))
		for i, e := range b.entries {
			payloads[i] = e.payload
		}
		buf = getBlockBuf()
		var err error
		data, err = EncodeBlock((*buf)[:0], BlockHeader{
			LogID: w.cfg.LogID, SegmentID: b.segID, FirstEntry: b.first,
			Count: uint32(len(b.entries)), Epoch: w.cfg.Epoch, BlockNo: b.no,
		}, payloads, w.cfg.Compression)
		if err != nil {
			return opResult{err: errors.Wrapf(err, "encode block %d of segment %d", b.no, b.segID), final: true}, nil, true
		}
		*buf = data
	}
	w.mu.Lock()
	// Once the writer failed, issue no more writes: the block's entries
	// were failed already, definitely if it was never written.
	ok = w.core.begin(op)
	var sink Sink
	if ok {
		if op.attempt == 1 {
			w.encoded[b] = buf
		} else {
			buf = w.encoded[b]
			data = *buf
		}
		sink = w.segs[b.segID].sink
	}
	w.mu.Unlock()
	if !ok {
		return opResult{}, nil, false
	}
	w.metrics.BlockWriteStarted(op.attempt > 1)
	start := time.Now()
	err := sink.WriteBlock(w.ctx, b.no, data)
	w.metrics.BlockWriteDone(len(data), time.Since(start), err)
	if err != nil {
		// An HTTP transport may still send a failed request's body after
		// the call returned: the buffer is only recycled after a success.
		buf = nil
	}
	d, ok := sink.(Degrader)
	return opResult{err: err, size: int64(len(data)), ctxDone: w.ctx.Err() != nil, degraded: ok && d.Degraded()}, buf, true
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

// writeSeal writes the segment's seal record.
func (w *Writer) writeSeal(op coreOp[pendingEntry]) opResult {
	rec, err := EncodeSealInfo(w.cfg.LogID, op.segID, w.cfg.Epoch, op.info)
	if err != nil {
		return opResult{err: err, final: true}
	}
	ctx, cancel := w.attemptContext(op)
	defer cancel()
	w.mu.Lock()
	sink := w.segs[op.segID].sink
	w.mu.Unlock()
	if p, ok := sink.(PatientSealer); ok && p.SealsPatiently() {
		// It gives up by itself when it makes no progress; Close's
		// context ends it (w.cancel).
		ctx = w.ctx
	}
	err = sink.WriteSeal(ctx, op.info, rec)
	return opResult{err: err, ctxDone: ctx.Err() != nil}
}

// sealMeta marks the segment sealed in metadata.
func (w *Writer) sealMeta(op coreOp[pendingEntry]) opResult {
	ctx, cancel := w.attemptContext(op)
	defer cancel()
	w.mu.Lock()
	rev := w.segs[op.segID].revision
	w.mu.Unlock()
	err := w.meta.SealSegment(ctx, op.segID, rev, op.info)
	return opResult{err: err, ctxDone: ctx.Err() != nil}
}

// Close flushes what is pending, waits until it is durable (or ctx ends),
// and seals the current segment. It returns the writer's failure, if any.
// When ctx ends, Close stops waiting and sealing and returns; a segment
// left open is sealed by the next writer's recovery. After Close, appends
// fail with walerr.ErrClosed. Close is idempotent.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		w.wg.Wait()
		return nil
	}
	w.closed = true
	w.changed = make(chan struct{})
	w.core.close(time.Now())
	w.apply()
	// Wait until every pending entry is settled.
	for !w.core.drainedNow() {
		changed := w.changed
		w.unlock()
		select {
		case <-changed:
			w.mu.Lock()
		case <-ctx.Done():
			w.mu.Lock()
			w.core.abort(time.Now(), walerr.Mark(errors.Wrap(walerr.ErrClosed, "writer aborted"), walerr.ErrUnknownOutcome))
			w.apply()
			w.unlock()
			w.shutdown()
			return walerr.Mark(errors.Wrap(ctx.Err(), "close writer: pending appends"), walerr.ErrUnknownOutcome)
		}
	}
	// The core seals the current segment, unless the writer failed; wait
	// for that and for the background seals, or stop them when ctx ends.
	done := ctx.Done()
	for !w.core.finished() {
		changed := w.changed
		w.unlock()
		select {
		case <-changed:
			w.mu.Lock()
		case <-done:
			done = nil
			w.cancel()
			w.mu.Lock()
			w.core.stop(time.Now(), ctx.Err())
			w.apply()
		}
	}
	err := w.core.closeResult()
	w.unlock()
	w.shutdown()
	return err
}

// shutdown stops whatever still runs (the uploads of a failed writer may
// still be retrying), waits for it, and closes the sinks left open.
func (w *Writer) shutdown() {
	w.mu.Lock()
	w.core.stop(time.Now(), errors.Wrap(walerr.ErrClosed, "writer closed"))
	w.apply()
	w.unlock()
	w.cancel()
	w.wg.Wait()
	w.mu.Lock()
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	for id, sio := range w.segs {
		delete(w.segs, id)
		if sio.sink != nil {
			w.release = append(w.release, sio.sink)
		}
	}
	w.unlock()
}
