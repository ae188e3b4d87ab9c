package woodpecker_test

import (
	"context"
	stderrors "errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// blockKey matches the object key of a block.
var blockKey = regexp.MustCompile(`/b-[0-9]+$`)

// sentinelPath is one way the package returns one of its sentinels.
type sentinelPath struct {
	path string
	want error
	// err makes the package return the error under test.
	err func(t *testing.T) error
}

// checkBothErrorsIs fails the test unless err matches want under the
// standard library's errors.Is and under cockroachdb's.
func checkBothErrorsIs(t *testing.T, path string, err, want error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want one matching %v", path, want)
		return
	}
	if !stderrors.Is(err, want) {
		t.Errorf("%s: the standard library's errors.Is(%q, %v) = false", path, err, want)
	}
	if !errors.Is(err, want) {
		t.Errorf("%s: cockroachdb's errors.Is(%q, %v) = false", path, err, want)
	}
}

// errorsIsBoth reports whether both errors.Is functions match.
func errorsIsBoth(err, want error) bool { return stderrors.Is(err, want) && errors.Is(err, want) }

// heldWriter returns a writer on a fresh log of a memstore whose block
// uploads are held until the test releases them (or ends).
func heldWriter(t *testing.T) (*memstore.Store, *woodpecker.Writer) {
	t.Helper()
	store := memstore.New()
	c := newClient(t, memBackend(store), nil)
	w, err := openLog(t, c, "held").OpenWriter(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	store.Inject(memstore.Rule{Op: memstore.OpPut, KeyRegexp: blockKey, Action: memstore.ActionHold})
	t.Cleanup(func() {
		store.ClearRules()
		store.Release()
		_ = w.Close(context.Background())
	})
	return store, w
}

// waitHeld waits until n uploads are held.
func waitHeld(t *testing.T, store *memstore.Store, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := store.WaitHeld(ctx, n); err != nil {
		t.Fatal(err)
	}
}

// ended returns a context that is already done.
func ended() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// writeEntries opens a writer at epoch on l, appends n entries and returns
// it still open.
func writeEntries(t *testing.T, l *woodpecker.Log, epoch int64, n int) *woodpecker.Writer {
	t.Helper()
	ctx := context.Background()
	w, err := l.OpenWriter(ctx, epoch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close(ctx) })
	for i := range n {
		if _, err := w.Append(ctx, payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// sentinelPaths lists, for every sentinel the package exports, the paths
// that return it.
func sentinelPaths() []sentinelPath {
	ctx := context.Background()
	return []sentinelPath{
		{"OpenWriter below the log's epoch", woodpecker.ErrFenced, func(t *testing.T) error {
			l := openLog(t, newClient(t, memBackend(nil), nil), "fenced")
			writeEntries(t, l, 2, 1)
			_, err := l.OpenWriter(ctx, 1)
			return err
		}},
		{"Append of a superseded writer", woodpecker.ErrFenced, func(t *testing.T) error {
			l := openLog(t, newClient(t, memBackend(nil), nil), "zombie")
			a := writeEntries(t, l, 1, 3)
			writeEntries(t, l, 2, 0)
			_, err := a.Append(ctx, payload(9))
			return err
		}},
		{"Truncate of a superseded writer", woodpecker.ErrFenced, func(t *testing.T) error {
			l := openLog(t, newClient(t, memBackend(nil), nil), "zombie")
			a := writeEntries(t, l, 1, 3)
			writeEntries(t, l, 2, 0)
			return a.Truncate(ctx, woodpecker.EntryID{Entry: 1})
		}},
		{"AppendFuture.Wait abandoned (ctx ended)", woodpecker.ErrUnknownOutcome, func(t *testing.T) error {
			store, w := heldWriter(t)
			f, err := w.AppendAsync(ctx, payload(1))
			if err != nil {
				t.Fatal(err)
			}
			waitHeld(t, store, 1)
			_, err = f.Wait(ended())
			return err
		}},
		{"Append abandoned (ctx ended while waiting)", woodpecker.ErrUnknownOutcome, func(t *testing.T) error {
			store, w := heldWriter(t)
			go func() { waitHeld(t, store, 1) }()
			actx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			_, err := w.Append(actx, payload(1))
			return err
		}},
		{"Close abandoned with appends pending", woodpecker.ErrUnknownOutcome, func(t *testing.T) error {
			store, w := heldWriter(t)
			if _, err := w.AppendAsync(ctx, payload(1)); err != nil {
				t.Fatal(err)
			}
			waitHeld(t, store, 1)
			return w.Close(ended())
		}},
		{"pending append of a writer whose Close was abandoned", woodpecker.ErrUnknownOutcome, func(t *testing.T) error {
			store, w := heldWriter(t)
			f, err := w.AppendAsync(ctx, payload(1))
			if err != nil {
				t.Fatal(err)
			}
			waitHeld(t, store, 1)
			_ = w.Close(ended())
			_, err = f.Wait(ctx)
			return err
		}},
		{"Append whose uploads kept failing", woodpecker.ErrUnknownOutcome, func(t *testing.T) error {
			store := memstore.New()
			c := newClient(t, memBackend(store), func(cfg *options.Config) {
				cfg.Writer.UploadRetry.InitialBackoff = 10 * time.Millisecond
				cfg.Writer.UploadRetry.MaxBackoff = 20 * time.Millisecond
				cfg.Writer.UploadRetry.TotalTimeout = 200 * time.Millisecond
			})
			w := writeEntries(t, openLog(t, c, "failing"), 1, 0)
			store.Inject(memstore.Rule{Op: memstore.OpPut, KeyRegexp: blockKey, Action: memstore.ActionFail})
			_, err := w.Append(ctx, payload(1))
			store.ClearRules()
			return err
		}},
		{"Append in flight when a newer writer took over (local FS)", woodpecker.ErrUnknownOutcome, func(t *testing.T) error {
			l := openLog(t, newClient(t, localBackend, nil), "superseded")
			a := writeEntries(t, l, 1, 3)
			writeEntries(t, l, 2, 0)
			_, err := a.Append(ctx, payload(9))
			return err
		}},
		{"OpenLog of a missing log", woodpecker.ErrLogNotFound, func(t *testing.T) error {
			_, err := newClient(t, memBackend(nil), nil).OpenLog(ctx, "missing")
			return err
		}},
		{"DeleteLog of a missing log", woodpecker.ErrLogNotFound, func(t *testing.T) error {
			return newClient(t, memBackend(nil), nil).DeleteLog(ctx, "missing")
		}},
		{"OpenReader on a deleted log", woodpecker.ErrLogNotFound, func(t *testing.T) error {
			c := newClient(t, memBackend(nil), nil)
			l := openLog(t, c, "deleted")
			if err := c.DeleteLog(ctx, "deleted"); err != nil {
				t.Fatal(err)
			}
			_, err := l.OpenReader(ctx, woodpecker.Earliest())
			return err
		}},
		{"Reader.Next on a log deleted while it follows", woodpecker.ErrLogNotFound, func(t *testing.T) error {
			c := newClient(t, memBackend(nil), nil)
			r := mustReader(t, openLog(t, c, "deleted"), woodpecker.Earliest())
			if err := c.DeleteLog(ctx, "deleted"); err != nil {
				t.Fatal(err)
			}
			nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			_, err := r.Next(nctx)
			return err
		}},
		{"CreateLog of a taken name", woodpecker.ErrLogExists, func(t *testing.T) error {
			c := newClient(t, memBackend(nil), nil)
			openLog(t, c, "taken")
			return c.CreateLog(ctx, "taken")
		}},
		{"Append of an oversized entry", woodpecker.ErrEntryTooLarge, func(t *testing.T) error {
			c := newClient(t, memBackend(nil), func(cfg *options.Config) { cfg.Writer.MaxEntryBytes = 1024 })
			_, err := writeEntries(t, openLog(t, c, "big"), 1, 0).Append(ctx, make([]byte, 1025))
			return err
		}},
		{"AppendAsync of an oversized entry", woodpecker.ErrEntryTooLarge, func(t *testing.T) error {
			c := newClient(t, memBackend(nil), func(cfg *options.Config) { cfg.Writer.MaxEntryBytes = 1024 })
			_, err := writeEntries(t, openLog(t, c, "big"), 1, 0).AppendAsync(ctx, make([]byte, 1025))
			return err
		}},
		{"Append of an empty entry", woodpecker.ErrEmptyEntry, func(t *testing.T) error {
			_, err := writeEntries(t, openLog(t, newClient(t, memBackend(nil), nil), "empty"), 1, 0).Append(ctx, nil)
			return err
		}},
		{"Reader.Next below the first entry still stored", woodpecker.ErrTruncated, func(t *testing.T) error {
			c := newClient(t, memBackend(nil), func(cfg *options.Config) { cfg.Retention.TTL = 0 })
			l := openLog(t, c, "gone")
			if err := writeEntries(t, l, 1, 3).Close(ctx); err != nil {
				t.Fatal(err)
			}
			w := writeEntries(t, l, 2, 3) // a second segment
			st, err := l.Stats(ctx)
			if err != nil || len(st.Segments) != 2 {
				t.Fatalf("stats: %+v %v, want two segments", st, err)
			}
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if err := l.Truncate(ctx, woodpecker.EntryID{Segment: st.Segments[1].ID}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.RunGC(ctx); err != nil {
				t.Fatal(err)
			}
			r := mustReader(t, l, woodpecker.At(woodpecker.EntryID{}))
			nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			_, err = r.Next(nctx)
			return err
		}},
		{"Reader.Next of a corrupt block", woodpecker.ErrCorrupt, func(t *testing.T) error {
			store := memstore.New()
			l := openLog(t, newClient(t, memBackend(store), nil), "corrupt")
			if err := writeEntries(t, l, 1, 3).Close(ctx); err != nil {
				t.Fatal(err)
			}
			var key string
			for _, k := range store.Keys() {
				if strings.HasSuffix(k, "/"+segment.BlockName(0)) {
					key = k
				}
			}
			data, _ := store.Peek(key)
			if err := store.Corrupt(key, int64(len(data)-1), 0); err != nil {
				t.Fatal(err)
			}
			nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			_, err := mustReader(t, l, woodpecker.Earliest()).Next(nctx)
			return err
		}},
		{"Append after Close", woodpecker.ErrClosed, func(t *testing.T) error {
			w := writeEntries(t, openLog(t, newClient(t, memBackend(nil), nil), "closed"), 1, 0)
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			_, err := w.Append(ctx, payload(1))
			return err
		}},
		{"Reader.Next after Close", woodpecker.ErrClosed, func(t *testing.T) error {
			r := mustReader(t, openLog(t, newClient(t, memBackend(nil), nil), "closed"), woodpecker.Earliest())
			r.Close()
			_, err := r.Next(ctx)
			return err
		}},
		{"OpenLog on a closed client", woodpecker.ErrClosed, func(t *testing.T) error {
			c := newClient(t, memBackend(nil), nil)
			_ = c.Close()
			_, err := c.OpenLog(ctx, "any")
			return err
		}},
		{"ParseEntryID of a malformed id", woodpecker.ErrInvalidID, func(t *testing.T) error {
			_, err := woodpecker.ParseEntryID("1/x")
			return err
		}},
		{"OpenReader at a negative id", woodpecker.ErrInvalidID, func(t *testing.T) error {
			l := openLog(t, newClient(t, memBackend(nil), nil), "neg")
			_, err := l.OpenReader(ctx, woodpecker.At(woodpecker.EntryID{Segment: -1}))
			return err
		}},
		{"Truncate at a negative id", woodpecker.ErrInvalidID, func(t *testing.T) error {
			l := openLog(t, newClient(t, memBackend(nil), nil), "neg")
			return l.Truncate(ctx, woodpecker.EntryID{Segment: -1})
		}},
		{"Truncate past the log's end", woodpecker.ErrBeyondEnd, func(t *testing.T) error {
			l := openLog(t, newClient(t, memBackend(nil), nil), "short")
			writeEntries(t, l, 1, 3)
			return l.Truncate(ctx, woodpecker.EntryID{Segment: 5})
		}},
		{"CreateLog of a malformed name", woodpecker.ErrInvalidName, func(t *testing.T) error {
			return newClient(t, memBackend(nil), nil).CreateLog(ctx, "a/b")
		}},
		{"OpenWriter on a store without conditional writes", woodpecker.ErrWeakFencing, func(t *testing.T) error {
			store := memstore.New(memstore.WithoutConditionalWrites())
			_, err := openLog(t, newClient(t, memBackend(store), nil), "weak").OpenWriter(ctx, 1)
			return err
		}},
		{"OpenWriter at an epoch above MaxEpoch", woodpecker.ErrInvalidEpoch, func(t *testing.T) error {
			_, err := openLog(t, newClient(t, memBackend(nil), nil), "epoch").OpenWriter(ctx, woodpecker.MaxEpoch+1)
			return err
		}},
		{"New with an invalid configuration", options.ErrInvalidConfig, func(t *testing.T) error {
			cfg := options.Default()
			cfg.Writer.MaxEntryBytes = -1
			_, err := woodpecker.New(ctx, cfg, woodpecker.WithEtcdClient(testenv.Etcd(t)), woodpecker.WithObjectStore(memstore.New()))
			return err
		}},
	}
}

// TestSentinelsMatchUnderBothErrorsIs: every sentinel the package exports
// matches, on every path that returns it, under the standard library's
// errors.Is as well as cockroachdb's. A caller using the standard library
// must not take an unknown outcome for a definite failure (and resend a
// possibly durable entry).
func TestSentinelsMatchUnderBothErrorsIs(t *testing.T) {
	covered := map[error]bool{}
	for _, p := range sentinelPaths() {
		covered[p.want] = true
		t.Run(p.path, func(t *testing.T) {
			checkBothErrorsIs(t, p.path, p.err(t), p.want)
		})
	}
	for name, s := range exportedSentinels {
		if !covered[s] {
			t.Errorf("no path checked for %s", name)
		}
	}
}

// exportedSentinels are the sentinels of errors.go, by name.
var exportedSentinels = map[string]error{
	"ErrFenced":         woodpecker.ErrFenced,
	"ErrLogNotFound":    woodpecker.ErrLogNotFound,
	"ErrLogExists":      woodpecker.ErrLogExists,
	"ErrEntryTooLarge":  woodpecker.ErrEntryTooLarge,
	"ErrEmptyEntry":     woodpecker.ErrEmptyEntry,
	"ErrTruncated":      woodpecker.ErrTruncated,
	"ErrCorrupt":        woodpecker.ErrCorrupt,
	"ErrUnknownOutcome": woodpecker.ErrUnknownOutcome,
	"ErrClosed":         woodpecker.ErrClosed,
	"ErrInvalidID":      woodpecker.ErrInvalidID,
	"ErrBeyondEnd":      woodpecker.ErrBeyondEnd,
	"ErrInvalidName":    woodpecker.ErrInvalidName,
	"ErrWeakFencing":    woodpecker.ErrWeakFencing,
	"ErrInvalidEpoch":   woodpecker.ErrInvalidEpoch,
}

// TestEverySentinelHasAPath keeps the table complete: a sentinel added to
// errors.go needs its paths in sentinelPaths.
func TestEverySentinelHasAPath(t *testing.T) {
	src, err := os.ReadFile("errors.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^\s+(Err\w+)\s+=`).FindAllStringSubmatch(string(src), -1) {
		if _, ok := exportedSentinels[m[1]]; !ok {
			t.Errorf("%s is exported by errors.go but not in exportedSentinels: add it and the paths that return it", m[1])
		}
	}
}
