package woodpecker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// countingMetrics counts what a client reports. It is safe for concurrent
// use.
type countingMetrics struct {
	mu          sync.Mutex
	appends     map[string]int // by outcome: ok, fenced, unknown, error
	appendBytes int
	started     int
	retries     int
	writesOK    int
	writesErr   int
	sealed      int
	fencing     map[string]int
	readEntries int
	readBytes   int64
}

var _ woodpecker.Metrics = (*countingMetrics)(nil)

func newCountingMetrics() *countingMetrics {
	return &countingMetrics{appends: map[string]int{}, fencing: map[string]int{}}
}

func (m *countingMetrics) ObserveAppend(n int, d time.Duration, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case err == nil:
		m.appends["ok"]++
		m.appendBytes += n
	case errors.Is(err, woodpecker.ErrFenced):
		m.appends["fenced"]++
	case errors.Is(err, woodpecker.ErrUnknownOutcome):
		m.appends["unknown"]++
	default:
		m.appends["error"]++
	}
}

func (m *countingMetrics) BlockWriteStarted(retry bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.started++
	if retry {
		m.retries++
	}
}

func (m *countingMetrics) BlockWriteDone(size int, d time.Duration, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.writesErr++
	} else {
		m.writesOK++
	}
}

func (m *countingMetrics) SegmentSealed() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sealed++
}

func (m *countingMetrics) Fencing(event string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fencing[event]++
}

func (m *countingMetrics) ObserveRead(n int, bytes int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.readEntries += n
	m.readBytes += bytes
}

// withMetrics returns b with m added to its client options.
func withMetrics(b backend, m woodpecker.Metrics) backend {
	return backend{name: b.name, setup: func(t *testing.T, cfg *options.Config) []woodpecker.Option {
		return append(b.setup(t, cfg), woodpecker.WithMetrics(m))
	}}
}

// TestMetricsCountAppendsReadsAndFencing checks that a client built
// WithMetrics reports each append once (however often its outcome is
// read), its block writes, reads, seals and a fence, on every kind of
// storage.
func TestMetricsCountAppendsReadsAndFencing(t *testing.T) {
	for _, b := range []backend{memBackend(nil), localBackend} {
		t.Run(b.name, func(t *testing.T) {
			m := newCountingMetrics()
			c := newClient(t, withMetrics(b, m), nil)
			l := openLog(t, c, "measured")
			ctx := context.Background()
			a, err := l.OpenWriter(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			const n = 40
			wantBytes := 0
			var futs []*woodpecker.AppendFuture
			for i := range n {
				wantBytes += len(payload(i))
				if i%2 == 0 {
					if _, err := a.Append(ctx, payload(i)); err != nil {
						t.Fatal(err)
					}
					continue
				}
				f, err := a.AppendAsync(ctx, payload(i))
				if err != nil {
					t.Fatal(err)
				}
				futs = append(futs, f)
			}
			for _, f := range futs {
				for range 2 { // an outcome read twice is one append
					if _, err := f.Wait(ctx); err != nil {
						t.Fatal(err)
					}
				}
			}
			// A newer writer recovers A's open segment and fences A.
			bw, err := l.OpenWriter(ctx, 2)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Append(ctx, []byte("zombie")); !errors.Is(err, woodpecker.ErrFenced) {
				t.Fatalf("zombie append: %v, want ErrFenced", err)
			}
			if _, err := bw.Append(ctx, []byte("from B")); err != nil {
				t.Fatal(err)
			}
			wantBytes += len("from B")
			_ = a.Close(ctx)
			if err := bw.Close(ctx); err != nil {
				t.Fatal(err)
			}
			readN(t, mustReader(t, l, woodpecker.Earliest()), n+1)

			m.mu.Lock()
			defer m.mu.Unlock()
			if want := map[string]int{"ok": n + 1, "fenced": 1}; !equalCounts(m.appends, want) {
				t.Errorf("appends %v, want %v", m.appends, want)
			}
			if m.appendBytes != wantBytes {
				t.Errorf("append bytes %d, want %d", m.appendBytes, wantBytes)
			}
			if m.writesOK == 0 || m.started != m.writesOK+m.writesErr {
				t.Errorf("block writes: %d started, %d ok, %d failed; want some, all finished",
					m.started, m.writesOK, m.writesErr)
			}
			// Sealed: A's segment by B's recovery, and B's at its Close.
			if m.sealed != 2 {
				t.Errorf("%d segments sealed, want 2", m.sealed)
			}
			want := map[string]int{woodpecker.FenceWriterFenced: 1, woodpecker.FenceSegmentRecovered: 1}
			if !equalCounts(m.fencing, want) {
				t.Errorf("fencing events %v, want %v", m.fencing, want)
			}
			if m.readEntries != n+1 || m.readBytes != int64(wantBytes) {
				t.Errorf("read %d entries of %d bytes, want %d of %d", m.readEntries, m.readBytes, n+1, wantBytes)
			}
		})
	}
}

func equalCounts(got, want map[string]int) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}
