package bench

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// newClient returns a client on a fresh etcd prefix. With store nil it
// writes to a local directory.
func newClient(t testing.TB, store objstore.Store, tweak func(*options.Config)) *woodpecker.Client {
	t.Helper()
	cfg := options.Default()
	cfg.Etcd.RootPath = testenv.UniquePrefix(t)
	opts := []woodpecker.Option{woodpecker.WithEtcdClient(testenv.Etcd(t))}
	if store != nil {
		opts = append(opts, woodpecker.WithObjectStore(store))
	} else {
		cfg.Storage.Type = options.StorageLocal
		cfg.Storage.RootPath = t.TempDir()
	}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := woodpecker.New(context.Background(), cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// progressLog records progress reports.
type progressLog struct {
	mu      sync.Mutex
	reports []Progress
}

func (p *progressLog) add(r Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reports = append(p.reports, r)
}

// last returns the last report of each phase.
func (p *progressLog) last() map[Phase]Progress {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[Phase]Progress{}
	for _, r := range p.reports {
		out[r.Phase] = r
	}
	return out
}

type countingTimer struct{ starts, stops int }

func (c *countingTimer) StartTimer() { c.starts++ }
func (c *countingTimer) StopTimer()  { c.stops++ }

func TestRunObjectStore(t *testing.T) {
	mem := memstore.New()
	counter := NewCountingStore(mem)
	c := newClient(t, counter, func(cfg *options.Config) {
		cfg.Writer.MaxBlockBytes = 64 << 10
		cfg.Writer.RollMaxBlocks = 10 // several segments
	})
	var progress progressLog
	timer := &countingTimer{}
	const entry, total = 1 << 10, 2 << 20
	res, err := Run(context.Background(), Config{
		Client: c, EntrySize: entry, TotalBytes: total,
		Concurrency: 4, AsyncDepth: 16, Logs: 2,
		Raw: StoreTarget{Store: mem}, Counter: counter,
		Interval: 5 * time.Millisecond, Samples: 100,
		Progress: progress.add, Timer: timer,
	})
	if err != nil {
		t.Fatal(err)
	}
	const entries = total / entry
	if res.Write.Entries != entries || res.Write.Bytes != total {
		t.Errorf("wrote %d entries, %d bytes; want %d, %d", res.Write.Entries, res.Write.Bytes, entries, total)
	}
	if res.Read == nil || res.Read.Entries != entries || res.Read.Bytes != total {
		t.Errorf("read back %+v; want %d entries", res.Read, entries)
	}
	if res.Write.Latency.Count != entries {
		t.Errorf("latency count %d, want %d", res.Write.Latency.Count, entries)
	}
	l := res.Write.Latency
	if !(l.MinMs <= l.P50Ms && l.P50Ms <= l.P99Ms && l.P99Ms <= l.P999Ms && l.P999Ms <= l.MaxMs) {
		t.Errorf("latency percentiles out of order: %+v", l)
	}
	var binned int64
	for _, b := range res.Histogram {
		binned += b.Count
	}
	if binned != entries {
		t.Errorf("histogram holds %d appends, want %d", binned, entries)
	}
	if len(res.Samples) != 100 {
		t.Errorf("%d samples kept, want the reservoir's 100", len(res.Samples))
	}
	var tlEntries int64
	for _, iv := range res.Timeline {
		tlEntries += iv.Entries
	}
	if tlEntries != entries {
		t.Errorf("timeline counts %d entries, want %d", tlEntries, entries)
	}
	st := res.Storage
	if st.Blocks == 0 || st.Segments < 2 || st.StoredBytes <= total {
		t.Errorf("storage %+v: want blocks, several segments, more than %d bytes (headers)", st, total)
	}
	// Every block and every seal record is one create-only PUT.
	if st.WriteCalls == nil || st.WriteCalls.Puts != st.Blocks+st.Segments {
		t.Errorf("write calls %+v; want %d PUTs (%d blocks + %d seals)", st.WriteCalls, st.Blocks+st.Segments, st.Blocks, st.Segments)
	}
	if st.PutsPerGiB == nil || *st.PutsPerGiB <= 0 || st.ReadCalls == nil || st.ReadCalls.Gets < st.Blocks {
		t.Errorf("puts/GiB %v, read calls %+v; want both counted", st.PutsPerGiB, st.ReadCalls)
	}
	raw := res.Raw
	if raw == nil || raw.Throughput.Streams != 2*4 || raw.Throughput.OpBytes != 64<<10 ||
		len(raw.ThroughputRuns) != 2 || raw.ThroughputRuns[0].Ops != total/(64<<10) || raw.ThroughputRuns[1].Ops != total/(64<<10) ||
		raw.Throughput.Ops != 2*total/(64<<10) || raw.Throughput.Latency.Count != raw.Throughput.Ops ||
		raw.SingleOp.OpBytes != entry || raw.SingleOp.Ops != 200 {
		t.Errorf("raw %+v: want two runs of 8 streams of 64 KiB blocks over %d bytes each, and 200 single ops of 1 KiB", raw, total)
	} else if mean := (raw.ThroughputRuns[0].MiBps + raw.ThroughputRuns[1].MiBps) / 2; raw.Throughput.MiBps < mean*0.999 || raw.Throughput.MiBps > mean*1.001 {
		t.Errorf("raw throughput %v MiB/s, want the runs' mean %v", raw.Throughput.MiBps, mean)
	}
	if res.Ratios == nil || res.Ratios.WriteMiBps <= 0 || res.Ratios.P50VsRawOp <= 0 {
		t.Errorf("ratios %+v", res.Ratios)
	}
	for _, k := range mem.Keys() {
		if strings.HasPrefix(k, "bench-raw/") {
			t.Errorf("raw object %s left behind", k)
			break
		}
	}
	if logs, err := c.ListLogs(context.Background()); err != nil || len(logs) != 0 {
		t.Errorf("logs left: %v %v", logs, err)
	}
	last := progress.last()
	for _, ph := range []Phase{PhaseRawThroughput, PhaseRawOp, PhaseWrite, PhaseRead} {
		if p, ok := last[ph]; !ok || !p.Done || p.Bytes != p.TotalBytes {
			t.Errorf("phase %s: last progress %+v, want done at its total", ph, p)
		}
	}
	if timer.starts != 1 || timer.stops != 1 {
		t.Errorf("timer started %d and stopped %d times, want once each", timer.starts, timer.stops)
	}
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(data, &back); err != nil || back.Write.Entries != entries || back.Raw.SingleOp.Ops != 200 {
		t.Errorf("JSON round trip: %v, %+v", err, back.Write)
	}
	if !strings.Contains(res.Summary(), "PUTs/GiB") {
		t.Errorf("summary %q misses the PUT count", res.Summary())
	}
}

func TestRunLocalDirByDuration(t *testing.T) {
	c := newClient(t, nil, nil)
	rawDir := t.TempDir()
	res, err := Run(context.Background(), Config{
		Client: c, EntrySize: 512, Duration: 100 * time.Millisecond,
		Raw: DirTarget{Dir: rawDir}, RawOps: 30, RawOnce: true, KeepLogs: true, LogPrefix: "lone",
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Write.Entries == 0 || res.Read == nil || res.Read.Entries != res.Write.Entries {
		t.Errorf("wrote %d entries, read back %+v", res.Write.Entries, res.Read)
	}
	// A lone synchronous writer gets one block per entry.
	if res.Storage.Blocks != res.Write.Entries {
		t.Errorf("%d blocks for %d synchronous appends, want one each", res.Storage.Blocks, res.Write.Entries)
	}
	if res.Raw.Throughput.Streams != 1 || res.Raw.Throughput.Ops == 0 || res.Raw.SingleOp.Ops != 30 ||
		len(res.Raw.ThroughputRuns) != 1 {
		t.Errorf("raw %+v: want one run of one stream, and 30 single ops", res.Raw)
	}
	if res.Storage.WriteCalls != nil {
		t.Errorf("write calls %+v without a counter", res.Storage.WriteCalls)
	}
	left, err := os.ReadDir(rawDir)
	if err != nil || len(left) != 0 {
		t.Errorf("raw files left: %v %v", left, err)
	}
	if ok, err := c.LogExists(context.Background(), "lone-0"); err != nil || !ok {
		t.Errorf("KeepLogs: log lone-0 exists %v, %v", ok, err)
	}
}

func TestRunStopsOnFailedAppend(t *testing.T) {
	mem := memstore.New()
	mem.Inject(memstore.Rule{
		Op: memstore.OpPut, KeyRegexp: regexp.MustCompile(`/b-`), Nth: 3, Times: -1, Action: memstore.ActionFail,
		Err: walerr.Mark(errors.New("injected"), walerr.ErrFenced), // final: no retries
	})
	c := newClient(t, mem, func(cfg *options.Config) { cfg.Writer.MaxBlockBytes = 4 << 10 })
	for _, depth := range []int{0, 8} {
		_, err := Run(context.Background(), Config{
			Client: c, EntrySize: 1 << 10, TotalBytes: 1 << 20, Concurrency: 2, AsyncDepth: depth,
		})
		if !errors.Is(err, walerr.ErrFenced) {
			t.Errorf("depth %d: %v, want the append's failure", depth, err)
		}
	}
}

func TestConfigRejected(t *testing.T) {
	c := newClient(t, memstore.New(), func(cfg *options.Config) { cfg.Writer.MaxEntryBytes = 1 << 10 })
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no client", Config{EntrySize: 1, TotalBytes: 1}},
		{"no entry size", Config{Client: c, TotalBytes: 1}},
		{"entry too large", Config{Client: c, EntrySize: 2 << 10, TotalBytes: 1}},
		{"no bound", Config{Client: c, EntrySize: 1}},
		{"negative bytes", Config{Client: c, EntrySize: 1, TotalBytes: -1}},
		{"fewer appenders than logs", Config{Client: c, EntrySize: 1, TotalBytes: 1, Logs: 3, Concurrency: 2}},
		{"negative depth", Config{Client: c, EntrySize: 1, TotalBytes: 1, AsyncDepth: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Run(context.Background(), tc.cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("%v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestSaturatingDepth(t *testing.T) {
	w := options.Default().Writer
	w.MaxBlockBytes, w.MemoryBudgetBytes = 4<<20, 64<<20
	for _, tc := range []struct {
		streams, entry, conc, want int
	}{
		{1, 1 << 20, 1, 15},               // 16 MiB in flight, 1 MiB + 32 B each
		{1, 1 << 20, 4, 4},                // the same over four goroutines
		{4, 64 << 10, 4, 160},             // 40 MiB
		{16, 1 << 10, 1, 48 << 20 / 1056}, // capped at 3/4 of the budget
		{1, 64 << 20, 8, 1},               // never below one
	} {
		if got := SaturatingDepth(w, tc.streams, tc.entry, tc.conc); got != tc.want {
			t.Errorf("SaturatingDepth(streams %d, entry %d, concurrency %d) = %d, want %d",
				tc.streams, tc.entry, tc.conc, got, tc.want)
		}
	}
}

func TestTimelineStaysBounded(t *testing.T) {
	for _, limit := range []int{2, 7, 10} {
		tl := newTimeline(limit)
		const n = 1000
		for i := range n - 1 {
			tl.add(Interval{StartS: float64(i), Seconds: 1, Bytes: 10, Entries: 1, MiBps: 10.0 / mib,
				P50Ms: float64(i), P99Ms: float64(i), MaxMs: float64(i)})
			if len(tl.intervals) > limit {
				t.Fatalf("max %d: %d intervals after %d adds", limit, len(tl.intervals), i+1)
			}
		}
		got := tl.finish(Interval{StartS: n - 1, Seconds: 1, Bytes: 10, Entries: 1, MiBps: 10.0 / mib,
			P50Ms: n - 1, P99Ms: n - 1, MaxMs: n - 1})
		var secs float64
		var bytes, entries int64
		for i, iv := range got {
			secs += iv.Seconds
			bytes += iv.Bytes
			entries += iv.Entries
			if i > 0 && iv.StartS != got[i-1].StartS+got[i-1].Seconds {
				t.Fatalf("max %d: interval %d starts at %v, after %v+%v", limit, i, iv.StartS, got[i-1].StartS, got[i-1].Seconds)
			}
		}
		if secs != n || bytes != 10*n || entries != n || len(got) > limit+1 {
			t.Errorf("max %d: %d intervals covering %v s, %d bytes, %d entries; want %d s", limit, len(got), secs, bytes, entries, n)
		}
		if last := got[len(got)-1]; last.MaxMs != n-1 {
			t.Errorf("max %d: last interval's max %v, want %v", limit, last.MaxMs, n-1)
		}
	}
}

// TestTimelineAdaptsToTheRunLength: whatever a run lasts (from 12.5 ms
// on), its timeline has at least 50 intervals to chart, at most
// MaxIntervals, of equal length, covering the run from start to end. A short
// run used to get one 250 ms interval, charted as a single point.
func TestTimelineAdaptsToTheRunLength(t *testing.T) {
	for _, run := range []time.Duration{12500 * time.Microsecond, 200 * time.Millisecond, 3 * time.Second, time.Hour} {
		t.Run(run.String(), func(t *testing.T) {
			start := time.Now()
			rec := newRecorder(start, 100, 200)
			// Appends every 100 µs, with a pause of a fifth of the run.
			for at := time.Duration(0); at < run; at += max(100*time.Microsecond, run/100000) {
				if at < run/2 || at > run*7/10 {
					rec.record(start.Add(at), 3*time.Millisecond, 1024)
				}
			}
			end := start.Add(run)
			got := rec.timeline(end)
			if len(got) < 50 || len(got) > 200 {
				t.Fatalf("%d intervals for a %s run, want 50 to 200", len(got), run)
			}
			var entries int64
			for i, iv := range got {
				entries += iv.Entries
				if i > 0 && math.Abs(iv.StartS-(got[i-1].StartS+got[i-1].Seconds)) > 1e-9 {
					t.Fatalf("interval %d starts at %v, after %v+%v", i, iv.StartS, got[i-1].StartS, got[i-1].Seconds)
				}
				if i < len(got)-1 && math.Abs(iv.Seconds-got[0].Seconds) > 1e-9 {
					t.Errorf("interval %d lasts %v s, the first %v s", i, iv.Seconds, got[0].Seconds)
				}
			}
			if last := got[len(got)-1]; got[0].StartS != 0 || math.Abs(last.StartS+last.Seconds-run.Seconds()) > 1e-9 {
				t.Errorf("the timeline covers %v..%v s, want 0..%v", got[0].StartS, last.StartS+last.Seconds, run.Seconds())
			}
			if entries != rec.total.TotalCount() {
				t.Errorf("the timeline counts %d appends of %d", entries, rec.total.TotalCount())
			}
		})
	}
}

func TestRecorder(t *testing.T) {
	start := time.Now()
	r := newRecorder(start, 50, 0)
	for i := 1; i <= 1000; i++ {
		r.record(start.Add(time.Duration(i)*time.Millisecond), time.Duration(i)*time.Millisecond, 100)
	}
	l := summarize(r.total)
	near := func(got, want float64) bool { return got >= want*0.999 && got <= want*1.001 }
	if l.Count != 1000 || !near(l.P50Ms, 500) || !near(l.P99Ms, 990) || !near(l.P999Ms, 999) || !near(l.MaxMs, 1000) {
		t.Errorf("summary %+v; want p50 500, p99 990, p99.9 999, max 1000 ms", l)
	}
	if len(r.reservoir) != 50 {
		t.Errorf("reservoir holds %d samples, want 50", len(r.reservoir))
	}
	iv := r.cut(start, start.Add(2*time.Second))
	// An interval's percentiles have two significant digits (1%).
	if iv.Entries != 1000 || iv.Bytes != 100000 || math.Abs(iv.MaxMs-1000) > 10 || iv.Seconds != 2 {
		t.Errorf("interval %+v", iv)
	}
	if again := r.cut(start, start.Add(time.Second)); again.Entries != 0 || again.MaxMs != 0 {
		t.Errorf("interval after a cut: %+v, want empty", again)
	}
	// Out-of-range values are clamped, not dropped.
	r.record(start, 0, 1)
	r.record(start, 2*time.Hour, 1)
	if r.total.TotalCount() != 1002 {
		t.Errorf("%d values recorded, want 1002", r.total.TotalCount())
	}
}

func TestCountingStore(t *testing.T) {
	ctx := context.Background()
	c := NewCountingStore(memstore.New())
	if err := c.Put(ctx, "a/1", []byte("hello"), objstore.PutOptions{IfNotExists: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, "a/1", []byte("again"), objstore.PutOptions{IfNotExists: true}); !errors.Is(err, objstore.ErrAlreadyExists) {
		t.Fatalf("second create: %v", err)
	}
	if l := c.TakePutLatency(); l.Count != 1 {
		t.Errorf("PUT latency of %d PUTs, want the one that succeeded", l.Count)
	}
	if l := c.TakePutLatency(); l.Count != 0 {
		t.Errorf("PUT latency of %d PUTs after it was taken, want none", l.Count)
	}
	before := c.Counts()
	if _, err := c.Get(ctx, "a/1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetRange(ctx, "a/1", 1, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stat(ctx, "a/missing"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("stat: %v", err)
	}
	if _, err := c.List(ctx, "a/", "", 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "a/1"); err != nil {
		t.Fatal(err)
	}
	want := Counts{Puts: 2, PutBytes: 5, Gets: 2, GetBytes: 7, Stats: 1, Lists: 1, Deletes: 1, Failures: 2}
	if got := c.Counts(); got != want {
		t.Errorf("counts %+v, want %+v", got, want)
	}
	if d := c.Counts().Sub(before); d.Puts != 0 || d.Gets != 2 || d.Failures != 1 {
		t.Errorf("delta %+v", d)
	}
}
