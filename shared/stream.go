package shared

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/errors"
	"go.uber.org/zap"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
)

// Index is the metadata a stream commits to and reads extents from:
// meta.Store, or a fault injector around it in tests.
type Index interface {
	CommitObject(ctx context.Context, c meta.ObjectCommit) (fenced []int64, err error)
	Extents(ctx context.Context, logID, segID, from int64, limit int) ([]meta.Extent, error)
}

// StreamConfig sets how a stream packs and uploads.
type StreamConfig struct {
	// Window paces the objects: one is closed for upload at most once per
	// Window (besides those that fill up), so a block waits at most Window
	// for others to join it, and not at all when the previous object was
	// closed longer than Window ago. 0 uploads as soon as an upload slot is
	// free.
	Window time.Duration
	// ObjectSize closes an object once its blocks reach this many bytes.
	ObjectSize int64
	// MaxInflight bounds the objects being uploaded and committed at once,
	// for the whole process. Within it, the stream keeps fewer in flight
	// while the store's latency shows that it queues (adaptiveLimit).
	MaxInflight int
	// RetryTimeout bounds the attempts of one object's PUT, and of its
	// commit; RetryInitial and RetryMax shape the backoff between them.
	RetryTimeout, RetryInitial, RetryMax time.Duration
	// Metrics, when not nil, learns what the stream does.
	Metrics StreamMetrics
}

// StreamMetrics learns what a stream does, for monitoring. Its methods are
// called from the stream's goroutines, never with its lock held; they must
// be safe for concurrent use and must not block.
type StreamMetrics interface {
	// ObjectWritten reports one object's PUT, retries included: its size,
	// the blocks it holds, how long it took, and err (nil: written).
	ObjectWritten(bytes, blocks int, d time.Duration, err error)
	// ObjectCommitted reports one object's etcd commit, retries included:
	// how long it took and err (nil: every block's outcome is known, fenced
	// logs included; an error leaves them unknown).
	ObjectCommitted(d time.Duration, err error)
	// UploadLimit reports the number of PUTs the stream now allows at once
	// (the adaptive limit), whenever it changes.
	UploadLimit(n int)
}

type noStreamMetrics struct{}

func (noStreamMetrics) ObjectWritten(int, int, time.Duration, error) {}
func (noStreamMetrics) ObjectCommitted(time.Duration, error)         {}
func (noStreamMetrics) UploadLimit(int)                              {}

// maxObjectBlocks keeps a commit within etcd's operation limit: one put per
// block and one for the object's record.
const maxObjectBlocks = meta.MaxTxnOps - 1

// objectPrefix is where shared objects live, under the backend's root.
const objectPrefix = "shared/"

// Stream packs the blocks of every log of a process into shared objects,
// uploads each with one PUT and commits it with one etcd transaction
// (docs/shared-objects.md). It owns one timer goroutine at a time and one
// goroutine per object in flight; Close stops them.
type Stream struct {
	cfg    StreamConfig
	store  objstore.Store
	index  Index
	root   string
	proc   string // this process's part of object names
	logger *zap.Logger

	// resolve tells, for a block whose log was fenced before a commit
	// that may have succeeded answered, whether the block is in its log.
	resolve func(ctx context.Context, p *pending) (bool, error)

	mu       sync.Mutex
	open     *batch   // the object being filled
	ready    []*batch // closed objects waiting for an upload slot
	inflight int
	limit    *adaptiveLimit
	seq      uint64
	// lastClose is when the latest object was closed: the next one is due
	// Window after it.
	lastClose time.Time
	closed    bool
	wg        sync.WaitGroup
	stop      context.Context
	cancel    context.CancelFunc

	puts, commits atomic.Int64
}

// pending is one block waiting for its object's commit.
type pending struct {
	piece Piece
	owner meta.WriterToken
	done  chan error // buffered; receives the outcome once
	ext   meta.Extent
	// same are later writes of the same block in the same object (the
	// writer retried after its wait ended): one copy is uploaded and
	// committed, and they share its outcome.
	same []*pending
}

// finish reports the block's outcome to every waiter.
func (p *pending) finish(err error) {
	p.done <- err
	for _, q := range p.same {
		q.ext = p.ext
		q.done <- err
	}
}

type batch struct {
	items []*pending
	bytes int64
	due   bool // the window passed; upload at the next free slot
	timer *time.Timer
}

// NewStream starts a stream writing objects under root in store and
// committing them to index.
func NewStream(cfg StreamConfig, store objstore.Store, index Index, root string, logger *zap.Logger) *Stream {
	if logger == nil {
		logger = zap.NewNop()
	}
	s := &Stream{cfg: cfg, store: store, index: index, root: root, proc: newProcID(), logger: logger}
	s.cfg.MaxInflight = max(s.cfg.MaxInflight, 1)
	if s.cfg.Metrics == nil {
		s.cfg.Metrics = noStreamMetrics{}
	}
	s.limit = newAdaptiveLimit(s.cfg.MaxInflight)
	s.cfg.Metrics.UploadLimit(s.limit.cur)
	s.stop, s.cancel = context.WithCancel(context.Background())
	return s
}

// Stats reports the objects uploaded and committed so far.
func (s *Stream) Stats() (puts, commits int64) { return s.puts.Load(), s.commits.Load() }

// Write adds a block to the object being filled and waits until that
// object is committed: nil means the block is durable and part of its log.
// An error marked walerr.ErrFenced means the log's owner changed before the
// block was committed, and it never will be.
func (s *Stream) Write(ctx context.Context, owner meta.WriterToken, p Piece) (meta.Extent, error) {
	pd := &pending{piece: p, owner: owner, done: make(chan error, 1)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return meta.Extent{}, errors.Wrap(walerr.ErrClosed, "shared object stream")
	}
	b := s.open
	if b == nil {
		b = &batch{}
		s.open = b
		if wait := s.cfg.Window - time.Since(s.lastClose); wait > 0 {
			b.timer = time.AfterFunc(wait, func() { s.windowPassed(b) })
		} else {
			b.due = true
		}
	}
	if first := b.find(p); first != nil {
		first.same = append(first.same, pd) // a retry of a block already in this object
	} else {
		b.items = append(b.items, pd)
		b.bytes += int64(len(p.Data))
	}
	if b.bytes >= s.cfg.ObjectSize || len(b.items) >= maxObjectBlocks {
		s.closeOpenLocked()
	}
	s.startLocked()
	s.mu.Unlock()
	select {
	case err := <-pd.done:
		return pd.ext, err
	case <-ctx.Done():
		// The object may still be committed: the writer retries the block
		// (same bytes) or reports the outcome as unknown.
		return meta.Extent{}, errors.Wrap(ctx.Err(), "wait for the shared object commit")
	}
}

// find returns the pending write of the same block in the batch, if any.
func (b *batch) find(p Piece) *pending {
	for _, q := range b.items {
		if q.piece.LogID == p.LogID && q.piece.SegmentID == p.SegmentID && q.piece.BlockNo == p.BlockNo {
			return q
		}
	}
	return nil
}

func (s *Stream) windowPassed(b *batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b.due = true
	s.startLocked()
}

// closeOpenLocked moves the open object to the ready queue.
func (s *Stream) closeOpenLocked() {
	b := s.open
	if b == nil {
		return
	}
	if b.timer != nil {
		b.timer.Stop()
	}
	b.due = true
	s.ready = append(s.ready, b)
	s.open = nil
	s.lastClose = time.Now()
}

// startLocked starts uploads while slots are free: ready objects first,
// then the open one once its window passed.
func (s *Stream) startLocked() {
	for !s.closed && s.inflight < s.limit.cur {
		if len(s.ready) == 0 && s.open != nil && s.open.due {
			s.closeOpenLocked()
		}
		if len(s.ready) == 0 {
			return
		}
		b := s.ready[0]
		s.ready = s.ready[1:]
		s.inflight++
		s.seq++
		name := objectName(s.proc, s.seq)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.upload(name, b, func() {
				s.mu.Lock()
				s.inflight--
				s.startLocked()
				s.mu.Unlock()
			})
		}()
	}
}

// newProcID returns a random id for the object names of one writer of
// shared objects (a stream, or one WriteObjects call).
func newProcID() string {
	var id [4]byte
	_, _ = rand.Read(id[:])
	return hex.EncodeToString(id[:])
}

// objectName names the seq-th shared object of writer proc: names start
// with the creation time, so that they sort by age, and never repeat.
func objectName(proc string, seq uint64) string {
	return fmt.Sprintf("%016x-%s-%08x", time.Now().UnixNano(), proc, seq)
}

// ObjectKey returns the key of the shared object name under root.
func ObjectKey(root, name string) string { return root + objectPrefix + name }

// upload writes one object, frees its upload slot (release), commits it,
// and tells every block. The slot bounds requests to the store; commits to
// etcd proceed on their own, each object's waiting blocks bounded by their
// writers' memory budgets.
func (s *Stream) upload(name string, b *batch, release func()) {
	key := ObjectKey(s.root, name)
	pieces := make([]Piece, len(b.items))
	for i, p := range b.items {
		pieces[i] = p.piece
	}
	data, exts := EncodeObject(key, pieces)
	byBlock := make(map[[3]int64]meta.Extent, len(exts))
	for _, e := range exts {
		byBlock[[3]int64{e.LogID, e.SegmentID, e.BlockNo}] = e
	}
	for _, p := range b.items {
		p.ext = byBlock[[3]int64{p.piece.LogID, p.piece.SegmentID, p.piece.BlockNo}]
	}
	start := time.Now()
	err := s.put(key, data)
	release()
	s.cfg.Metrics.ObjectWritten(len(data), len(b.items), time.Since(start), err)
	if err != nil {
		for _, p := range b.items {
			p.finish(err)
		}
		return
	}
	s.puts.Add(1)
	start = time.Now()
	err = s.commit(key, b.items)
	s.cfg.Metrics.ObjectCommitted(time.Since(start), err)
}

// put writes the object create-only, retrying transient failures. A retry
// that finds the name taken finds its own earlier attempt: names are unique.
func (s *Stream) put(key string, data []byte) error {
	ctx, cancel := context.WithTimeout(s.stop, s.cfg.RetryTimeout)
	defer cancel()
	backoff := s.cfg.RetryInitial
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := s.store.Put(ctx, key, data, objstore.PutOptions{IfNotExists: true})
		if err == nil {
			s.mu.Lock()
			before := s.limit.cur
			s.limit.observe(time.Since(start), int64(len(data)))
			now := s.limit.cur
			s.mu.Unlock()
			if now != before {
				s.cfg.Metrics.UploadLimit(now)
			}
		}
		if err == nil || (attempt > 1 && errors.Is(err, objstore.ErrAlreadyExists)) {
			return nil
		}
		if ctx.Err() != nil {
			return errors.Wrapf(err, "write shared object %s (%d attempts)", key, attempt)
		}
		s.logger.Warn("shared object write failed; retrying", zap.String("object", key), zap.Error(err))
		if !sleep(ctx, backoff) {
			return errors.Wrapf(err, "write shared object %s (%d attempts)", key, attempt)
		}
		backoff = min(2*backoff, s.cfg.RetryMax)
	}
}

// commit commits the blocks' extents in one transaction per attempt.
// Blocks of logs whose owner changed fail with ErrFenced and the others
// are committed again at once; a failed attempt is retried with backoff.
// It returns the error that left the remaining blocks' outcome unknown.
func (s *Stream) commit(key string, items []*pending) error {
	ctx, cancel := context.WithTimeout(s.stop, s.cfg.RetryTimeout)
	defer cancel()
	backoff := s.cfg.RetryInitial
	uncertain := false // an attempt may have committed without telling
	for attempt := 1; len(items) > 0; attempt++ {
		c := meta.ObjectCommit{Object: key, Owners: map[int64]meta.WriterToken{}}
		for _, p := range items {
			c.Owners[p.piece.LogID] = p.owner
			c.Extents = append(c.Extents, p.ext)
		}
		fenced, err := s.index.CommitObject(ctx, c)
		switch {
		case err == nil && len(fenced) == 0:
			s.commits.Add(1)
			for _, p := range items {
				p.finish(nil)
			}
			return nil
		case err == nil:
			out := make(map[int64]bool, len(fenced))
			for _, id := range fenced {
				out[id] = true
			}
			kept := items[:0]
			for _, p := range items {
				if out[p.piece.LogID] {
					p.finish(s.fencedOutcome(ctx, p, uncertain))
				} else {
					kept = append(kept, p)
				}
			}
			items = kept
			continue
		}
		uncertain = true
		if ctx.Err() != nil || !sleep(ctx, backoff) {
			err = errors.Wrapf(err, "commit shared object %s (%d attempts)", key, attempt)
			for _, p := range items {
				p.finish(walerr.Mark(err, walerr.ErrUnknownOutcome))
			}
			return err
		}
		s.logger.Warn("shared object commit failed; retrying", zap.String("object", key), zap.Error(err))
		backoff = min(2*backoff, s.cfg.RetryMax)
	}
	return nil // every log of the object was fenced: each block's outcome is known
}

// fencedOutcome is the outcome of a block whose log's owner changed. When
// no earlier attempt can have committed it, the block is definitely not in
// its log. Otherwise the log's own records tell.
func (s *Stream) fencedOutcome(ctx context.Context, p *pending, uncertain bool) error {
	fenced := errors.Wrapf(walerr.ErrFenced, "log %d: writer epoch %d was replaced before block %d of segment %d was committed",
		p.piece.LogID, p.owner.Epoch, p.piece.BlockNo, p.piece.SegmentID)
	if !uncertain || s.resolve == nil {
		return fenced
	}
	in, err := s.resolve(ctx, p)
	switch {
	case err != nil:
		return walerr.Mark(errors.Wrapf(err, "log %d: writer fenced while committing block %d of segment %d",
			p.piece.LogID, p.piece.BlockNo, p.piece.SegmentID), walerr.ErrUnknownOutcome)
	case in:
		return nil // an earlier attempt committed it while the writer owned the log
	}
	return fenced
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Close fails blocks not yet uploading, cancels uploads in flight, and
// waits for their goroutines.
func (s *Stream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.closeOpenLocked()
	waiting := s.ready
	s.ready = nil
	s.mu.Unlock()
	for _, b := range waiting {
		for _, p := range b.items {
			p.finish(errors.Wrap(walerr.ErrClosed, "shared object stream closed before the block was written"))
		}
	}
	s.cancel()
	s.wg.Wait()
	return nil
}
