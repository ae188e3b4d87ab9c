package segment

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
)

// fakeMetrics counts what a writer reports. It is safe for concurrent use.
type fakeMetrics struct {
	mu        sync.Mutex
	appends   []error // one per AppendDone, in report order
	appendB   int
	starts    int
	retries   int
	writesOK  int
	writesErr int
	writeB    int
	inflight  int
	maxInfl   int
	negative  bool // a BlockWriteDone without its BlockWriteStarted
	sealed    []int64
	fenced    int
}

var _ Metrics = (*fakeMetrics)(nil)

func (m *fakeMetrics) AppendDone(n int, d time.Duration, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.appends = append(m.appends, err)
	if err == nil {
		m.appendB += n
	}
}

func (m *fakeMetrics) BlockWriteStarted(retry bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.starts++
	if retry {
		m.retries++
	}
	m.inflight++
	m.maxInfl = max(m.maxInfl, m.inflight)
}

func (m *fakeMetrics) BlockWriteDone(n int, d time.Duration, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inflight--
	if m.inflight < 0 {
		m.negative = true
	}
	if err != nil {
		m.writesErr++
		return
	}
	m.writesOK++
	m.writeB += n
}

func (m *fakeMetrics) SegmentSealed(segID int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sealed = append(m.sealed, segID)
}

func (m *fakeMetrics) Fenced() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fenced++
}

// counts summarises the appends reported by outcome.
type appendCounts struct{ ok, fenced, unknown, other int }

func (m *fakeMetrics) appendCounts() appendCounts {
	m.mu.Lock()
	defer m.mu.Unlock()
	var c appendCounts
	for _, err := range m.appends {
		switch {
		case err == nil:
			c.ok++
		case errors.Is(err, walerr.ErrFenced):
			c.fenced++
		case errors.Is(err, walerr.ErrUnknownOutcome):
			c.unknown++
		default:
			c.other++
		}
	}
	return c
}

func newMetricsRig(t *testing.T) (*rig, *fakeMetrics) {
	t.Helper()
	m := &fakeMetrics{}
	cfg := testConfig()
	cfg.Metrics = m
	return newRig(t, cfg), m
}

func TestMetricsCountBlocksAppendsAndSeals(t *testing.T) {
	r, m := newMetricsRig(t)
	ctx := context.Background()
	const n = 5
	for i := range n {
		if _, _, err := r.w.Append(ctx, []byte(fmt.Sprint("entry", i))); err != nil {
			t.Fatal(err)
		}
	}
	// Many appends at once: every one is reported once, whatever the
	// batching.
	var futs []*Future
	for i := range 100 {
		f, err := r.w.AppendAsync(ctx, []byte(fmt.Sprint("async", i)))
		if err != nil {
			t.Fatal(err)
		}
		futs = append(futs, f)
	}
	for _, f := range futs {
		<-f.Done()
	}
	if err := r.w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	puts := int(r.store.Count(memstore.OpPut)) - 1 // the seal record

	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.appends) != n+100 {
		t.Errorf("%d appends reported, want %d", len(m.appends), n+100)
	}
	for i, err := range m.appends {
		if err != nil {
			t.Errorf("append report %d: %v, want success", i, err)
		}
	}
	wantBytes := 0
	for i := range n {
		wantBytes += len(fmt.Sprint("entry", i))
	}
	for i := range 100 {
		wantBytes += len(fmt.Sprint("async", i))
	}
	if m.appendB != wantBytes {
		t.Errorf("append bytes %d, want %d", m.appendB, wantBytes)
	}
	if m.writesOK != puts || m.starts != puts || m.writesErr != 0 || m.retries != 0 {
		t.Errorf("block writes: %d started, %d ok, %d failed, %d retries; want %d started and ok",
			m.starts, m.writesOK, m.writesErr, m.retries, puts)
	}
	if m.inflight != 0 || m.negative {
		t.Errorf("block writes in flight after Close: %d (went negative: %v)", m.inflight, m.negative)
	}
	if m.writeB <= wantBytes {
		t.Errorf("block bytes %d, want more than the %d payload bytes (headers, CRCs)", m.writeB, wantBytes)
	}
	if fmt.Sprint(m.sealed) != "[0]" || m.fenced != 0 {
		t.Errorf("sealed %v, fenced %d; want [0] and 0", m.sealed, m.fenced)
	}
}

func TestMetricsCountRetries(t *testing.T) {
	r, m := newMetricsRig(t)
	ctx := context.Background()
	r.store.Inject(memstore.Rule{Op: memstore.OpPut, Nth: 1, Times: 2, Action: memstore.ActionFail})
	if _, _, err := r.w.Append(ctx, []byte("x")); err != nil {
		t.Fatalf("append after two failed puts: %v", err)
	}
	// Outcomes are reported after the writer's lock is released, so the
	// caller may hear of its append first; Close waits for the reports.
	if err := r.w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if c := m.appendCounts(); c != (appendCounts{ok: 1}) {
		t.Errorf("appends reported %+v, want one ok", c)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.starts != 3 || m.retries != 2 || m.writesErr != 2 || m.writesOK != 1 || m.inflight != 0 {
		t.Errorf("block writes: %d started, %d retries, %d failed, %d ok, %d in flight; want 3, 2, 2, 1, 0",
			m.starts, m.retries, m.writesErr, m.writesOK, m.inflight)
	}
}

func TestMetricsReportFencingOnce(t *testing.T) {
	r, m := newMetricsRig(t)
	ctx := context.Background()
	if _, _, err := r.w.Append(ctx, []byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.be.Recover(ctx, Ref{LogID: 7, SegmentID: 0}, 2); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.w.Append(ctx, []byte("zombie")); !errors.Is(err, walerr.ErrFenced) {
		t.Fatalf("zombie append: %v, want ErrFenced", err)
	}
	// Appends the failed writer rejects are reported too, but the fence is
	// not reported again.
	for range 3 {
		if _, err := r.w.AppendAsync(ctx, []byte("late")); !errors.Is(err, walerr.ErrFenced) {
			t.Fatalf("append after the fence: %v, want ErrFenced", err)
		}
	}
	if _, err := r.w.AppendAsync(ctx, nil); !errors.Is(err, walerr.ErrEmptyEntry) {
		t.Fatalf("empty append: %v", err)
	}
	if err := r.w.Close(ctx); !errors.Is(err, walerr.ErrFenced) {
		t.Fatalf("close of a fenced writer: %v, want ErrFenced", err)
	}
	if c := m.appendCounts(); c != (appendCounts{ok: 1, fenced: 4, other: 1}) {
		t.Errorf("appends reported %+v, want 1 ok, 4 fenced, 1 other", c)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fenced != 1 {
		t.Errorf("fencing reported %d times, want once", m.fenced)
	}
	if m.writesOK != 1 || m.writesErr != 1 || m.inflight != 0 || len(m.sealed) != 0 {
		t.Errorf("block writes %d ok, %d failed, %d in flight, sealed %v; want 1, 1, 0, none",
			m.writesOK, m.writesErr, m.inflight, m.sealed)
	}
}
