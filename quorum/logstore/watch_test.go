package logstore

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/woodpecker-wal/woodpecker/quorum/quorumpb"
)

// watchStream opens a Watch of the test segment.
func watchStream(t *testing.T, r *replica, ctx context.Context, created int64) grpc.ServerStreamingClient[quorumpb.WatchEvent] {
	t.Helper()
	s, err := r.Watch(ctx, &quorumpb.WatchRequest{Segment: testSegment(), CreatedRevision: created})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// recvUntil receives events until one satisfies ok, and returns it.
func recvUntil(t *testing.T, s grpc.ServerStreamingClient[quorumpb.WatchEvent], what string, ok func(*quorumpb.WatchEvent) bool) *quorumpb.WatchEvent {
	t.Helper()
	for {
		ev, err := s.Recv()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok(ev) {
			return ev
		}
	}
}

func heldIs(want ...int64) func(*quorumpb.WatchEvent) bool {
	return func(ev *quorumpb.WatchEvent) bool { return slices.Equal(ev.GetHeld(), want) }
}

func TestWatchSendsTheStateAtOnceAndOnEveryChangeUntilRelease(t *testing.T) {
	r := startReplica(t, Config{})
	ctx := ctxT(t)
	// A segment the replica holds nothing of yet is watched: its first
	// block may be on its way.
	s := watchStream(t, r, ctx, 0)
	ev, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if want := (&quorumpb.WatchEvent{Known: true, Lac: -1, Uploaded: -1}); !proto.Equal(ev, want) {
		t.Fatalf("first event %v, want %v", ev, want)
	}
	mustAdd(t, r, addReq(t, 0))
	recvUntil(t, s, "block 0", heldIs(0, 0))
	req := addReq(t, 1)
	req.Lac = 0
	mustAdd(t, r, req)
	recvUntil(t, s, "block 1 and the LAC", func(ev *quorumpb.WatchEvent) bool {
		return slices.Equal(ev.GetHeld(), []int64{0, 1}) && ev.GetLac() == 0
	})
	mustAdd(t, r, addReq(t, 3)) // block 2 missed: two runs
	recvUntil(t, s, "a gap", heldIs(0, 1, 3, 3))
	if _, err := r.Fence(ctx, &quorumpb.FenceRequest{Segment: testSegment()}); err != nil {
		t.Fatal(err)
	}
	recvUntil(t, s, "the fence", func(ev *quorumpb.WatchEvent) bool { return ev.GetFenced() })
	if _, err := r.Release(ctx, &quorumpb.ReleaseRequest{Segment: testSegment()}); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err = s.Recv(); err != nil {
			break
		}
	}
	wantRefusal(t, err, codes.NotFound, ReasonReleased)

	// A watch of a released segment ends at once.
	_, err = watchStream(t, r, ctx, 0).Recv()
	wantRefusal(t, err, codes.NotFound, ReasonReleased)
	if n := r.counter(t, "woodpecker_logstore_watches", nil); n != 0 {
		t.Fatalf("%v watches open after they ended", n)
	}
}

func TestWatchRefusesBadInputAndSegmentsTheReplicaCannotTakePartIn(t *testing.T) {
	// Registered at revision 100: segments created before it may have
	// been lost in a restart.
	r := startReplica(t, Config{RegisteredRevision: 100})
	ctx := ctxT(t)
	bad := []*quorumpb.WatchRequest{
		{},
		{Segment: &quorumpb.Segment{LogId: -1, SegmentId: testSeg}},
		{Segment: &quorumpb.Segment{LogId: testLog, SegmentId: -3}},
		{Segment: &quorumpb.Segment{LogId: testLog, SegmentId: testSeg, Epoch: -1}},
	}
	for _, req := range bad {
		s, err := r.Watch(ctx, req)
		if err == nil {
			_, err = s.Recv()
		}
		wantRefusal(t, err, codes.InvalidArgument, ReasonInvalid)
	}
	for _, garbage := range [][]byte{{0xff, 0xff, 0xff}, {0x0a, 0x05, 0x01}, {0x12}} {
		s, err := r.conn.NewStream(ctx, &quorumpb.LogStore_ServiceDesc.Streams[0], quorumpb.LogStore_Watch_FullMethodName,
			grpc.ForceCodec(rawCodec{}))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SendMsg(garbage); err != nil {
			t.Fatal(err)
		}
		_ = s.CloseSend()
		var out []byte
		wantRefusal(t, s.RecvMsg(&out), codes.InvalidArgument, ReasonInvalid)
	}

	// Unknown to a replica that registered after the segment was created:
	// it takes no part in it (it refuses its blocks too).
	_, err := watchStream(t, r, ctx, 50).Recv()
	wantRefusal(t, err, codes.DataLoss, ReasonSegmentLost)
	_, err = r.AddBlock(ctx, &quorumpb.AddBlockRequest{Segment: testSegment(), BlockNo: 0, Block: block(t, 0),
		Lac: -1, Uploaded: -1, CreatedRevision: 50})
	wantRefusal(t, err, codes.DataLoss, ReasonSegmentLost)

	// Created after it registered: watched, and vouched for.
	ev, err := watchStream(t, r, ctx, 150).Recv()
	if err != nil || !ev.GetKnown() || len(ev.GetHeld()) != 0 {
		t.Fatalf("watch of a segment created after the replica registered: %v, %v", ev, err)
	}
	if st := r.srv.Stats(); st.Segments != 0 || st.Blocks != 0 {
		t.Fatalf("watches created state: %+v", st)
	}
}

// A subscriber that does not keep up is sent the state as it is when it
// is ready again, not each change it missed: the replica holds one event
// for it, whatever the burst.
func TestWatchCoalescesChangesForASlowSubscriber(t *testing.T) {
	r := startReplica(t, Config{})
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	sent := make(chan *quorumpb.WatchEvent)
	ended := make(chan error, 1)
	go func() {
		ended <- r.srv.watch(ctx, &quorumpb.WatchRequest{Segment: testSegment()}, func(ev *quorumpb.WatchEvent) error {
			select {
			case sent <- ev: // blocks until the test takes it: a slow subscriber
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	if ev := <-sent; len(ev.GetHeld()) != 0 {
		t.Fatalf("first event %v", ev)
	}
	mustAdd(t, r, addReq(t, 0))
	time.Sleep(20 * time.Millisecond) // the watch now blocks sending block 0's event
	const burst = 200
	for n := int64(1); n < burst; n++ {
		req := addReq(t, n)
		req.Lac = n - 1
		mustAdd(t, r, req)
	}
	var got []*quorumpb.WatchEvent
	for {
		ev := <-sent
		got = append(got, ev)
		if slices.Equal(ev.GetHeld(), []int64{0, burst - 1}) && ev.GetLac() == burst-2 {
			break
		}
	}
	if len(got) > 2 {
		t.Fatalf("a slow subscriber was sent %d events after a burst of %d changes, want at most 2 (the one it was blocked on, then the latest)",
			len(got), burst)
	}
	cancel()
	if err := <-ended; status.Code(err) != codes.Canceled {
		t.Fatalf("watch ended with %v", err)
	}

	// Over gRPC too, a subscriber that reads nothing during a burst
	// reaches the latest state.
	wctx, wcancel := context.WithCancel(ctxT(t))
	defer wcancel()
	s := watchStream(t, r, wctx, 0)
	for n := int64(burst); n < 2*burst; n++ {
		req := addReq(t, n)
		req.Lac = n - 1
		mustAdd(t, r, req)
	}
	recvUntil(t, s, "the state after the burst", heldIs(0, 2*burst-1))
}

func TestCloseEndsOpenWatches(t *testing.T) {
	r := startReplica(t, Config{StopTimeout: time.Minute})
	ctx := ctxT(t)
	mustAdd(t, r, addReq(t, 0))
	var streams []grpc.ServerStreamingClient[quorumpb.WatchEvent]
	for _, seg := range []*quorumpb.Segment{testSegment(), {LogId: testLog, SegmentId: testSeg + 1, Epoch: testEpoch}} {
		for range 3 {
			s, err := r.Watch(ctx, &quorumpb.WatchRequest{Segment: seg})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Recv(); err != nil {
				t.Fatal(err)
			}
			streams = append(streams, s)
		}
	}
	start := time.Now()
	if err := r.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v with watches open (stop timeout 1m): the graceful stop waited for them", d)
	}
	for _, s := range streams {
		if _, err := s.Recv(); status.Code(err) != codes.Unavailable {
			t.Fatalf("an open watch ended with %v, want UNAVAILABLE", err)
		}
	}
}
