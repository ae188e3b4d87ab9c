package logstore

import (
	"context"
	"fmt"
	"slices"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/woodpecker-wal/woodpecker/quorum/quorumpb"
)

// ReasonReleased (NOT_FOUND) ends a Watch: the segment was released, its
// blocks are in object storage and the replica holds nothing of it any
// more.
const ReasonReleased = "released"

// Watches. A tail reader subscribes to a segment on its replicas and is
// pushed the state of each (the blocks held, the LAC, the upload
// watermark) instead of asking for it on a timer. Each subscriber is one
// call that loops: read the segment's state, send it if it differs from
// what was sent last, wait for the next change. Changes while a send
// blocks (a slow subscriber, gRPC flow control) are not queued: the next
// turn reads the state as it is then. So a subscriber costs the replica
// one event whatever its speed, and gets the latest state.

// watchPoint wakes the watchers of one segment. Guarded by Server.mu.
type watchPoint struct {
	ch chan struct{} // closed (and replaced) when the segment changes
	n  int           // watchers
}

func (w *watchPoint) pokeLocked() {
	close(w.ch)
	w.ch = make(chan struct{})
}

// watchChangedLocked wakes the segment's watchers, if any. Requires s.mu.
func (st *segState) watchChangedLocked() {
	if st.watch != nil {
		st.watch.pokeLocked()
	}
}

// watchLocked registers a watcher of k. Requires s.mu.
func (s *Server) watchLocked(k segKey) *watchPoint {
	if s.watches == nil {
		s.watches = map[segKey]*watchPoint{}
	}
	w := s.watches[k]
	if w == nil {
		w = &watchPoint{ch: make(chan struct{})}
		s.watches[k] = w
		if st := s.segs[k]; st != nil {
			st.watch = w
		}
	}
	w.n++
	s.m.watches.Inc()
	return w
}

// unwatch removes a watcher of k.
func (s *Server) unwatch(k segKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m.watches.Dec()
	w := s.watches[k]
	if w == nil {
		return
	}
	if w.n--; w.n > 0 {
		return
	}
	delete(s.watches, k)
	if st := s.segs[k]; st != nil && st.watch == w {
		st.watch = nil
	}
}

// watchEventLocked is the state of k a watcher is sent. Requires s.mu.
func (s *Server) watchEventLocked(k segKey, created int64) *quorumpb.WatchEvent {
	ev := &quorumpb.WatchEvent{Known: s.vouches(created), Lac: -1, Uploaded: -1}
	st := s.segs[k]
	if st == nil {
		return ev
	}
	ev.Lac, ev.Uploaded, ev.Fenced = st.lac, st.uploaded, st.fenced
	ev.Held = heldRuns(st.blocks, st.dropped)
	return ev
}

// heldRuns returns the block numbers of blocks as runs (first, last, ...),
// ascending. Every block number is above dropped; usually they are
// dropped+1..dropped+len(blocks), which is found without sorting.
func heldRuns(blocks map[int64][]byte, dropped int64) []int64 {
	n := int64(len(blocks))
	if n == 0 {
		return nil
	}
	contiguous := true
	for b := dropped + 1; b <= dropped+n; b++ {
		if _, ok := blocks[b]; !ok {
			contiguous = false
			break
		}
	}
	if contiguous {
		return []int64{dropped + 1, dropped + n}
	}
	nums := make([]int64, 0, n)
	for b := range blocks {
		nums = append(nums, b)
	}
	slices.Sort(nums)
	var runs []int64
	for i, b := range nums {
		if i == 0 || b != nums[i-1]+1 {
			runs = append(runs, b, b)
		} else {
			runs[len(runs)-1] = b
		}
	}
	return runs
}

// ended returns the status that ends a watch for a reason that is not a
// refusal of the request (not counted in rejections_total).
func (s *Server) ended(c codes.Code, reason, format string, args ...any) error {
	st := status.New(c, fmt.Sprintf(format, args...))
	info := &errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain, Metadata: map[string]string{"node": s.cfg.NodeID}}
	if d, err := st.WithDetails(info); err == nil {
		st = d
	}
	return st.Err()
}

// Watch implements quorumpb.LogStoreServer: see the proto.
func (s *Server) Watch(req *quorumpb.WatchRequest, stream grpc.ServerStreamingServer[quorumpb.WatchEvent]) error {
	return s.watch(stream.Context(), req, stream.Send)
}

// watch runs one watch, sending events with send. A send that blocks
// delays the next event, and the changes made meanwhile are coalesced
// into it.
func (s *Server) watch(ctx context.Context, req *quorumpb.WatchRequest, send func(*quorumpb.WatchEvent) error) error {
	k, err := s.begin(req)
	if err != nil {
		return err
	}
	created := req.GetCreatedRevision()
	s.mu.Lock()
	if s.segs[k] == nil && created > 0 && !s.vouches(created) {
		s.mu.Unlock()
		return s.refuse(codes.DataLoss, ReasonSegmentLost,
			"logstore %s registered at revision %d, after log %d segment %d was created (revision %d), and holds nothing of it: "+
				"it takes no part in the segment", s.cfg.NodeID, s.cfg.RegisteredRevision, k.log, k.seg, created)
	}
	w := s.watchLocked(k)
	s.mu.Unlock()
	defer s.unwatch(k)

	var last *quorumpb.WatchEvent
	for {
		s.mu.Lock()
		st := s.segs[k]
		released := st != nil && st.released
		ev := s.watchEventLocked(k, created)
		changed := w.ch
		s.mu.Unlock()
		if released {
			return s.ended(codes.NotFound, ReasonReleased, "log %d segment %d was released on logstore %s: read object storage",
				k.log, k.seg, s.cfg.NodeID)
		}
		if last == nil || !proto.Equal(ev, last) {
			if err := send(ev); err != nil {
				return err
			}
			last = ev
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctxStatus(ctx.Err())
		case <-s.ctx.Done():
			return s.refuse(codes.Unavailable, "", "logstore %s is shutting down", s.cfg.NodeID)
		}
	}
}
