package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// GCCounts are the cumulative counts of a garbage collector since it
// started, as woodpecker.Client.GCMetrics reports them.
type GCCounts struct {
	// Passes run (failed ones included) and failures of single logs.
	Passes, Errors int64
	// What garbage collection deleted: segments, objects (or files) and
	// their bytes; of the objects, OrphanObjects were referenced by no
	// metadata and RetiredObjects had been replaced by compaction.
	DeletedSegments, DeletedObjects, DeletedBytes int64
	OrphanObjects, RetiredObjects                 int64
	// CollectedLogs are deleted logs whose data was removed.
	CollectedLogs int64
	// What compaction did: segments compacted, merged objects written and
	// their bytes.
	CompactedSegments, CompactionObjects, CompactionBytes int64
}

// SetGCSource makes every scrape read the garbage-collection and
// compaction counters from source (for instance a closure over
// woodpecker.Client.GCMetrics). Without a source they read zero. source is
// called from the scraping goroutine and must be safe for that.
func (m *Metrics) SetGCSource(source func() GCCounts) { m.gc.setSource(source) }

// gcCollector exposes a GCCounts source as counters.
type gcCollector struct {
	mu     sync.Mutex
	source func() GCCounts
	descs  []gcDesc
}

type gcDesc struct {
	desc *prometheus.Desc
	get  func(GCCounts) int64
}

func newGCCollector() *gcCollector {
	d := func(sub, name, help string, get func(GCCounts) int64) gcDesc {
		return gcDesc{desc: prometheus.NewDesc(prometheus.BuildFQName(Namespace, sub, name), help, nil, nil), get: get}
	}
	return &gcCollector{descs: []gcDesc{
		d("gc", "passes_total", "Garbage-collection passes run, failed ones included.", func(c GCCounts) int64 { return c.Passes }),
		d("gc", "errors_total", "Garbage-collection failures of single logs (the pass went on).", func(c GCCounts) int64 { return c.Errors }),
		d("gc", "deleted_segments_total", "Segments deleted by garbage collection.", func(c GCCounts) int64 { return c.DeletedSegments }),
		d("gc", "deleted_objects_total", "Objects (or files) deleted by garbage collection, for any reason.", func(c GCCounts) int64 { return c.DeletedObjects }),
		d("gc", "deleted_bytes_total", "Bytes deleted by garbage collection.", func(c GCCounts) int64 { return c.DeletedBytes }),
		d("gc", "orphan_objects_total", "Deleted objects that no metadata referred to.", func(c GCCounts) int64 { return c.OrphanObjects }),
		d("gc", "retired_objects_total", "Deleted objects that compaction had replaced.", func(c GCCounts) int64 { return c.RetiredObjects }),
		d("gc", "collected_logs_total", "Deleted logs whose data garbage collection removed.", func(c GCCounts) int64 { return c.CollectedLogs }),
		d("compaction", "segments_total", "Segments compacted.", func(c GCCounts) int64 { return c.CompactedSegments }),
		d("compaction", "objects_written_total", "Merged objects written by compaction.", func(c GCCounts) int64 { return c.CompactionObjects }),
		d("compaction", "written_bytes_total", "Bytes written by compaction.", func(c GCCounts) int64 { return c.CompactionBytes }),
	}}
}

func (g *gcCollector) setSource(source func() GCCounts) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.source = source
}

// Describe implements prometheus.Collector.
func (g *gcCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range g.descs {
		ch <- d.desc
	}
}

// Collect implements prometheus.Collector.
func (g *gcCollector) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	source := g.source
	g.mu.Unlock()
	var c GCCounts
	if source != nil {
		c = source()
	}
	for _, d := range g.descs {
		ch <- prometheus.MustNewConstMetric(d.desc, prometheus.CounterValue, float64(d.get(c)))
	}
}
