package bench

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1 µs to one hour, with three
// significant digits (0.1% precision).
const (
	histLowestUs  = 1
	histHighestUs = int64(time.Hour / time.Microsecond)
	histSigFigs   = 3
)

func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowestUs, histHighestUs, histSigFigs)
}

func recordHist(h *hdrhistogram.Histogram, d time.Duration) {
	us := d.Microseconds()
	us = max(us, histLowestUs)
	us = min(us, histHighestUs)
	_ = h.RecordValue(us) // in range by construction
}

// Latency summarises a set of latencies. Times are milliseconds; with no
// samples every field is zero.
type Latency struct {
	Count  int64   `json:"count"`
	MeanMs float64 `json:"mean_ms"`
	MinMs  float64 `json:"min_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
}

func usToMs(us int64) float64 { return float64(us) / 1000 }

func summarize(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		Count:  h.TotalCount(),
		MeanMs: h.Mean() / 1000,
		MinMs:  usToMs(h.Min()),
		P50Ms:  usToMs(h.ValueAtQuantile(50)),
		P90Ms:  usToMs(h.ValueAtQuantile(90)),
		P99Ms:  usToMs(h.ValueAtQuantile(99)),
		P999Ms: usToMs(h.ValueAtQuantile(99.9)),
		MaxMs:  usToMs(h.Max()),
	}
}

// Bin is one bar of a latency histogram: Count appends took at least LowMs
// and less than HighMs.
type Bin struct {
	LowMs  float64 `json:"low_ms"`
	HighMs float64 `json:"high_ms"`
	Count  int64   `json:"count"`
}

// binsPerDoubling is the resolution of Histogram bins: four per doubling of
// latency (each bin ~19% wider than the last).
const binsPerDoubling = 4

// bins turns h into logarithmic bins from its smallest to its largest
// non-empty one.
func bins(h *hdrhistogram.Histogram) []Bin {
	if h.TotalCount() == 0 {
		return nil
	}
	counts := map[int]int64{}
	lo, hi := math.MaxInt, math.MinInt
	for _, bar := range h.Distribution() {
		if bar.Count == 0 {
			continue
		}
		v := max(float64(bar.From+bar.To)/2, 1)
		k := int(math.Floor(math.Log2(v) * binsPerDoubling))
		counts[k] += bar.Count
		lo, hi = min(lo, k), max(hi, k)
	}
	out := make([]Bin, 0, hi-lo+1)
	for k := lo; k <= hi; k++ {
		out = append(out, Bin{
			LowMs:  math.Exp2(float64(k)/binsPerDoubling) / 1000,
			HighMs: math.Exp2(float64(k+1)/binsPerDoubling) / 1000,
			Count:  counts[k],
		})
	}
	return out
}

// Interval is what one slice of the write phase did. After long runs
// adjacent intervals are merged to keep the timeline bounded; then P50Ms is
// the count-weighted mean of the merged intervals' medians (an
// approximation) and P99Ms and MaxMs are the largest of theirs (upper
// bounds).
type Interval struct {
	// StartS is the interval's start, in seconds since the write phase began.
	StartS  float64 `json:"start_s"`
	Seconds float64 `json:"seconds"`
	// Bytes and Entries were acknowledged during the interval.
	Bytes   int64   `json:"bytes"`
	Entries int64   `json:"entries"`
	MiBps   float64 `json:"mib_per_s"`
	P50Ms   float64 `json:"p50_ms"`
	P99Ms   float64 `json:"p99_ms"`
	MaxMs   float64 `json:"max_ms"`
}

func mergeIntervals(a, b Interval) Interval {
	m := Interval{
		StartS: a.StartS, Seconds: a.Seconds + b.Seconds,
		Bytes: a.Bytes + b.Bytes, Entries: a.Entries + b.Entries,
		P99Ms: max(a.P99Ms, b.P99Ms), MaxMs: max(a.MaxMs, b.MaxMs),
	}
	if m.Seconds > 0 {
		m.MiBps = float64(m.Bytes) / mib / m.Seconds
	}
	if m.Entries > 0 {
		m.P50Ms = (a.P50Ms*float64(a.Entries) + b.P50Ms*float64(b.Entries)) / float64(m.Entries)
	}
	return m
}

// Sample is one append's latency at a moment of the write phase.
type Sample struct {
	// AtS is when the append completed, in seconds since the write phase
	// began.
	AtS       float64 `json:"at_s"`
	LatencyMs float64 `json:"latency_ms"`
}

// recorder collects append latencies: a histogram of the whole phase, one
// of the current interval, a timeline of intervals and a uniform reservoir
// of samples. It is safe for concurrent use; a record holds its lock for
// well under a microsecond, but for the one that closes an interval (a few
// microseconds).
//
// An append belongs to the interval its completion time falls in: the
// intervals follow the clock of the appends, not of a ticker, so they are
// as many and as long as the timeline says however late a timer would be.
type recorder struct {
	start time.Time

	mu        sync.Mutex
	total     *hdrhistogram.Histogram
	interval  *hdrhistogram.Histogram
	ivStart   time.Time // start of the current interval
	ivBytes   int64
	ivEntries int64
	tl        *timeline
	seen      int64
	reservoir []Sample
	capacity  int
	rng       *rand.Rand
}

// newRecorder returns a recorder of a phase that started at start, keeping
// reservoir samples and a timeline of at most intervals intervals.
func newRecorder(start time.Time, reservoir, intervals int) *recorder {
	return &recorder{
		ivStart: start, tl: newTimeline(intervals),
		// An interval's percentiles are for charts: two significant digits
		// keep its histogram small, so that frequent cuts (one per
		// timelineBase at first) cost little.
		start: start, total: newHist(), interval: hdrhistogram.New(histLowestUs, histHighestUs, 2),
		capacity: reservoir, reservoir: make([]Sample, 0, min(reservoir, 4096)),
		rng: rand.New(rand.NewPCG(uint64(start.UnixNano()), 0x9e3779b97f4a7c15)),
	}
}

// record adds one acknowledged append of n bytes that took d and completed
// at now.
func (r *recorder) record(now time.Time, d time.Duration, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.advance(now)
	recordHist(r.total, d)
	recordHist(r.interval, d)
	r.ivBytes += int64(n)
	r.ivEntries++
	r.seen++
	s := Sample{AtS: now.Sub(r.start).Seconds(), LatencyMs: float64(d.Microseconds()) / 1000}
	switch {
	case r.capacity <= 0:
	case len(r.reservoir) < r.capacity:
		r.reservoir = append(r.reservoir, s)
	default:
		// Algorithm R: keep each of the seen samples with equal chance.
		if j := r.rng.Int64N(r.seen); j < int64(r.capacity) {
			r.reservoir[j] = s
		}
	}
}

// advance closes the intervals that ended at or before now.
func (r *recorder) advance(now time.Time) {
	for r.tl.max > 0 && !now.Before(r.ivStart.Add(r.tl.period)) {
		end := r.ivStart.Add(r.tl.period)
		r.tl.add(r.cutLocked(r.ivStart, end))
		r.ivStart = end
	}
}

// timeline closes the intervals up to end, the end of the phase, and
// returns the timeline, which covers the phase from start to end.
func (r *recorder) timeline(end time.Time) []Interval {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.advance(end)
	return r.tl.finish(r.cutLocked(r.ivStart, end))
}

// cut closes the current interval, which started at from and ends at to.
func (r *recorder) cut(from, to time.Time) Interval {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cutLocked(from, to)
}

func (r *recorder) cutLocked(from, to time.Time) Interval {
	iv := Interval{
		StartS: from.Sub(r.start).Seconds(), Seconds: to.Sub(from).Seconds(),
		Bytes: r.ivBytes, Entries: r.ivEntries,
	}
	if iv.Seconds > 0 {
		iv.MiBps = float64(iv.Bytes) / mib / iv.Seconds
	}
	if r.interval.TotalCount() > 0 {
		iv.P50Ms = usToMs(r.interval.ValueAtQuantile(50))
		iv.P99Ms = usToMs(r.interval.ValueAtQuantile(99))
		iv.MaxMs = usToMs(r.interval.Max())
		r.interval.Reset()
	}
	r.ivBytes, r.ivEntries = 0, 0
	return iv
}

// timelineBase is the length of the timeline's first intervals. They
// double each time the timeline fills up, so a run of any length ends with
// between MaxIntervals/2 and MaxIntervals intervals of equal length (a
// run shorter than MaxIntervals x timelineBase has one per timelineBase):
// a chart of a run of 12.5 ms or more gets at least 50 points.
const timelineBase = 250 * time.Microsecond

// timeline keeps at most max intervals, each period long. When full it
// merges neighbours pairwise and doubles period, so every stored interval
// of a run spans the same time. Its recorder adds to it.
type timeline struct {
	max       int
	period    time.Duration
	intervals []Interval
}

func newTimeline(max int) *timeline {
	return &timeline{max: max, period: timelineBase}
}

func (t *timeline) add(iv Interval) {
	if t.max <= 0 {
		return
	}
	t.intervals = append(t.intervals, iv)
	if len(t.intervals) < t.max {
		return
	}
	merged := t.intervals[:0]
	for i := 0; i < len(t.intervals); i += 2 {
		if i+1 < len(t.intervals) {
			merged = append(merged, mergeIntervals(t.intervals[i], t.intervals[i+1]))
		} else {
			merged = append(merged, t.intervals[i]) // an odd one out stays as it is
		}
	}
	t.intervals = merged
	t.period *= 2
}

// finish adds the last, partial interval and returns the timeline. A last
// interval shorter than half a period joins the one before it: a sliver
// of a millisecond would chart its few acknowledgements as a spike.
func (t *timeline) finish(last Interval) []Interval {
	if n := len(t.intervals); n > 0 && last.Seconds < t.period.Seconds()/2 {
		t.intervals[n-1] = mergeIntervals(t.intervals[n-1], last)
		return t.intervals
	}
	if t.max > 0 && (last.Seconds > 0 || last.Entries > 0) {
		t.intervals = append(t.intervals, last)
	}
	return t.intervals
}
