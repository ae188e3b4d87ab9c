package bench

// BenchmarkQuorum measures QuorumBuffer on 3 in-process LogStores over
// MinIO against their raw limit, measured in the same run (QuorumTarget:
// blocks of the same payload sent with AddBlock to the 3 LogStores, done
// when 2 accept them):
//
//	go test -run '^$' -bench Quorum -benchtime 3000x ./bench/
//
// lone/1KiB: one goroutine appending 1 KiB synchronously, against one raw
// block at a time. Metrics: p50-ms, p99-ms (appends), raw-p50-ms,
// raw-p99-ms (one raw block), p50-ratio (p50-ms / raw-p50-ms).
//
// inflight64/64KiB: 64 KiB appends with 64 in flight, against raw blocks of
// 64 KiB with 64 in flight. Metrics: MB/s, raw-MB/s, ratio (MB/s /
// raw-MB/s), p50-ms, p99-ms, PUTs/GiB.
//
// journaled/...: the same on LogStores that keep a journal (logstore
// --data-dir): every add, raw ones included, is fsynced before its answer.
//
// The targets (loopback, 2 cores): lone p50 < 2 ms, p99 < 10 ms,
// p50-ratio <= 3; inflight64 ratio >= 0.8.

import (
	"context"
	"fmt"
	"testing"

	"github.com/woodpecker-wal/woodpecker/internal/objstore/s3store"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/quorum"
	"github.com/woodpecker-wal/woodpecker/quorum/quorumtest"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// quorumBudget is each LogStore's memory budget in the benchmark.
const quorumBudget = 256 << 20

func BenchmarkQuorum(b *testing.B) {
	b.Run("lone/1KiB", func(b *testing.B) { runQuorumBench(b, 1<<10, 0, false) })
	b.Run("inflight64/64KiB", func(b *testing.B) { runQuorumBench(b, 64<<10, 64, false) })
	// The same with journaled LogStores (logstore --data-dir): every add,
	// the raw ones included, is fsynced before it is acknowledged.
	b.Run("journaled/lone/1KiB", func(b *testing.B) { runQuorumBench(b, 1<<10, 0, true) })
	b.Run("journaled/inflight64/64KiB", func(b *testing.B) { runQuorumBench(b, 64<<10, 64, true) })
}

// runQuorumBench appends b.N entries of size bytes, synchronously when
// depth is 0, else with depth in flight, to a fresh cluster of 3 LogStores
// (journaled ones when journaled is set).
func runQuorumBench(b *testing.B, size, depth int, journaled bool) {
	b.StopTimer()
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
	etcd := testenv.Etcd(b)
	start := quorumtest.Start
	if journaled {
		start = quorumtest.StartJournaled
	}
	// The LogStores' uploads are the PUTs that count: they go through the
	// counter too.
	counter := NewCountingStore(store)
	cluster := start(b, etcd, quorum.EnsembleSize, counter, "", quorumBudget)

	cfg := options.Default()
	cfg.Etcd.RootPath = testenv.UniquePrefix(b)
	cfg.Mode = options.ModeQuorumBuffer
	cfg.Quorum.LogStores = cluster.Addrs()
	c, err := woodpecker.New(ctx, cfg, woodpecker.WithEtcdClient(etcd), woodpecker.WithObjectStore(counter))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	tr := quorum.NewGRPCTransport(nil)
	defer tr.Close()
	raw, err := NewQuorumTarget(tr, cluster.Addrs(), cfg.Quorum.MaxInflightBlocks, cfg.Quorum.CallTimeout)
	if err != nil {
		b.Fatal(err)
	}

	total := int64(b.N) * int64(size)
	rc := Config{Client: c, EntrySize: size, TotalBytes: total, Raw: raw, Counter: counter, Timer: b, SkipRead: true}
	if depth == 0 {
		// The raw throughput does not matter to a lone writer; its single
		// writes do, as many as the appends (within bounds).
		rc.RawBytes, rc.RawOnce, rc.RawInFlight = 1, true, 1
		rc.RawOps = min(max(b.N, 200), 5000)
	} else {
		rc.AsyncDepth, rc.RawInFlight, rc.RawBytes = depth, depth, total
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	res, err := Run(ctx, rc)
	if err != nil {
		b.Fatal(err)
	}
	const mbPerMiB = float64(1<<20) / 1e6
	l := res.Write.Latency
	b.ReportMetric(l.P50Ms, "p50-ms")
	b.ReportMetric(l.P99Ms, "p99-ms")
	var line string
	if depth == 0 {
		op := res.Raw.SingleOp.Latency
		b.ReportMetric(op.P50Ms, "raw-p50-ms")
		b.ReportMetric(op.P99Ms, "raw-p99-ms")
		b.ReportMetric(res.Ratios.P50VsRawOp, "p50-ratio")
		line = fmt.Sprintf("lone %s: p50 %.3f ms, p99 %.3f ms; raw p50 %.3f ms, p99 %.3f ms (%d ops); p50 ratio %.2f",
			sizeLabel(size), l.P50Ms, l.P99Ms, op.P50Ms, op.P99Ms, res.Raw.SingleOp.Ops, res.Ratios.P50VsRawOp)
	} else {
		b.ReportMetric(res.Write.MiBps*mbPerMiB, "MB/s")
		b.ReportMetric(res.Raw.Throughput.MiBps*mbPerMiB, "raw-MB/s")
		b.ReportMetric(res.Ratios.WriteMiBps, "ratio")
		line = fmt.Sprintf("%d in flight %s: %.1f MiB/s, raw %.1f MiB/s (runs %v), ratio %.2f",
			depth, sizeLabel(size), res.Write.MiBps, res.Raw.Throughput.MiBps, rawRuns(res), res.Ratios.WriteMiBps)
	}
	if res.Storage.PutsPerGiB != nil {
		b.ReportMetric(*res.Storage.PutsPerGiB, "PUTs/GiB")
	}
	b.Logf("N=%d: %s\n%s", b.N, line, res.Summary())
}

func sizeLabel(n int) string {
	if n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func rawRuns(res *Result) []string {
	out := make([]string, len(res.Raw.ThroughputRuns))
	for i, r := range res.Raw.ThroughputRuns {
		out[i] = fmt.Sprintf("%.0f", r.MiBps)
	}
	return out
}
