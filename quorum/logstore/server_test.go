package logstore

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/quorum/quorumpb"
	"github.com/woodpecker-wal/woodpecker/segment"
)

func TestAddedBlockIsReadableUntilReleased(t *testing.T) {
	r := startReplica(t, Config{})
	ctx := ctxT(t)
	for n := range int64(3) {
		if resp := mustAdd(t, r, addReq(t, n)); resp.GetUploaded() != -1 {
			t.Errorf("a replica that is not the uploader reports watermark %d, want -1", resp.GetUploaded())
		}
	}
	for n := range int64(3) {
		resp, err := r.ReadBlock(ctx, &quorumpb.ReadBlockRequest{Segment: testSegment(), BlockNo: n})
		if err != nil {
			t.Fatal(err)
		}
		if string(resp.GetBlock()) != string(block(t, n)) {
			t.Fatalf("block %d read back differs from the block added", n)
		}
	}
	wantHeld(t, r, 0, 1, 2)
	_, err := r.ReadBlock(ctx, &quorumpb.ReadBlockRequest{Segment: testSegment(), BlockNo: 3})
	wantRefusal(t, err, codes.NotFound, "")

	if _, err := r.Release(ctx, &quorumpb.ReleaseRequest{Segment: testSegment()}); err != nil {
		t.Fatal(err)
	}
	_, err = r.ReadBlock(ctx, &quorumpb.ReadBlockRequest{Segment: testSegment(), BlockNo: 0})
	wantRefusal(t, err, codes.NotFound, "")
	if st := r.srv.Stats(); st.Blocks != 0 || st.Bytes != 0 {
		t.Fatalf("after release the replica holds %+v", st)
	}
	// A released segment stays fenced: a writer that lost it to recovery
	// finds no replica to take its blocks.
	_, err = r.AddBlock(ctx, addReq(t, 3))
	wantRefusal(t, err, codes.FailedPrecondition, ReasonFenced)
	if _, err := r.Release(ctx, &quorumpb.ReleaseRequest{Segment: testSegment()}); err != nil {
		t.Fatalf("a second release: %v", err)
	}
}

func TestReleasedSegmentsRememberedAreBounded(t *testing.T) {
	r := startReplica(t, Config{MaxReleased: 2})
	ctx := ctxT(t)
	for seg := range int64(5) {
		if _, err := r.Release(ctx, &quorumpb.ReleaseRequest{Segment: &quorumpb.Segment{LogId: 1, SegmentId: seg}}); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.srv.Stats().Segments; got != 2 {
		t.Fatalf("the replica keeps %d segments after 5 releases, want MaxReleased 2", got)
	}
	// The newest stay fenced.
	_, err := r.AddBlock(ctx, &quorumpb.AddBlockRequest{Segment: &quorumpb.Segment{LogId: 1, SegmentId: 4},
		Block: blockOf(t, 1, 4, 0, 0, "x"), Lac: -1, Uploaded: -1})
	wantRefusal(t, err, codes.FailedPrecondition, ReasonFenced)
}

func TestFenceRefusesEveryLaterAdd(t *testing.T) {
	r := startReplica(t, Config{})
	ctx := ctxT(t)
	mustAdd(t, r, addReq(t, 0))
	req := addReq(t, 1)
	req.Lac = 0
	mustAdd(t, r, req)

	fence := &quorumpb.FenceRequest{Segment: &quorumpb.Segment{LogId: testLog, SegmentId: testSeg, Epoch: testEpoch + 1}}
	for i := range 2 { // idempotent
		resp, err := r.Fence(ctx, fence)
		if err != nil {
			t.Fatal(err)
		}
		if !resp.GetKnown() || !resp.GetFenced() || !slices.Equal(resp.GetBlocks(), []int64{0, 1}) ||
			resp.GetLac() != 0 || resp.GetUploaded() != -1 {
			t.Fatalf("fence %d answered %v, want known, fenced, blocks [0 1], lac 0, uploaded -1", i, resp)
		}
	}
	for _, n := range []int64{1, 2} { // a retry of a held block, and a new one
		_, err := r.AddBlock(ctx, addReq(t, n))
		wantRefusal(t, err, codes.FailedPrecondition, ReasonFenced)
	}
	wantHeld(t, r, 0, 1)
	if !status1(t, r, 0).GetFenced() {
		t.Fatal("Status does not report the fence")
	}

	// A fence of a segment the replica never heard of creates it fenced.
	other := &quorumpb.Segment{LogId: testLog, SegmentId: testSeg + 1, Epoch: testEpoch}
	resp, err := r.Fence(ctx, &quorumpb.FenceRequest{Segment: other})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.GetFenced() || len(resp.GetBlocks()) != 0 {
		t.Fatalf("fence of an unknown segment answered %v", resp)
	}
	_, err = r.AddBlock(ctx, &quorumpb.AddBlockRequest{Segment: other, Block: blockOf(t, testLog, testSeg+1, testEpoch, 0, "x"),
		Lac: -1, Uploaded: -1})
	wantRefusal(t, err, codes.FailedPrecondition, ReasonFenced)
	if got := r.counter(t, "woodpecker_logstore_rejections_total", map[string]string{"reason": ReasonFenced}); got != 3 {
		t.Errorf("rejections_total{reason=fenced} = %v, want 3", got)
	}
}

func TestRetriedAddOfTheSameBlockSucceedsAndADifferentBlockIsRefused(t *testing.T) {
	r := startReplica(t, Config{})
	ctx := ctxT(t)
	mustAdd(t, r, addReq(t, 0))
	mustAdd(t, r, addReq(t, 0))
	if st := r.srv.Stats(); st.Blocks != 1 || st.Bytes != int64(len(block(t, 0))) {
		t.Fatalf("after a retried add the replica holds %+v, want the block once", st)
	}
	other := addReq(t, 0)
	other.Block = blockOf(t, testLog, testSeg, testEpoch, 0, "other bytes")
	_, err := r.AddBlock(ctx, other)
	wantRefusal(t, err, codes.InvalidArgument, ReasonInvalid)
	got, err := r.ReadBlock(ctx, &quorumpb.ReadBlockRequest{Segment: testSegment(), BlockNo: 0})
	if err != nil || string(got.GetBlock()) != string(block(t, 0)) {
		t.Fatalf("the first block was replaced or lost: %v", err)
	}
}

// rawCodec sends bytes as they are, to put garbage on the wire.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error)      { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error { return nil }
func (rawCodec) Name() string                       { return "proto" }

func TestInvalidRequestsAreRefusedAndStoreNothing(t *testing.T) {
	r := startReplica(t, Config{})
	ctx := ctxT(t)
	flip := func(b []byte, off int) []byte {
		b = slices.Clone(b)
		b[off] ^= 0x40
		return b
	}
	good := block(t, 0)
	tests := []struct {
		name   string
		mutate func(req *quorumpb.AddBlockRequest)
	}{
		{"no segment", func(req *quorumpb.AddBlockRequest) { req.Segment = nil }},
		{"negative segment id", func(req *quorumpb.AddBlockRequest) { req.Segment.SegmentId = -1 }},
		{"negative block number", func(req *quorumpb.AddBlockRequest) { req.BlockNo = -1 }},
		{"empty block", func(req *quorumpb.AddBlockRequest) { req.Block = nil }},
		{"garbage block", func(req *quorumpb.AddBlockRequest) {
			req.Block = []byte("not a block at all, just some bytes ......................")
		}},
		{"truncated block", func(req *quorumpb.AddBlockRequest) { req.Block = good[:len(good)-1] }},
		{"trailing bytes", func(req *quorumpb.AddBlockRequest) { req.Block = append(slices.Clone(good), 0) }},
		{"header CRC mismatch", func(req *quorumpb.AddBlockRequest) { req.Block = flip(good, 20) }},
		{"body CRC mismatch", func(req *quorumpb.AddBlockRequest) { req.Block = flip(good, segment.BlockHeaderSize+1) }},
		{"two blocks", func(req *quorumpb.AddBlockRequest) { req.Block = append(slices.Clone(good), block(t, 1)...) }},
		{"block of another log", func(req *quorumpb.AddBlockRequest) {
			req.Block = blockOf(t, testLog+1, testSeg, testEpoch, 0, "entry 0")
		}},
		{"block of another segment", func(req *quorumpb.AddBlockRequest) {
			req.Block = blockOf(t, testLog, testSeg+1, testEpoch, 0, "entry 0")
		}},
		{"block of another epoch", func(req *quorumpb.AddBlockRequest) {
			req.Block = blockOf(t, testLog, testSeg, testEpoch+1, 0, "entry 0")
		}},
		{"block with another number", func(req *quorumpb.AddBlockRequest) { req.BlockNo = 1 }},
		{"malformed shared owner", func(req *quorumpb.AddBlockRequest) { req.Segment.SharedOwner = "not-a-token" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := addReq(t, 0)
			tt.mutate(req)
			_, err := r.AddBlock(ctx, req)
			wantRefusal(t, err, codes.InvalidArgument, ReasonInvalid)
		})
	}
	t.Run("garbage protobuf", func(t *testing.T) {
		for _, garbage := range [][]byte{{0xff, 0xff, 0xff}, {0x0a, 0x05, 0x01}, {0x12}} {
			var out []byte
			err := r.conn.Invoke(ctx, quorumpb.LogStore_AddBlock_FullMethodName, garbage, &out, grpc.ForceCodec(rawCodec{}))
			wantRefusal(t, err, codes.InvalidArgument, ReasonInvalid)
		}
	})
	if st := r.srv.Stats(); st.Blocks != 0 || st.Bytes != 0 {
		t.Fatalf("invalid adds left %+v", st)
	}

	// A segment keeps the epoch of its first block.
	mustAdd(t, r, addReq(t, 0))
	req := &quorumpb.AddBlockRequest{Segment: &quorumpb.Segment{LogId: testLog, SegmentId: testSeg, Epoch: testEpoch + 1},
		BlockNo: 1, Block: blockOf(t, testLog, testSeg, testEpoch+1, 1, "x"), Lac: -1, Uploaded: -1}
	_, err := r.AddBlock(ctx, req)
	wantRefusal(t, err, codes.InvalidArgument, ReasonInvalid)
	wantHeld(t, r, 0)
}

func TestAddBeyondTheBudgetIsResourceExhaustedUntilDropsFreeIt(t *testing.T) {
	size := int64(len(block(t, 0)))
	r := startReplica(t, Config{BudgetBytes: 2*size + size/2})
	ctx := ctxT(t)
	mustAdd(t, r, addReq(t, 0))
	mustAdd(t, r, addReq(t, 1))
	_, err := r.AddBlock(ctx, addReq(t, 2))
	wantRefusal(t, err, codes.ResourceExhausted, ReasonBudget)
	wantHeld(t, r, 0, 1)

	// The writer's retry reports blocks 0 and 1 acknowledged and uploaded:
	// the replica drops them, and block 2 fits.
	req := addReq(t, 2)
	req.Lac, req.Uploaded = 1, 1
	mustAdd(t, r, req)
	wantHeld(t, r, 2)
	if st := r.srv.Stats(); st.Bytes != size || st.Blocks != 1 {
		t.Fatalf("replica holds %+v, want one block of %d bytes", st, size)
	}
	// Blocks above the LAC stay even when uploaded: drops follow
	// min(watermark, LAC).
	req = addReq(t, 3)
	req.Lac, req.Uploaded = 1, 2
	mustAdd(t, r, req)
	wantHeld(t, r, 2, 3)
	// A retry of a block below the watermark succeeds: it is in object
	// storage.
	mustAdd(t, r, addReq(t, 0))
	wantHeld(t, r, 2, 3)
}

func TestUploaderUploadsInBlockOrderAndDropsWhatTheLACPassed(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			store := &recordingStore{Store: open(t)}
			r := startReplica(t, Config{Store: store})
			ctx := ctxT(t)
			// Blocks arrive out of order; nothing can be uploaded before
			// block 0.
			for _, n := range []int64{2, 1, 3} {
				req := addReq(t, n)
				req.Uploader = true
				if resp := mustAdd(t, r, req); resp.GetUploaded() != -1 {
					t.Fatalf("watermark %d before block 0 arrived", resp.GetUploaded())
				}
			}
			req := addReq(t, 0)
			req.Uploader = true
			mustAdd(t, r, req)
			resp, err := r.Flush(ctx, &quorumpb.FlushRequest{Segment: testSegment(), ThroughBlock: 3})
			if err != nil || resp.GetUploaded() != 3 {
				t.Fatalf("flush: %v, %v; want watermark 3", resp, err)
			}
			wantUploaded(t, store, 4)
			var want []string
			for n := range int64(4) {
				want = append(want, segment.BlockKey("", testLog, testSeg, n))
			}
			if got := store.Puts(); !slices.Equal(got, want) {
				t.Fatalf("puts in order %v, want %v", got, want)
			}
			// Uploaded but not acknowledged: still held (recovery may
			// need them from replicas that do not know the watermark).
			wantHeld(t, r, 0, 1, 2, 3)
			req = addReq(t, 4)
			req.Uploader, req.Lac = true, 2
			if resp := mustAdd(t, r, req); resp.GetUploaded() < 3 {
				t.Fatalf("the uploader reports watermark %d, want at least 3", resp.GetUploaded())
			}
			held := status1(t, r, 0).GetBlocks()
			if len(held) == 0 || held[0] != 3 {
				t.Fatalf("after LAC 2 the uploader holds %v, want blocks from 3 on", held)
			}
		})
	}
}

func TestUploadRetriesTransientFailures(t *testing.T) {
	mem := memstore.New()
	// Two puts fail outright; the third lands but its answer is lost.
	mem.Inject(memstore.Rule{Op: memstore.OpPut, Nth: 1, Times: 2, Action: memstore.ActionFail})
	mem.Inject(memstore.Rule{Op: memstore.OpPut, Nth: 3, Action: memstore.ActionFailAfter})
	r := startReplica(t, Config{Store: mem})
	for n := range int64(3) {
		req := addReq(t, n)
		req.Uploader = true
		mustAdd(t, r, req)
	}
	resp, err := r.Flush(ctxT(t), &quorumpb.FlushRequest{Segment: testSegment(), ThroughBlock: 2})
	if err != nil || resp.GetUploaded() != 2 {
		t.Fatalf("flush: %v, %v; want watermark 2", resp, err)
	}
	wantUploaded(t, mem, 3)
	if got := r.counter(t, "woodpecker_logstore_uploads_total", map[string]string{"result": "retry"}); got != 3 {
		t.Errorf("uploads_total{result=retry} = %v, want 3", got)
	}
}

// TestUploadTakeoverStoresOneObjectPerBlock: the uploader hangs and is
// stopped; another replica's Flush uploads what it holds; and two replicas
// flushing the same blocks at once store each block once.
func TestUploadTakeoverStoresOneObjectPerBlock(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			store := open(t)
			hung := startReplica(t, Config{Store: stalledStore{store}, StopTimeout: time.Second})
			b := startReplica(t, Config{Store: store})
			c := startReplica(t, Config{Store: store})
			const blocks = 6
			for n := range int64(blocks) {
				for _, r := range []*replica{hung, b, c} {
					req := addReq(t, n)
					req.Uploader = r == hung
					mustAdd(t, r, req)
				}
			}
			if err := hung.srv.Close(); err != nil { // "killed" with its uploads hanging
				t.Fatal(err)
			}
			ctx := ctxT(t)
			resp, err := b.Flush(ctx, &quorumpb.FlushRequest{Segment: testSegment(), ThroughBlock: 2})
			if err != nil || resp.GetUploaded() != 2 {
				t.Fatalf("takeover flush: %v, %v; want watermark 2", resp, err)
			}
			wantUploaded(t, store, 3)

			// b and c both flush the rest at once.
			var wg sync.WaitGroup
			results := make([]int64, 2)
			errs := make([]error, 2)
			for i, r := range []*replica{b, c} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp, err := r.Flush(ctx, &quorumpb.FlushRequest{Segment: testSegment(), ThroughBlock: blocks - 1})
					results[i], errs[i] = resp.GetUploaded(), err
				}()
			}
			wg.Wait()
			for i := range 2 {
				if errs[i] != nil || results[i] != blocks-1 {
					t.Fatalf("flush %d: watermark %d, %v; want %d", i, results[i], errs[i], blocks-1)
				}
			}
			wantUploaded(t, store, blocks)
		})
	}
}

func TestFlushReturnsEarlyWhenTheNextBlockIsNowhere(t *testing.T) {
	mem := memstore.New()
	r := startReplica(t, Config{Store: mem})
	for _, n := range []int64{0, 1, 3} { // block 2 never reached this replica
		mustAdd(t, r, addReq(t, n))
	}
	ctx := ctxT(t)
	resp, err := r.Flush(ctx, &quorumpb.FlushRequest{Segment: testSegment(), ThroughBlock: 3})
	if err != nil || resp.GetUploaded() != 1 {
		t.Fatalf("flush: %v, %v; want watermark 1 (block 2 missing)", resp, err)
	}
	// Someone else uploads block 2: the next flush finds it and goes on.
	if err := segment.UploadBlock(ctx, mem, "", segment.Ref{LogID: testLog, SegmentID: testSeg}, 2, block(t, 2)); err != nil {
		t.Fatal(err)
	}
	resp, err = r.Flush(ctx, &quorumpb.FlushRequest{Segment: testSegment(), ThroughBlock: 3})
	if err != nil || resp.GetUploaded() != 3 {
		t.Fatalf("flush: %v, %v; want watermark 3", resp, err)
	}
	wantUploaded(t, mem, 4)

	// A replica that holds nothing of a segment has nothing to flush.
	resp, err = r.Flush(ctx, &quorumpb.FlushRequest{Segment: &quorumpb.Segment{LogId: 99, SegmentId: 1}, ThroughBlock: 3})
	if err != nil || resp.GetUploaded() != -1 {
		t.Fatalf("flush of an unknown segment: %v, %v", resp, err)
	}
}

func TestFenceInObjectStorageStopsUploadsAndFencesTheSegment(t *testing.T) {
	mem := memstore.New()
	ctx := ctxT(t)
	fence := segment.EncodeFence(segment.FenceInfo{LogID: testLog, SegmentID: testSeg, BlockNo: 1, Epoch: testEpoch + 1})
	if err := mem.Put(ctx, segment.BlockKey("", testLog, testSeg, 1), fence, objstore.PutOptions{IfNotExists: true}); err != nil {
		t.Fatal(err)
	}
	r := startReplica(t, Config{Store: mem})
	for n := range int64(3) {
		mustAdd(t, r, addReq(t, n))
	}
	_, err := r.Flush(ctx, &quorumpb.FlushRequest{Segment: testSegment(), ThroughBlock: 2})
	wantRefusal(t, err, codes.FailedPrecondition, ReasonFenced)
	_, err = r.AddBlock(ctx, addReq(t, 3))
	wantRefusal(t, err, codes.FailedPrecondition, ReasonFenced)
	if got := mem.Keys(); len(got) != 2 {
		t.Fatalf("object store holds %v, want block 0 and the fence", got)
	}
}

func TestReplicaVouchesOnlyForSegmentsCreatedAfterItRegistered(t *testing.T) {
	const registered = 100
	r := startReplica(t, Config{RegisteredRevision: registered})
	ctx := ctxT(t)

	// Created after the replica registered: it was up all along, so an
	// empty answer is a real "I hold nothing".
	if st := status1(t, r, registered+50); !st.GetKnown() {
		t.Fatalf("status of a segment created after registration: %v, want known", st)
	}
	// Created before: a restart may have cost the replica its blocks and
	// its fence. It refuses the segment's blocks, and does not vouch.
	req := addReq(t, 0)
	req.CreatedRevision = registered - 50
	_, err := r.AddBlock(ctx, req)
	wantRefusal(t, err, codes.DataLoss, ReasonSegmentLost)
	wantHeld(t, r)
	for i := range 2 { // the fence creates the segment's state; the retry still does not vouch
		resp, err := r.Fence(ctx, &quorumpb.FenceRequest{Segment: testSegment(), CreatedRevision: registered - 50})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetKnown() || !resp.GetFenced() {
			t.Fatalf("fence %d: %v, want fenced and not known", i, resp)
		}
	}

	// Blocks taken without a created revision are real copies, listed,
	// but still not a vouch for a segment created before registration.
	other := &quorumpb.Segment{LogId: testLog, SegmentId: testSeg + 1, Epoch: testEpoch}
	mustAdd(t, r, &quorumpb.AddBlockRequest{Segment: other, BlockNo: 4,
		Block: blockOf(t, testLog, testSeg+1, testEpoch, 4, "x"), Lac: -1, Uploaded: -1})
	resp, err := r.Fence(ctx, &quorumpb.FenceRequest{Segment: other, CreatedRevision: registered - 1})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetKnown() || !slices.Equal(resp.GetBlocks(), []int64{4}) {
		t.Fatalf("fence: %v, want blocks [4], not known", resp)
	}
	// A block of a segment created after registration is taken.
	req = &quorumpb.AddBlockRequest{Segment: &quorumpb.Segment{LogId: testLog, SegmentId: testSeg + 2, Epoch: testEpoch},
		Block: blockOf(t, testLog, testSeg+2, testEpoch, 0, "x"), Lac: -1, Uploaded: -1, CreatedRevision: registered + 1}
	mustAdd(t, r, req)

	t.Run("unregistered", func(t *testing.T) {
		r := startReplica(t, Config{})
		for _, tt := range []struct {
			created int64
			known   bool
		}{{0, true}, {1, false}, {registered, false}} {
			if got := status1(t, r, tt.created).GetKnown(); got != tt.known {
				t.Errorf("unregistered replica, segment created at %d: known %t, want %t", tt.created, got, tt.known)
			}
		}
	})
}

func TestCloseStopsServingAndEndsWaitingFlushes(t *testing.T) {
	store := stalledStore{memstore.New()}
	r := startReplica(t, Config{Store: store})
	ctx := ctxT(t)
	health := healthpb.NewHealthClient(r.conn)
	for _, svc := range []string{"", quorumpb.LogStore_ServiceDesc.ServiceName} {
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health of %q: %v, %v", svc, resp, err)
		}
	}
	req := addReq(t, 0)
	req.Uploader = true
	mustAdd(t, r, req)
	flushed := make(chan error, 1)
	go func() {
		_, err := r.Flush(ctx, &quorumpb.FlushRequest{Segment: testSegment(), ThroughBlock: 0})
		flushed <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the flush wait on the hung upload
	start := time.Now()
	if err := r.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v with a hung upload", d)
	}
	select {
	case err := <-flushed:
		if c := status.Code(err); c != codes.Unavailable {
			t.Fatalf("the waiting flush ended with %v, want UNAVAILABLE", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting flush outlived Close")
	}
	if _, err := r.AddBlock(ctx, addReq(t, 1)); err == nil {
		t.Fatal("a closed server took a block")
	}
	if err := r.srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestFlushHonoursItsDeadline(t *testing.T) {
	r := startReplica(t, Config{Store: stalledStore{memstore.New()}})
	req := addReq(t, 0)
	req.Uploader = true
	mustAdd(t, r, req)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := r.Flush(ctx, &quorumpb.FlushRequest{Segment: testSegment(), ThroughBlock: 0})
	if c := status.Code(err); c != codes.DeadlineExceeded {
		t.Fatalf("flush past its deadline: %v", err)
	}
}

// gatedStore holds every put until release is closed, counting the puts
// in flight.
type gatedStore struct {
	objstore.Store
	release chan struct{}
	mu      sync.Mutex
	now     int
	most    int
}

func (s *gatedStore) Put(ctx context.Context, key string, data []byte, opts objstore.PutOptions) error {
	s.mu.Lock()
	s.now++
	s.most = max(s.most, s.now)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.now--
		s.mu.Unlock()
	}()
	select {
	case <-s.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Store.Put(ctx, key, data, opts)
}

func (s *gatedStore) inFlight() (now, most int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now, s.most
}

// TestUploaderPutsAcknowledgedBlocksInParallelAndTheRestOneAtATime: blocks
// at or below the LAC (acknowledged: no recovery ends the segment before
// them) are put several at once; blocks past it one at a time, so that a
// fence in a slot stops the uploads with nothing stored above it.
func TestUploaderPutsAcknowledgedBlocksInParallelAndTheRestOneAtATime(t *testing.T) {
	for _, tc := range []struct {
		name string
		lac  int64
		want int
	}{
		{"acknowledged", 9, segmentUploadParallel},
		{"not acknowledged", -1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &gatedStore{Store: memstore.New(), release: make(chan struct{})}
			r := startReplica(t, Config{Store: store, UploadParallel: 16})
			var once sync.Once
			release := func() { once.Do(func() { close(store.release) }) }
			defer release()
			for n := range int64(10) {
				req := addReq(t, n)
				req.Uploader, req.Lac = true, tc.lac
				mustAdd(t, r, req)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				if now, _ := store.inFlight(); now >= tc.want || time.Now().After(deadline) {
					break
				}
				time.Sleep(time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond) // room for more than wanted to start
			if _, most := store.inFlight(); most != tc.want {
				t.Fatalf("%d puts in flight at most, want %d", most, tc.want)
			}
			release()
			if resp, err := r.Flush(ctxT(t), &quorumpb.FlushRequest{Segment: testSegment(), ThroughBlock: 9}); err != nil || resp.GetUploaded() != 9 {
				t.Fatalf("flush: %v, %v; want watermark 9", resp, err)
			}
			wantUploaded(t, store, 10)
		})
	}
}
