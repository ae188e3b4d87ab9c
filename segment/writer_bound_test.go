package segment

import (
	"context"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
)

// hangingMeta is metadata whose store went away: its seal never answers
// until the caller's context ends, as an etcd request waiting for a
// connection does.
type hangingMeta struct{ fakeMeta }

func (m *hangingMeta) SealSegment(ctx context.Context, segID, rev int64, info SealInfo) error {
	<-ctx.Done()
	return ctx.Err()
}

// closeWithin runs Close(ctx) and fails the test unless it returns within
// a minute: a Close that never returns is the hang under test.
func closeWithin(t *testing.T, w *Writer, ctx context.Context) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- w.Close(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		t.Fatal("Close has not returned after a minute with the metadata store gone")
		return nil
	}
}

func hangingRig(t *testing.T, cfg WriterConfig) *Writer {
	t.Helper()
	store := memstore.New()
	w := NewWriter(cfg, NewObjectBackend(store, "root", cfg.MaxInflight), &hangingMeta{}, nil)
	if _, _, err := w.Append(context.Background(), []byte("durable")); err != nil {
		t.Fatal(err)
	}
	return w
}

// TestCloseSealIsBoundedByTheRetryTimeout: with metadata that never
// answers, the seal in Close gives up within the retry timeout, even with a
// Close context that never ends.
func TestCloseSealIsBoundedByTheRetryTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.RetryTimeout = 300 * time.Millisecond
	w := hangingRig(t, cfg)
	err := closeWithin(t, w, context.Background())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with metadata gone: %v, want a deadline error", err)
	}
}

// TestCloseSealEndsWithTheCloseContext: the seal in Close stops when the
// caller's context ends, well before the retry timeout.
func TestCloseSealEndsWithTheCloseContext(t *testing.T) {
	cfg := testConfig()
	cfg.RetryTimeout = time.Hour
	w := hangingRig(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	err := closeWithin(t, w, ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Close with metadata gone and its context canceled: %v, want context.Canceled", err)
	}
}
