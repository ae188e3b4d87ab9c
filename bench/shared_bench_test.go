package bench

// BenchmarkSharedObjects measures the paced multi-log workload of issue 14
// on MinIO: logs appending 1 KiB entries at a fixed rate each, with shared
// objects (writer.batchWindow 10 ms) and, for comparison, the per-log layout
// (window 0), beside raw single PUTs of 1 KiB and raw GETs of the readers'
// size measured in the same run:
//
//	go test -run '^$' -bench SharedObjects -benchtime 1x ./bench/
//
// Each iteration is one run of sharedBenchDuration. Metrics: PUTs/s of the
// write phase, bound-PUTs/s (1.2 x (1/window + PUT bytes a second /
// writer.objectBytes); 0 without a window), PUTs/1k-appends, USD/day (S3
// list prices), appends/s achieved, p50-ms and p99-ms of the appends,
// raw-put-p50-ms, p50/bound (p50 over window + 1.5 x raw-put-p50-ms; 0
// without a window), read/raw-get (catch-up MiB/s over raw GET MiB/s) and
// peak-RSS-MiB. `woodpecker bench --rate` runs the same workload at any
// scale (docs and the closing note have the commands).

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/s3store"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/quorum"
	"github.com/woodpecker-wal/woodpecker/quorum/quorumtest"
)

const sharedBenchDuration = 3 * time.Second

func BenchmarkSharedObjects(b *testing.B) {
	for _, tc := range []struct {
		logs   int
		rate   float64
		window time.Duration
		quorum bool
	}{
		{1, 100, 10 * time.Millisecond, false},
		{16, 100, 10 * time.Millisecond, false},
		{16, 100, 0, false},
		{16, 100, 10 * time.Millisecond, true},
		{128, 100, 10 * time.Millisecond, true},
		{16, 100, 0, true},
	} {
		name := fmt.Sprintf("logs=%d/rate=%g/window=%s", tc.logs, tc.rate, tc.window)
		if tc.quorum {
			name = "quorum/" + name
		}
		b.Run(name, func(b *testing.B) {
			runSharedBench(b, tc.logs, tc.rate, tc.window, tc.quorum)
		})
	}
}

// runSharedBench runs the paced workload; with quorum, in QuorumBuffer mode
// on 3 in-process LogStores that write shared objects with the same window
// (its PUTs are theirs, counted through the same counter; their bound is
// 3 x 1/window + bytes/objectBytes, one stream per LogStore).
func runSharedBench(b *testing.B, logs int, rate float64, window time.Duration, quorumMode bool) {
	ctx := context.Background()
	s3 := testenv.MinIO(b)
	store, err := s3store.Open(ctx, s3store.Config{
		Endpoint: s3.Endpoint, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey,
		Bucket: testenv.NewBucket(b, s3), Region: s3.Region, Secure: s3.Secure,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	counter := NewCountingStore(store)
	root := testenv.UniquePrefix(b)
	var addrs []string
	if quorumMode {
		addrs = quorumtest.StartShared(b, testenv.Etcd(b), root, window, quorum.EnsembleSize, counter, "", quorumBudget).Addrs()
	}
	c := newClient(b, counter, func(cfg *options.Config) {
		cfg.Etcd.RootPath = root
		cfg.Writer.BatchWindow = window
		if quorumMode {
			cfg.Mode = options.ModeQuorumBuffer
			cfg.Quorum.LogStores = addrs
		}
	})
	for i := 0; i < b.N; i++ {
		res, err := Run(ctx, Config{
			Client: c, EntrySize: 1 << 10, Duration: sharedBenchDuration, Logs: logs, Rate: rate,
			Raw: StoreTarget{Store: store, Name: "MinIO"}, RawOps: 100, Counter: counter,
		})
		if err != nil {
			b.Fatal(err)
		}
		cost, l := res.Cost, res.Write.Latency
		b.ReportMetric(cost.PutsPerS, "PUTs/s")
		b.ReportMetric(cost.BoundPutsPerS, "bound-PUTs/s")
		b.ReportMetric(cost.PutsPer1000Appends, "PUTs/1k-appends")
		b.ReportMetric(cost.USDPerDay, "USD/day")
		b.ReportMetric(res.Write.EntriesPS, "appends/s")
		b.ReportMetric(l.P50Ms, "p50-ms")
		b.ReportMetric(l.P99Ms, "p99-ms")
		b.ReportMetric(res.Raw.SingleOp.Latency.P50Ms, "raw-put-p50-ms")
		b.ReportMetric(res.Ratios.P50VsWindowBound, "p50/bound")
		b.ReportMetric(res.Ratios.ReadVsRawGet, "read/raw-get")
		b.ReportMetric(float64(res.Memory.PeakRSS)/mib, "peak-RSS-MiB")
		b.Logf("%d logs at %g/s, window %s: %s; write phase calls %+v, with closing %+v (load %v)",
			logs, rate, window, res.Summary(), cost, *res.Storage.WriteCalls, res.Setup.LoadAvgEnd)
	}
}

// TestSharedObjectsPutFarLessThanPerLogObjects: 16 logs appending 100
// times a second for 2 s make one object per window with shared objects,
// and about one object per append in the per-log layout. The test compares
// counts only (PUTs per 1,000 appends), with a wide margin: a loaded
// machine batches more in both layouts.
func TestSharedObjectsPutFarLessThanPerLogObjects(t *testing.T) {
	if testing.Short() {
		t.Skip("paces appends for 2 s per layout")
	}
	per1000 := map[time.Duration]float64{}
	for _, window := range []time.Duration{0, 10 * time.Millisecond} {
		counter := NewCountingStore(memstore.New())
		c := newClient(t, counter, func(cfg *options.Config) { cfg.Writer.BatchWindow = window })
		res, err := Run(context.Background(), Config{
			Client: c, EntrySize: 1 << 10, Duration: 2 * time.Second, Logs: 16, Rate: 100, Counter: counter,
		})
		if err != nil {
			t.Fatalf("window %s: %v", window, err)
		}
		if res.Cost == nil || res.Write.Entries == 0 || res.Read == nil || res.Read.Entries != res.Write.Entries {
			t.Fatalf("window %s: cost %+v, wrote %d, read back %+v", window, res.Cost, res.Write.Entries, res.Read)
		}
		if (res.Cost.BoundPutsPerS > 0) != (window > 0) {
			t.Errorf("window %s: PUT bound %v", window, res.Cost.BoundPutsPerS)
		}
		per1000[window] = res.Cost.PutsPer1000Appends
		t.Logf("window %s: %s", window, res.Summary())
	}
	if shared, perLog := per1000[10*time.Millisecond], per1000[0]; !(shared*4 < perLog) {
		t.Errorf("PUTs per 1,000 appends: %.1f with shared objects, %.1f per log; want shared below a quarter", shared, perLog)
	}
}

// TestPacedRunKeepsItsSchedule: a paced run submits about Rate appends a
// second per log (counted, never timed against a bound: only the count of
// appends it submitted is checked, and generously), one appender per log
// whatever Concurrency says, and reports the cost of its PUTs.
func TestPacedRunKeepsItsSchedule(t *testing.T) {
	counter := NewCountingStore(memstore.New())
	c := newClient(t, counter, nil)
	res, err := Run(context.Background(), Config{
		Client: c, EntrySize: 100, Duration: 500 * time.Millisecond, Logs: 3, Concurrency: 1, Rate: 40,
		Counter: counter, Raw: StoreTarget{Store: memstore.New()}, RawOps: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	// 3 logs x 40/s x 0.5 s = 60 appends scheduled; the schedule never
	// submits more, and a stalled machine may submit late but not fewer.
	if res.Write.Entries != 60 || res.Setup.Concurrency != 3 || res.Setup.RatePerLog != 40 {
		t.Errorf("%d appends with concurrency %d, rate %v; want 60, 3, 40", res.Write.Entries, res.Setup.Concurrency, res.Setup.RatePerLog)
	}
	cost := res.Cost
	if cost == nil || cost.Puts == 0 || cost.PutsPer1000Appends != float64(cost.Puts)*1000/60 ||
		cost.USDPerDay <= 0 || cost.BoundPutsPerS != 0 {
		t.Errorf("cost %+v", cost)
	}
	if raw := res.Raw; raw == nil || len(raw.ThroughputRuns) != 0 || raw.SingleOp.Ops != 5 || raw.Get == nil ||
		raw.Get.Ops == 0 || raw.Get.Streams != 4 || res.Ratios.ReadVsRawGet <= 0 {
		t.Errorf("raw %+v, ratios %+v: want no throughput phase, 5 single PUTs and GETs 4 at once", raw, res.Ratios)
	}
	if res.Memory.PeakRSS == 0 && residentSet().current != 0 {
		t.Errorf("peak RSS not sampled: %+v", res.Memory)
	}
}

func TestNewCost(t *testing.T) {
	c := newCost(Counts{Puts: 200, PutBytes: 8 << 20, Gets: 1000}, 2, 4000, 10*time.Millisecond, 8<<20)
	near := func(got, want float64) bool { return got > want*0.9999 && got < want*1.0001 }
	// 100 PUTs/s and 500 GETs/s for a day: 8,640,000 PUTs ($43.20) and
	// 43,200,000 GETs ($17.28). The bound: 1.2 x (100 + 4 MiB/s / 8 MiB).
	if !near(c.PutsPerS, 100) || !near(c.GetsPerS, 500) || !near(c.PutsPer1000Appends, 50) ||
		!near(c.USDPerDay, 43.2+17.28) || !near(c.BoundPutsPerS, 1.2*100.5) {
		t.Errorf("cost %+v", c)
	}
	if c := newCost(Counts{Puts: 10}, 1, 10, 0, 8<<20); c.BoundPutsPerS != 0 {
		t.Errorf("a bound without a window: %+v", c)
	}
}
