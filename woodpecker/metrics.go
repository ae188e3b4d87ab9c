package woodpecker

import (
	"time"

	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/shared"
)

// Fencing events, the event argument of Metrics.Fencing.
const (
	// FenceWriterFenced: a writer learnt that a newer writer owns its log
	// (reported once per writer).
	FenceWriterFenced = "writer_fenced"
	// FenceSegmentRecovered: opening a writer sealed a segment that a
	// previous writer left open.
	FenceSegmentRecovered = "segment_recovered"
)

// Metrics receives what a client's writers and readers do, for monitoring;
// give it to New with WithMetrics. The client calls it from its own
// goroutines and the callers' ones, concurrently, and never with a lock of
// its own held: implementations must be safe for concurrent use, must not
// block, and must not call back into the client. The woodpecker command's
// Prometheus metrics implement it.
type Metrics interface {
	// ObserveAppend reports the outcome of one append, exactly once
	// however often its outcome is read: n payload bytes, d from the call
	// of Append or AppendAsync until the outcome was known (not until a
	// caller noticed), and err, nil when the entry is durable, otherwise
	// an error to classify with errors.Is as Append's result is (ErrFenced,
	// ErrUnknownOutcome, ...). Appends rejected at once (empty, too large,
	// a failed writer) are reported too.
	ObserveAppend(n int, d time.Duration, err error)
	// BlockWriteStarted reports that an attempt to write a block to
	// storage starts (an object PUT, or a local write and fsync); retry is
	// set when an earlier attempt of the same block failed. BlockWriteDone
	// ends that attempt, with the block's size in bytes, how long the
	// attempt took, and its error. Started minus done is the number of
	// block writes in flight.
	BlockWriteStarted(retry bool)
	BlockWriteDone(size int, d time.Duration, err error)
	// SegmentSealed reports a segment sealed, by its writer or by the
	// recovery of a new writer.
	SegmentSealed()
	// Fencing reports a fencing event: FenceWriterFenced or
	// FenceSegmentRecovered.
	Fencing(event string)
	// ObserveRead reports n entries holding bytes payload bytes returned
	// by a Reader.
	ObserveRead(n int, bytes int64)
}

// SharedObjectMetrics is what a Metrics that implements it also learns
// when the client writes shared objects (writer.batchWindow > 0): each
// object's PUT and etcd commit, and the process's adaptive upload limit.
// The woodpecker command's Prometheus metrics implement it.
type SharedObjectMetrics = shared.StreamMetrics

// WithMetrics makes the client report to m what its writers and readers
// do. Without it nothing is measured. The caller keeps ownership of m.
func WithMetrics(m Metrics) Option { return func(o *clientOptions) { o.metrics = m } }

// writerMetrics adapts the client's Metrics to one segment writer.
type writerMetrics struct{ m Metrics }

var _ segment.Metrics = writerMetrics{}

func (w writerMetrics) AppendDone(n int, d time.Duration, err error) { w.m.ObserveAppend(n, d, err) }
func (w writerMetrics) BlockWriteStarted(retry bool)                 { w.m.BlockWriteStarted(retry) }
func (w writerMetrics) BlockWriteDone(n int, d time.Duration, err error) {
	w.m.BlockWriteDone(n, d, err)
}
func (w writerMetrics) SegmentSealed(int64) { w.m.SegmentSealed() }
func (w writerMetrics) Fenced()             { w.m.Fencing(FenceWriterFenced) }

// segmentMetrics returns what a new segment writer reports to: nil when
// the client measures nothing.
func (c *Client) segmentMetrics() segment.Metrics {
	if c.metrics == nil {
		return nil
	}
	return writerMetrics{m: c.metrics}
}
