package woodpecker_test

import (
	"context"
	"testing"
	"time"

	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// TestOpenReaderOnADeletedLogFailsWithErrLogNotFound: a Log handle whose
// log was deleted (and its name perhaps taken again) opens no reader.
func TestOpenReaderOnADeletedLogFailsWithErrLogNotFound(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, memBackend(nil), nil)
	l := openLog(t, c, "doomed")
	if err := writeEntries(t, l, 1, 3).Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteLog(ctx, "doomed"); err != nil {
		t.Fatal(err)
	}
	for _, recreated := range []bool{false, true} {
		if recreated {
			openLog(t, c, "doomed")
		}
		r, err := l.OpenReader(ctx, woodpecker.Earliest())
		if r != nil {
			r.Close()
		}
		checkBothErrorsIs(t, "OpenReader on a deleted log", err, woodpecker.ErrLogNotFound)
	}
}

// TestReaderFollowingADeletedLogEndsWithErrLogNotFound: a reader waiting at
// the tail of a log that gets deleted returns ErrLogNotFound instead of
// waiting forever, whether the log had segments or none.
func TestReaderFollowingADeletedLogEndsWithErrLogNotFound(t *testing.T) {
	for _, entries := range []int{0, 3} {
		t.Run(map[int]string{0: "empty", 3: "written"}[entries], func(t *testing.T) {
			ctx := context.Background()
			c := newClient(t, memBackend(nil), nil)
			l := openLog(t, c, "followed")
			if entries > 0 {
				writeEntries(t, l, 1, entries) // left open: the reader follows an open segment
			}
			r := mustReader(t, l, woodpecker.Earliest())
			readN(t, r, entries)
			done := make(chan error, 1)
			go func() {
				nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				_, err := r.Next(nctx)
				done <- err
			}()
			expectSilentFor(t, done, 200*time.Millisecond)
			if err := c.DeleteLog(ctx, "followed"); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				checkBothErrorsIs(t, "Next on a deleted log", err, woodpecker.ErrLogNotFound)
			case <-time.After(10 * time.Second):
				t.Fatal("Next still waits 10s after the log was deleted")
			}
			nctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_, err := r.Next(nctx)
			checkBothErrorsIs(t, "Next again", err, woodpecker.ErrLogNotFound)
		})
	}
}

// expectSilentFor fails the test if done delivers within d.
func expectSilentFor(t *testing.T, done <-chan error, d time.Duration) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("Next returned before the deletion: %v", err)
	case <-time.After(d):
	}
}
