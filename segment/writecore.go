package segment

import (
	"fmt"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/walerr"
)

// writeCore holds every decision of a segment writer and does nothing
// else: no goroutines, no I/O, no clock, no locks. Writer is its driver.
//
// The driver feeds it events: append, the outcome of an operation it was
// asked to run (done), a tick of the clock (tick, when wake says), close,
// stop and abort. Every event carries the current time; the core reads no
// other clock. After each event the driver takes the core's output
// (ready), carries it out in this order: settle the entries whose outcome
// is now known (in log order), report the sealed segments, close released
// sinks, start the operations; then it calls advance, as with etcd-io/raft's
// Ready. The core is not safe for concurrent use: a Writer holds its lock
// from an event until the output is carried out.
//
// The core decides when to cut a block; which block writes run (at most
// Parallel at once, and a segment's blocks only after every block of the
// segments before it is acknowledged); when to create a segment and when
// to roll it; what to retry, after which backoff, and when to give up;
// what to acknowledge, strictly in log order; which failures are definite
// and which have an unknown outcome; when to seal a segment; and when
// Close is done. An operation is one attempt at one piece of I/O: creating
// a segment (place it, record it in metadata, open its sink), writing a
// block, writing a seal record, sealing in metadata. The same core serves
// every backend: with QuorumBuffer a block write is a quorum append.
//
// E is the driver's entry (payload and future): the core keeps entries in
// order and hands them back in its output, and never looks inside.
type writeCore[E any] struct {
	cfg coreConfig

	cur        *coreSeg[E]
	batch      []E
	batchBytes int64
	batchStart time.Time
	// flushAt is when the batch is due to be cut if an upload slot is
	// free; zero when no flush is scheduled.
	flushAt time.Time

	queue     []*coreBlock[E] // cut, not yet settled, in log order
	inflight  int             // started blocks not yet done
	unstarted int             // queued blocks not started: a suffix of queue

	// waiting are the operations waiting to be retried by a tick.
	waiting []*attempts[E]
	// creating and sealing count the segment creations and seals that
	// have not ended.
	creating int
	sealing  int

	failed   error // set once: the writer failed for good
	fenced   bool  // the driver was told the writer is fenced
	closing  bool
	drained  bool  // Close's wait for pending appends is over
	drainErr error // the writer's failure when that wait ended
	closeErr error // the failure of Close's own seal
	stopped  error // set by stop: nothing is retried any more

	rd coreReady[E]
}

// coreConfig is what the core decides with. Durations are measured
// between the times the driver passes in.
type coreConfig struct {
	LogID         int64
	FirstSegment  int64
	MaxBlockBytes int64
	FlushDelay    time.Duration
	// Parallel is how many blocks may be written at once (at least 1).
	Parallel      int
	RollMaxBytes  int64
	RollMaxAge    time.Duration // 0: no age limit
	RollMaxBlocks int64

	RetryInitialBackoff time.Duration
	RetryMaxBackoff     time.Duration
	// RetryTimeout bounds the retries of each operation, and each attempt
	// of a segment's creation and of its seal's two steps.
	RetryTimeout time.Duration
}

func coreConfigOf(cfg WriterConfig, parallel int) coreConfig {
	return coreConfig{
		LogID: cfg.LogID, FirstSegment: cfg.FirstSegment,
		MaxBlockBytes: cfg.MaxBlockBytes, FlushDelay: cfg.FlushDelay, Parallel: max(parallel, 1),
		RollMaxBytes: cfg.RollMaxBytes, RollMaxAge: cfg.RollMaxAge, RollMaxBlocks: cfg.RollMaxBlocks,
		RetryInitialBackoff: cfg.RetryInitialBackoff, RetryMaxBackoff: cfg.RetryMaxBackoff,
		RetryTimeout: cfg.RetryTimeout,
	}
}

// coreReady is what the driver does after an event. Its slices belong to
// the core and stay valid until the next event.
type coreReady[E any] struct {
	// settled are runs of entries whose outcome is now known, in log
	// order: acknowledged blocks, then, after a failure, every entry that
	// was pending.
	settled []settled[E]
	// sealed are the segments now sealed in storage and in metadata.
	sealed []sealedSeg
	// release names the segments whose sink the driver closes: their seal
	// ended, well or not.
	release []int64
	// ops are the attempts to start. The driver reports each back with
	// done, except a block write that begin refuses.
	ops []coreOp[E]
	// fenced is set when the writer has just learnt that a newer writer
	// owns the log; it is set at most once per writer.
	fenced bool
}

// settled is the outcome of consecutive entries of one segment.
type settled[E any] struct {
	segID int64
	first int64 // id of the first entry
	// block is the block holding the entries, nil for entries that failed
	// before they were cut.
	block   *coreBlock[E]
	entries []E
	err     error // nil: durable
}

// last is the id of the run's last entry.
func (s settled[E]) last() int64 { return s.first + int64(len(s.entries)) - 1 }

// sealedSeg is a sealed segment and what its seal says.
type sealedSeg struct {
	segID int64
	info  SealInfo
}

// opKind names an operation the core asks the driver for.
type opKind uint8

const (
	// opCreate creates a segment: the driver places it (when its backend
	// places segments; once: a retry reuses the placement), records it in
	// metadata, then opens its sink. Only the metadata step is retried:
	// the driver reports a failure of the other two as final.
	opCreate opKind = iota + 1
	// opWrite writes one block. The driver encodes it at its first attempt
	// (an encoding failure is final); a retry writes the same bytes.
	opWrite
	// opSealWrite writes the segment's seal record (info) to its sink.
	opSealWrite
	// opSealMeta marks the segment sealed (info) in metadata.
	opSealMeta
)

func (k opKind) String() string {
	switch k {
	case opCreate:
		return "create"
	case opWrite:
		return "write"
	case opSealWrite:
		return "seal-write"
	case opSealMeta:
		return "seal-meta"
	}
	return "?"
}

// coreOp is one attempt at one operation. The driver may read its fields
// from any goroutine: the core never changes an op it handed out, nor the
// block fields the driver reads (segID, no, first, entries).
type coreOp[E any] struct {
	kind    opKind
	segID   int64
	attempt int // 1 for the first
	// deadline, when not zero, bounds the attempt: the driver gives it a
	// context that ends then. Block writes have none: their retries end
	// after RetryTimeout, but an attempt runs until the driver stops it.
	deadline time.Time
	block    *coreBlock[E] // opWrite
	info     SealInfo      // opSealWrite, opSealMeta
	seg      *coreSeg[E]   // identifies the segment; the driver uses segID
}

// opResult is the outcome of one attempt, as the driver reports it.
type opResult struct {
	err error
	// size is a written block's encoded size.
	size int64
	// final says err ends the operation whatever it is: the driver failed
	// outside the retried I/O (encoding, placement, opening a sink) and
	// wrapped err to say so. Such a failure is definite unless err is
	// marked walerr.ErrUnknownOutcome.
	final bool
	// ctxDone says the attempt's context ended: give up, do not retry.
	ctxDone bool
	// degraded says the block's sink asked for a new segment (Degrader):
	// no more blocks are cut into its segment.
	degraded bool
}

// coreSeg is a segment the writer writes, or finished writing and has yet
// to seal.
type coreSeg[E any] struct {
	id        int64
	nextEntry int64
	nextBlock int64
	bytes     int64 // payload bytes cut into blocks
	createdAt time.Time
	cutDone   bool // no more blocks will be cut
	degraded  bool // its sink asked for a roll: the next cut ends it

	state     segState
	createErr error // why creation failed

	ackedBlocks int64
	ackedBytes  int64
	lastAcked   int64

	create    attempts[E]
	seal      attempts[E]
	closeSeal bool // the seal is Close's: its failure is Close's, not the writer's
}

type segState uint8

const (
	segNew      segState = iota // no block cut yet
	segCreating                 // creation under way
	segOpen                     // created: its blocks may be written
	segFailed                   // creation failed (createErr)
)

// coreBlock is a cut batch on its way to storage.
type coreBlock[E any] struct {
	seg     *coreSeg[E]
	segID   int64
	no      int64
	first   int64
	entries []E
	bytes   int64 // payload bytes

	started bool // holds an upload slot
	// attempted is set once the driver issued a write of the block: from
	// then on the block may be in storage whatever the writer hears back.
	attempted bool
	done      bool
	err       error
	size      int64 // encoded size, once written
	tries     attempts[E]
}

// attempts is the retry state of one operation.
type attempts[E any] struct {
	op       coreOp[E] // the latest attempt
	out      bool      // op is with the driver
	deadline time.Time // retries end by then
	backoff  time.Duration
	retryAt  time.Time // when waiting to retry
	lastErr  error     // while waiting to retry
	// failure is the latest error of an attempt whose context had not
	// ended: when a later attempt only runs out of time, the operation
	// gave up because of it.
	failure error
}

func newWriteCore[E any](cfg coreConfig, now time.Time) *writeCore[E] {
	c := &writeCore[E]{cfg: cfg}
	c.cur = c.newSeg(cfg.FirstSegment, now)
	return c
}

func (c *writeCore[E]) newSeg(id int64, now time.Time) *coreSeg[E] {
	return &coreSeg[E]{id: id, createdAt: now, lastAcked: -1}
}

// ready returns what the driver must do after the events so far. Its
// slices belong to the core: the driver carries them out, then calls
// advance before the next event.
func (c *writeCore[E]) ready() coreReady[E] { return c.rd }

// advance forgets the output ready returned, so that the core holds no
// entries the driver settled.
func (c *writeCore[E]) advance() {
	rd := &c.rd
	clear(rd.settled)
	clear(rd.ops)
	*rd = coreReady[E]{settled: rd.settled[:0], sealed: rd.sealed[:0], release: rd.release[:0], ops: rd.ops[:0]}
}

// wake returns when the core wants a tick, zero for never.
func (c *writeCore[E]) wake() time.Time {
	t := c.flushAt
	for _, a := range c.waiting {
		if t.IsZero() || a.retryAt.Before(t) {
			t = a.retryAt
		}
	}
	return t
}

// usable returns why an append is refused, or nil.
func (c *writeCore[E]) usable() error {
	if c.failed != nil {
		// The entry was not accepted: a definite failure. Keep only the
		// fenced identity of the cause, which tells the caller to reopen.
		if errors.Is(c.failed, walerr.ErrFenced) {
			return errors.Wrapf(walerr.ErrFenced, "writer failed earlier (%s); open a new writer", c.failed.Error())
		}
		return errors.Newf("writer failed earlier (%s); open a new writer", c.failed.Error())
	}
	if c.closing {
		return errors.Wrap(walerr.ErrClosed, "writer")
	}
	return nil
}

// append adds entry e, of size payload bytes, to the batch and returns
// its id, or why the writer refuses it (then nothing changed).
func (c *writeCore[E]) append(now time.Time, e E, size int64) (segID, entry int64, err error) {
	if err := c.usable(); err != nil {
		return 0, 0, err
	}
	s := c.cur
	segID, entry = s.id, s.nextEntry
	s.nextEntry++
	if len(c.batch) == 0 {
		c.batchStart = now
	}
	c.batch = append(c.batch, e)
	c.batchBytes += size
	c.maybeCut(now)
	return segID, entry, nil
}

// maybeCut cuts the batch into a block when it is full, when nothing is
// in flight, or when it waited FlushDelay and an upload slot is free.
// Otherwise, if a slot is free, it schedules a flush for when the batch
// will have waited FlushDelay; when no slot is free, the next finished
// write decides again.
func (c *writeCore[E]) maybeCut(now time.Time) {
	if len(c.batch) == 0 {
		return
	}
	busy := c.inflight + c.unstarted
	switch {
	case c.batchBytes >= c.cfg.MaxBlockBytes:
	case busy == 0:
	case busy < c.cfg.Parallel && now.Sub(c.batchStart) >= c.cfg.FlushDelay:
	default:
		if c.flushAt.IsZero() && busy < c.cfg.Parallel {
			c.flushAt = c.batchStart.Add(c.cfg.FlushDelay)
		}
		return
	}
	c.cut(now)
}

func (c *writeCore[E]) cut(now time.Time) {
	c.flushAt = time.Time{}
	s := c.cur
	b := &coreBlock[E]{seg: s, segID: s.id, no: s.nextBlock, first: s.nextEntry - int64(len(c.batch)),
		entries: c.batch, bytes: c.batchBytes}
	s.nextBlock++
	s.bytes += c.batchBytes
	c.batch, c.batchBytes = nil, 0
	if b.no == 0 {
		c.startCreate(now, s)
	}
	c.queue = append(c.queue, b)
	c.unstarted++
	if c.shouldRoll(now, s) {
		s.cutDone = true
		c.cur = c.newSeg(s.id+1, now)
	}
	c.startUploads(now)
}

// maxPendingSeals is how many earlier segments may be sealing when the
// current one rolls. A seal can take long (QuorumBuffer's waits for uploads
// that may lag far behind the acknowledgements, as long as they progress):
// the current segment then grows past its roll limits instead, so that the
// open segments a reader waits behind, and a recovery must seal, stay few.
const maxPendingSeals = 2

func (c *writeCore[E]) shouldRoll(now time.Time, s *coreSeg[E]) bool {
	if s.degraded {
		return true
	}
	if c.sealing >= maxPendingSeals {
		return false
	}
	return s.bytes >= c.cfg.RollMaxBytes || s.nextBlock >= c.cfg.RollMaxBlocks ||
		(c.cfg.RollMaxAge > 0 && now.Sub(s.createdAt) >= c.cfg.RollMaxAge)
}

// startUploads gives free upload slots to queued blocks, in order. A
// segment's blocks wait until every block of the segments before it is
// acknowledged. Otherwise a block of segment S+1 could land while a block
// of S is lost, and recovery, which fences gaps within a segment, would
// keep an entry that follows a lost one.
func (c *writeCore[E]) startUploads(now time.Time) {
	failedSeg := false
	for _, b := range c.queue {
		if c.inflight >= c.cfg.Parallel {
			break
		}
		if b.started {
			continue
		}
		if b.seg != c.queue[0].seg {
			break
		}
		b.started = true
		c.inflight++
		c.unstarted--
		switch b.seg.state {
		case segOpen:
			c.startWrite(now, b)
		case segFailed:
			// Its segment could not be created: the block was never
			// written, a definite failure.
			b.done, b.err = true, b.seg.createErr
			c.inflight--
			failedSeg = true
		}
		// Otherwise its segment is being created: the write starts once
		// the segment exists.
	}
	if failedSeg {
		c.resolve(now)
	}
}

func (c *writeCore[E]) startWrite(now time.Time, b *coreBlock[E]) {
	b.tries = attempts[E]{
		op:       coreOp[E]{kind: opWrite, segID: b.segID, attempt: 1, block: b, seg: b.seg},
		deadline: now.Add(c.cfg.RetryTimeout), backoff: c.cfg.RetryInitialBackoff,
	}
	c.emit(&b.tries)
}

func (c *writeCore[E]) emit(a *attempts[E]) {
	a.out = true
	c.rd.ops = append(c.rd.ops, a.op)
}

// startCreate creates segment s. Creation may run while earlier segments
// still upload: only its blocks' writes wait for it.
func (c *writeCore[E]) startCreate(now time.Time, s *coreSeg[E]) {
	s.state = segCreating
	c.creating++
	deadline := now.Add(c.cfg.RetryTimeout)
	s.create = attempts[E]{
		op:       coreOp[E]{kind: opCreate, segID: s.id, attempt: 1, deadline: deadline, seg: s},
		deadline: deadline, backoff: c.cfg.RetryInitialBackoff,
	}
	c.emit(&s.create)
}

// startSeal seals segment s, whose blocks are all acknowledged: seal
// record first, then metadata. Each step, with its retries and every
// attempt, ends within RetryTimeout.
func (c *writeCore[E]) startSeal(now time.Time, s *coreSeg[E], closeSeal bool) {
	c.sealing++
	s.closeSeal = closeSeal
	info := SealInfo{LastEntry: s.lastAcked, Blocks: s.ackedBlocks, Bytes: s.ackedBytes}
	c.startSealStep(now, s, opSealWrite, info)
}

func (c *writeCore[E]) startSealStep(now time.Time, s *coreSeg[E], kind opKind, info SealInfo) {
	deadline := now.Add(c.cfg.RetryTimeout)
	s.seal = attempts[E]{
		op:       coreOp[E]{kind: kind, segID: s.id, attempt: 1, deadline: deadline, info: info, seg: s},
		deadline: deadline, backoff: c.cfg.RetryInitialBackoff,
	}
	c.emit(&s.seal)
}

// attemptsOf returns the retry state op belongs to, or nil when op is
// stale: nothing waits for its outcome any more.
func (c *writeCore[E]) attemptsOf(op coreOp[E]) *attempts[E] {
	var a *attempts[E]
	switch op.kind {
	case opWrite:
		a = &op.block.tries
	case opCreate:
		a = &op.seg.create
	default:
		a = &op.seg.seal
	}
	if !a.out || a.op.kind != op.kind || a.op.attempt != op.attempt {
		return nil
	}
	return a
}

// begin tells the core that the driver is about to issue a block write,
// and returns whether it should: false once the writer failed, so that a
// block whose write was never issued fails definitely. The driver reports
// a refused write no further.
func (c *writeCore[E]) begin(op coreOp[E]) bool {
	if c.failed != nil || c.attemptsOf(op) == nil {
		return false
	}
	if op.kind == opWrite {
		op.block.attempted = true
	}
	return true
}

// describe says what op does, for errors.
func (c *writeCore[E]) describe(op coreOp[E]) string {
	switch op.kind {
	case opWrite:
		return fmt.Sprintf("write block %d of segment %d of log %d", op.block.no, op.segID, c.cfg.LogID)
	case opCreate:
		return fmt.Sprintf("create segment %d of log %d", op.segID, c.cfg.LogID)
	case opSealWrite:
		return fmt.Sprintf("write seal of segment %d of log %d", op.segID, c.cfg.LogID)
	default:
		return fmt.Sprintf("seal segment %d of log %d in metadata", op.segID, c.cfg.LogID)
	}
}

// gaveUp is the error of an operation that was retried to no avail: its
// outcome is unknown.
func (c *writeCore[E]) gaveUp(op coreOp[E], err error) error {
	return walerr.Mark(c.gaveUpDefinite(op, err), walerr.ErrUnknownOutcome)
}

// gaveUpDefinite is gaveUp's error without the unknown-outcome mark.
func (c *writeCore[E]) gaveUpDefinite(op coreOp[E], err error) error {
	return errors.Wrapf(err, "%s: gave up after %d attempts", c.describe(op), op.attempt)
}

// outcome decides what an attempt's result means for its operation: done
// (with err, nil for success), or retried after a backoff.
func (c *writeCore[E]) outcome(now time.Time, a *attempts[E], r opResult) (done bool, err error) {
	a.out = false
	switch {
	case r.err == nil:
		return true, nil
	case r.final:
		return true, r.err
	case errors.Is(r.err, walerr.ErrFenced) || errors.Is(r.err, walerr.ErrUnknownOutcome):
		// Fenced is final. An error already marked unknown-outcome comes
		// from a sink that cannot be retried: after a failed fsync nothing
		// written since the last good one may be taken as safe.
		return true, r.err
	case c.failed != nil:
		return true, r.err
	case r.ctxDone && a.failure != nil:
		// The attempt ran out of time (or the driver stopped it) after
		// an earlier one failed: that failure is why the operation gave
		// up.
		return true, c.gaveUp(a.op, errors.Wrapf(a.failure, "the last attempt ended with %q; an earlier one", r.err.Error()))
	case r.ctxDone || c.stopped != nil || now.Add(a.backoff).After(a.deadline):
		return true, c.gaveUp(a.op, r.err)
	}
	a.failure = r.err
	a.retryAt = now.Add(a.backoff)
	a.lastErr = r.err
	a.backoff = min(2*a.backoff, c.cfg.RetryMaxBackoff)
	c.waiting = append(c.waiting, a)
	return false, nil
}

// done reports the result of attempt op.
func (c *writeCore[E]) done(now time.Time, op coreOp[E], r opResult) {
	if op.kind == opWrite && r.degraded {
		// Entries take their ids when appended: the batch, if any, still
		// goes into this segment (shouldRoll ends it at that cut);
		// without one, roll now.
		s := op.block.seg
		s.degraded = true
		if s == c.cur && !s.cutDone && len(c.batch) == 0 {
			s.cutDone = true
			c.cur = c.newSeg(s.id+1, now)
		}
	}
	a := c.attemptsOf(op)
	if a == nil {
		return // stale: the writer failed, and nothing waits for it
	}
	finished, err := c.outcome(now, a, r)
	if !finished {
		return
	}
	if op.kind == opCreate && err != nil && !r.final {
		if err == r.err {
			err = errors.Wrapf(err, "%s", c.describe(op))
		} else {
			// Gave up: the segment's record may or may not be in
			// metadata, but its blocks were never written, so their
			// entries fail definitely: without the unknown-outcome mark.
			err = c.gaveUpDefinite(op, r.err)
		}
	}
	switch op.kind {
	case opWrite:
		c.writeDone(now, op.block, err, r.size)
	case opCreate:
		c.createDone(now, op.seg, err)
	default:
		c.sealStepDone(now, op, err)
	}
	c.afterEvent(now)
}

func (c *writeCore[E]) writeDone(now time.Time, b *coreBlock[E], err error, size int64) {
	b.done, b.err = true, err
	if err == nil {
		b.size = size
	}
	c.inflight--
	c.resolve(now)
	if c.failed == nil {
		c.startUploads(now)
		c.maybeCut(now)
	}
}

func (c *writeCore[E]) createDone(now time.Time, s *coreSeg[E], err error) {
	c.creating--
	if err == nil {
		s.state = segOpen
		if c.failed != nil {
			return
		}
		for _, b := range c.queue {
			if b.seg == s && b.started {
				c.startWrite(now, b)
			}
		}
		return
	}
	s.state, s.createErr = segFailed, err
	if c.failed != nil {
		return
	}
	// Blocks holding slots fail now, as never written; the others when
	// they get a slot.
	failed := false
	for _, b := range c.queue {
		if b.seg == s && b.started && !b.done {
			b.done, b.err = true, err
			c.inflight--
			failed = true
		}
	}
	if failed {
		c.resolve(now)
	}
}

func (c *writeCore[E]) sealStepDone(now time.Time, op coreOp[E], err error) {
	s := op.seg
	if err == nil && op.kind == opSealWrite {
		c.startSealStep(now, s, opSealMeta, op.info)
		return
	}
	c.sealing--
	c.rd.release = append(c.rd.release, s.id)
	switch {
	case err == nil:
		c.rd.sealed = append(c.rd.sealed, sealedSeg{segID: s.id, info: op.info})
	case s.closeSeal:
		// Close reports it; the writer is closed, not failed.
		c.closeErr = err
		c.noteFenced(err)
	case c.failed == nil:
		// The segment stays open in metadata; the next writer's recovery
		// seals it.
		c.fail(now, err, nil)
	}
}

// resolve acknowledges the done blocks at the head of the queue, in order,
// and fails everything after a failed block.
func (c *writeCore[E]) resolve(now time.Time) {
	for len(c.queue) > 0 && c.failed == nil {
		b := c.queue[0]
		if !b.done {
			return
		}
		if b.err != nil {
			var fenced *coreBlock[E]
			if errors.Is(b.err, walerr.ErrFenced) && !errors.Is(b.err, walerr.ErrUnknownOutcome) {
				fenced = b
			}
			c.fail(now, b.err, fenced)
			return
		}
		c.queue[0] = nil
		c.queue = c.queue[1:]
		s := b.seg
		c.rd.settled = append(c.rd.settled, settled[E]{segID: s.id, first: b.first, block: b, entries: b.entries})
		s.ackedBlocks++
		s.ackedBytes += b.size
		s.lastAcked = b.first + int64(len(b.entries)) - 1
		if s.cutDone && s.ackedBlocks == s.nextBlock {
			c.startSeal(now, s, false)
		}
	}
}

// fail fails the writer with cause: every unsettled entry fails. fenced
// is the block whose own slot a newer writer fenced, when that is the
// cause. Entries of a block whose write was issued get an error marked
// walerr.ErrUnknownOutcome, because the block may be in storage where a
// recovery keeps it, unless it lies above fenced in fenced's segment: a
// fence ends its segment, so those blocks can never become visible.
func (c *writeCore[E]) fail(now time.Time, cause error, fenced *coreBlock[E]) {
	c.failed = cause
	c.noteFenced(cause)
	for _, b := range c.queue {
		err := cause
		if b != fenced && b.err != cause {
			err = errors.Wrapf(cause, "an earlier block of the log failed")
			aboveFence := fenced != nil && b.seg == fenced.seg && b.no > fenced.no
			if b.attempted && !aboveFence {
				err = walerr.Mark(err, walerr.ErrUnknownOutcome)
			}
		}
		c.rd.settled = append(c.rd.settled, settled[E]{segID: b.segID, first: b.first, block: b, entries: b.entries, err: err})
		b.tries.out = false
	}
	clear(c.queue)
	c.queue = nil
	if len(c.batch) > 0 {
		s := c.cur
		c.rd.settled = append(c.rd.settled, settled[E]{segID: s.id, first: s.nextEntry - int64(len(c.batch)),
			entries: c.batch, err: errors.Wrap(cause, "an earlier block of the log failed")})
	}
	c.batch, c.batchBytes = nil, 0
	c.flushAt = time.Time{}
	c.inflight, c.unstarted = 0, 0
	// A failed writer retries nothing: operations waiting to be retried
	// end with their last error.
	c.endWaiting(now, func(a *attempts[E]) error { return a.lastErr })
}

// endWaiting ends every operation waiting to be retried, with the error
// errOf returns for it.
func (c *writeCore[E]) endWaiting(now time.Time, errOf func(*attempts[E]) error) {
	for len(c.waiting) > 0 {
		waiting := c.waiting
		c.waiting = nil
		for _, a := range waiting {
			op := a.op
			if op.kind == opWrite && c.failed != nil {
				continue // settled by fail
			}
			err := errOf(a)
			a.retryAt, a.lastErr = time.Time{}, nil
			switch op.kind {
			case opWrite:
				c.writeDone(now, op.block, err, 0)
			case opCreate:
				c.createDone(now, op.seg, err)
			default:
				c.sealStepDone(now, op, err)
			}
		}
	}
}

func (c *writeCore[E]) noteFenced(err error) {
	if !c.fenced && errors.Is(err, walerr.ErrFenced) {
		c.fenced = true
		c.rd.fenced = true
	}
}

// tick tells the core the time: a scheduled flush or retry may be due.
func (c *writeCore[E]) tick(now time.Time) {
	if !c.flushAt.IsZero() && !now.Before(c.flushAt) {
		c.flushAt = time.Time{}
		if c.failed == nil {
			c.maybeCut(now)
		}
	}
	if len(c.waiting) > 0 {
		kept := c.waiting[:0]
		var due []*attempts[E]
		for _, a := range c.waiting {
			if now.Before(a.retryAt) {
				kept = append(kept, a)
			} else {
				due = append(due, a)
			}
		}
		clear(c.waiting[len(kept):])
		c.waiting = kept
		for _, a := range due {
			a.op.attempt++
			a.retryAt, a.lastErr = time.Time{}, nil
			c.emit(a)
		}
	}
	c.afterEvent(now)
}

// close starts closing: the batch is cut, appends are refused, and once
// every pending entry is settled the current segment is sealed (when it
// holds blocks, all of them acknowledged). See drainedNow and finished.
func (c *writeCore[E]) close(now time.Time) {
	if c.closing {
		return
	}
	c.closing = true
	if len(c.batch) > 0 && c.failed == nil {
		c.cut(now)
	}
	c.afterEvent(now)
}

// afterEvent seals the current segment once a closing writer's pending
// entries are settled.
func (c *writeCore[E]) afterEvent(now time.Time) {
	if !c.closing || c.drained || (c.failed == nil && len(c.queue) > 0) {
		return
	}
	c.drained = true
	c.drainErr = c.failed
	s := c.cur
	if c.failed == nil && c.stopped == nil && s.nextBlock > 0 && s.ackedBlocks == s.nextBlock {
		s.cutDone = true
		c.startSeal(now, s, true)
	}
}

// stop ends retrying: every operation waiting for a retry gives up, with
// an error wrapping cause, and so does every attempt that fails from now
// on. The driver stops its attempts (ends their context) and waits for
// their results.
func (c *writeCore[E]) stop(now time.Time, cause error) {
	if c.stopped != nil {
		return
	}
	c.stopped = cause
	c.endWaiting(now, func(a *attempts[E]) error {
		return walerr.Mark(errors.Wrapf(cause, "%s: gave up after %d attempts, the last failing with %q",
			c.describe(a.op), a.op.attempt, a.lastErr.Error()), walerr.ErrUnknownOutcome)
	})
	c.afterEvent(now)
}

// abort fails the writer with cause, unless it failed already, and stops.
func (c *writeCore[E]) abort(now time.Time, cause error) {
	if c.failed == nil {
		c.fail(now, cause, nil)
	}
	c.stop(now, cause)
}

// drainedNow reports whether Close's wait for pending entries is over.
func (c *writeCore[E]) drainedNow() bool { return c.drained }

// finished reports whether a closing writer is done: its pending entries
// are settled and its seals and segment creations ended, or it failed.
func (c *writeCore[E]) finished() bool {
	return c.drained && (c.drainErr != nil || (c.sealing == 0 && c.creating == 0))
}

// closeResult is what Close returns once finished: the failure that ended
// its wait for pending entries, else its seal's failure, else a failure
// since (a background seal).
func (c *writeCore[E]) closeResult() error {
	switch {
	case c.drainErr != nil:
		return c.drainErr
	case c.closeErr != nil:
		return c.closeErr
	}
	return c.failed
}
