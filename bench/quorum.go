package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/quorum"
	"github.com/woodpecker-wal/woodpecker/quorum/quorumpb"
	"github.com/woodpecker-wal/woodpecker/segment"
)

// QuorumTarget measures QuorumBuffer's LogStores without the engine: each
// write is one block holding the payload as its only entry, encoded as the
// writer encodes blocks, sent with AddBlock to the 3 LogStores at once; it
// is done when 2 of them accept it, as a quorum sink's block is. The call
// to the third goes on in the background, as it does in the sink.
//
// The streams of one measurement (OpenStreams) write one scratch segment of
// a scratch log, taking block numbers in turn, as the blocks a writer keeps
// in flight do. Every request carries the last block acknowledged in order
// as both the LAC and the upload watermark, and no replica is the
// uploader: the replicas drop blocks as the writes go on and upload
// nothing, so the figure is the LogStores' own limit (transport, request
// handling, validation, memory), without the object store behind them.
// Closing the streams releases the segment on every replica.
//
// Create it with NewQuorumTarget. Safe for concurrent use.
type QuorumTarget struct {
	tr          quorum.Transport
	addrs       []string
	inflight    int
	callTimeout time.Duration
	logID       int64
	segs        atomic.Int64
}

// NewQuorumTarget returns a target writing to the LogStores at addrs
// (quorum.EnsembleSize of them) through tr, which stays the caller's.
// inflight is how many blocks one engine writer keeps in flight
// (quorum.maxInflightBlocks): the target's Streams. Each call is bounded by
// callTimeout (quorum.callTimeout).
func NewQuorumTarget(tr quorum.Transport, addrs []string, inflight int, callTimeout time.Duration) (*QuorumTarget, error) {
	if len(addrs) != quorum.EnsembleSize {
		return nil, errors.Newf("raw measurement: %d LogStores given, a quorum segment has %d", len(addrs), quorum.EnsembleSize)
	}
	if callTimeout <= 0 {
		callTimeout = 5 * time.Second
	}
	// A log id no log has: ids are given out from 1 by etcd counters.
	var b [8]byte
	_, _ = rand.Read(b[:])
	logID := int64(1<<52) | int64(binary.LittleEndian.Uint64(b[:])>>13)
	return &QuorumTarget{tr: tr, addrs: append([]string(nil), addrs...), inflight: max(inflight, 1),
		callTimeout: callTimeout, logID: logID}, nil
}

// Describe implements RawTarget.
func (q *QuorumTarget) Describe() string {
	return "AddBlock to LogStores " + strings.Join(q.addrs, ", ") + ", 2 of 3 acknowledging"
}

// Addrs returns the LogStores' addresses.
func (q *QuorumTarget) Addrs() []string { return append([]string(nil), q.addrs...) }

// Streams implements RawTarget: a writer keeps quorum.maxInflightBlocks
// blocks in flight.
func (q *QuorumTarget) Streams(options.WriterConfig) int { return q.inflight }

// OpenStream implements RawTarget: one stream on a segment of its own.
func (q *QuorumTarget) OpenStream(ctx context.Context, name string) (RawStream, error) {
	s, err := q.OpenStreams(ctx, name, 1)
	if err != nil {
		return nil, err
	}
	return s[0], nil
}

// OpenStreams implements multiStreamTarget: n streams writing one scratch
// segment. Each stream's Close waits for the calls still running; the last
// one releases the segment on the replicas.
func (q *QuorumTarget) OpenStreams(_ context.Context, _ string, n int) ([]RawStream, error) {
	seg := &quorumSegment{
		q:   q,
		seg: &quorumpb.Segment{LogId: q.logID, SegmentId: q.segs.Add(1) - 1, Epoch: 1},
		lac: -1,
	}
	for _, a := range q.addrs {
		c, err := q.tr.Replica(a)
		if err != nil {
			return nil, errors.Wrap(err, "raw measurement")
		}
		seg.replicas = append(seg.replicas, c)
	}
	seg.open.Store(int64(n))
	out := make([]RawStream, n)
	for i := range out {
		out[i] = &quorumStream{seg: seg}
	}
	return out, nil
}

// quorumSegment is the scratch segment the streams of one measurement
// share.
type quorumSegment struct {
	q        *QuorumTarget
	seg      *quorumpb.Segment
	replicas []quorumpb.LogStoreClient
	next     atomic.Int64 // the next block number
	open     atomic.Int64 // streams not closed yet

	mu   sync.Mutex
	lac  int64          // every block up to it is acknowledged
	done map[int64]bool // acknowledged blocks above lac

	// stragglers are the calls still running after their write returned.
	stragglers sync.WaitGroup
}

func (g *quorumSegment) acked(n int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n != g.lac+1 {
		if g.done == nil {
			g.done = map[int64]bool{}
		}
		g.done[n] = true
		return
	}
	g.lac = n
	for g.done[g.lac+1] {
		delete(g.done, g.lac+1)
		g.lac++
	}
}

func (g *quorumSegment) getLAC() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lac
}

// release drops the segment on every replica, best effort.
func (g *quorumSegment) release(ctx context.Context) {
	g.stragglers.Wait()
	var wg sync.WaitGroup
	for _, r := range g.replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, g.q.callTimeout)
			defer cancel()
			_, _ = r.Release(cctx, &quorumpb.ReleaseRequest{Segment: g.seg})
		}()
	}
	wg.Wait()
}

type quorumStream struct {
	seg    *quorumSegment
	closed bool
}

// Write implements RawStream: the next block of the segment, holding data,
// to every replica; it returns once 2 accepted it.
func (s *quorumStream) Write(ctx context.Context, data []byte) error {
	g := s.seg
	n := g.next.Add(1) - 1
	// A block of its own: the call to the slowest replica outlives Write,
	// and the caller reuses data.
	block, err := segment.EncodeBlock(nil, segment.BlockHeader{LogID: g.seg.LogId, SegmentID: g.seg.SegmentId,
		FirstEntry: n, Epoch: g.seg.Epoch, BlockNo: n}, [][]byte{data}, segment.CompressionNone)
	if err != nil {
		return errors.Wrap(err, "raw measurement: encode block")
	}
	lac := g.getLAC()
	req := &quorumpb.AddBlockRequest{Segment: g.seg, BlockNo: n, Block: block, Lac: lac, Uploaded: lac}
	results := make(chan error, len(g.replicas))
	for _, r := range g.replicas {
		g.stragglers.Add(1)
		go func() {
			defer g.stragglers.Done()
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.q.callTimeout)
			defer cancel()
			_, err := r.AddBlock(cctx, req)
			results <- err
		}()
	}
	var acks int
	var errs error
	for i := range g.replicas {
		select {
		case err = <-results:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err == nil {
			if acks++; acks == quorum.AckQuorum {
				g.acked(n)
				return nil
			}
			continue
		}
		errs = errors.CombineErrors(errs, err)
		if i+1-acks > len(g.replicas)-quorum.AckQuorum {
			break
		}
	}
	return errors.Wrapf(errs, "raw measurement: block %d: no quorum", n)
}

// Close implements RawStream: the last stream of the segment to close
// waits for the calls still running and releases the segment.
func (s *quorumStream) Close(ctx context.Context) error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.seg.open.Add(-1) == 0 {
		s.seg.release(ctx)
	}
	return nil
}
