package shared

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/segment"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// fakeIndex is etcd's part of a commit, in memory: owners per log, extents
// per block, with injectable failures. The real one (meta.Store) is tested
// against etcd in meta and end to end in package woodpecker.
type fakeIndex struct {
	mu      sync.Mutex
	owners  map[int64]meta.WriterToken
	exts    map[[3]int64]meta.Extent
	commits int
	// failNext makes the next commits fail; applied first when lost (a
	// reply lost after the transaction committed).
	failNext int
	lost     bool
	// beforeFail runs (outside the lock) when a commit fails.
	beforeFail func()
}

func newFakeIndex() *fakeIndex {
	return &fakeIndex{owners: map[int64]meta.WriterToken{}, exts: map[[3]int64]meta.Extent{}}
}

func (x *fakeIndex) own(logID, epoch int64) meta.WriterToken {
	x.mu.Lock()
	defer x.mu.Unlock()
	tok := meta.WriterToken{LogID: logID, Epoch: epoch, Nonce: fmt.Sprintf("n%d", epoch)}
	x.owners[logID] = tok
	return tok
}

func (x *fakeIndex) CommitObject(ctx context.Context, c meta.ObjectCommit) ([]int64, error) {
	x.mu.Lock()
	var fenced []int64
	for id, tok := range c.Owners {
		if x.owners[id] != tok {
			fenced = append(fenced, id)
		}
	}
	fail := x.failNext > 0
	if fail {
		x.failNext--
	}
	apply := len(fenced) == 0 && (!fail || x.lost)
	if apply {
		x.commits++
		for _, e := range c.Extents {
			x.exts[[3]int64{e.LogID, e.SegmentID, e.BlockNo}] = e
		}
	}
	before := x.beforeFail
	x.mu.Unlock()
	if fail {
		if before != nil {
			before()
		}
		return nil, errors.New("injected: etcd unavailable")
	}
	return fenced, nil
}

func (x *fakeIndex) Extents(ctx context.Context, logID, segID, from int64, limit int) ([]meta.Extent, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []meta.Extent
	for k, e := range x.exts {
		if k[0] == logID && k[1] == segID && k[2] >= from {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].BlockNo < out[j].BlockNo })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (x *fakeIndex) committed(logID, segID, block int64) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	_, ok := x.exts[[3]int64{logID, segID, block}]
	return ok
}

func streamConfig(window time.Duration) StreamConfig {
	return StreamConfig{Window: window, ObjectSize: 8 << 20, MaxInflight: 2,
		RetryTimeout: 10 * time.Second, RetryInitial: time.Millisecond, RetryMax: 10 * time.Millisecond}
}

func newTestBackend(t *testing.T, window time.Duration) (*Backend, *memstore.Store, *fakeIndex) {
	t.Helper()
	store := memstore.New()
	idx := newFakeIndex()
	b := NewBackend(segment.NewObjectBackend(store, "", 4), idx, streamConfig(window), nil)
	t.Cleanup(func() { _ = b.Close() })
	return b, store, idx
}

func piece(t testing.TB, logID, segID, blockNo, first int64) Piece {
	return Piece{LogID: logID, SegmentID: segID, BlockNo: blockNo, FirstEntry: first, Count: 1,
		Data: testBlock(t, logID, segID, blockNo, first, 1)}
}

// writeAll writes one block of each log at once and returns their errors.
func writeAll(t *testing.T, s *Stream, toks map[int64]meta.WriterToken, block int64) map[int64]error {
	var mu sync.Mutex
	errs := map[int64]error{}
	var wg sync.WaitGroup
	for id, tok := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Write(context.Background(), tok, piece(t, id, 0, block, block))
			mu.Lock()
			errs[id] = err
			mu.Unlock()
		}()
	}
	wg.Wait()
	return errs
}

func newTestStream(t *testing.T, cfg StreamConfig) (*Stream, *memstore.Store, *fakeIndex) {
	t.Helper()
	store := memstore.New()
	idx := newFakeIndex()
	s := NewStream(cfg, store, idx, "", nil)
	t.Cleanup(func() { _ = s.Close() })
	return s, store, idx
}

// TestManyLogsOneObject: blocks of 16 logs that arrive while an upload is
// in flight go into one object with one commit, not 16.
func TestManyLogsOneObject(t *testing.T) {
	cfg := streamConfig(0)
	cfg.MaxInflight = 1
	s, store, idx := newTestStream(t, cfg)
	toks := map[int64]meta.WriterToken{}
	for id := range int64(16) {
		toks[id] = idx.own(id, 1)
	}
	// Hold the first object's PUT so that every other block joins the next.
	store.Inject(memstore.Rule{Op: memstore.OpPut, Nth: 1, Action: memstore.ActionHold})
	first := make(chan error, 1)
	go func() {
		_, err := s.Write(context.Background(), toks[0], piece(t, 0, 0, 0, 0))
		first <- err
	}()
	if err := store.WaitHeld(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	rest := map[int64]meta.WriterToken{}
	for id := int64(1); id < 16; id++ {
		rest[id] = toks[id]
	}
	done := make(chan map[int64]error, 1)
	go func() { done <- writeAll(t, s, rest, 0) }()
	for { // until the 15 blocks wait in the open object
		s.mu.Lock()
		n := 0
		if s.open != nil {
			n = len(s.open.items)
		}
		s.mu.Unlock()
		if n == 15 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	store.Release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for id, err := range <-done {
		if err != nil {
			t.Fatalf("log %d: %v", id, err)
		}
	}
	if puts, commits := s.Stats(); puts != 2 || commits != 2 {
		t.Fatalf("%d PUTs and %d commits for 16 logs in two objects", puts, commits)
	}
	for id := range int64(16) {
		if !idx.committed(id, 0, 0) {
			t.Fatalf("log %d: block 0 not committed", id)
		}
	}
}

// TestZombieLogDoesNotDisturbOthers: a log whose owner changed shares an
// object with healthy logs. Its block fails with a definite ErrFenced and
// is never committed; the others are committed from the same object.
func TestZombieLogDoesNotDisturbOthers(t *testing.T) {
	b, _, idx := newTestBackend(t, 20*time.Millisecond)
	toks := map[int64]meta.WriterToken{}
	for id := range int64(5) {
		toks[id] = idx.own(id, 1)
	}
	idx.own(3, 2) // a newer writer took log 3
	errs := writeAll(t, b.stream, toks, 0)
	for id, err := range errs {
		switch {
		case id == 3 && (!errors.Is(err, walerr.ErrFenced) || errors.Is(err, walerr.ErrUnknownOutcome)):
			t.Fatalf("zombie: %v, want a definite ErrFenced", err)
		case id != 3 && err != nil:
			t.Fatalf("healthy log %d: %v", id, err)
		}
	}
	if idx.committed(3, 0, 0) {
		t.Fatal("the zombie's block was committed")
	}
	for _, id := range []int64{0, 1, 2, 4} {
		if !idx.committed(id, 0, 0) {
			t.Fatalf("log %d not committed", id)
		}
	}
}

// TestLostCommitReplyIsNotReportedAsFenced: a commit whose reply was lost
// after it applied, then a fence before the retry. The block is in its
// log, so the write succeeds; reporting ErrFenced would be a lie.
func TestLostCommitReplyIsNotReportedAsFenced(t *testing.T) {
	b, _, idx := newTestBackend(t, time.Millisecond)
	tok := idx.own(1, 1)
	idx.failNext, idx.lost = 1, true
	idx.beforeFail = func() { idx.own(1, 2) }
	if _, err := b.stream.Write(context.Background(), tok, piece(t, 1, 0, 0, 0)); err != nil {
		t.Fatalf("committed block reported as %v", err)
	}
	if !idx.committed(1, 0, 0) {
		t.Fatal("not committed")
	}
}

// TestFailedCommitThenFenceIsDefinite: the same, but the failed attempt
// did not apply: the block is not in its log and never will be.
func TestFailedCommitThenFenceIsDefinite(t *testing.T) {
	b, _, idx := newTestBackend(t, time.Millisecond)
	tok := idx.own(1, 1)
	idx.failNext = 1
	idx.beforeFail = func() { idx.own(1, 2) }
	_, err := b.stream.Write(context.Background(), tok, piece(t, 1, 0, 0, 0))
	if !errors.Is(err, walerr.ErrFenced) || errors.Is(err, walerr.ErrUnknownOutcome) {
		t.Fatalf("%v, want a definite ErrFenced", err)
	}
}

// TestCommitRetriesThroughAnOutage: failed commits are retried with the
// same extents until one applies.
func TestCommitRetriesThroughAnOutage(t *testing.T) {
	b, _, idx := newTestBackend(t, time.Millisecond)
	tok := idx.own(1, 1)
	idx.failNext = 3
	if _, err := b.stream.Write(context.Background(), tok, piece(t, 1, 0, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if idx.commits != 1 || !idx.committed(1, 0, 0) {
		t.Fatalf("%d commits", idx.commits)
	}
}

// TestFailedPutCommitsNothing: an object that could not be written is never
// committed, and its blocks fail (the writer retries them).
func TestFailedPutCommitsNothing(t *testing.T) {
	cfg := streamConfig(time.Millisecond)
	cfg.RetryTimeout = 50 * time.Millisecond
	st, store, idx := newTestStream(t, cfg)
	b := &Backend{stream: st}
	store.Inject(memstore.Rule{Op: memstore.OpPut, Action: memstore.ActionFail})
	tok := idx.own(1, 1)
	if _, err := b.stream.Write(context.Background(), tok, piece(t, 1, 0, 0, 0)); err == nil {
		t.Fatal("a block of an unwritten object succeeded")
	}
	if idx.commits != 0 {
		t.Fatal("committed an object that is not in storage")
	}
}

// TestUploadLimitIsPerProcess: with MaxInflight 1, writers of many logs
// never have two objects in flight; blocks wait in the next object.
func TestUploadLimitIsPerProcess(t *testing.T) {
	cfg := streamConfig(0)
	cfg.MaxInflight = 1
	st, store, idx := newTestStream(t, cfg)
	b := &Backend{stream: st}
	store.Inject(memstore.Rule{Op: memstore.OpPut, Delay: 5 * time.Millisecond})
	var wg sync.WaitGroup
	for id := range int64(8) {
		tok := idx.own(id, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for blk := range int64(10) {
				if _, err := b.stream.Write(context.Background(), tok, piece(t, id, 0, blk, blk)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	peak := 0
	stop := make(chan struct{})
	var pw sync.WaitGroup
	pw.Add(1)
	go func() {
		defer pw.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n := len(store.Held()); n > peak {
				peak = n
			}
			b.stream.mu.Lock()
			if b.stream.inflight > peak {
				peak = b.stream.inflight
			}
			b.stream.mu.Unlock()
			time.Sleep(100 * time.Microsecond)
		}
	}()
	wg.Wait()
	close(stop)
	pw.Wait()
	if peak > 1 {
		t.Fatalf("%d objects in flight, limit 1", peak)
	}
	if puts, _ := b.stream.Stats(); puts >= 80 {
		t.Fatalf("%d PUTs for 80 blocks of 8 logs: no batching", puts)
	}
}

// TestCloseFailsWaitingBlocks: Close ends every wait and every goroutine.
func TestCloseFailsWaitingBlocks(t *testing.T) {
	cfg := streamConfig(time.Millisecond)
	cfg.MaxInflight = 1
	st, store, idx := newTestStream(t, cfg)
	b := &Backend{stream: st}
	store.Inject(memstore.Rule{Op: memstore.OpPut, Action: memstore.ActionHold})
	tok := idx.own(1, 1)
	errs := make(chan error, 2)
	for blk := range int64(2) {
		go func() {
			_, err := b.stream.Write(context.Background(), tok, piece(t, 1, 0, blk, blk))
			errs <- err
		}()
		if blk == 0 {
			if err := store.WaitHeld(context.Background(), 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(10 * time.Millisecond) // let the second block queue
	_ = b.Close()
	for range 2 {
		if err := <-errs; err == nil {
			t.Fatal("a block succeeded although its object was never written")
		}
	}
	if _, err := b.stream.Write(context.Background(), tok, piece(t, 1, 0, 2, 2)); !errors.Is(err, walerr.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

// TestRetriedBlockInOneObject: a writer whose wait ended writes the same
// block again while the first copy still waits in the open object; the
// object holds it once (etcd refuses a transaction that puts one key
// twice, which would fail every log of the object) and both waits get the
// outcome.
func TestRetriedBlockInOneObject(t *testing.T) {
	s, store, idx := newTestStream(t, streamConfig(50*time.Millisecond))
	s.lastClose = time.Now() // an object was just closed: the next one waits a window
	tok := idx.own(1, 1)
	other := idx.own(2, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Write(ctx, tok, piece(t, 1, 0, 0, 0)); err == nil {
		t.Fatal("a write whose context ended succeeded before its object was written")
	}
	errs := writeAll(t, s, map[int64]meta.WriterToken{1: tok, 2: other}, 0)
	for id, err := range errs {
		if err != nil {
			t.Fatalf("log %d: %v", id, err)
		}
	}
	if puts, _ := s.Stats(); puts != 1 {
		t.Fatalf("%d objects", puts)
	}
	for _, key := range store.Keys() {
		data, _ := store.Peek(key)
		if exts := decodeObject(t, key, data); len(exts) != 2 {
			t.Fatalf("object holds %d blocks, want 2 (log 1's once): %+v", len(exts), exts)
		}
	}
}

// TestWindowPacesObjects: the window bounds how often objects are closed,
// not how long each block waits. A block arriving when no object was
// closed for a window is uploaded at once (a lone writer appending less
// often than once a window waits for a PUT, not the window); one arriving
// right after waits for the window, in the next object.
func TestWindowPacesObjects(t *testing.T) {
	s, store, idx := newTestStream(t, streamConfig(time.Hour))
	tok := idx.own(1, 1)
	if _, err := s.Write(context.Background(), tok, piece(t, 1, 0, 0, 0)); err != nil {
		t.Fatal(err) // it would wait an hour if the window delayed every object
	}
	errs := make(chan error, 1)
	go func() {
		_, err := s.Write(context.Background(), tok, piece(t, 1, 0, 1, 1))
		errs <- err
	}()
	for queued := false; !queued; {
		s.mu.Lock()
		queued = s.open != nil && len(s.open.items) == 1
		s.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	if puts, _ := s.Stats(); puts != 1 || len(store.Keys()) != 1 {
		t.Fatalf("%d objects uploaded (%d stored) while the window of the second one runs, want 1", puts, len(store.Keys()))
	}
	_ = s.Close()
	if err := <-errs; !errors.Is(err, walerr.ErrClosed) {
		t.Fatalf("the block that waited for the window: %v, want ErrClosed at Close", err)
	}
}

// recordingMetrics keeps what a stream reports.
type recordingMetrics struct {
	mu                      sync.Mutex
	written, failed, blocks int
	commits, commitsUnknown int
	limits                  []int
}

func (m *recordingMetrics) ObjectWritten(_, blocks int, _ time.Duration, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.failed++
		return
	}
	m.written++
	m.blocks += blocks
}

func (m *recordingMetrics) ObjectCommitted(_ time.Duration, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.commitsUnknown++
		return
	}
	m.commits++
}

func (m *recordingMetrics) UploadLimit(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.limits = append(m.limits, n)
}

// TestStreamReportsEachObject: monitoring sees every object once, with
// the blocks it holds, its commit, and the upload limit; an object whose
// PUT gave up is reported failed and never as committed.
func TestStreamReportsEachObject(t *testing.T) {
	rec := &recordingMetrics{}
	cfg := streamConfig(0)
	cfg.Metrics = rec
	s, store, idx := newTestStream(t, cfg)
	toks := map[int64]meta.WriterToken{}
	for id := range int64(5) {
		toks[id] = idx.own(id, 1)
	}
	for id, err := range writeAll(t, s, toks, 0) {
		if err != nil {
			t.Fatalf("log %d: %v", id, err)
		}
	}
	rec.mu.Lock()
	puts, _ := s.Stats()
	if rec.written != int(puts) || rec.blocks != 5 || rec.commits != rec.written || rec.failed != 0 {
		t.Fatalf("%d objects stored; reported %d written holding %d blocks, %d committed, %d failed",
			puts, rec.written, rec.blocks, rec.commits, rec.failed)
	}
	if len(rec.limits) == 0 || rec.limits[0] != cfg.MaxInflight {
		t.Fatalf("upload limits reported %v, want %d first", rec.limits, cfg.MaxInflight)
	}
	written := rec.written
	rec.mu.Unlock()

	store.Inject(memstore.Rule{Op: memstore.OpPut, Action: memstore.ActionFail, Times: -1})
	s.cfg.RetryTimeout = 50 * time.Millisecond
	if _, err := s.Write(context.Background(), toks[0], piece(t, 0, 0, 1, 1)); err == nil {
		t.Fatal("a block of an unwritten object succeeded")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.failed != 1 || rec.written != written || rec.commits != written {
		t.Fatalf("after a PUT that gave up: %d failed, %d written, %d committed", rec.failed, rec.written, rec.commits)
	}
}
