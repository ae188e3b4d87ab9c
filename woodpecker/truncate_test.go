package woodpecker_test

import (
	"context"
	"testing"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// appendN opens a writer at epoch and appends n entries, returning their ids.
func appendN(t *testing.T, l *woodpecker.Log, epoch int64, n int) (*woodpecker.Writer, []woodpecker.EntryID) {
	t.Helper()
	ctx := context.Background()
	w, err := l.OpenWriter(ctx, epoch)
	if err != nil {
		t.Fatal(err)
	}
	var ids []woodpecker.EntryID
	for i := range n {
		id, err := w.Append(ctx, payload(i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return w, ids
}

// expectTruncation checks the log's truncation point.
func expectTruncation(t *testing.T, l *woodpecker.Log, want woodpecker.EntryID, wantOK bool) {
	t.Helper()
	got, ok, err := l.TruncationPoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ok != wantOK || (ok && got != want) {
		t.Fatalf("truncation point = %v (set %v), want %v (set %v)", got, ok, want, wantOK)
	}
}

// TestTruncateBeyondLastDurableEntryChangesNothing: a truncation past the
// log's end would hide the entries appended after it. It fails with
// ErrBeyondEnd, and entries appended later are all read from Earliest.
func TestTruncateBeyondLastDurableEntryChangesNothing(t *testing.T) {
	for _, b := range []backend{memBackend(nil), localBackend} {
		t.Run(b.name, func(t *testing.T) {
			c := newClient(t, b, nil)
			ctx := context.Background()
			l := openLog(t, c, "t1")
			if err := l.Truncate(ctx, woodpecker.EntryID{}); !errors.Is(err, woodpecker.ErrBeyondEnd) {
				t.Fatalf("truncate an empty log at 0/0 = %v, want ErrBeyondEnd", err)
			}
			w, ids := appendN(t, l, 1, 3)
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			for _, id := range []woodpecker.EntryID{{Segment: 5}, {Segment: 0, Entry: 4}, {Segment: 1}} {
				if err := l.Truncate(ctx, id); !errors.Is(err, woodpecker.ErrBeyondEnd) {
					t.Errorf("Truncate(%v) past the last entry %v = %v, want ErrBeyondEnd", id, ids[2], err)
				}
			}
			expectTruncation(t, l, woodpecker.EntryID{}, false)

			w2, later := appendN(t, l, 2, 3)
			defer w2.Close(ctx)
			got := readN(t, mustReader(t, l, woodpecker.Earliest()), 6)
			for i, id := range append(ids, later...) {
				if got[i].ID != id {
					t.Fatalf("read #%d = %v, want %v: an acknowledged entry is hidden", i, got[i].ID, id)
				}
			}
			// The last durable entry itself is a valid point, and so is the
			// id right after it: everything goes, later appends stay.
			if err := w2.Truncate(ctx, later[2]); err != nil {
				t.Fatalf("truncate at the last entry %v: %v", later[2], err)
			}
			expectTruncation(t, l, later[2], true)
			next := woodpecker.EntryID{Segment: later[2].Segment, Entry: later[2].Entry + 1}
			if err := w2.Truncate(ctx, next); err != nil {
				t.Fatalf("truncate right after the last entry, at %v: %v", next, err)
			}
			id, err := w2.Append(ctx, payload(7))
			if err != nil {
				t.Fatal(err)
			}
			if got := readN(t, mustReader(t, l, woodpecker.Earliest()), 1); got[0].ID != id {
				t.Fatalf("after truncating everything, Earliest reads %v first, want the new entry %v", got[0].ID, id)
			}
		})
	}
}

// TestSupersededWriterCannotTruncate: a writer that a newer writer fenced
// fails with ErrFenced on Truncate and moves nothing, so a zombie cannot cut
// entries the new owner has not consumed. An administrator's truncation
// still applies.
func TestSupersededWriterCannotTruncate(t *testing.T) {
	c := newClient(t, memBackend(nil), nil)
	ctx := context.Background()
	l := openLog(t, c, "zombie-trunc")
	w1, ids := appendN(t, l, 1, 5)
	defer w1.Close(ctx)
	if err := w1.Truncate(ctx, ids[1]); err != nil {
		t.Fatalf("the owner's truncation: %v", err)
	}
	w2, err := l.OpenWriter(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close(ctx)
	if _, err := w1.Append(ctx, payload(9)); !errors.Is(err, woodpecker.ErrFenced) {
		t.Fatalf("append of the superseded writer = %v, want ErrFenced", err)
	}
	// Above, at and below the current point: each is refused.
	for _, id := range []woodpecker.EntryID{ids[3], ids[1], ids[0], {Segment: 99}} {
		if err := w1.Truncate(ctx, id); !errors.Is(err, woodpecker.ErrFenced) {
			t.Errorf("superseded writer's Truncate(%v) = %v, want ErrFenced", id, err)
		}
	}
	expectTruncation(t, l, ids[1], true)
	got := readN(t, mustReader(t, l, woodpecker.Earliest()), 4)
	if got[0].ID != ids[1] {
		t.Fatalf("the new owner reads from %v, want %v", got[0].ID, ids[1])
	}

	// Same epoch, newer writer: the older one is fenced too.
	w3, err := l.OpenWriter(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer w3.Close(ctx)
	if err := w2.Truncate(ctx, ids[3]); !errors.Is(err, woodpecker.ErrFenced) {
		t.Errorf("Truncate by a writer replaced at the same epoch = %v, want ErrFenced", err)
	}
	if err := w3.Truncate(ctx, ids[2]); err != nil {
		t.Fatalf("the new owner's truncation: %v", err)
	}
	if err := l.Truncate(ctx, ids[4]); err != nil {
		t.Fatalf("administrator truncation: %v", err)
	}
	expectTruncation(t, l, ids[4], true)
}

// TestTruncateDeletedLogFails: truncating a log deleted under the handle
// ends with ErrLogNotFound instead of retrying forever.
func TestTruncateDeletedLogFails(t *testing.T) {
	c := newClient(t, memBackend(nil), nil)
	ctx := context.Background()
	l := openLog(t, c, "gone")
	w, ids := appendN(t, l, 1, 2)
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteLog(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := l.Truncate(ctx, ids[0]); !errors.Is(err, woodpecker.ErrLogNotFound) {
		t.Fatalf("truncate a deleted log = %v, want ErrLogNotFound", err)
	}
}
