package woodpecker_test

import (
	"context"
	"math"
	"testing"

	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// TestOpenWriterRefusesEpochsOutsideTheRange: an epoch below 0 or above
// MaxEpoch fails with ErrInvalidEpoch and changes nothing (no later writer
// is locked out); MaxEpoch itself is accepted and, as every epoch, taken
// over by a writer of the same epoch.
func TestOpenWriterRefusesEpochsOutsideTheRange(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, newClient(t, memBackend(nil), nil), "epochs")
	for _, epoch := range []int64{-1, -3, woodpecker.MaxEpoch + 1, math.MaxInt64} {
		w, err := l.OpenWriter(ctx, epoch)
		if w != nil {
			_ = w.Close(ctx)
		}
		checkBothErrorsIs(t, "OpenWriter", err, woodpecker.ErrInvalidEpoch)
	}
	if e, ok, err := l.WriterEpoch(ctx); err != nil || ok {
		t.Fatalf("after refused epochs the log's writer epoch is %d (set %v, %v), want none", e, ok, err)
	}
	a := writeEntries(t, l, woodpecker.MaxEpoch, 2)
	b := writeEntries(t, l, woodpecker.MaxEpoch, 1)
	if _, err := a.Append(ctx, payload(5)); !errorsIsBoth(err, woodpecker.ErrFenced) {
		t.Fatalf("append of the writer taken over at MaxEpoch: %v, want ErrFenced", err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	readN(t, mustReader(t, l, woodpecker.Earliest()), 3)
}
