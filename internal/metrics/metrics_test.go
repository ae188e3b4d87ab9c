package metrics

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/shared"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestNamesFollowConventions runs Prometheus's own metric linter over every
// metric (after each has a sample, so that vectors are exposed too).
func TestNamesFollowConventions(t *testing.T) {
	m := New()
	m.ObserveAppend(10, time.Millisecond, nil)
	m.Fencing(FencePlaced)
	m.SetReaderLag("l", 3)
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
}

func TestObserveAppend(t *testing.T) {
	m := New()
	tests := []struct {
		err    error
		result string
	}{
		{nil, ResultOK},
		{nil, ResultOK},
		{errors.Wrap(walerr.ErrFenced, "append"), ResultFenced},
		{walerr.Mark(errors.New("timeout"), walerr.ErrUnknownOutcome), ResultUnknown},
		{errors.New("disk full"), ResultError},
	}
	for _, tt := range tests {
		m.ObserveAppend(100, 3*time.Millisecond, tt.err)
	}
	for result, want := range map[string]float64{ResultOK: 2, ResultFenced: 1, ResultUnknown: 1, ResultError: 1} {
		if got := testutil.ToFloat64(m.appends.WithLabelValues(result)); got != want {
			t.Errorf("appends{result=%q} = %v, want %v", result, got, want)
		}
	}
	if got := testutil.ToFloat64(m.appendBytes); got != 200 {
		t.Errorf("append bytes = %v, want 200 (acknowledged appends only)", got)
	}
	if got := testutil.CollectAndCount(m.appendLatency); got != 1 {
		t.Errorf("latency histogram series = %d", got)
	}
	// A fenced writer reports its fencing once, through Fencing.
	if got := testutil.ToFloat64(m.fencing.WithLabelValues(FenceWriterFenced)); got != 0 {
		t.Errorf("writer_fenced events = %v, want 0 (not counted per append)", got)
	}
}

func TestReaderLag(t *testing.T) {
	m := New()
	m.SetReaderLag("a", 5)
	m.SetReaderLag("b", 7)
	m.SetReaderLag("a", 2)
	if got := testutil.ToFloat64(m.readerLag.WithLabelValues("a")); got != 2 {
		t.Errorf("lag of a = %v, want 2", got)
	}
	m.ForgetReader("b")
	if got := testutil.CollectAndCount(m.readerLag); got != 1 {
		t.Errorf("%d lag series after ForgetReader, want 1", got)
	}
}

// TestInstrumentStore drives the store wrapper with the writes the object
// backend makes: blocks (one failing once, then retried), a fence, a block
// write into the fenced slot, and a seal. Only the fencing events count:
// the engine reports the rest.
func TestInstrumentStore(t *testing.T) {
	ctx := context.Background()
	mem := memstore.New()
	m := New()
	s := InstrumentStore(mem, m)
	create := objstore.PutOptions{IfNotExists: true}
	block := func(blockNo int64, n int) (string, []byte) {
		return segment.BlockKey("", 7, 0, blockNo), make([]byte, n)
	}

	k0, d0 := block(0, 1000)
	if err := s.Put(ctx, k0, d0, create); err != nil {
		t.Fatal(err)
	}
	k1, d1 := block(1, 3000)
	mem.Inject(memstore.Rule{Op: memstore.OpPut, KeyPattern: k1, Nth: 1, Action: memstore.ActionFail})
	if err := s.Put(ctx, k1, d1, create); err == nil {
		t.Fatal("injected failure did not fail")
	}
	if err := s.Put(ctx, k1, d1, create); err != nil {
		t.Fatal(err)
	}
	fenceKey := segment.BlockKey("", 7, 0, 2)
	fence := segment.EncodeFence(segment.FenceInfo{LogID: 7, SegmentID: 0, BlockNo: 2, Epoch: 2})
	if err := s.Put(ctx, fenceKey, fence, create); err != nil {
		t.Fatal(err)
	}
	_, d2 := block(2, 500)
	if err := s.Put(ctx, fenceKey, d2, create); !errors.Is(err, objstore.ErrAlreadyExists) {
		t.Fatalf("block over a fence: %v, want ErrAlreadyExists", err)
	}
	// A second fence into a taken slot is recovery's race, not a block
	// write finding its slot taken.
	if err := s.Put(ctx, k0, fence, create); !errors.Is(err, objstore.ErrAlreadyExists) {
		t.Fatalf("fence over a block: %v, want ErrAlreadyExists", err)
	}
	if err := s.Put(ctx, segment.SealKey("", 7, 0), []byte("seal"), create); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "_probe/x", []byte("p"), create); err != nil {
		t.Fatal(err)
	}
	if got, err := mem.Get(ctx, k1); err != nil || len(got) != 3000 {
		t.Fatalf("the wrapper did not forward the write: %d bytes, %v", len(got), err)
	}

	checks := []struct {
		name string
		got  float64
		want float64
	}{
		{"fences placed", testutil.ToFloat64(m.fencing.WithLabelValues(FencePlaced)), 1},
		{"slots taken", testutil.ToFloat64(m.fencing.WithLabelValues(FenceSlotTaken)), 1},
		// Reported by the engine, so not counted here again.
		{"blocks written", testutil.ToFloat64(m.blocksUploaded), 0},
		{"write failures", testutil.ToFloat64(m.uploadFailures), 0},
		{"retries", testutil.ToFloat64(m.uploadRetries), 0},
		{"in flight", testutil.ToFloat64(m.uploadsInFlight), 0},
		{"segments sealed", testutil.ToFloat64(m.segmentsSealed), 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestBlockWrites checks the block-write events the engine reports: an
// attempt that fails and its retry, and two that succeed.
func TestBlockWrites(t *testing.T) {
	m := New()
	m.BlockWriteStarted(false)
	m.BlockWriteDone(1000, time.Millisecond, nil)
	m.BlockWriteStarted(false)
	m.BlockWriteDone(3000, time.Millisecond, errors.New("timeout"))
	m.BlockWriteStarted(true)
	if got := testutil.ToFloat64(m.uploadsInFlight); got != 1 {
		t.Errorf("in flight during a write = %v, want 1", got)
	}
	m.BlockWriteDone(3000, 2*time.Millisecond, nil)
	m.SegmentSealed()
	checks := []struct {
		name string
		got  float64
		want float64
	}{
		{"blocks written", testutil.ToFloat64(m.blocksUploaded), 2},
		{"write failures", testutil.ToFloat64(m.uploadFailures), 1},
		{"retries", testutil.ToFloat64(m.uploadRetries), 1},
		{"in flight", testutil.ToFloat64(m.uploadsInFlight), 0},
		{"segments sealed", testutil.ToFloat64(m.segmentsSealed), 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// The sizes of the written blocks went to the histogram: 1000 + 3000.
	var sizes dto.Metric
	if err := m.blockBytes.Write(&sizes); err != nil {
		t.Fatal(err)
	}
	if h := sizes.GetHistogram(); h.GetSampleCount() != 2 || h.GetSampleSum() != 4000 {
		t.Errorf("block size histogram has %d samples summing to %v, want 2 summing to 4000",
			h.GetSampleCount(), h.GetSampleSum())
	}
}

func TestServe(t *testing.T) {
	m := New()
	m.ObserveAppend(42, time.Millisecond, nil)
	srv, err := Serve("127.0.0.1:0", m.Handler())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })

	get := func(path string) string {
		t.Helper()
		resp, err := http.Get("http://" + srv.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		return string(body)
	}
	body := get("/metrics")
	for _, want := range []string{
		`woodpecker_writer_appends_total{result="ok"} 1`,
		"woodpecker_writer_append_bytes_total 42",
		"woodpecker_writer_append_latency_seconds_bucket",
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if got := get("/healthz"); got != "ok\n" {
		t.Errorf("/healthz = %q", got)
	}
	if err := srv.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + srv.Addr() + "/metrics"); err == nil {
		t.Error("server still answers after Close")
	}
}

func TestServeBadAddr(t *testing.T) {
	srv, err := Serve("127.0.0.1:0", New().Handler())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	_, err = Serve(srv.Addr(), New().Handler())
	if err == nil || !strings.Contains(err.Error(), "metrics.addr") {
		t.Fatalf("Serve on a busy address: %v, want an error naming metrics.addr", err)
	}
}

func TestGCSource(t *testing.T) {
	m := New()
	if got := testutil.ToFloat64(collectorMetric(t, m, "woodpecker_gc_passes_total")); got != 0 {
		t.Fatalf("passes without a source = %v", got)
	}
	counts := GCCounts{Passes: 3, DeletedObjects: 7, DeletedBytes: 1 << 20, CompactedSegments: 2, CompactionBytes: 99}
	m.SetGCSource(func() GCCounts { return counts })
	for name, want := range map[string]float64{
		"woodpecker_gc_passes_total": 3, "woodpecker_gc_deleted_objects_total": 7,
		"woodpecker_gc_deleted_bytes_total": 1 << 20, "woodpecker_compaction_segments_total": 2,
		"woodpecker_compaction_written_bytes_total": 99, "woodpecker_gc_errors_total": 0,
	} {
		if got := testutil.ToFloat64(collectorMetric(t, m, name)); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// collectorMetric returns a collector yielding only the metric name of m's
// registry, for testutil.ToFloat64.
func collectorMetric(t *testing.T, m *Metrics, name string) prometheus.Collector {
	t.Helper()
	return filtered{c: m.gc, name: name}
}

type filtered struct {
	c    prometheus.Collector
	name string
}

func (f filtered) Describe(ch chan<- *prometheus.Desc) { f.c.Describe(ch) }

func (f filtered) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric, 64)
	f.c.Collect(all)
	close(all)
	for mt := range all {
		if strings.Contains(mt.Desc().String(), `"`+f.name+`"`) {
			ch <- mt
		}
	}
}

// TestSharedObjectEvents: a shared object's PUT and commit, and the
// adaptive upload limit, show up under woodpecker_shared_*; a PUT or a
// commit that gave up counts by its outcome and adds no latency sample.
func TestSharedObjectEvents(t *testing.T) {
	m := New()
	var _ shared.StreamMetrics = m // the client hands it to the stream
	m.ObjectWritten(1<<20, 16, 5*time.Millisecond, nil)
	m.ObjectCommitted(3*time.Millisecond, nil)
	m.ObjectWritten(1<<20, 16, time.Minute, errors.New("store down"))
	m.ObjectWritten(1<<10, 1, time.Millisecond, nil)
	m.ObjectCommitted(time.Minute, errors.New("etcd down"))
	m.UploadLimit(3)
	for result, want := range map[string]float64{SharedCommitted: 1, SharedPutFailed: 1, SharedCommitUnknown: 1} {
		if got := testutil.ToFloat64(m.sharedObjects.WithLabelValues(result)); got != want {
			t.Errorf("shared objects %s: %v, want %v", result, got, want)
		}
	}
	if got := testutil.CollectAndCount(m.sharedPutLatency); got != 1 {
		t.Errorf("PUT latency series: %d", got)
	}
	if got := testutil.ToFloat64(m.sharedUploadLimit); got != 3 {
		t.Errorf("upload limit %v, want 3", got)
	}
}
