package segment_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"go.uber.org/mock/gomock"

	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/mocks"
	"github.com/woodpecker-wal/woodpecker/segment"
)

// TestFencedSealFailsBlocksInFlightAsUnknown: a writer rolls from segment
// 0 to segment 1 after one block each. The metadata (a mocked
// segment.Meta) creates both segments, then refuses segment 0's seal as
// fenced while the block of segment 1 is being written. That block may
// still land, and a newer writer's recovery of segment 1 would then keep
// it: its entry fails as ErrFenced of unknown outcome, never as a definite
// failure. The entry acknowledged before keeps its acknowledgement, and
// an append after the writer failed fails definitely, writing nothing.
func TestFencedSealFailsBlocksInFlightAsUnknown(t *testing.T) {
	ctrl := gomock.NewController(t)
	meta := mocks.NewMockSegmentMeta(ctrl)
	meta.EXPECT().CreateSegment(gomock.Any(), gomock.Any(), gomock.Any()).DoAndReturn(
		func(ctx context.Context, segID int64, placement string) (int64, error) {
			if segID > 1 {
				t.Errorf("segment %d created after the writer was fenced", segID)
			}
			return 10 + segID, nil
		}).AnyTimes()
	// The seal answers once the block of segment 1 is being written.
	answer := make(chan struct{})
	meta.EXPECT().SealSegment(gomock.Any(), int64(0), int64(10), gomock.Any()).DoAndReturn(
		func(ctx context.Context, segID, rev int64, info segment.SealInfo) error {
			select {
			case <-answer:
			case <-ctx.Done():
				t.Errorf("seal of segment 0 cancelled: %v", ctx.Err())
			}
			return errors.Wrap(walerr.ErrFenced, "mocked meta: log owned by epoch 2")
		})

	store := memstore.New()
	inFlight := segment.BlockKey("root", 7, 1, 0)
	store.Inject(memstore.Rule{Op: memstore.OpPut, KeyRegexp: regexp.MustCompile("^" + regexp.QuoteMeta(inFlight) + "$"),
		Action: memstore.ActionHold})
	cfg := segment.WriterConfig{
		LogID: 7, Epoch: 1,
		MaxEntryBytes: 1 << 20, MaxBlockBytes: 64 << 10, FlushDelay: time.Millisecond,
		MaxInflight: 4, MemoryBudget: 8 << 20,
		RollMaxBytes: 1 << 30, RollMaxAge: time.Hour, RollMaxBlocks: 1,
		RetryInitialBackoff: time.Millisecond, RetryMaxBackoff: 10 * time.Millisecond, RetryTimeout: 2 * time.Second,
	}
	w := segment.NewWriter(cfg, segment.NewObjectBackend(store, "root", cfg.MaxInflight), meta, nil)
	t.Cleanup(func() {
		store.ClearRules()
		store.Release()
		_ = w.Close(context.Background())
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if seg, entry, err := w.Append(ctx, []byte("a")); err != nil || seg != 0 || entry != 0 {
		t.Fatalf("first append: (%d,%d) %v", seg, entry, err)
	}
	f, err := w.AppendAsync(ctx, []byte("b"))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.WaitHeld(ctx, 1); err != nil { // b's block is being written
		t.Fatal(err)
	}
	close(answer)
	select {
	case <-f.Done():
	case <-ctx.Done():
		t.Fatal("entry b never settled")
	}
	if _, _, err := f.Result(); !errors.Is(err, walerr.ErrFenced) || !errors.Is(err, walerr.ErrUnknownOutcome) {
		t.Fatalf("entry whose block was in flight when the writer was fenced: %v, want ErrFenced of unknown outcome", err)
	}
	store.ClearRules()
	store.Release()

	if _, _, err := w.Append(ctx, []byte("c")); !errors.Is(err, walerr.ErrFenced) || errors.Is(err, walerr.ErrUnknownOutcome) {
		t.Fatalf("append after the writer was fenced: %v, want a definite ErrFenced", err)
	}
	if err := w.Close(ctx); !errors.Is(err, walerr.ErrFenced) {
		t.Fatalf("close of a fenced writer: %v, want ErrFenced", err)
	}
	if _, err := store.Get(ctx, segment.BlockKey("root", 7, 0, 0)); err != nil {
		t.Fatalf("the acknowledged block: %v", err)
	}
	for _, key := range []string{segment.BlockKey("root", 7, 1, 1), segment.BlockKey("root", 7, 2, 0)} {
		if _, err := store.Get(ctx, key); err == nil {
			t.Fatalf("%s was written after the writer was fenced", key)
		}
	}
}
