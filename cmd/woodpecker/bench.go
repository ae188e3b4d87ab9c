package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/spf13/cobra"

	"github.com/woodpecker-wal/woodpecker/bench"
	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/quorum"
	"github.com/woodpecker-wal/woodpecker/segment"
)

// benchFlags are the options of `woodpecker bench`.
type benchFlags struct {
	entrySize   string
	total       string
	duration    time.Duration
	concurrency int
	logs        int
	asyncDepth  int
	backend     string
	raw         bool
	jsonOut     string
	plot        string
	keep        bool
	progress    string
	rate        float64
	batchWindow time.Duration
	objectBytes string
	cpuProfile  string
}

func (a *app) benchCommand() *cobra.Command {
	var bf benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure append and read throughput and latency, against what the storage can do",
		Long: `bench creates logs, appends to them from several goroutines, reads everything
back, and reports throughput, append latency percentiles (p50, p99, p99.9, max),
read throughput, what was stored (blocks, and PUTs per GiB on object stores)
and peak memory. A live progress bar shows the current MB/s.

--raw first measures the storage's own limit with the same sizes and
parallelism, without Woodpecker: writes of writer.maxBlockBytes (write + fsync
to a file for local storage, create-only PUTs for an object store), as many at
once as a writer keeps in flight, and single writes of the entry size, one at a
time. It measures the throughput again after the appends and keeps the better
run. Each figure is then printed with its ratio to the raw one.

In QuorumBuffer mode (mode: quorumBuffer), --raw measures the LogStores
instead: blocks holding one entry-size payload, sent with AddBlock to 3 of them
at once (the LogStores of quorum.logStores, else the first 3 registered in
etcd) and done when 2 accept them, as many at once as appends are in flight,
and one at a time for the latency of a lone appender. The raw blocks are not
uploaded: the figure is what the LogStores accept, without the object store.

--rate paces the appends instead: every log gets one appender that submits
that many appends a second (asynchronously, on a fixed schedule), for
--duration, as a database's channels trickle inserts. The table then adds
the object store requests of the write phase: PUTs a second, PUTs per 1,000
appends and what a day of them costs at S3 list prices ($0.005 per 1,000
PUTs, $0.0004 per 1,000 GETs). With --raw a paced run measures single PUTs of
the entry size, and after the read phase GETs of the size the readers
fetched, 4 at once, to compare the catch-up reads with.

--batch-window sets writer.batchWindow for this run: above 0, the blocks of
all logs go into shared objects (docs/shared-objects.md), and the table
shows the bound on PUTs a second, 1.2 x (1/window + bytes a second /
writer.objectBytes), and the bound on the append p50, window + 1.5 x one
raw PUT of the entry size.

The benchmark's logs are deleted afterwards, with their data (--keep keeps
them); shared objects stay until their garbage collection exists.`,
		Example: `  woodpecker bench --raw
  woodpecker bench --entry-size 1KiB --total 1GiB --concurrency 4 --logs 2
  woodpecker bench --duration 30s --raw --json results.json --plot latency.svg
  woodpecker bench --raw --logs 128 --rate 100 --entry-size 1KiB --duration 10s --batch-window 10ms`,
		Args: args(0, 0, "no arguments (options are flags)"),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runBench(cmd, bf) },
	}
	f := cmd.Flags()
	f.StringVar(&bf.entrySize, "entry-size", "4KiB", "payload size of each entry (e.g. 512, 4KiB, 1MiB)")
	f.StringVar(&bf.total, "total", "256MiB", "payload bytes to append, in all (0: bounded by --duration only)")
	f.DurationVar(&bf.duration, "duration", 0, "longest time to append (whichever of --total and --duration ends first)")
	f.IntVar(&bf.concurrency, "concurrency", 1, "appending goroutines (shared round robin by the logs)")
	f.IntVar(&bf.logs, "logs", 1, "logs written at once, each by its own writer")
	f.IntVar(&bf.asyncDepth, "async-depth", -1, "appends each goroutine keeps in flight (1: synchronous; -1: enough to keep the writer busy)")
	f.StringVar(&bf.backend, "backend", "", "storage: local, minio, s3 or memory (default: the configured storage)")
	f.BoolVar(&bf.raw, "raw", false, "measure the storage's own limit first and print ratios to it")
	f.StringVar(&bf.jsonOut, "json", "", "write the results as JSON to this file (- for stdout, instead of the table)")
	f.StringVar(&bf.plot, "plot", "", "write a chart (SVG) of throughput and latency over time and a latency histogram")
	f.BoolVar(&bf.keep, "keep", false, "keep the benchmark's logs and data")
	f.StringVar(&bf.progress, "progress", "auto", "progress display: auto (a bar on a terminal, lines otherwise), bar, lines or none")
	f.Float64Var(&bf.rate, "rate", 0, "appends a second per log, paced (0: as fast as the writers accept; --concurrency is then ignored)")
	f.DurationVar(&bf.batchWindow, "batch-window", 0, "writer.batchWindow for this run: above 0, shared objects (default: the configured value)")
	f.StringVar(&bf.objectBytes, "object-bytes", "", "writer.objectBytes for this run: the size that closes a shared object (default: the configured value)")
	f.StringVar(&bf.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof reads it)")
	return cmd
}

func (a *app) runBench(cmd *cobra.Command, bf benchFlags) error {
	if bf.cpuProfile != "" {
		f, err := os.Create(bf.cpuProfile)
		if err != nil {
			return errors.Wrap(err, "--cpuprofile")
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return errors.Wrap(err, "--cpuprofile")
		}
		defer pprof.StopCPUProfile()
	}
	entrySize, err := options.ParseSize(bf.entrySize)
	if err != nil || entrySize <= 0 || entrySize > 1<<31 {
		return usagef("--entry-size %q: want a size such as 4KiB, from 1 byte", bf.entrySize)
	}
	total, err := options.ParseSize(bf.total)
	if err != nil || total < 0 {
		return usagef("--total %q: want a size such as 256MiB, or 0", bf.total)
	}
	if bf.duration > 0 && !cmd.Flags().Changed("total") {
		total = 0 // --duration alone bounds the run
	}
	switch {
	case total == 0 && bf.duration <= 0:
		return usagef("give --total or --duration (or both)")
	case bf.logs < 1:
		return usagef("--logs %d: want at least 1", bf.logs)
	case bf.rate < 0:
		return usagef("--rate %v: want appends a second per log, or 0", bf.rate)
	case bf.batchWindow < 0:
		return usagef("--batch-window %s: want 0 (one object per block) or more", bf.batchWindow)
	case bf.concurrency < bf.logs && bf.rate == 0:
		return usagef("--concurrency %d is below --logs %d: every log needs an appending goroutine", bf.concurrency, bf.logs)
	case bf.asyncDepth < -1 || bf.asyncDepth == 0:
		return usagef("--async-depth %d: want 1 (synchronous), more, or -1 (automatic)", bf.asyncDepth)
	case bf.plot != "" && !strings.EqualFold(filepath.Ext(bf.plot), ".svg"):
		return usagef("--plot %q: the chart is SVG; name a .svg file", bf.plot)
	}
	var objectBytes int64
	if bf.objectBytes != "" {
		if objectBytes, err = options.ParseSize(bf.objectBytes); err != nil || objectBytes <= 0 {
			return usagef("--object-bytes %q: want a size such as 8MiB", bf.objectBytes)
		}
	}
	switch bf.progress {
	case "auto", "bar", "lines", "none":
	default:
		return usagef("--progress %q: want auto, bar, lines or none", bf.progress)
	}
	ctx := cmd.Context()
	if r, err := a.loadConfig(); err == nil && r.cfg.Mode == options.ModeQuorumBuffer &&
		bf.backend != "" && bf.backend != string(r.cfg.Storage.Type) {
		return usagef("--backend %s: in QuorumBuffer mode the LogStores upload to the configured object store (%s); "+
			"drop --backend, or set mode: memoryBuffer", bf.backend, r.cfg.Storage.Type)
	}
	var counter *bench.CountingStore
	flags := cmd.Flags()
	e, err := a.connect(ctx, connectOptions{backend: bf.backend, wrap: func(s objstore.Store) objstore.Store {
		counter = bench.NewCountingStore(s)
		return counter
	}, configure: func(c *options.Config) {
		if flags.Changed("batch-window") {
			c.Writer.BatchWindow = bf.batchWindow
		}
		if objectBytes > 0 {
			c.Writer.ObjectBytes = objectBytes
		}
	}})
	if err != nil {
		return err
	}
	w := e.r.cfg.Writer
	prefix := "bench-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	cfg := bench.Config{
		Client: e.client, EntrySize: int(entrySize), TotalBytes: total, Duration: bf.duration,
		Concurrency: bf.concurrency, Logs: bf.logs, AsyncDepth: bf.asyncDepth, LogPrefix: prefix, Rate: bf.rate,
		KeepLogs: true, // deleted below, with their data
	}
	var raw bench.RawTarget
	storeName := string(e.r.cfg.Storage.Type)
	quorumMode := e.r.cfg.Mode == options.ModeQuorumBuffer
	switch {
	case quorumMode:
		// The client's PUTs are seals and fences only: the LogStores
		// upload the blocks, and the blocks per GiB count them.
		q, err := e.quorumRawTarget(ctx)
		if err != nil {
			return err
		}
		raw = q
	case e.rawStore != nil:
		cfg.Counter = counter
		if bf.backend == backendMemory {
			storeName = backendMemory
		}
		raw = bench.StoreTarget{Store: e.rawStore, Prefix: "bench-raw/" + prefix + "/", Name: storeName}
	default:
		raw = bench.DirTarget{Dir: e.r.cfg.Storage.RootPath}
	}
	if bf.raw {
		cfg.Raw = raw
	}
	switch {
	case cfg.AsyncDepth < 0 && cfg.Rate > 0:
		cfg.AsyncDepth = 0 // the runner's default: a second of appends
	case cfg.AsyncDepth < 0:
		cfg.AsyncDepth = bench.SaturatingDepth(w, raw.Streams(w), cfg.EntrySize, cfg.Concurrency)
	}
	if quorumMode {
		// The same payload, with as many writes in flight as appends.
		cfg.RawInFlight = cfg.Concurrency * max(cfg.AsyncDepth, 1)
	}

	where := e.r.cfg.Storage.RootPath
	if e.rawStore != nil {
		where = e.r.cfg.Storage.Endpoint + "/" + e.r.cfg.Storage.Bucket
		if bf.backend == backendMemory {
			where = "process memory"
		}
	}
	if q, ok := raw.(*bench.QuorumTarget); ok {
		storeName = "QuorumBuffer on LogStores " + strings.Join(q.Addrs(), ", ") + " uploading to " + storeName
	}
	setup := fmt.Sprintf("%s in %s entries, %d log(s), %d goroutine(s) x %d in flight, %s storage (%s)",
		describeTotal(total, bf.duration), options.FormatSize(entrySize), cfg.Logs, cfg.Concurrency, cfg.AsyncDepth, storeName, where)
	if cfg.Rate > 0 {
		setup = fmt.Sprintf("%s in %s entries, %d log(s) at %g appends/s each, %s storage (%s)",
			describeTotal(total, bf.duration), options.FormatSize(entrySize), cfg.Logs, cfg.Rate, storeName, where)
	}
	if bw := w.BatchWindow; bw > 0 {
		setup += fmt.Sprintf(", shared objects (window %s, objects of %s, %d in flight)",
			bw, options.FormatSize(w.ObjectBytes), w.MaxInflightObjects)
	}
	if bf.jsonOut != "-" {
		fmt.Fprintf(a.stdout, "woodpecker bench: %s\n", setup)
	}

	disp := newProgress(ctx, a.stderr, bf.progress)
	cfg.Progress = disp.report
	puts0, commits0 := e.sharedLatencies()
	res, runErr := bench.Run(ctx, cfg)
	puts, commits := e.sharedLatencies()
	disp.finish()
	cleanErr := e.removeBenchLogs(context.WithoutCancel(ctx), prefix, cfg.Logs, bf.keep)
	if runErr != nil {
		return errors.Wrap(runErr, "benchmark")
	}
	if cleanErr != nil {
		return cleanErr
	}

	if bf.jsonOut != "" {
		if err := writeJSON(a.stdout, bf.jsonOut, res); err != nil {
			return err
		}
	}
	if bf.jsonOut != "-" {
		printBenchTable(a.stdout, res, cfg)
		if n := commits.n - commits0.n; n > 0 {
			// What an append waits for after its window: the PUT, then
			// the etcd transaction (docs/shared-objects.md).
			fmt.Fprintf(a.stdout, "shared objects: %d committed; mean PUT %.2f ms, mean etcd commit %.2f ms (the whole run)\n",
				n, puts.meanMs(puts0), commits.meanMs(commits0))
		}
	}
	if bf.plot != "" {
		if err := writePlot(bf.plot, res, cfg, setup); err != nil {
			return err
		}
		if bf.jsonOut != "-" {
			fmt.Fprintf(a.stdout, "chart written to %s\n", bf.plot)
		}
	}
	return nil
}

// histogramTotals are a Prometheus histogram's count and sum.
type histogramTotals struct {
	n   uint64
	sum float64
}

// meanMs is the mean of the observations since before, in milliseconds.
func (h histogramTotals) meanMs(before histogramTotals) float64 {
	if h.n <= before.n {
		return 0
	}
	return (h.sum - before.sum) / float64(h.n-before.n) * 1000
}

// sharedLatencies returns the totals of the client's shared object PUT
// and commit latencies so far.
func (e *env) sharedLatencies() (puts, commits histogramTotals) {
	if e.metrics == nil {
		return
	}
	families, err := e.metrics.Registry().Gather()
	if err != nil {
		return
	}
	for _, f := range families {
		var to *histogramTotals
		switch f.GetName() {
		case "woodpecker_shared_put_latency_seconds":
			to = &puts
		case "woodpecker_shared_commit_latency_seconds":
			to = &commits
		default:
			continue
		}
		for _, m := range f.GetMetric() {
			to.n += m.GetHistogram().GetSampleCount()
			to.sum += m.GetHistogram().GetSampleSum()
		}
	}
	return
}

func describeTotal(total int64, d time.Duration) string {
	switch {
	case total > 0 && d > 0:
		return fmt.Sprintf("%s or %s", options.FormatSize(total), d)
	case total > 0:
		return options.FormatSize(total)
	}
	return d.String()
}

// quorumRawTarget returns the raw target of QuorumBuffer mode: the
// LogStores of quorum.logStores, else the first 3 registered in etcd.
func (e *env) quorumRawTarget(ctx context.Context) (*bench.QuorumTarget, error) {
	qc := e.r.cfg.Quorum
	addrs := qc.LogStores
	if len(addrs) == 0 {
		cli, err := dialLogstoreEtcd(e.r.cfg.Etcd)
		if err != nil {
			return nil, err
		}
		lctx, cancel := context.WithTimeout(ctx, e.r.cfg.Etcd.RequestTimeout)
		nodes, err := quorum.Nodes(lctx, cli, e.r.cfg.Etcd.RootPath)
		cancel()
		_ = cli.Close()
		if err != nil {
			return nil, errors.Wrap(err, "raw measurement: list the LogStores")
		}
		for _, n := range nodes {
			addrs = append(addrs, n.Addr)
		}
	}
	if len(addrs) < quorum.EnsembleSize {
		return nil, errors.Newf("raw measurement: %d LogStores (quorum.logStores, or registered in etcd), QuorumBuffer needs %d",
			len(addrs), quorum.EnsembleSize)
	}
	tr := quorum.NewGRPCTransport(nil)
	e.closers = append(e.closers, tr.Close)
	return bench.NewQuorumTarget(tr, addrs[:quorum.EnsembleSize], qc.MaxInflightBlocks, qc.CallTimeout)
}

// removeBenchLogs deletes the benchmark's logs and, since nothing else can
// use a deleted log's data, the data too, unless keep.
func (e *env) removeBenchLogs(ctx context.Context, prefix string, n int, keep bool) error {
	if keep {
		return nil
	}
	var errs []error
	for i := range n {
		name := prefix + "-" + strconv.Itoa(i)
		l, err := e.client.OpenLog(ctx, name)
		if err != nil {
			continue // never created
		}
		if err := e.client.DeleteLog(ctx, name); err != nil {
			errs = append(errs, errors.Wrapf(err, "delete benchmark log %q", name))
			continue
		}
		if e.rawStore == nil {
			dir := filepath.Join(e.r.cfg.Storage.RootPath, strconv.FormatInt(l.ID(), 10))
			errs = append(errs, errors.Wrapf(os.RemoveAll(dir), "remove the data of benchmark log %q", name))
			continue
		}
		objs, err := objstore.ListAll(ctx, e.rawStore, segment.LogPrefix("", l.ID()), "")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, o := range objs {
			errs = append(errs, e.rawStore.Delete(ctx, o.Key))
		}
	}
	return errors.Join(errs...)
}

func writeJSON(stdout io.Writer, dest string, res *bench.Result) error {
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return errors.Wrap(err, "encode results")
	}
	data = append(data, '\n')
	if dest == "-" {
		_, err = stdout.Write(data)
		return err
	}
	return errors.Wrapf(os.WriteFile(dest, data, 0o644), "write --json file")
}

// Figures formatting.

func mibps(v float64) string {
	if v >= 1024 {
		return fmt.Sprintf("%.2f GiB/s", v/1024)
	}
	return fmt.Sprintf("%.1f MiB/s", v)
}

func ms(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.2f s", v/1000)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.3f ms", v)
}

func ratio(ours, raw float64) string {
	if raw <= 0 || ours <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", ours/raw)
}

func bytesOf(v float64) string { return human(int64(v)) }

// rawLatency says which raw latency an append's is compared with: with
// appends pipelined (several in flight), an entry waits at least for a
// block of writer.maxBlockBytes to be written with the writer's
// parallelism, as the raw throughput phase writes them; a lone appender
// waits at least for one write of its entry.
func rawLatency(r *bench.Result, cfg bench.Config) (bench.Latency, string) {
	if cfg.Rate == 0 && (cfg.AsyncDepth > 1 || cfg.Concurrency > cfg.Logs) {
		return r.Raw.Throughput.Latency, fmt.Sprintf("one %s write, %d at once", human(int64(r.Raw.Throughput.OpBytes)), r.Raw.Throughput.Streams)
	}
	return r.Raw.SingleOp.Latency, fmt.Sprintf("one %s write, alone", human(int64(r.Raw.SingleOp.OpBytes)))
}

// printBenchTable prints the results: one row per figure, with the raw
// limit and the ratio when measured, then what was stored and the memory.
func printBenchTable(w io.Writer, r *bench.Result, cfg bench.Config) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	hasRaw := r.Raw != nil
	row := func(name, ours, raw, rat string) {
		if hasRaw {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, ours, raw, rat)
		} else {
			fmt.Fprintf(tw, "%s\t%s\n", name, ours)
		}
	}
	var rawLat bench.Latency
	var rawMiBps float64
	if hasRaw {
		fmt.Fprintln(tw, "\twoodpecker\traw limit\tratio")
		rawMiBps = r.Raw.Throughput.MiBps
		rawLat, _ = rawLatency(r, cfg)
	}
	rawStr := func(v float64, f func(float64) string) string {
		if !hasRaw || v <= 0 {
			return "-"
		}
		return f(v)
	}
	wr := r.Write
	count := func(v float64) string { return fmt.Sprintf("%.0f", v) }
	rawEntries := rawMiBps * (1 << 20) / float64(cfg.EntrySize)
	row("write throughput", mibps(wr.MiBps), rawStr(rawMiBps, mibps), ratio(wr.MiBps, rawMiBps))
	row("entries/s", count(wr.EntriesPS), rawStr(rawEntries, count), ratio(wr.EntriesPS, rawEntries))
	for _, l := range []struct {
		name      string
		ours, raw float64
	}{
		{"append p50", wr.Latency.P50Ms, rawLat.P50Ms},
		{"append p99", wr.Latency.P99Ms, rawLat.P99Ms},
		{"append p99.9", wr.Latency.P999Ms, rawLat.P999Ms},
		{"append max", wr.Latency.MaxMs, rawLat.MaxMs},
	} {
		row(l.name, ms(l.ours), rawStr(l.raw, ms), ratio(l.ours, l.raw))
	}
	if r.Read != nil {
		if hasRaw && r.Raw.Get != nil {
			row("read throughput", mibps(r.Read.MiBps), mibps(r.Raw.Get.MiBps)+" (GET)", ratio(r.Read.MiBps, r.Raw.Get.MiBps))
		} else {
			row("read throughput", mibps(r.Read.MiBps), "-", "-")
		}
	}
	if c := r.Cost; c != nil {
		bound := "-"
		if c.BoundPutsPerS > 0 {
			bound = fmt.Sprintf("%.1f (bound)", c.BoundPutsPerS)
		}
		row("PUTs/s while appending", fmt.Sprintf("%.1f", c.PutsPerS), bound, ratio(c.PutsPerS, c.BoundPutsPerS))
		row("PUTs per 1,000 appends", fmt.Sprintf("%.1f", c.PutsPer1000Appends), "-", "-")
		row("cost at S3 list prices", fmt.Sprintf("$%.2f/day", c.USDPerDay), "-", "-")
	}
	if rt := r.Ratios; rt != nil && rt.P50VsWindowBound > 0 && hasRaw {
		bound := r.Setup.BatchWindowMs + 1.5*r.Raw.SingleOp.Latency.P50Ms
		row("append p50 vs window + 1.5 x PUT", ms(wr.Latency.P50Ms), ms(bound)+" (bound)", fmt.Sprintf("%.2f", rt.P50VsWindowBound))
	}
	st := r.Storage
	unit := "blocks"
	perGiB := st.BlocksPerGiB
	if st.PutsPerGiB != nil {
		unit, perGiB = "PUTs", *st.PutsPerGiB
	}
	ideal := float64(1<<30) / float64(r.Setup.MaxBlockBytes)
	row(unit+" per GiB", count(perGiB), rawStr(ideal, count), ratio(perGiB, ideal))
	_ = tw.Flush()

	fmt.Fprintf(w, "\nstored: %s in %d blocks (avg %s) in %d segments", human(wr.Bytes), st.Blocks,
		bytesOf(st.AvgBlockBytes), st.Segments)
	if c := st.WriteCalls; c != nil {
		fmt.Fprintf(w, "; %d PUTs, %d GETs, %d LISTs while writing", c.Puts, c.Gets, c.Lists)
	}
	if c := r.Cost; c != nil {
		fmt.Fprintf(w, "\nwrite phase (%.1f s, closing excluded): %d PUTs (%s), %d GETs; %.1f appends/s",
			c.Seconds, c.Puts, human(c.PutBytes), c.Gets, wr.EntriesPS)
		if cfg.Rate > 0 {
			fmt.Fprintf(w, " of %.0f scheduled (%d submitted over a period late, the latest %s behind)",
				cfg.Rate*float64(cfg.Logs), wr.LateAppends, ms(wr.MaxBehindMs))
		}
		if c.BoundPutsPerS > 0 {
			fmt.Fprintf(w, "; PUT bound 1.2 x (1/%s + %s/s / %s)", time.Duration(r.Setup.BatchWindowMs*float64(time.Millisecond)),
				human(int64(float64(c.PutBytes)/max(c.Seconds, 1e-9))), human(r.Setup.ObjectBytes))
		}
		if c.Puts > 0 {
			fmt.Fprintf(w, "\n  the engine's PUTs: avg %s, p50 %s, p99 %s, max %s", human(c.PutBytes/c.Puts),
				ms(c.PutLatency.P50Ms), ms(c.PutLatency.P99Ms), ms(c.PutLatency.MaxMs))
		}
	}
	fmt.Fprintf(w, "\nmemory: peak heap %s (%s before writing), peak from the OS %s",
		bytesOf(float64(r.Memory.PeakHeapInuse)), bytesOf(float64(r.Memory.BaselineHeapInuse)), bytesOf(float64(r.Memory.PeakSys)))
	if m := r.Memory; m.PeakRSS > 0 {
		fmt.Fprintf(w, "; RSS peak %s (%s before writing, %s high-water mark of the process)",
			bytesOf(float64(m.PeakRSS)), bytesOf(float64(m.BaselineRSS)), bytesOf(float64(m.HighWaterRSS)))
	}
	if b := r.Setup.ClientMemoryBudgetBytes; b > 0 {
		fmt.Fprintf(w, "; the writers' memory budget: %s (writer.clientMemoryBudgetBytes)", bytesOf(float64(b)))
	}
	fmt.Fprintln(w)
	if hasRaw {
		_, what := rawLatency(r, cfg)
		fmt.Fprintf(w, "raw limit: %s, measured without Woodpecker.\n", r.Raw.Target)
		if len(r.Raw.ThroughputRuns) > 0 {
			fmt.Fprintf(w, "  throughput: %s writes, %d at once (mean of %d runs); latency: %s;\n",
				human(int64(r.Raw.Throughput.OpBytes)), r.Raw.Throughput.Streams, len(r.Raw.ThroughputRuns), what)
		} else {
			fmt.Fprintf(w, "  paced run: no raw throughput phase; latency: %s;\n", what)
		}
		if g := r.Raw.Get; g != nil {
			fmt.Fprintf(w, "  reads: ranged GETs of %s (the readers' average GET), %d at once: %s, p50 %s;\n",
				human(int64(g.OpBytes)), g.Streams, mibps(g.MiBps), ms(g.Latency.P50Ms))
		}
		fmt.Fprintf(w, "  %s per GiB: GiB / writer.maxBlockBytes (%s). A lone %s write takes %s at p50.\n",
			unit, human(r.Setup.MaxBlockBytes), human(int64(r.Raw.SingleOp.OpBytes)), ms(r.Raw.SingleOp.Latency.P50Ms))
	}
	if cfg.AsyncDepth > 1 && cfg.Rate == 0 {
		fmt.Fprintf(w, "append latency includes waiting behind up to %d appends in flight per goroutine "+
			"(--async-depth 1 measures a lone appender).\n", cfg.AsyncDepth)
	}
	if le := r.Setup.LoadAvgEnd; len(le) == 3 && le[0] > float64(r.Setup.GOMAXPROCS) {
		fmt.Fprintf(w, "note: the machine was busy (load average %.1f on %d CPUs): figures are noisy.\n", le[0], r.Setup.GOMAXPROCS)
	}
}
