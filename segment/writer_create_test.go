package segment

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
)

// flakyCreateMeta is metadata whose segment creation fails the first
// failures calls. With lostReply the failing calls commit first, as an
// etcd transaction whose reply was lost does; a retry then finds the
// record this writer created and succeeds, as internal/meta's
// CreateSegment does.
type flakyCreateMeta struct {
	fakeMeta
	failures  int // calls still to fail; -1: every call
	lostReply bool

	cmu        sync.Mutex
	calls      int
	placements []string
	records    map[int64]string // committed segment records: their placement
}

func (m *flakyCreateMeta) CreateSegment(ctx context.Context, segID int64, placement string) (int64, error) {
	m.cmu.Lock()
	defer m.cmu.Unlock()
	m.calls++
	m.placements = append(m.placements, placement)
	if m.records == nil {
		m.records = map[int64]string{}
	}
	if p, ok := m.records[segID]; ok {
		if p != placement {
			return 0, errors.AssertionFailedf("segment %d exists with another placement", segID)
		}
		return 1, nil // an earlier attempt committed
	}
	if m.failures != 0 {
		if m.failures > 0 {
			m.failures--
		}
		if m.lostReply {
			m.records[segID] = placement
		}
		return 0, errors.New("etcdserver: request timed out")
	}
	m.records[segID] = placement
	return m.fakeMeta.CreateSegment(ctx, segID, placement)
}

// placingBackend is an object backend that places segments, counting the
// calls, and records the refs its sinks were created with.
type placingBackend struct {
	*ObjectBackend
	mu     sync.Mutex
	places int
	sinks  []Ref
}

func (b *placingBackend) Place(ctx context.Context, ref Ref) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.places++
	return "ensemble-1", nil
}

func (b *placingBackend) CreateSink(ctx context.Context, ref Ref, epoch int64) (Sink, error) {
	b.mu.Lock()
	b.sinks = append(b.sinks, ref)
	b.mu.Unlock()
	return b.ObjectBackend.CreateSink(ctx, ref, epoch)
}

// TestSegmentCreationIsRetried: a transient metadata failure, or a lost
// reply, when the writer creates a segment no longer fails the writer: the
// creation is retried, with the placement chosen once, and the append
// succeeds.
func TestSegmentCreationIsRetried(t *testing.T) {
	for _, tc := range []struct {
		name      string
		lostReply bool
		calls     int
	}{
		{name: "the request failed", calls: 3},
		// The first retry finds the record the lost attempt committed.
		{name: "the transaction committed and its reply was lost", lostReply: true, calls: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			store := memstore.New()
			be := &placingBackend{ObjectBackend: NewObjectBackend(store, "root", cfg.MaxInflight)}
			m := &flakyCreateMeta{failures: 2, lostReply: tc.lostReply}
			w := NewWriter(cfg, be, m, nil)
			ctx := context.Background()
			seg, ent, err := w.Append(ctx, []byte("a"))
			if err != nil || seg != 0 || ent != 0 {
				t.Fatalf("append after two failed segment creations: (%d,%d) %v", seg, ent, err)
			}
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			m.cmu.Lock()
			calls, placements := m.calls, m.placements
			m.cmu.Unlock()
			if calls != tc.calls {
				t.Fatalf("CreateSegment called %d times, want %d", calls, tc.calls)
			}
			for _, p := range placements {
				if p != "ensemble-1" {
					t.Fatalf("CreateSegment got placements %q, want the one placement every time", placements)
				}
			}
			be.mu.Lock()
			places, sinks := be.places, be.sinks
			be.mu.Unlock()
			if places != 1 || len(sinks) != 1 || sinks[0].Placement != "ensemble-1" {
				t.Fatalf("Place called %d times, sinks %+v; want one placement, passed to the sink", places, sinks)
			}
			m.mu.Lock()
			defer m.mu.Unlock()
			if info, ok := m.sealed[0]; !ok || info.LastEntry != 0 {
				t.Fatalf("segment 0 sealed as %+v (%v), want its one entry", info, ok)
			}
		})
	}
}

// TestSegmentCreationGivesUp: when metadata keeps failing, creation gives
// up within the retry timeout. No block was written, so the append fails
// definitely, and the writer is failed.
func TestSegmentCreationGivesUp(t *testing.T) {
	cfg := testConfig()
	cfg.RetryTimeout = 500 * time.Millisecond
	store := memstore.New()
	m := &flakyCreateMeta{failures: -1}
	w := NewWriter(cfg, NewObjectBackend(store, "root", cfg.MaxInflight), m, nil)
	ctx := context.Background()
	start := time.Now()
	_, _, err := w.Append(ctx, []byte("a"))
	if err == nil || errors.Is(err, walerr.ErrUnknownOutcome) || errors.Is(err, walerr.ErrFenced) {
		t.Fatalf("append with metadata failing: %v, want a definite failure", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("creation gave up after %v, want about the retry timeout", d)
	}
	m.cmu.Lock()
	calls := m.calls
	m.cmu.Unlock()
	if calls < 2 {
		t.Fatalf("CreateSegment called %d times, want retries", calls)
	}
	if n := store.Count(memstore.OpPut); n != 0 {
		t.Fatalf("%d puts, want none: no segment was created", n)
	}
	if err := w.Close(ctx); err == nil {
		t.Fatal("Close of a failed writer reported success")
	}
}

// TestFencedSegmentCreationFailsDefinitely: a newer writer owns the log
// when the segment is created: the append fails with ErrFenced, definitely,
// at once.
func TestFencedSegmentCreationFailsDefinitely(t *testing.T) {
	r := newRig(t, testConfig())
	r.meta.mu.Lock()
	r.meta.fenced = true
	r.meta.mu.Unlock()
	_, _, err := r.w.Append(context.Background(), []byte("a"))
	if !errors.Is(err, walerr.ErrFenced) || errors.Is(err, walerr.ErrUnknownOutcome) {
		t.Fatalf("append with the log fenced: %v, want a definite ErrFenced", err)
	}
}
