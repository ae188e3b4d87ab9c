// Package metrics holds Woodpecker's Prometheus metrics and serves them over
// HTTP.
//
// A Metrics value owns its own registry (never the global default one), so
// that several clients, or tests, in one process do not collide. Its Observe
// and event methods are what the engine calls when something happens (a
// *Metrics is a woodpecker.Metrics: give it to the client with
// woodpecker.WithMetrics); they are cheap (atomic updates) and safe for
// concurrent use. InstrumentStore adds the events only the object store
// sees (fences placed, create-only writes that found their slot taken);
// SetGCSource reads the garbage collector's and compaction's counters at
// each scrape.
//
// Every metric is named woodpecker_<subsystem>_<name>; configs/grafana-
// dashboard.json charts them.
package metrics

import (
	"net/http"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/woodpecker-wal/woodpecker/internal/walerr"
)

// Namespace prefixes every metric name.
const Namespace = "woodpecker"

// Append outcomes, the values of the "result" label of appends_total.
const (
	ResultOK      = "ok"
	ResultFenced  = "fenced"
	ResultUnknown = "unknown_outcome"
	ResultError   = "error"
)

// Fencing events, the values of the "event" label of fencing_events_total.
const (
	// FenceWriterFenced: a writer learnt that a newer writer owns its log.
	FenceWriterFenced = "writer_fenced"
	// FenceSegmentRecovered: a new writer sealed a segment its predecessor
	// left open.
	FenceSegmentRecovered = "segment_recovered"
	// FencePlaced: recovery wrote a fence object into a block slot.
	FencePlaced = "fence_placed"
	// FenceSlotTaken: a create-only block write found its slot taken (by a
	// fence, or by another writer's block).
	FenceSlotTaken = "slot_taken"
)

// latencyBuckets spans 100 µs to about 13 s, doubling.
var latencyBuckets = prometheus.ExponentialBuckets(0.0001, 2, 18)

// sizeBuckets spans 256 B to 64 MiB, times four.
var sizeBuckets = prometheus.ExponentialBuckets(256, 4, 10)

// Metrics is the set of Woodpecker's metrics in one registry. Create it with
// New. All methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	appends       *prometheus.CounterVec
	appendBytes   prometheus.Counter
	appendLatency prometheus.Histogram

	blockBytes      prometheus.Histogram
	blocksUploaded  prometheus.Counter
	uploadLatency   prometheus.Histogram
	uploadsInFlight prometheus.Gauge
	uploadRetries   prometheus.Counter
	uploadFailures  prometheus.Counter
	segmentsSealed  prometheus.Counter
	fencing         *prometheus.CounterVec

	readEntries prometheus.Counter
	readBytes   prometheus.Counter
	readerLag   *prometheus.GaugeVec

	sharedObjects       *prometheus.CounterVec
	sharedObjectBytes   prometheus.Histogram
	sharedObjectBlocks  prometheus.Histogram
	sharedPutLatency    prometheus.Histogram
	sharedCommitLatency prometheus.Histogram
	sharedUploadLimit   prometheus.Gauge

	gc *gcCollector
}

// New creates the metrics and registers them, with the Go runtime and
// process collectors, in a new registry.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) } // names are constants: a clash is a bug
	counter := func(sub, name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: sub, Name: name, Help: help})
		f(c)
		return c
	}
	counterVec := func(sub, name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: sub, Name: name, Help: help}, labels)
		f(c)
		return c
	}
	histogram := func(sub, name, help string, buckets []float64) prometheus.Histogram {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: sub, Name: name, Help: help, Buckets: buckets})
		f(h)
		return h
	}
	m := &Metrics{reg: reg}

	m.appends = counterVec("writer", "appends_total",
		"Appends completed, by result: ok, fenced, unknown_outcome (may or may not be durable) or error.", "result")
	m.appendBytes = counter("writer", "append_bytes_total", "Payload bytes of acknowledged appends.")
	m.appendLatency = histogram("writer", "append_latency_seconds",
		"Time from an append's call to its acknowledgement (acknowledged appends only).", latencyBuckets)

	m.blockBytes = histogram("storage", "block_bytes", "Size of the blocks written to storage.", sizeBuckets)
	m.blocksUploaded = counter("storage", "blocks_written_total", "Blocks written to storage (objects, or fsynced flushes of a local file).")
	m.uploadLatency = histogram("storage", "block_write_latency_seconds", "Time to write one block (one PUT, or write + fsync).", latencyBuckets)
	m.uploadsInFlight = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "storage",
		Name: "block_writes_in_flight", Help: "Block writes started and not yet finished."})
	f(m.uploadsInFlight)
	m.uploadRetries = counter("storage", "block_write_retries_total", "Block writes retried after a failure.")
	m.uploadFailures = counter("storage", "block_write_failures_total", "Block write attempts that failed.")
	m.segmentsSealed = counter("storage", "segments_sealed_total", "Seal records written.")
	m.fencing = counterVec("storage", "fencing_events_total",
		"Fencing events: writer_fenced, segment_recovered, fence_placed, slot_taken.", "event")

	m.readEntries = counter("reader", "entries_total", "Entries returned to readers.")
	m.readBytes = counter("reader", "bytes_total", "Payload bytes returned to readers.")
	m.readerLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "reader",
		Name: "lag_entries", Help: "Durable entries a reader of the log has not read yet."}, []string{"log"})
	f(m.readerLag)

	m.sharedObjects = counterVec("shared", "objects_total",
		"Shared objects (writer.batchWindow > 0) by outcome: committed, put_failed (the PUT gave up) or commit_unknown (the etcd commit gave up: its blocks' outcome is unknown).", "result")
	m.sharedObjectBytes = histogram("shared", "object_bytes", "Size of the shared objects written.", sizeBuckets)
	m.sharedObjectBlocks = histogram("shared", "object_blocks", "Blocks (of all logs) in each shared object written.",
		prometheus.ExponentialBuckets(1, 2, 8))
	m.sharedPutLatency = histogram("shared", "put_latency_seconds", "Time to write one shared object, retries included.", latencyBuckets)
	m.sharedCommitLatency = histogram("shared", "commit_latency_seconds",
		"Time to commit one shared object's blocks in etcd, retries included.", latencyBuckets)
	m.sharedUploadLimit = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "shared",
		Name: "upload_limit", Help: "Shared-object PUTs the process allows at once: the adaptive limit, at most writer.maxInflightObjects."})
	f(m.sharedUploadLimit)

	m.gc = newGCCollector()
	f(m.gc)

	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry holding the metrics, for embedding them in
// another exposition or for tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// AppendResult names the outcome of an append for the result label.
func AppendResult(err error) string {
	switch {
	case err == nil:
		return ResultOK
	case errors.Is(err, walerr.ErrFenced):
		return ResultFenced
	case errors.Is(err, walerr.ErrUnknownOutcome):
		return ResultUnknown
	default:
		return ResultError
	}
}

// ObserveAppend records one completed append of n payload bytes that took
// d, with its outcome err. Only acknowledged appends count towards bytes
// and latency. A fenced writer reports its fencing once, through Fencing,
// however many of its appends fail with ErrFenced.
func (m *Metrics) ObserveAppend(n int, d time.Duration, err error) {
	result := AppendResult(err)
	m.appends.WithLabelValues(result).Inc()
	if result == ResultOK {
		m.appendBytes.Add(float64(n))
		m.appendLatency.Observe(d.Seconds())
	}
}

// BlockWriteStarted counts a block write in flight until the matching
// BlockWriteDone. retry says it writes a block whose previous attempt
// failed.
func (m *Metrics) BlockWriteStarted(retry bool) {
	m.uploadsInFlight.Inc()
	if retry {
		m.uploadRetries.Inc()
	}
}

// BlockWriteDone ends a write counted by BlockWriteStarted: a block of size
// bytes that took d, with its outcome err.
func (m *Metrics) BlockWriteDone(size int, d time.Duration, err error) {
	m.uploadsInFlight.Dec()
	if err != nil {
		m.uploadFailures.Inc()
		return
	}
	m.blocksUploaded.Inc()
	m.blockBytes.Observe(float64(size))
	m.uploadLatency.Observe(d.Seconds())
}

// Shared objects' outcomes, the values of the "result" label of
// shared_objects_total.
const (
	SharedCommitted     = "committed"
	SharedPutFailed     = "put_failed"
	SharedCommitUnknown = "commit_unknown"
)

// ObjectWritten records one shared object's PUT (shared.StreamMetrics).
func (m *Metrics) ObjectWritten(bytes, blocks int, d time.Duration, err error) {
	if err != nil {
		m.sharedObjects.WithLabelValues(SharedPutFailed).Inc()
		return
	}
	m.sharedObjectBytes.Observe(float64(bytes))
	m.sharedObjectBlocks.Observe(float64(blocks))
	m.sharedPutLatency.Observe(d.Seconds())
}

// ObjectCommitted records one shared object's etcd commit.
func (m *Metrics) ObjectCommitted(d time.Duration, err error) {
	if err != nil {
		m.sharedObjects.WithLabelValues(SharedCommitUnknown).Inc()
		return
	}
	m.sharedObjects.WithLabelValues(SharedCommitted).Inc()
	m.sharedCommitLatency.Observe(d.Seconds())
}

// UploadLimit records the shared stream's current upload limit.
func (m *Metrics) UploadLimit(n int) { m.sharedUploadLimit.Set(float64(n)) }

// SegmentSealed counts a seal record written.
func (m *Metrics) SegmentSealed() { m.segmentsSealed.Inc() }

// Fencing counts one fencing event (FenceWriterFenced, FencePlaced, ...).
func (m *Metrics) Fencing(event string) { m.fencing.WithLabelValues(event).Inc() }

// ObserveRead records n entries of bytes payload bytes returned to a
// reader.
func (m *Metrics) ObserveRead(n int, bytes int64) {
	m.readEntries.Add(float64(n))
	m.readBytes.Add(float64(bytes))
}

// SetReaderLag sets how many durable entries the reader of log has not
// read yet. ForgetReader removes the series when the reader closes.
func (m *Metrics) SetReaderLag(log string, entries int64) {
	m.readerLag.WithLabelValues(log).Set(float64(entries))
}

// ForgetReader removes the reader lag series of log.
func (m *Metrics) ForgetReader(log string) { m.readerLag.DeleteLabelValues(log) }
