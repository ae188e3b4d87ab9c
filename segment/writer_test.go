package segment

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"go.uber.org/goleak"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeMeta records segment events; it can be told to fence.
type fakeMeta struct {
	mu      sync.Mutex
	created []int64
	sealed  map[int64]SealInfo
	fenced  bool
}

func (m *fakeMeta) CreateSegment(ctx context.Context, segID int64, placement string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fenced {
		return 0, errors.Wrap(walerr.ErrFenced, "fake")
	}
	m.created = append(m.created, segID)
	return 1, nil
}

func (m *fakeMeta) SealSegment(ctx context.Context, segID, rev int64, info SealInfo) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fenced {
		return errors.Wrap(walerr.ErrFenced, "fake")
	}
	if m.sealed == nil {
		m.sealed = map[int64]SealInfo{}
	}
	m.sealed[segID] = info
	return nil
}

func testConfig() WriterConfig {
	return WriterConfig{
		LogID: 7, Epoch: 1,
		MaxEntryBytes: 1 << 20, MaxBlockBytes: 64 << 10, FlushDelay: time.Millisecond,
		MaxInflight: 4, MemoryBudget: 8 << 20,
		RollMaxBytes: 1 << 30, RollMaxAge: time.Hour, RollMaxBlocks: 1000,
		RetryInitialBackoff: time.Millisecond, RetryMaxBackoff: 10 * time.Millisecond, RetryTimeout: 2 * time.Second,
	}
}

type rig struct {
	store *memstore.Store
	be    *ObjectBackend
	meta  *fakeMeta
	w     *Writer
}

func newRig(t *testing.T, cfg WriterConfig) *rig {
	t.Helper()
	r := &rig{store: memstore.New(), meta: &fakeMeta{}}
	r.be = NewObjectBackend(r.store, "root", cfg.MaxInflight)
	r.w = NewWriter(cfg, r.be, r.meta, nil)
	t.Cleanup(func() {
		r.store.ClearRules()
		r.store.Release()
		_ = r.w.Close(context.Background())
	})
	return r
}

// readAll reads every block of a segment and returns its entries.
func (r *rig) readAll(t *testing.T, seg int64) []string {
	t.Helper()
	c := r.be.OpenCursor(Ref{LogID: 7, SegmentID: seg})
	defer c.Close()
	var out []string
	for {
		_, entries, err := c.Next(context.Background())
		if errors.Is(err, ErrNoBlockYet) || errors.Is(err, ErrEndOfSegment) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			out = append(out, string(e))
		}
	}
}

func TestLoneWriterCutsABlockPerAppend(t *testing.T) {
	r := newRig(t, testConfig())
	ctx := context.Background()
	for i := range 5 {
		seg, ent, err := r.w.Append(ctx, []byte(fmt.Sprint(i)))
		if err != nil || seg != 0 || ent != int64(i) {
			t.Fatalf("append %d: (%d,%d) %v", i, seg, ent, err)
		}
	}
	// One create-only PUT per append (plus the conditional-write probe-free
	// writer does none other), so a lone writer waits for one PUT only.
	if n := r.store.Count(memstore.OpPut); n != 5 {
		t.Fatalf("%d puts for 5 lone appends, want 5", n)
	}
}

func TestAcksAreInLogOrderWhenUploadsFinishOutOfOrder(t *testing.T) {
	r := newRig(t, testConfig())
	ctx := context.Background()
	// Hold block 0's upload; later blocks land first.
	r.store.Inject(memstore.Rule{Op: memstore.OpPut, KeyPattern: "root/7/*/b-0000000000000000000", Action: memstore.ActionHold, Times: 1, Nth: 1})
	first, err := r.w.AppendAsync(ctx, []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.store.WaitHeld(ctx, 1); err != nil {
		t.Fatal(err)
	}
	var later []*Future
	for i := range 50 {
		f, err := r.w.AppendAsync(ctx, []byte(fmt.Sprint("b", i)))
		if err != nil {
			t.Fatal(err)
		}
		later = append(later, f)
	}
	// Wait until some later block is stored, then check nothing is acked.
	deadline := time.Now().Add(10 * time.Second)
	for len(r.store.Keys()) < 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if len(r.store.Keys()) < 1 {
		t.Fatal("no later block was stored while block 0 was held")
	}
	for _, f := range append([]*Future{first}, later...) {
		select {
		case <-f.Done():
			t.Fatal("an entry was acknowledged while an earlier block was in flight")
		default:
		}
	}
	r.store.Release()
	for i, f := range append([]*Future{first}, later...) {
		<-f.Done()
		if _, ent, err := f.Result(); err != nil || ent != int64(i) {
			t.Fatalf("entry %d: %d %v", i, ent, err)
		}
	}
}

func TestTransientFailureIsRetried(t *testing.T) {
	r := newRig(t, testConfig())
	ctx := context.Background()
	r.store.Inject(memstore.Rule{Op: memstore.OpPut, Nth: 1, Times: 2, Action: memstore.ActionFail})
	if _, _, err := r.w.Append(ctx, []byte("x")); err != nil {
		t.Fatalf("append after two failed puts: %v", err)
	}
	// A lost acknowledgement: the put lands, the writer hears an error, and
	// its retry must find its own block rather than report a fence.
	r.store.Inject(memstore.Rule{Op: memstore.OpPut, Nth: 1, Times: 1, Action: memstore.ActionFailAfter})
	if _, _, err := r.w.Append(ctx, []byte("y")); err != nil {
		t.Fatalf("append after a lost ack: %v", err)
	}
	if got := r.readAll(t, 0); fmt.Sprint(got) != "[x y]" {
		t.Fatalf("segment holds %v, want [x y]", got)
	}
}

func TestFailedBlockFailsEveryLaterEntry(t *testing.T) {
	cfg := testConfig()
	cfg.RetryTimeout = 20 * time.Millisecond
	r := newRig(t, cfg)
	ctx := context.Background()
	if _, _, err := r.w.Append(ctx, []byte("ok")); err != nil {
		t.Fatal(err)
	}
	hold := r.store.Inject(memstore.Rule{Op: memstore.OpPut, Action: memstore.ActionHold, Nth: 1, Times: 1})
	bad, _ := r.w.AppendAsync(ctx, []byte("doomed"))
	if err := r.store.WaitHeld(ctx, 1); err != nil {
		t.Fatal(err)
	}
	hold.Remove()
	r.store.Inject(memstore.Rule{Op: memstore.OpPut, Action: memstore.ActionFail, Times: -1})
	var later []*Future
	for i := range 20 {
		f, err := r.w.AppendAsync(ctx, []byte(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		later = append(later, f)
	}
	r.store.Crash(func(memstore.HeldOp) bool { return false }) // block 1's put never lands
	for _, f := range append([]*Future{bad}, later...) {
		<-f.Done()
		if _, _, err := f.Result(); err == nil {
			t.Fatal("an entry after a failed block succeeded")
		}
	}
	if _, _, err := bad.Result(); !errors.Is(err, walerr.ErrUnknownOutcome) {
		t.Fatalf("the failed block's entry: %v, want ErrUnknownOutcome (its PUT's fate was unknown)", err)
	}
	if _, _, err := r.w.Append(ctx, []byte("after")); err == nil {
		t.Fatal("append on a failed writer succeeded")
	}
	if err := r.w.Close(ctx); err == nil {
		t.Fatal("Close of a failed writer reported success")
	}
}

func TestFencedSlotFailsDefinitely(t *testing.T) {
	r := newRig(t, testConfig())
	ctx := context.Background()
	if _, _, err := r.w.Append(ctx, []byte("a")); err != nil {
		t.Fatal(err)
	}
	// Recovery by a newer writer fences the next slot.
	info, err := r.be.Recover(ctx, Ref{LogID: 7, SegmentID: 0}, 2)
	if err != nil || info.LastEntry != 0 || info.Blocks != 1 {
		t.Fatalf("recover: %+v %v", info, err)
	}
	_, _, err = r.w.Append(ctx, []byte("zombie"))
	if !errors.Is(err, walerr.ErrFenced) || errors.Is(err, walerr.ErrUnknownOutcome) {
		t.Fatalf("zombie append: %v, want a definite ErrFenced", err)
	}
	if got := r.readAll(t, 0); fmt.Sprint(got) != "[a]" {
		t.Fatalf("segment holds %v, want [a]", got)
	}
}

func TestRecoveryFencesTheFirstGap(t *testing.T) {
	r := newRig(t, testConfig())
	ctx := context.Background()
	if _, _, err := r.w.Append(ctx, []byte("a")); err != nil {
		t.Fatal(err)
	}
	// Block 1 is in flight (held) while block 2 lands: the segment must end
	// at block 0, and block 2 is garbage above the fence.
	r.store.Inject(memstore.Rule{Op: memstore.OpPut, Action: memstore.ActionHold, Nth: 1, Times: 1})
	f1, _ := r.w.AppendAsync(ctx, []byte("b"))
	if err := r.store.WaitHeld(ctx, 1); err != nil {
		t.Fatal(err)
	}
	cfgCut := make(chan struct{})
	go func() {
		defer close(cfgCut)
		for range 3 {
			_, _ = r.w.AppendAsync(ctx, []byte("c"))
		}
	}()
	<-cfgCut
	deadline := time.Now().Add(10 * time.Second)
	for len(r.store.Keys()) < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if len(r.store.Keys()) < 2 {
		t.Fatal("block 2 was not stored while block 1 was held")
	}
	info, err := r.be.Recover(ctx, Ref{LogID: 7, SegmentID: 0}, 2)
	if err != nil || info.LastEntry != 0 || info.Blocks != 1 {
		t.Fatalf("recover with block 1 in flight: %+v %v", info, err)
	}
	r.store.Release()
	<-f1.Done()
	if _, _, err := f1.Result(); !errors.Is(err, walerr.ErrFenced) {
		t.Fatalf("entry in the fenced slot: %v, want ErrFenced", err)
	}
	// Recovery is idempotent: a second run returns the same seal.
	again, err := r.be.Recover(ctx, Ref{LogID: 7, SegmentID: 0}, 3)
	if err != nil || again != info {
		t.Fatalf("second recovery: %+v %v, want %+v", again, err, info)
	}
}

func TestMemoryBudgetBlocksAppends(t *testing.T) {
	cfg := testConfig()
	cfg.MemoryBudget = 4 * (1000 + entryOverhead)
	cfg.MaxEntryBytes = 1024
	cfg.MaxBlockBytes = 1024
	r := newRig(t, cfg)
	ctx := context.Background()
	r.store.Inject(memstore.Rule{Op: memstore.OpPut, Action: memstore.ActionHold, Times: -1})
	accepted := 0
	for {
		actx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err := r.w.AppendAsync(actx, make([]byte, 1000))
		cancel()
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("blocked append: %v", err)
			}
			break
		}
		accepted++
		if accepted > 10 {
			t.Fatal("appends beyond the memory budget were accepted")
		}
	}
	if accepted != 4 {
		t.Fatalf("accepted %d appends of 1000 bytes under a budget for 4, want 4", accepted)
	}
	r.store.ClearRules()
	r.store.Release()
}

// TestClientBudgetBoundsAllWritersTogether: writers sharing a client's
// budget hold no more unacknowledged bytes together than it allows, each
// far below its own budget (1,024 logs must not hold 1,024 writer
// budgets), and the budget comes back as entries are acknowledged.
func TestClientBudgetBoundsAllWritersTogether(t *testing.T) {
	cfg := testConfig()
	cfg.MemoryBudget = 100 * (1000 + entryOverhead)
	cfg.MaxEntryBytes = 1024
	cfg.MaxBlockBytes = 1024
	cfg.ClientBudget = NewBudget(4 * (1000 + entryOverhead))
	rigs := []*rig{newRig(t, cfg), newRig(t, cfg)}
	ctx := context.Background()
	for _, r := range rigs {
		r.store.Inject(memstore.Rule{Op: memstore.OpPut, Action: memstore.ActionHold, Times: -1})
	}
	accepted := 0
	var futs []*Future
	for i := 0; ; i++ {
		actx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		f, err := rigs[i%2].w.AppendAsync(actx, make([]byte, 1000))
		cancel()
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "writer.clientMemoryBudgetBytes") {
				t.Fatalf("blocked append: %v, want a deadline naming writer.clientMemoryBudgetBytes", err)
			}
			break
		}
		futs = append(futs, f)
		if accepted++; accepted > 10 {
			t.Fatal("appends beyond the client's memory budget were accepted")
		}
	}
	if accepted != 4 {
		t.Fatalf("two writers accepted %d appends of 1000 bytes under a client budget for 4, want 4", accepted)
	}
	for _, r := range rigs {
		r.store.ClearRules()
		r.store.Release()
	}
	for _, f := range futs {
		<-f.Done()
		if _, _, err := f.Result(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 8 { // the budget came back: twice as much again goes through
		if _, _, err := rigs[i%2].w.Append(ctx, make([]byte, 1000)); err != nil {
			t.Fatalf("append %d after the acknowledgements: %v", i, err)
		}
	}
}

func TestRollAndSeal(t *testing.T) {
	cfg := testConfig()
	cfg.RollMaxBlocks = 2
	r := newRig(t, cfg)
	ctx := context.Background()
	for i := range 7 {
		seg, ent, err := r.w.Append(ctx, []byte(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(i / 2); seg != want || ent != int64(i%2) {
			t.Fatalf("append %d went to (%d,%d), want (%d,%d)", i, seg, ent, want, i%2)
		}
	}
	if err := r.w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r.meta.mu.Lock()
	defer r.meta.mu.Unlock()
	if len(r.meta.sealed) != 4 || r.meta.sealed[3] != (SealInfo{LastEntry: 0, Blocks: 1, Bytes: r.meta.sealed[3].Bytes}) {
		t.Fatalf("sealed %+v, want 4 segments, the last with one entry", r.meta.sealed)
	}
	for seg := range int64(3) {
		if info := r.meta.sealed[seg]; info.LastEntry != 1 || info.Blocks != 2 {
			t.Fatalf("segment %d sealed as %+v", seg, info)
		}
		if _, err := r.store.Get(ctx, SealKey("root", 7, seg)); err != nil {
			t.Fatalf("seal record of segment %d: %v", seg, err)
		}
	}
}

func TestBadEntries(t *testing.T) {
	r := newRig(t, testConfig())
	ctx := context.Background()
	if _, err := r.w.AppendAsync(ctx, nil); !errors.Is(err, walerr.ErrEmptyEntry) {
		t.Fatalf("empty: %v", err)
	}
	if _, err := r.w.AppendAsync(ctx, make([]byte, 1<<20+1)); !errors.Is(err, walerr.ErrEntryTooLarge) {
		t.Fatalf("too large: %v", err)
	}
	if n := r.store.Count(memstore.OpAny); n != 0 {
		t.Fatalf("rejected entries caused %d store operations", n)
	}
}

var _ objstore.Store = (*memstore.Store)(nil)

func TestSealInfoRoundTrip(t *testing.T) {
	for _, info := range []SealInfo{{LastEntry: -1}, {LastEntry: 0, Blocks: 1, Bytes: 90}, {LastEntry: 999, Blocks: 17, Bytes: 1 << 30}} {
		rec, err := EncodeSealInfo(3, 4, 5, info)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeSealInfo(rec)
		if err != nil || got != info {
			t.Fatalf("round trip of %+v: %+v %v", info, got, err)
		}
	}
	// More blocks than entries, or blocks without entries, cannot be.
	for _, bad := range []SealInfo{{LastEntry: 1, Blocks: 3}, {LastEntry: -1, Blocks: 2}} {
		if _, err := EncodeSealInfo(3, 4, 5, bad); err == nil {
			t.Fatalf("EncodeSealInfo(%+v) accepted an impossible seal", bad)
		}
	}
}

func TestLocateBlockFindsTheBlockHoldingAnEntry(t *testing.T) {
	cfg := testConfig()
	r := newRig(t, cfg)
	ctx := context.Background()
	// Blocks of uneven sizes: 1, 2, 3, ... entries.
	var firsts []int64
	next := int64(0)
	for n := 1; n <= 12; n++ {
		var futs []*Future
		r.store.Inject(memstore.Rule{Op: memstore.OpPut, Action: memstore.ActionHold, Nth: 1, Times: 1})
		f, _ := r.w.AppendAsync(ctx, []byte("hold")) // a block of one entry, held
		futs = append(futs, f)
		if err := r.store.WaitHeld(ctx, 1); err != nil {
			t.Fatal(err)
		}
		firsts = append(firsts, next)
		next++
		for i := 1; i < n; i++ { // these gather into the next block
			f, _ := r.w.AppendAsync(ctx, []byte("x"))
			futs = append(futs, f)
		}
		if n > 1 {
			firsts = append(firsts, next)
			next += int64(n - 1)
		}
		r.store.Release()
		for _, f := range futs {
			<-f.Done()
			if _, _, err := f.Result(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The writer may cut differently than planned under load: take the
	// block boundaries from storage.
	firsts = firsts[:0]
	c := r.be.OpenCursor(Ref{LogID: 7, SegmentID: 0})
	defer c.Close()
	for {
		h, _, err := c.Next(ctx)
		if errors.Is(err, ErrNoBlockYet) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		firsts = append(firsts, h.FirstEntry)
	}
	if len(firsts) < 15 {
		t.Fatalf("only %d blocks; the test needs blocks of several sizes", len(firsts))
	}
	blocks := int64(len(firsts))
	for e := int64(0); e < next; e++ {
		want := int64(0)
		for i, f := range firsts {
			if f <= e {
				want = int64(i)
			}
		}
		got, err := r.be.LocateBlock(ctx, Ref{LogID: 7, SegmentID: 0}, blocks, e)
		if err != nil || got != want {
			t.Fatalf("entry %d: block %d %v, want %d (block firsts %v)", e, got, err, want, firsts)
		}
	}
}
