// Package bench measures the Woodpecker engine against the storage under
// it. It is the one runner behind the `go test -bench` benchmarks of package
// woodpecker and the `woodpecker bench` command.
//
// Run first measures the raw limit of the storage (Config.Raw) with the I/O
// the engine itself does: writes of writer.maxBlockBytes with as many in
// flight as one writer keeps (one file written sequentially with write +
// fsync for a local directory; writer.maxInflightUploads parallel PUTs for
// an object store), and single writes of the entry size (the floor of a lone
// writer's latency). Then it appends to one or more logs from several
// goroutines, each keeping up to AsyncDepth appends in flight, measures the
// raw throughput once more (the two runs are averaged), reads
// everything back from the earliest entry, and reports throughput, latency
// percentiles (HDR histogram), requests per GiB, peak memory and the ratios
// of the engine's figures to the raw ones.
//
// In QuorumBuffer mode the raw target is the LogStores (QuorumTarget):
// blocks of the entry size sent with AddBlock to 3 of them, done when 2
// accept them, as many at once as appends are in flight
// (Config.RawInFlight).
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

const mib = 1 << 20

// ErrInvalidConfig marks a Config that Run refuses; the message names the
// field.
var ErrInvalidConfig = errors.New("invalid benchmark configuration")

// Timer is what a benchmark's timer offers; *testing.B implements it. Run
// calls StartTimer when the write phase starts and StopTimer when its last
// append is acknowledged, so a benchmark times only the appends. Run calls
// it from the goroutine that called Run.
type Timer interface {
	StartTimer()
	StopTimer()
}

// Phase names a stage of a run.
type Phase string

// The phases of a run.
const (
	// PhaseRawThroughput writes maxBlockBytes units straight to the
	// storage (before the write phase, and again after it unless
	// Config.RawOnce).
	PhaseRawThroughput Phase = "raw-throughput"
	// PhaseRawOp times single writes of the entry size.
	PhaseRawOp Phase = "raw-op"
	// PhaseWrite appends through the engine.
	PhaseWrite Phase = "write"
	// PhaseRead reads everything back.
	PhaseRead Phase = "read"
)

// Progress is reported every Config.Interval while a phase runs, and once
// when it ends.
type Progress struct {
	Phase Phase
	// Bytes done so far in this phase (acknowledged, for the write phase).
	Bytes int64
	// TotalBytes the phase will do; 0 when it is bounded by time only.
	TotalBytes int64
	// Deadline ends a phase bounded by time; zero otherwise.
	Deadline time.Time
	Elapsed  time.Duration
	// MiBps is the rate over the last interval, AvgMiBps since the phase
	// started.
	MiBps    float64
	AvgMiBps float64
	// Done is true in the phase's last report.
	Done bool
}

// Config says what to measure. Client and EntrySize are required, and
// TotalBytes or Duration (or both: whichever ends first).
type Config struct {
	// Client is the engine under test. Run creates its logs on it (and
	// deletes them at the end unless KeepLogs). It stays the caller's.
	Client *woodpecker.Client

	// EntrySize is the payload size of every append (random bytes).
	EntrySize int
	// TotalBytes bounds the payload bytes appended, in whole entries
	// (rounded up).
	TotalBytes int64
	// Duration bounds the write phase in time.
	Duration time.Duration
	// Concurrency is the number of appending goroutines (default 1). They
	// share the logs round robin, so it must be at least Logs.
	Concurrency int
	// AsyncDepth is how many appends each goroutine keeps in flight with
	// AppendAsync. 0 or 1 means synchronous Append. SaturatingDepth gives a
	// depth that keeps the engine busy.
	AsyncDepth int
	// Logs is the number of logs written, each by its own writer (default 1).
	Logs int
	// LogPrefix names the logs LogPrefix-0, LogPrefix-1, ... (default
	// "bench-" and a random suffix).
	LogPrefix string
	// Epoch of the writers (default 1).
	Epoch int64
	// Rate, when above 0, paces the write phase instead of appending as
	// fast as the engine accepts: every log gets one appender that submits
	// Rate appends a second on a fixed schedule (the k-th append of a log
	// is due k/Rate after the log's first, and the logs' first appends are
	// spread evenly over 1/Rate), with AppendAsync, so that a slow
	// acknowledgement does not delay the next submission. An appender that
	// falls behind catches up at once (a token schedule); it waits only
	// when AsyncDepth appends of its log are in flight. With Rate set,
	// Concurrency is the number of logs, AsyncDepth 0 means one second of
	// appends, and the raw measurement skips its throughput phase (the
	// raw figures of a paced run are one PUT of the entry size and GETs).
	Rate float64
	// KeepLogs leaves the logs in place after the run.
	KeepLogs bool
	// SkipRead skips reading the logs back.
	SkipRead bool
	// Readers bounds how many logs the read phase reads at once, one
	// reader per log (default: every log, at most DefaultReaders): a
	// thousand readers opened at once measure etcd's queue, not a
	// catch-up read.
	Readers int

	// Raw, when set, is measured before the engine, and its throughput
	// again after the write phase unless RawOnce.
	Raw RawTarget
	// RawBytes bounds the raw throughput phase (default: TotalBytes, at
	// least one block per stream; with only Duration set, Duration bounds
	// it).
	RawBytes int64
	// RawGetStreams is how many GETs the raw read phase keeps in flight
	// (default 4). That phase runs after the read phase when Raw is a
	// ReadTarget: whole-object ranged GETs of objects the size of the
	// engine's average GET in the read phase (of its average block
	// without a Counter), for as many bytes as the engine read.
	RawGetStreams int
	// RawOps is the number of single writes of EntrySize timed (default
	// 200; fewer if they take more than RawOpsTime, default 5 s).
	RawOps     int
	RawOpsTime time.Duration
	// RawOnce measures raw throughput only before the engine. By default
	// it is measured before and after the write phase and the two rates
	// are averaged: on a shared machine the storage's speed drifts (local
	// disks here vary 3x from one second to the next), and the mean of
	// the runs that bracket the write phase estimates it best.
	RawOnce bool
	// RawInFlight, when above 0, makes the raw throughput phase write
	// units of EntrySize, RawInFlight at once, instead of units of
	// writer.maxBlockBytes with the target's Streams per log: the raw limit
	// of the same payload with as many writes in flight as appends. It
	// suits QuorumBuffer, whose writer sends each block as soon as a slot
	// is free rather than filling it.
	RawInFlight int

	// Counter, when set, is the store the client writes through; its
	// counts during the write and read phases are reported.
	Counter *CountingStore

	// Interval is the period of progress reports and memory samples
	// (default 250 ms).
	Interval time.Duration
	// MaxIntervals bounds the timeline (default 200). Its intervals start
	// at 250 µs and double in length (neighbours merged pairwise) whenever
	// it is full, so that it ends with MaxIntervals/2 to MaxIntervals
	// intervals whatever the run's length (one per 250 µs for shorter
	// runs): a run of 12.5 ms or more charts at least 50 points.
	MaxIntervals int
	// Samples is the size of the uniform reservoir of (time, latency)
	// samples kept for plots (default 10000; negative keeps none).
	Samples int
	// Progress, when set, is called every Interval from a goroutine of the
	// runner, one call at a time. It must return quickly.
	Progress func(Progress)
	// Timer, when set, times the write phase (see Timer).
	Timer Timer
}

func (c Config) withDefaults() (Config, error) {
	bad := func(format string, args ...any) (Config, error) {
		return Config{}, errors.Wrapf(ErrInvalidConfig, format, args...)
	}
	if c.Client == nil {
		return bad("no client")
	}
	w := c.Client.Config().Writer
	c.Concurrency = max(c.Concurrency, 1)
	c.Logs = max(c.Logs, 1)
	switch {
	case c.EntrySize <= 0:
		return bad("entry size %d: want at least 1 byte", c.EntrySize)
	case int64(c.EntrySize) > w.MaxEntryBytes:
		return bad("entry size %d exceeds writer.maxEntryBytes (%d)", c.EntrySize, w.MaxEntryBytes)
	case c.TotalBytes < 0 || c.Duration < 0:
		return bad("negative total bytes or duration")
	case c.TotalBytes == 0 && c.Duration == 0:
		return bad("set total bytes or a duration")
	case c.Concurrency < c.Logs && c.Rate == 0:
		return bad("concurrency %d is below the number of logs %d: every log needs an appender", c.Concurrency, c.Logs)
	case c.AsyncDepth < 0:
		return bad("async depth %d: want 0 (synchronous) or more", c.AsyncDepth)
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return bad("rate %v: want appends per second per log, or 0 (as fast as possible)", c.Rate)
	}
	if c.Rate > 0 {
		c.Concurrency = c.Logs
		if c.AsyncDepth == 0 {
			c.AsyncDepth = max(int(math.Ceil(c.Rate)), 2)
		}
	}
	if c.RawGetStreams <= 0 {
		c.RawGetStreams = 4
	}
	if c.Readers <= 0 {
		c.Readers = min(c.Logs, DefaultReaders)
	}
	if c.LogPrefix == "" {
		c.LogPrefix = "bench-" + randomHex(6)
	}
	if c.Epoch == 0 {
		c.Epoch = 1
	}
	if c.RawOps <= 0 {
		c.RawOps = 200
	}
	if c.RawOpsTime <= 0 {
		c.RawOpsTime = 5 * time.Second
	}
	if c.Interval <= 0 {
		c.Interval = 250 * time.Millisecond
	}
	if c.MaxIntervals <= 0 {
		c.MaxIntervals = 200
	}
	c.MaxIntervals = max(c.MaxIntervals, 2)
	if c.Samples == 0 {
		c.Samples = 10000
	}
	return c, nil
}

// DefaultReaders is the default of Config.Readers.
const DefaultReaders = 64

// SaturatingDepth returns an AsyncDepth for concurrency goroutines
// appending entrySize entries that keeps about two rounds of the engine's
// pipeline in flight: 2 x (streams + 1) blocks of w.MaxBlockBytes (streams
// uploading, one filling), bounded by three quarters of the memory budget.
// streams is RawTarget.Streams (1 for local FS, w.MaxInflightUploads for an
// object store).
func SaturatingDepth(w options.WriterConfig, streams, entrySize, concurrency int) int {
	want := 2 * int64(streams+1) * w.MaxBlockBytes
	want = min(want, w.MemoryBudgetBytes*3/4)
	per := int64(entrySize) + 32 // the engine charges 32 bytes per entry beyond its payload
	depth := (want/per + int64(concurrency) - 1) / int64(max(concurrency, 1))
	return int(max(depth, 1))
}

// Result is what a run measured. It marshals to JSON as is. Rates are MiB
// (2^20 bytes) per second; "per GiB" figures are per 2^30 payload bytes.
type Result struct {
	Setup     Setup         `json:"setup"`
	Raw       *RawResult    `json:"raw,omitempty"`
	Write     WriteResult   `json:"write"`
	Read      *ReadResult   `json:"read,omitempty"`
	Storage   StorageResult `json:"storage"`
	Cost      *CostResult   `json:"cost,omitempty"`
	Memory    MemoryResult  `json:"memory"`
	Ratios    *Ratios       `json:"ratios,omitempty"`
	Timeline  []Interval    `json:"timeline"`
	Samples   []Sample      `json:"samples"`
	Histogram []Bin         `json:"histogram"`
}

// Setup records what was run and on what.
type Setup struct {
	EntrySize          int     `json:"entry_size"`
	TotalBytes         int64   `json:"total_bytes,omitempty"`
	DurationS          float64 `json:"duration_s,omitempty"`
	Concurrency        int     `json:"concurrency"`
	AsyncDepth         int     `json:"async_depth"`
	Logs               int     `json:"logs"`
	StorageType        string  `json:"storage_type"`
	MaxBlockBytes      int64   `json:"max_block_bytes"`
	MaxInflightUploads int     `json:"max_inflight_uploads"`
	FlushDelayMs       float64 `json:"flush_delay_ms"`
	LocalFlushDelayMs  float64 `json:"local_flush_delay_ms"`
	MemoryBudgetBytes  int64   `json:"memory_budget_bytes"`
	// ClientMemoryBudgetBytes is writer.clientMemoryBudgetBytes: what all
	// the writers hold together, whatever the number of logs.
	ClientMemoryBudgetBytes int64  `json:"client_memory_budget_bytes"`
	Compression             string `json:"compression"`
	// RatePerLog is Config.Rate: appends per second per log, 0 when the
	// run appends as fast as it can.
	RatePerLog float64 `json:"rate_per_log,omitempty"`
	// BatchWindowMs, ObjectBytes and MaxInflightObjects are the shared
	// object stream's settings (writer.batchWindow, writer.objectBytes,
	// writer.maxInflightObjects); a window of 0 is the per-log layout.
	BatchWindowMs      float64   `json:"batch_window_ms"`
	ObjectBytes        int64     `json:"object_bytes"`
	MaxInflightObjects int       `json:"max_inflight_objects"`
	GOMAXPROCS         int       `json:"gomaxprocs"`
	StartedAt          time.Time `json:"started_at"`
	// LoadAvgStart and LoadAvgEnd are the 1, 5 and 15 minute load averages
	// (Linux only): a busy machine makes every figure noisy.
	LoadAvgStart []float64 `json:"load_avg_start,omitempty"`
	LoadAvgEnd   []float64 `json:"load_avg_end,omitempty"`
}

// RawResult is the storage's own limit, measured in the same run.
type RawResult struct {
	Target string `json:"target"`
	// Throughput: writes of writer.maxBlockBytes, Streams at once; the
	// runs of ThroughputRuns combined (mean rate, all latencies).
	Throughput     RawPhase   `json:"throughput"`
	ThroughputRuns []RawPhase `json:"throughput_runs"`
	// SingleOp: single writes of the entry size, one at a time.
	SingleOp RawPhase `json:"single_op"`
	// Get: ranged GETs of whole objects the size of the engine's reads,
	// Config.RawGetStreams at once (nil unless the target is a
	// ReadTarget and the read phase ran).
	Get *RawPhase `json:"get,omitempty"`
}

// RawPhase is one raw measurement.
type RawPhase struct {
	OpBytes int     `json:"op_bytes"`
	Streams int     `json:"streams"`
	Ops     int64   `json:"ops"`
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	MiBps   float64 `json:"mib_per_s"`
	// CPUSeconds is the CPU time (user + system) this process used, all
	// goroutines included (0 where it cannot be read).
	CPUSeconds float64 `json:"cpu_seconds"`
	// Latency of one write (PUT, or write + fsync).
	Latency Latency `json:"latency"`

	hist *hdrhistogram.Histogram
}

// combineRaw averages raw throughput runs: MiBps is the mean of their
// rates, the counts are sums, and the latency covers every write.
func combineRaw(runs []RawPhase) RawPhase {
	if len(runs) == 0 {
		return RawPhase{}
	}
	c := RawPhase{OpBytes: runs[0].OpBytes, Streams: runs[0].Streams, hist: newHist()}
	for _, r := range runs {
		c.Ops += r.Ops
		c.Bytes += r.Bytes
		c.Seconds += r.Seconds
		c.CPUSeconds += r.CPUSeconds
		c.MiBps += r.MiBps / float64(len(runs))
		if r.hist != nil {
			c.hist.Merge(r.hist)
		}
	}
	c.Latency = summarize(c.hist)
	return c
}

// WriteResult is the engine's write phase.
type WriteResult struct {
	// Bytes and Entries acknowledged.
	Bytes   int64 `json:"bytes"`
	Entries int64 `json:"entries"`
	// Seconds from the first append to the last acknowledgement.
	Seconds   float64 `json:"seconds"`
	MiBps     float64 `json:"mib_per_s"`
	EntriesPS float64 `json:"entries_per_s"`
	// Latency of Append, or of AppendAsync until its future is done,
	// including any wait for the memory budget.
	Latency Latency `json:"latency"`
	// CPUSeconds is the CPU time (user + system) this process used during
	// the write phase, the runner's own goroutines included; on a machine
	// where the store's server shares the CPU, what the client burns the
	// server lacks. 0 where it cannot be read.
	CPUSeconds float64 `json:"cpu_seconds"`
	// CloseSeconds is how long closing the writers (sealing) took.
	CloseSeconds float64 `json:"close_seconds"`
	// MaxBehindMs (paced runs) is how late the latest submission was
	// against its schedule, and LateAppends how many were submitted more
	// than one period (1/Rate) late: waiting for the AsyncDepth appends in
	// flight, or for the CPU. Latency counts from the submission, so a
	// run that fell behind understates it.
	MaxBehindMs float64 `json:"max_behind_ms,omitempty"`
	LateAppends int64   `json:"late_appends,omitempty"`
}

// ReadResult is the read-back phase: readers from Earliest over everything
// written, one per log, Config.Readers at once.
type ReadResult struct {
	Bytes      int64   `json:"bytes"`
	Entries    int64   `json:"entries"`
	Seconds    float64 `json:"seconds"`
	MiBps      float64 `json:"mib_per_s"`
	CPUSeconds float64 `json:"cpu_seconds"`
	// GetMiBps is what the readers fetched from the object store (GET
	// bytes, headers and seal records included) per second, when
	// Config.Counter is set; MiBps counts payload only.
	GetMiBps float64 `json:"get_mib_per_s,omitempty"`
}

// StorageResult is what the engine stored.
type StorageResult struct {
	Segments int64 `json:"segments"`
	// Blocks is the number of blocks: objects for an object store, fsynced
	// flushes for a local directory.
	Blocks int64 `json:"blocks"`
	// StoredBytes is the size of the blocks (headers included).
	StoredBytes   int64   `json:"stored_bytes"`
	BlocksPerGiB  float64 `json:"blocks_per_gib"`
	AvgBlockBytes float64 `json:"avg_block_bytes"`
	// WriteCalls and ReadCalls are the object store requests of the write
	// phase (closing included) and of the read phase, when Config.Counter
	// is set.
	WriteCalls *Counts  `json:"write_calls,omitempty"`
	ReadCalls  *Counts  `json:"read_calls,omitempty"`
	PutsPerGiB *float64 `json:"puts_per_gib,omitempty"`
}

// CostResult is the object store requests of the write phase, from the
// first append to the last acknowledgement (closing the writers, which
// seals, excluded), counted by Config.Counter, and what they would cost.
type CostResult struct {
	Puts     int64   `json:"puts"`
	PutBytes int64   `json:"put_bytes"`
	Gets     int64   `json:"gets"`
	Seconds  float64 `json:"seconds"`
	PutsPerS float64 `json:"puts_per_s"`
	GetsPerS float64 `json:"gets_per_s"`
	// PutsPer1000Appends is PUTs per 1,000 acknowledged appends.
	PutsPer1000Appends float64 `json:"puts_per_1000_appends"`
	// PutLatency is the latency of the engine's successful PUTs (blocks,
	// shared objects, seals), as the client saw them.
	PutLatency Latency `json:"put_latency"`
	// USDPerDay is the day's PUTs and GETs at these rates, at S3 list
	// prices (PricePer1000Puts, PricePer1000Gets).
	USDPerDay float64 `json:"usd_per_day"`
	// BoundPutsPerS is the bound on the PUT rate of a process with
	// shared objects: 1.2 x (1/writer.batchWindow + PUT bytes per second /
	// writer.objectBytes). 0 without a window.
	BoundPutsPerS float64 `json:"bound_puts_per_s,omitempty"`
}

// S3 list prices (us-east-1, S3 Standard) that CostResult.USDPerDay uses.
const (
	PricePer1000Puts = 0.005
	PricePer1000Gets = 0.0004
)

// newCost computes the cost figures of c, counted over seconds during which
// appends were acknowledged; window and objectBytes give the bound.
func newCost(c Counts, seconds float64, appends int64, window time.Duration, objectBytes int64) *CostResult {
	r := &CostResult{Puts: c.Puts, PutBytes: c.PutBytes, Gets: c.Gets, Seconds: seconds}
	if seconds > 0 {
		r.PutsPerS = float64(c.Puts) / seconds
		r.GetsPerS = float64(c.Gets) / seconds
	}
	if appends > 0 {
		r.PutsPer1000Appends = float64(c.Puts) * 1000 / float64(appends)
	}
	r.USDPerDay = 86400 * (r.PutsPerS*PricePer1000Puts + r.GetsPerS*PricePer1000Gets) / 1000
	if window > 0 && objectBytes > 0 && seconds > 0 {
		r.BoundPutsPerS = 1.2 * (1/window.Seconds() + float64(c.PutBytes)/seconds/float64(objectBytes))
	}
	return r
}

// MemoryResult comes from runtime.MemStats and the process's resident set
// (Linux: /proc/self/status; 0 elsewhere) sampled every Interval during
// the write and read phases.
type MemoryResult struct {
	BaselineHeapInuse uint64 `json:"baseline_heap_inuse"`
	PeakHeapInuse     uint64 `json:"peak_heap_inuse"`
	PeakSys           uint64 `json:"peak_sys"`
	// BaselineRSS is the resident set once the writers are open, before
	// the first append; PeakRSS the largest sampled afterwards.
	BaselineRSS uint64 `json:"baseline_rss,omitempty"`
	PeakRSS     uint64 `json:"peak_rss,omitempty"`
	// HighWaterRSS is the kernel's peak resident set of the process's
	// whole life (VmHWM), read at the end: it includes the raw phases.
	HighWaterRSS uint64 `json:"high_water_rss,omitempty"`
}

// Ratios compare the engine with the raw limit (ours / raw).
type Ratios struct {
	// WriteMiBps is write MiB/s over raw throughput MiB/s.
	WriteMiBps float64 `json:"write_mib_per_s"`
	// P50VsRawOp is the append p50 over the p50 of one raw write of the
	// entry size: the lone writer's overhead.
	P50VsRawOp float64 `json:"p50_vs_raw_op"`
	// P50VsWindowBound is the append p50 over writer.batchWindow + 1.5 x
	// the raw p50 of one write of the entry size (the bound on
	// the latency of shared objects); 0 without a window.
	P50VsWindowBound float64 `json:"p50_vs_window_bound,omitempty"`
	// ReadVsRawGet is the read phase's payload MiB/s over the raw GET
	// MiB/s (RawResult.Get), when measured.
	ReadVsRawGet float64 `json:"read_vs_raw_get,omitempty"`
}

// Summary is a one-line account of the result, for logs.
func (r *Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "write %.1f MiB/s %.0f entries/s p50 %.3f p99 %.3f p99.9 %.3f max %.3f ms, %s",
		r.Write.MiBps, r.Write.EntriesPS, r.Write.Latency.P50Ms, r.Write.Latency.P99Ms,
		r.Write.Latency.P999Ms, r.Write.Latency.MaxMs, cpuPerGiB(r.Write.CPUSeconds, r.Write.Bytes))
	if r.Raw != nil {
		fmt.Fprintf(&b, "; raw %.1f MiB/s, %s (op p50 %.3f ms)", r.Raw.Throughput.MiBps,
			cpuPerGiB(r.Raw.Throughput.CPUSeconds, r.Raw.Throughput.Bytes), r.Raw.SingleOp.Latency.P50Ms)
	}
	if r.Ratios != nil {
		fmt.Fprintf(&b, "; ratio %.2f, p50/raw-op %.2f", r.Ratios.WriteMiBps, r.Ratios.P50VsRawOp)
	}
	if r.Read != nil {
		fmt.Fprintf(&b, "; read %.1f MiB/s", r.Read.MiBps)
	}
	fmt.Fprintf(&b, "; %d blocks (%.0f B avg)", r.Storage.Blocks, r.Storage.AvgBlockBytes)
	if r.Storage.PutsPerGiB != nil {
		fmt.Fprintf(&b, ", %.0f PUTs/GiB", *r.Storage.PutsPerGiB)
	}
	if c := r.Cost; c != nil {
		fmt.Fprintf(&b, "; %.1f PUTs/s", c.PutsPerS)
		if c.BoundPutsPerS > 0 {
			fmt.Fprintf(&b, " (bound %.1f)", c.BoundPutsPerS)
		}
		fmt.Fprintf(&b, ", %.1f PUTs/1000 appends, $%.2f/day", c.PutsPer1000Appends, c.USDPerDay)
	}
	if r.Raw != nil && r.Raw.Get != nil {
		fmt.Fprintf(&b, "; raw GET %.1f MiB/s", r.Raw.Get.MiBps)
	}
	fmt.Fprintf(&b, "; peak heap %.1f MiB", float64(r.Memory.PeakHeapInuse)/mib)
	if r.Memory.PeakRSS > 0 {
		fmt.Fprintf(&b, ", peak RSS %.1f MiB", float64(r.Memory.PeakRSS)/mib)
	}
	return b.String()
}

func cpuPerGiB(cpu float64, bytes int64) string {
	if bytes == 0 {
		return "- CPU-s/GiB"
	}
	return fmt.Sprintf("%.2f CPU-s/GiB", cpu/(float64(bytes)/(1<<30)))
}

// Run measures the raw target (if any), then the engine, as cfg says. It
// returns the first error of any phase; an append that fails stops the run.
// The logs it creates are deleted at the end unless cfg.KeepLogs (their
// data is left to the engine's garbage collection). Run is safe for
// concurrent use with other runs on distinct log names.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ccfg := cfg.Client.Config()
	w := ccfg.Writer
	res := &Result{Setup: Setup{
		EntrySize: cfg.EntrySize, TotalBytes: cfg.TotalBytes, DurationS: cfg.Duration.Seconds(),
		Concurrency: cfg.Concurrency, AsyncDepth: cfg.AsyncDepth, Logs: cfg.Logs,
		StorageType: string(ccfg.Storage.Type), MaxBlockBytes: w.MaxBlockBytes,
		MaxInflightUploads: w.MaxInflightUploads, FlushDelayMs: float64(w.FlushDelay.Microseconds()) / 1000,
		LocalFlushDelayMs: float64(w.LocalFlushDelay.Microseconds()) / 1000,
		MemoryBudgetBytes: w.MemoryBudgetBytes, ClientMemoryBudgetBytes: w.ClientMemoryBudgetBytes, Compression: string(w.Compression),
		RatePerLog: cfg.Rate, BatchWindowMs: float64(w.BatchWindow.Microseconds()) / 1000,
		ObjectBytes: w.ObjectBytes, MaxInflightObjects: w.MaxInflightObjects,
		GOMAXPROCS: runtime.GOMAXPROCS(0), StartedAt: time.Now().UTC(), LoadAvgStart: loadAvg(),
	}}
	if cfg.Raw != nil {
		if res.Raw, err = measureRaw(ctx, cfg, w); err != nil {
			return nil, err
		}
	}
	e := &engineRun{cfg: cfg, res: res}
	if cfg.Raw != nil && !cfg.RawOnce && cfg.Rate == 0 {
		e.afterWrite = func() error {
			again, err := rawThroughput(ctx, cfg, w)
			if err != nil {
				return err
			}
			res.Raw.ThroughputRuns = append(res.Raw.ThroughputRuns, again)
			res.Raw.Throughput = combineRaw(res.Raw.ThroughputRuns)
			return nil
		}
	}
	err = e.run(ctx)
	res.Setup.LoadAvgEnd = loadAvg()
	if err != nil {
		return nil, err
	}
	if res.Raw != nil {
		res.Ratios = &Ratios{}
		if res.Raw.Throughput.MiBps > 0 {
			res.Ratios.WriteMiBps = res.Write.MiBps / res.Raw.Throughput.MiBps
		}
		if res.Raw.SingleOp.Latency.P50Ms > 0 {
			res.Ratios.P50VsRawOp = res.Write.Latency.P50Ms / res.Raw.SingleOp.Latency.P50Ms
			if w.BatchWindow > 0 {
				bound := float64(w.BatchWindow.Microseconds())/1000 + 1.5*res.Raw.SingleOp.Latency.P50Ms
				res.Ratios.P50VsWindowBound = res.Write.Latency.P50Ms / bound
			}
		}
		if g := res.Raw.Get; g != nil && g.MiBps > 0 && res.Read != nil {
			res.Ratios.ReadVsRawGet = res.Read.MiBps / g.MiBps
		}
	}
	return res, nil
}

// engineRun is one run's engine phases.
type engineRun struct {
	cfg  Config
	res  *Result
	logs []*logRun
	// afterWrite, when set, runs once the writers are closed.
	afterWrite func() error

	peakHeap, peakSys, peakRSS uint64 // touched by the sampler goroutine only, read after it ends
}

type logRun struct {
	log    *woodpecker.Log
	writer *woodpecker.Writer
	acked  atomic.Int64
}

func (e *engineRun) run(ctx context.Context) (err error) {
	defer func() {
		// Writers left open (after a failure) are closed without waiting
		// long: their outcome no longer matters.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for _, lr := range e.logs {
			if lr.writer != nil {
				_ = lr.writer.Close(cctx)
			}
			if !e.cfg.KeepLogs {
				if derr := e.cfg.Client.DeleteLog(cctx, lr.log.Name()); derr != nil && err == nil {
					err = errors.Wrapf(derr, "delete benchmark log %q", lr.log.Name())
				}
			}
		}
	}()
	for i := range e.cfg.Logs {
		name := e.cfg.LogPrefix + "-" + strconv.Itoa(i)
		if err := e.cfg.Client.CreateLog(ctx, name); err != nil {
			return errors.Wrapf(err, "create benchmark log %q", name)
		}
		l, err := e.cfg.Client.OpenLog(ctx, name)
		if err != nil {
			return err
		}
		lr := &logRun{log: l}
		e.logs = append(e.logs, lr)
		if lr.writer, err = l.OpenWriter(ctx, e.cfg.Epoch); err != nil {
			return err
		}
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	e.res.Memory.BaselineHeapInuse = ms.HeapInuse
	e.peakHeap, e.peakSys = ms.HeapInuse, ms.Sys
	e.res.Memory.BaselineRSS = residentSet().current
	e.peakRSS = e.res.Memory.BaselineRSS

	var before Counts
	if e.cfg.Counter != nil {
		before = e.cfg.Counter.Counts()
		e.cfg.Counter.TakePutLatency()
	}
	if err := e.write(ctx); err != nil {
		return err
	}
	if e.cfg.Counter != nil {
		w := e.cfg.Client.Config().Writer
		e.res.Cost = newCost(e.cfg.Counter.Counts().Sub(before), e.res.Write.Seconds, e.res.Write.Entries,
			w.BatchWindow, w.ObjectBytes)
		e.res.Cost.PutLatency = e.cfg.Counter.TakePutLatency()
	}
	if err := e.closeWriters(ctx); err != nil {
		return err
	}
	if e.cfg.Counter != nil {
		after := e.cfg.Counter.Counts()
		wc := after.Sub(before)
		e.res.Storage.WriteCalls = &wc
		if e.res.Write.Bytes > 0 {
			per := float64(wc.Puts) / (float64(e.res.Write.Bytes) / (1 << 30))
			e.res.Storage.PutsPerGiB = &per
		}
		before = after
	}
	if e.afterWrite != nil {
		if err := e.afterWrite(); err != nil {
			return err
		}
	}
	if err := e.stats(ctx); err != nil {
		return err
	}
	if !e.cfg.SkipRead {
		if err := e.read(ctx); err != nil {
			return err
		}
		if e.cfg.Counter != nil {
			rc := e.cfg.Counter.Counts().Sub(before)
			e.res.Storage.ReadCalls = &rc
			if e.res.Read.Seconds > 0 {
				e.res.Read.GetMiBps = float64(rc.GetBytes) / mib / e.res.Read.Seconds
			}
		}
	}
	e.res.Memory.PeakHeapInuse, e.res.Memory.PeakSys = e.peakHeap, e.peakSys
	e.res.Memory.PeakRSS, e.res.Memory.HighWaterRSS = e.peakRSS, residentSet().peak
	if rt, ok := e.cfg.Raw.(ReadTarget); ok && e.res.Raw != nil && e.res.Read != nil && e.res.Read.Bytes > 0 {
		get, err := rawGets(ctx, e.cfg, rt, e.rawGetSize(), e.res.Read)
		if err != nil {
			return err
		}
		e.res.Raw.Get = &get
	}
	return nil
}

// rawGetSize is the size of the raw GET phase's objects: the engine's
// average GET in the read phase, else its average block.
func (e *engineRun) rawGetSize() int {
	if rc := e.res.Storage.ReadCalls; rc != nil && rc.Gets > 0 && rc.GetBytes > 0 {
		return int(max(rc.GetBytes/rc.Gets, 1))
	}
	if b := e.res.Storage.AvgBlockBytes; b >= 1 {
		return int(b)
	}
	return e.cfg.EntrySize
}

func (e *engineRun) sampleMemory() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	e.peakHeap = max(e.peakHeap, ms.HeapInuse)
	e.peakSys = max(e.peakSys, ms.Sys)
	e.peakRSS = max(e.peakRSS, residentSet().current)
}

// write runs the appending goroutines until TotalBytes or Duration is
// reached, and waits for every acknowledgement.
func (e *engineRun) write(ctx context.Context) error {
	cfg := e.cfg
	payload := randomBytes(cfg.EntrySize)
	var maxEntries int64
	if cfg.TotalBytes > 0 {
		maxEntries = (cfg.TotalBytes + int64(cfg.EntrySize) - 1) / int64(cfg.EntrySize)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		claimed    atomic.Int64
		ackedBytes atomic.Int64
		failOnce   sync.Once
		failure    error
	)
	fail := func(err error) {
		failOnce.Do(func() { failure = err; cancel() })
	}
	start := time.Now()
	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = start.Add(cfg.Duration)
	}
	// claim takes the next entry of the run; next also stops at the
	// deadline (a paced appender stops by its schedule instead, so that a
	// late wake-up does not drop a scheduled append).
	claim := func() bool {
		if wctx.Err() != nil {
			return false
		}
		return maxEntries == 0 || claimed.Add(1) <= maxEntries
	}
	next := func() bool {
		return claim() && (deadline.IsZero() || time.Now().Before(deadline))
	}
	rec := newRecorder(start, cfg.Samples, cfg.MaxIntervals)
	smp := startSampler(cfg.Interval, progressTicker(cfg.Progress, PhaseWrite, &ackedBytes,
		maxEntries*int64(cfg.EntrySize), deadline, start, func(time.Time) { e.sampleMemory() }))
	ack := func(lr *logRun, t0 time.Time) {
		now := time.Now()
		rec.record(now, now.Sub(t0), cfg.EntrySize)
		ackedBytes.Add(int64(cfg.EntrySize))
		lr.acked.Add(1)
	}

	if cfg.Timer != nil {
		cfg.Timer.StartTimer()
	}
	cpu0 := processCPU()
	var maxBehind, late atomic.Int64
	period := time.Duration(0)
	if cfg.Rate > 0 {
		period = time.Duration(float64(time.Second) / cfg.Rate)
	}
	noteBehind := func(d time.Duration) {
		if d > period {
			late.Add(1)
		}
		for {
			m := maxBehind.Load()
			if int64(d) <= m || maxBehind.CompareAndSwap(m, int64(d)) {
				return
			}
		}
	}
	var wg sync.WaitGroup
	for g := range cfg.Concurrency {
		lr := e.logs[g%len(e.logs)]
		wg.Add(1)
		switch {
		case cfg.Rate > 0:
			// Paced: one appender per log (Concurrency is Logs), the
			// logs' schedules staggered over one period so that they do
			// not all append at once.
			first := start.Add(time.Duration(float64(period) * float64(g) / float64(len(e.logs))))
			go func() {
				defer wg.Done()
				appendAsync(wctx, lr, max(cfg.AsyncDepth, 1), payload,
					paced(wctx, first, cfg.Rate, deadline, claim, noteBehind), ack, fail)
			}()
		case cfg.AsyncDepth <= 1:
			go func() {
				defer wg.Done()
				for next() {
					t0 := time.Now()
					if _, err := lr.writer.Append(wctx, payload); err != nil {
						fail(err)
						return
					}
					ack(lr, t0)
				}
			}()
		default:
			go func() {
				defer wg.Done()
				appendAsync(wctx, lr, cfg.AsyncDepth, payload, next, ack, fail)
			}()
		}
	}
	wg.Wait()
	end := time.Now()
	cpu := processCPU() - cpu0
	if cfg.Timer != nil {
		cfg.Timer.StopTimer()
	}
	smp.finish()
	if failure != nil {
		return errors.Wrap(failure, "benchmark write phase")
	}
	wr := &e.res.Write
	for _, lr := range e.logs {
		wr.Entries += lr.acked.Load()
	}
	wr.Bytes = wr.Entries * int64(cfg.EntrySize)
	wr.Seconds = end.Sub(start).Seconds()
	wr.CPUSeconds = cpu.Seconds()
	wr.MaxBehindMs, wr.LateAppends = float64(time.Duration(maxBehind.Load()).Microseconds())/1000, late.Load()
	if wr.Seconds > 0 {
		wr.MiBps = float64(wr.Bytes) / mib / wr.Seconds
		wr.EntriesPS = float64(wr.Entries) / wr.Seconds
	}
	wr.Latency = summarize(rec.total)
	e.res.Histogram = bins(rec.total)
	e.res.Timeline = rec.timeline(end)
	e.res.Samples = rec.reservoir
	return nil
}

// paced returns a next function for appendAsync that schedules appends at
// rate a second from first: its k-th call (from 0) returns at first +
// k/rate, or at once when that time has passed, then asks next. It returns
// false, without waiting, when that time is at or past the deadline (if
// set) or ctx ends. One goroutine calls it.
//
// behind, when set, receives for each submission but the last how late it
// was: the time from its due time to the next call (the caller submits,
// then calls again).
func paced(ctx context.Context, first time.Time, rate float64, deadline time.Time, next func() bool,
	behind func(time.Duration)) func() bool {
	var k int64
	var timer *time.Timer
	at := func(k int64) time.Time { return first.Add(time.Duration(float64(k) * float64(time.Second) / rate)) }
	return func() bool {
		if k > 0 && behind != nil {
			behind(time.Since(at(k - 1)))
		}
		due := at(k)
		if !deadline.IsZero() && !due.Before(deadline) {
			return false
		}
		if d := time.Until(due); d > 0 {
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				return false
			}
		}
		k++
		return next()
	}
}

// appendAsync keeps up to depth appends of one goroutine in flight: this
// goroutine submits, a helper waits for the futures in order (a writer
// acknowledges in order, so each is timed when it completes).
func appendAsync(ctx context.Context, lr *logRun, depth int, payload []byte,
	next func() bool, ack func(*logRun, time.Time), fail func(error)) {
	type pending struct {
		fut *woodpecker.AppendFuture
		t0  time.Time
	}
	slots := make(chan struct{}, depth)
	queue := make(chan pending, depth)
	waiterDone := make(chan struct{})
	go func() {
		defer close(waiterDone)
		for p := range queue {
			if _, err := p.fut.Wait(ctx); err != nil {
				fail(err)
			} else {
				ack(lr, p.t0)
			}
			<-slots
		}
	}()
	for next() {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		t0 := time.Now()
		fut, err := lr.writer.AppendAsync(ctx, payload)
		if err != nil {
			fail(err)
			<-slots
			break
		}
		queue <- pending{fut: fut, t0: t0}
	}
	close(queue)
	<-waiterDone
}

func (e *engineRun) closeWriters(ctx context.Context) error {
	start := time.Now()
	for _, lr := range e.logs {
		err := lr.writer.Close(ctx)
		lr.writer = nil
		if err != nil {
			return errors.Wrap(err, "benchmark: close writer")
		}
	}
	e.res.Write.CloseSeconds = time.Since(start).Seconds()
	return nil
}

func (e *engineRun) stats(ctx context.Context) error {
	st := &e.res.Storage
	for _, lr := range e.logs {
		s, err := lr.log.Stats(ctx)
		if err != nil {
			return errors.Wrapf(err, "benchmark: stats of log %q", lr.log.Name())
		}
		st.Segments += int64(len(s.Segments))
		for _, seg := range s.Segments {
			st.Blocks += seg.Blocks
			st.StoredBytes += seg.Bytes
		}
	}
	if st.Blocks > 0 {
		st.AvgBlockBytes = float64(st.StoredBytes) / float64(st.Blocks)
	}
	if b := e.res.Write.Bytes; b > 0 {
		st.BlocksPerGiB = float64(st.Blocks) / (float64(b) / (1 << 30))
	}
	return nil
}

// read reads every log from Earliest, concurrently, and checks that it
// finds as many entries of the right size as were acknowledged.
func (e *engineRun) read(ctx context.Context) error {
	var total int64
	for _, lr := range e.logs {
		total += lr.acked.Load()
	}
	total *= int64(e.cfg.EntrySize)
	var readBytes atomic.Int64
	start, cpu0 := time.Now(), processCPU()
	smp := startSampler(e.cfg.Interval, progressTicker(e.cfg.Progress, PhaseRead, &readBytes, total,
		time.Time{}, start, func(time.Time) { e.sampleMemory() }))
	errs := make([]error, len(e.logs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(e.cfg.Readers, 1))
	for i, lr := range e.logs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = e.readLog(ctx, lr, &readBytes)
		}()
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), processCPU()-cpu0
	smp.finish()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	rr := &ReadResult{Bytes: readBytes.Load(), Seconds: elapsed.Seconds(), CPUSeconds: cpu.Seconds()}
	rr.Entries = rr.Bytes / int64(e.cfg.EntrySize)
	if rr.Seconds > 0 {
		rr.MiBps = float64(rr.Bytes) / mib / rr.Seconds
	}
	e.res.Read = rr
	return nil
}

func (e *engineRun) readLog(ctx context.Context, lr *logRun, readBytes *atomic.Int64) error {
	r, err := lr.log.OpenReader(ctx, woodpecker.Earliest())
	if err != nil {
		return errors.Wrapf(err, "benchmark: open reader on %q", lr.log.Name())
	}
	defer r.Close()
	n := lr.acked.Load()
	for i := int64(0); i < n; i++ {
		ent, err := r.Next(ctx)
		if err != nil {
			return errors.Wrapf(err, "benchmark: read entry %d of %d of log %q", i, n, lr.log.Name())
		}
		if len(ent.Payload) != e.cfg.EntrySize {
			return errors.Newf("benchmark: entry %s of log %q holds %d bytes, %d were written",
				ent.ID, lr.log.Name(), len(ent.Payload), e.cfg.EntrySize)
		}
		readBytes.Add(int64(len(ent.Payload)))
	}
	return nil
}

// measureRaw times the raw target: throughput with blocks, then single
// operations of the entry size.
func measureRaw(ctx context.Context, cfg Config, w options.WriterConfig) (*RawResult, error) {
	var tput RawPhase
	var runs []RawPhase
	if cfg.Rate == 0 {
		var err error
		if tput, err = rawThroughput(ctx, cfg, w); err != nil {
			return nil, err
		}
		runs = []RawPhase{tput}
	}
	single, err := rawPhase(ctx, cfg, PhaseRawOp, "op-"+randomHex(6), 1, cfg.EntrySize,
		int64(cfg.RawOps)*int64(cfg.EntrySize), time.Now().Add(cfg.RawOpsTime), 20)
	if err != nil {
		return nil, err
	}
	return &RawResult{Target: cfg.Raw.Describe(), Throughput: tput, ThroughputRuns: runs, SingleOp: single}, nil
}

// rawThroughput writes blocks of w.MaxBlockBytes, as many at once as the
// engine's writers keep in flight.
func rawThroughput(ctx context.Context, cfg Config, w options.WriterConfig) (RawPhase, error) {
	streams := cfg.Logs * max(cfg.Raw.Streams(w), 1)
	block := int(w.MaxBlockBytes)
	if cfg.RawInFlight > 0 {
		streams, block = cfg.RawInFlight, cfg.EntrySize
	}
	rawBytes := cfg.RawBytes
	if rawBytes == 0 {
		rawBytes = cfg.TotalBytes
	}
	var deadline time.Time
	if rawBytes == 0 {
		deadline = time.Now().Add(cfg.Duration)
	} else {
		rawBytes = max(rawBytes, int64(streams)*int64(block))
	}
	// At least one write per stream: a loaded machine can spend the whole
	// duration opening the streams, and a rate of nothing measures nothing.
	return rawPhase(ctx, cfg, PhaseRawThroughput, "tput-"+randomHex(6), streams, block, rawBytes, deadline, int64(streams))
}

// rawPhase writes opBytes units to streams streams at once until total
// bytes are written or the deadline passes (but at least minOps writes).
func rawPhase(ctx context.Context, cfg Config, phase Phase, name string, streams, opBytes int,
	total int64, deadline time.Time, minOps int64) (res RawPhase, err error) {
	res = RawPhase{OpBytes: opBytes, Streams: streams}
	opened := make([]RawStream, 0, streams)
	defer func() {
		cctx := context.WithoutCancel(ctx)
		for _, s := range opened {
			if cerr := s.Close(cctx); cerr != nil && err == nil {
				err = cerr
			}
		}
	}()
	if m, ok := cfg.Raw.(multiStreamTarget); ok {
		ss, err := m.OpenStreams(ctx, name, streams)
		if err != nil {
			return res, err
		}
		opened = append(opened, ss...)
	} else {
		for i := range streams {
			s, err := cfg.Raw.OpenStream(ctx, fmt.Sprintf("%s-%d", name, i))
			if err != nil {
				return res, err
			}
			opened = append(opened, s)
		}
	}
	data := randomBytes(opBytes)
	var maxOps int64
	if total > 0 {
		maxOps = (total + int64(opBytes) - 1) / int64(opBytes)
	}
	return timedOps(ctx, cfg, phase, streams, opBytes, maxOps, deadline, minOps,
		func(ctx context.Context, stream int, _ int64) error { return opened[stream].Write(ctx, data) })
}

// timedOps runs op from streams goroutines at once (op's stream argument
// says which), each op moving opBytes, until maxOps ops (if above 0) are
// done or the deadline (if set) passes, but at least minOps, and times
// every op. n numbers the ops from 1.
func timedOps(ctx context.Context, cfg Config, phase Phase, streams, opBytes int, maxOps int64,
	deadline time.Time, minOps int64, op func(ctx context.Context, stream int, n int64) error) (RawPhase, error) {
	res := RawPhase{OpBytes: opBytes, Streams: streams}
	var (
		claimed, done atomic.Int64
		doneBytes     atomic.Int64
		mu            sync.Mutex
		hist          = newHist()
		errs          = make([]error, streams)
		wg            sync.WaitGroup
	)
	start, cpu0 := time.Now(), processCPU()
	smp := startSampler(cfg.Interval, progressTicker(cfg.Progress, phase, &doneBytes, maxOps*int64(opBytes),
		deadline, start, nil))
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				n := claimed.Add(1)
				if maxOps > 0 && n > maxOps {
					return
				}
				if n > minOps && !deadline.IsZero() && time.Now().After(deadline) {
					return
				}
				t0 := time.Now()
				if err := op(ctx, i, n); err != nil {
					errs[i] = err
					return
				}
				d := time.Since(t0)
				mu.Lock()
				recordHist(hist, d)
				mu.Unlock()
				done.Add(1)
				doneBytes.Add(int64(opBytes))
			}
		}()
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), processCPU()-cpu0
	smp.finish()
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	res.CPUSeconds = cpu.Seconds()
	if err := ctx.Err(); err != nil {
		return res, err
	}
	res.Ops, res.Bytes, res.Seconds = done.Load(), doneBytes.Load(), elapsed.Seconds()
	if res.Seconds > 0 {
		res.MiBps = float64(res.Bytes) / mib / res.Seconds
	}
	res.Latency, res.hist = summarize(hist), hist
	return res, nil
}

// multiStreamTarget is a RawTarget whose streams of one measurement belong
// together (QuorumTarget: the blocks of one segment).
type multiStreamTarget interface {
	// OpenStreams opens n streams named after name.
	OpenStreams(ctx context.Context, name string, n int) ([]RawStream, error)
}

// sampler calls tick every interval from its own goroutine, and a last time
// (final) when finish is called.
type sampler struct {
	stop chan struct{}
	done chan struct{}
}

func startSampler(interval time.Duration, tick func(now time.Time, final bool)) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case now := <-t.C:
				tick(now, false)
			case <-s.stop:
				tick(time.Now(), true)
				return
			}
		}
	}()
	return s
}

// finish runs the last tick and waits for the sampler to end; what tick
// wrote is visible to the caller afterwards.
func (s *sampler) finish() {
	close(s.stop)
	<-s.done
}

// progressTicker returns a tick that reports progress of phase (if report
// is set) and then calls also (if set).
func progressTicker(report func(Progress), phase Phase, bytes *atomic.Int64, total int64,
	deadline, start time.Time, also func(now time.Time)) func(time.Time, bool) {
	lastAt, lastBytes := start, int64(0)
	return func(now time.Time, final bool) {
		if also != nil {
			also(now)
		}
		if report == nil {
			return
		}
		b := bytes.Load()
		p := Progress{Phase: phase, Bytes: b, TotalBytes: total, Deadline: deadline,
			Elapsed: now.Sub(start), Done: final}
		if s := now.Sub(lastAt).Seconds(); s > 0 {
			p.MiBps = float64(b-lastBytes) / mib / s
		}
		if s := p.Elapsed.Seconds(); s > 0 {
			p.AvgMiBps = float64(b) / mib / s
		}
		lastAt, lastBytes = now, b
		report(p)
	}
}

// randomBytes returns n incompressible bytes, so block compression (if
// configured) gains nothing and costs what it costs.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics rather)
	return b
}

func randomHex(n int) string {
	return hex.EncodeToString(randomBytes(n))
}

// loadAvg returns the 1, 5 and 15 minute load averages, or nil where
// /proc/loadavg does not exist.
func loadAvg() []float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return nil
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return nil
	}
	out := make([]float64, 3)
	for i := range out {
		if out[i], err = strconv.ParseFloat(f[i], 64); err != nil {
			return nil
		}
	}
	return out
}
