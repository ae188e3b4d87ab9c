package woodpecker_test

// Benchmarks of the engine next to the raw limit of its storage, measured
// in the same run by bench (the runner `woodpecker bench` uses).
//
//	make bench BENCH='Append|LoneWriter'
//	go test -run '^$' -bench 'Append|LoneWriter' -benchtime 1s ./woodpecker/
//
// One iteration (b.N) is one append of the entry size; the timer covers the
// write phase only (first append to last acknowledgement), so a case writes
// about -benchtime x its throughput (a few hundred MB at 1s), and MB/s is
// what the engine sustained. Setup, the raw measurement and the read-back
// run with the timer stopped, once per invocation of the benchmark function.
//
// Metrics (MB/s are 10^6 bytes per second, like Go's own):
//
//	MB/s        engine write throughput
//	p50-ms ...  append latency percentiles (Append, or AppendAsync to done)
//	raw-MB/s    the storage alone: writer.maxBlockBytes writes, as many at
//	            once as one writer keeps (1 file with write+fsync on local FS,
//	            writer.maxInflightUploads parallel PUTs on MinIO)
//	            (the mean of a run before and one after the engine's, each
//	            writing as much as the engine, up to 1 GiB)
//	ratio       MB/s / raw-MB/s (target >= 0.85 for 64 KiB and larger)
//	raw-op-ms   lone writer: p50 of one raw write of the entry size (one
//	            write+fsync, one PUT)
//	p50-ratio   lone writer: p50-ms / raw-op-ms (target <= 1.5)
//	read-MB/s   reading everything back from Earliest
//	PUTs/GiB    object store PUTs per GiB appended (MinIO)
//	CPU-s/GiB   CPU time of the test process per GiB appended (MinIO shares
//	            the 2 cores, so client CPU costs server throughput)
//	load1       the 1-minute load average when the case started
//
// Set WOODPECKER_BENCH_OUT to a directory to get each case's full result
// (timeline, samples, histogram) as JSON there.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/woodpecker-wal/woodpecker/bench"
	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/s3store"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// benchEnv is a client on fresh storage and the raw target beside it.
type benchEnv struct {
	client  *woodpecker.Client
	raw     bench.RawTarget
	counter *bench.CountingStore // nil for local FS
	cleanup func()
}

// benchTarget is a storage backend the benchmarks run on. The helpers of
// woodpecker_test.go take *testing.T, so benchmarks have their own.
type benchTarget struct {
	name string
	open func(b *testing.B) benchEnv
}

func benchTargets() []benchTarget {
	return []benchTarget{
		{name: "localfs", open: openLocalBench},
		{name: "minio", open: openMinIOBench},
	}
}

func benchConfig(b *testing.B) options.Config {
	cfg := options.Default()
	cfg.Etcd.RootPath = testenv.UniquePrefix(b)
	return cfg
}

func newBenchClient(b *testing.B, cfg options.Config, opts ...woodpecker.Option) *woodpecker.Client {
	b.Helper()
	opts = append(opts, woodpecker.WithEtcdClient(testenv.Etcd(b)))
	c, err := woodpecker.New(context.Background(), cfg, opts...)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// openLocalBench puts the engine's directory and the raw files side by side
// in one fresh directory (so on one filesystem), removed at cleanup.
func openLocalBench(b *testing.B) benchEnv {
	b.Helper()
	dir, err := os.MkdirTemp("", "woodpecker-bench-")
	if err != nil {
		b.Fatal(err)
	}
	engine, raw := filepath.Join(dir, "engine"), filepath.Join(dir, "raw")
	if err := os.Mkdir(raw, 0o755); err != nil {
		b.Fatal(err)
	}
	cfg := benchConfig(b)
	cfg.Storage.Type = options.StorageLocal
	cfg.Storage.RootPath = engine
	c := newBenchClient(b, cfg)
	return benchEnv{client: c, raw: bench.DirTarget{Dir: raw}, cleanup: func() {
		_ = c.Close()
		_ = os.RemoveAll(dir)
	}}
}

// openMinIOBench uses a fresh bucket of the shared MinIO; its objects are
// deleted at cleanup so repeated runs do not fill the server's disk.
func openMinIOBench(b *testing.B) benchEnv {
	b.Helper()
	s3 := testenv.MinIO(b)
	store, err := s3store.Open(context.Background(), s3store.Config{
		Endpoint: s3.Endpoint, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey,
		Bucket: testenv.NewBucket(b, s3), Region: s3.Region, Secure: s3.Secure,
	})
	if err != nil {
		b.Fatal(err)
	}
	counter := bench.NewCountingStore(store)
	c := newBenchClient(b, benchConfig(b), woodpecker.WithObjectStore(counter))
	return benchEnv{
		client: c, counter: counter,
		raw: bench.StoreTarget{Store: store, Name: s3.Name + " at " + s3.Endpoint},
		cleanup: func() {
			_ = c.Close()
			emptyBucket(b, store)
			_ = store.Close()
		},
	}
}

func emptyBucket(b *testing.B, store objstore.Store) {
	ctx := context.Background()
	objs, err := objstore.ListAll(ctx, store, "", "")
	if err != nil {
		b.Logf("benchmark cleanup: list bucket: %v", err)
		return
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, o := range objs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_ = store.Delete(ctx, o.Key)
		}()
	}
	wg.Wait()
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// benchAppenders is the number of appending goroutines of the saturating
// benchmarks; each keeps bench.SaturatingDepth appends in flight.
const benchAppenders = 4

// benchRawCap bounds each raw throughput run. Below it a raw run writes
// as much as the engine did: the local disk here absorbs a burst of a few
// hundred MB much faster than it sustains writes, so a shorter raw run
// would measure the burst.
const benchRawCap = 1 << 30

// BenchmarkAppend saturates one writer with async appends and compares its
// throughput with raw block-sized writes of the same parallelism.
func BenchmarkAppend(b *testing.B) {
	for _, tgt := range benchTargets() {
		b.Run(tgt.name, func(b *testing.B) {
			for _, size := range []int{1 << 10, 64 << 10, 1 << 20} {
				b.Run(sizeName(size), func(b *testing.B) { runBench(b, tgt, size, false) })
			}
		})
	}
}

// BenchmarkLoneWriter appends synchronously from one goroutine: every
// append waits for its own flush, so its p50 is compared with one raw write
// of the entry size.
func BenchmarkLoneWriter(b *testing.B) {
	for _, tgt := range benchTargets() {
		b.Run(tgt.name, func(b *testing.B) {
			b.Run(sizeName(1<<10), func(b *testing.B) { runBench(b, tgt, 1<<10, true) })
		})
	}
}

// runBench runs b.N appends of size bytes through bench.Run and reports its
// figures: a saturating writer, or a lone synchronous one.
func runBench(b *testing.B, tgt benchTarget, size int, lone bool) {
	b.StopTimer()
	env := tgt.open(b)
	defer env.cleanup()
	total := int64(b.N) * int64(size)
	cfg := bench.Config{
		Client: env.client, EntrySize: size, TotalBytes: total,
		Raw: env.raw, RawBytes: min(total, benchRawCap), Counter: env.counter, Timer: b,
	}
	if lone {
		cfg.Concurrency, cfg.RawBytes, cfg.RawOnce = 1, 1, true // raw throughput does not matter here
	} else {
		w := env.client.Config().Writer
		cfg.Concurrency = benchAppenders
		cfg.AsyncDepth = bench.SaturatingDepth(w, env.raw.Streams(w), size, benchAppenders)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	res, err := bench.Run(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	const mbPerMiB = float64(1<<20) / 1e6
	b.ReportMetric(res.Write.MiBps*mbPerMiB, "MB/s")
	l := res.Write.Latency
	b.ReportMetric(l.P50Ms, "p50-ms")
	b.ReportMetric(l.P99Ms, "p99-ms")
	b.ReportMetric(l.P999Ms, "p999-ms")
	b.ReportMetric(l.MaxMs, "max-ms")
	if lone {
		b.ReportMetric(res.Raw.SingleOp.Latency.P50Ms, "raw-op-ms")
		b.ReportMetric(res.Ratios.P50VsRawOp, "p50-ratio")
	} else {
		b.ReportMetric(res.Raw.Throughput.MiBps*mbPerMiB, "raw-MB/s")
		b.ReportMetric(res.Ratios.WriteMiBps, "ratio")
		if gib := float64(res.Write.Bytes) / (1 << 30); gib > 0 && res.Write.CPUSeconds > 0 {
			b.ReportMetric(res.Write.CPUSeconds/gib, "CPU-s/GiB")
		}
	}
	if res.Read != nil {
		b.ReportMetric(res.Read.MiBps*mbPerMiB, "read-MB/s")
	}
	if res.Storage.PutsPerGiB != nil {
		b.ReportMetric(*res.Storage.PutsPerGiB, "PUTs/GiB")
	}
	if la := res.Setup.LoadAvgStart; len(la) > 0 {
		b.ReportMetric(la[0], "load1")
	}
	raws := make([]string, len(res.Raw.ThroughputRuns))
	for i, r := range res.Raw.ThroughputRuns {
		raws[i] = fmt.Sprintf("%.0f", r.MiBps)
	}
	b.Logf("N=%d conc=%d depth=%d: %s; raw runs %s MiB/s; load %v -> %v", b.N, cfg.Concurrency, cfg.AsyncDepth,
		res.Summary(), strings.Join(raws, "/"), res.Setup.LoadAvgStart, res.Setup.LoadAvgEnd)
	if dir := os.Getenv("WOODPECKER_BENCH_OUT"); dir != "" {
		writeBenchJSON(b, dir, res)
	}
}

func writeBenchJSON(b *testing.B, dir string, res *bench.Result) {
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		b.Fatal(err)
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(b.Name()) + ".json"
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		b.Fatal(err)
	}
}
