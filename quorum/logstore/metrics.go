package logstore

import (
	"github.com/cockroachdb/errors"
	"github.com/prometheus/client_golang/prometheus"
)

// Upload outcomes, the values of the "result" label of uploads_total.
const (
	uploadOK     = "ok"
	uploadRetry  = "retry"  // an attempt failed and will be retried
	uploadFailed = "failed" // the slot holds other data: given up
)

// serverMetrics are the server's Prometheus metrics, named
// woodpecker_logstore_<name>.
type serverMetrics struct {
	blocksHeld    prometheus.Gauge
	bytesHeld     prometheus.Gauge
	segments      prometheus.Gauge
	budget        prometheus.Gauge
	added         prometheus.Counter
	rejected      *prometheus.CounterVec
	fences        prometheus.Counter
	uploads       *prometheus.CounterVec
	uploadSeconds prometheus.Histogram
	watches       prometheus.Gauge
	// The journal (Config.Journal).
	journalSyncSeconds prometheus.Histogram
	journalErrors      prometheus.Counter
	journalRewrites    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*serverMetrics, error) {
	const ns, sub = "woodpecker", "logstore"
	m := &serverMetrics{
		blocksHeld: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "blocks_held", Help: "Blocks held in memory, across segments."}),
		bytesHeld: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "bytes_held", Help: "Bytes of blocks held in memory, across segments."}),
		segments: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "segments", Help: "Segments the replica keeps state of (released ones included)."}),
		budget: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "budget_bytes", Help: "The byte budget of blocks held in memory."}),
		added: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "blocks_added_total", Help: "Blocks accepted by AddBlock (duplicates not counted)."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "rejections_total", Help: "Requests refused, by reason: fenced, segment_lost, invalid, budget."},
			[]string{"reason"}),
		fences: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "fences_total", Help: "Fence requests served."}),
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "uploads_total", Help: "Block upload attempts to object storage, by result: ok, retry, failed."},
			[]string{"result"}),
		uploadSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "upload_seconds", Help: "Latency of successful block uploads.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		watches: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "watches", Help: "Watch calls open (tail readers subscribed to a segment)."}),
		journalSyncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "journal_write_seconds", Help: "Latency of journal writes (write and fsync) that succeeded.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		journalErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "journal_errors_total", Help: "Journal writes that failed (the call was refused UNAVAILABLE)."}),
		journalRewrites: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "journal_rewrites_total", Help: "Journal files rewritten with only what is still needed."}),
	}
	for _, r := range []string{ReasonFenced, ReasonSegmentLost, ReasonInvalid, ReasonBudget} {
		m.rejected.WithLabelValues(r)
	}
	for _, r := range []string{uploadOK, uploadRetry, uploadFailed} {
		m.uploads.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.blocksHeld, m.bytesHeld, m.segments, m.budget, m.added,
		m.rejected, m.fences, m.uploads, m.uploadSeconds, m.watches, m.journalSyncSeconds, m.journalErrors, m.journalRewrites} {
		if err := reg.Register(c); err != nil {
			return nil, errors.Wrap(err, "logstore: register metrics")
		}
	}
	return m, nil
}
