package quorum_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"go.uber.org/mock/gomock"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/mocks"
	"github.com/woodpecker-wal/woodpecker/quorum"
	"github.com/woodpecker-wal/woodpecker/quorum/quorumpb"
	"github.com/woodpecker-wal/woodpecker/segment"
)

// The tests in this file drive the backend against mocked replicas
// (mocks.MockLogStoreClient behind a mocks.MockTransport): each replica
// gives one scripted answer, and the test checks the outcome a writer or a
// recovery sees. What needs real LogStores is in quorum_test.go.

// mockedEnsemble is a backend whose only ensemble is three mocked replicas,
// uploading to a memory store, and a segment placed on it. rs[0] is the
// segment's uploader.
type mockedEnsemble struct {
	b     *quorum.Backend
	ref   segment.Ref
	rs    [quorum.EnsembleSize]*mocks.MockLogStoreClient
	store *memstore.Store
}

func newMockedEnsemble(t *testing.T) *mockedEnsemble {
	t.Helper()
	ctrl := gomock.NewController(t)
	tr := mocks.NewMockTransport(ctrl)
	e := &mockedEnsemble{store: memstore.New()}
	var nodes []quorum.Node
	for i := range e.rs {
		addr := fmt.Sprintf("replica-%d", i)
		e.rs[i] = mocks.NewMockLogStoreClient(ctrl)
		tr.EXPECT().Replica(addr).Return(e.rs[i], nil).AnyTimes()
		nodes = append(nodes, quorum.Node{ID: addr, Addr: addr})
	}
	e.b = quorum.New(quorum.Config{Objects: segment.NewObjectBackend(e.store, "", 4), Transport: tr, Nodes: nodes,
		CallTimeout: time.Second, SealStall: 100 * time.Millisecond})
	e.ref = segment.Ref{LogID: 7, SegmentID: 3}
	var err error
	if e.ref.Placement, err = e.b.Place(context.Background(), e.ref); err != nil {
		t.Fatal(err)
	}
	return e
}

// block returns block blockNo of the ensemble's segment, one entry per
// block, its entry number equal to the block number.
func (e *mockedEnsemble) block(t *testing.T, blockNo int64) []byte {
	t.Helper()
	return encodeBlock(t, e.ref, blockNo, blockNo)
}

func encodeBlock(t *testing.T, ref segment.Ref, blockNo, entry int64) []byte {
	t.Helper()
	b, err := segment.EncodeBlock(nil, segment.BlockHeader{LogID: ref.LogID, SegmentID: ref.SegmentID, BlockNo: blockNo,
		FirstEntry: entry, Count: 1, Epoch: 1}, [][]byte{fmt.Appendf(nil, "entry %d", entry)}, segment.CompressionNone)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Replica answers to a scripted call.
var (
	errDown      = status.Error(codes.Unavailable, "connection refused")
	errFenced    = status.Error(codes.FailedPrecondition, "segment fenced by epoch 2")
	errOverQuota = status.Error(codes.ResourceExhausted, "over the byte budget")
)

// TestWriteBlockAcknowledgesOnlyAQuorum: a block is acknowledged when 2 of
// the 3 replicas hold it, whatever the third says; with fewer it fails,
// and the failure says what the writer may conclude: a segment fenced by a
// quorum of replicas is ErrFenced, but of unknown outcome (a replica that
// holds the block may let recovery keep it); otherwise the error is
// transient (the writer retries the block), never ErrFenced.
func TestWriteBlockAcknowledgesOnlyAQuorum(t *testing.T) {
	const (
		acked = iota
		transient
		fenced
	)
	for _, tc := range []struct {
		name    string
		answers [quorum.EnsembleSize][]error // per replica, per call
		want    int
	}{
		{"all hold it", [3][]error{{nil}, {nil}, {nil}}, acked},
		{"one replica down", [3][]error{{nil}, {errDown}, {nil}}, acked},
		{"the uploader down", [3][]error{{errDown}, {nil}, {nil}}, acked},
		{"one replica fenced", [3][]error{{nil}, {errFenced}, {nil}}, acked},
		{"one over its budget, then not, one down", [3][]error{{nil}, {errOverQuota, errOverQuota, nil}, {errDown}}, acked},
		{"two replicas down", [3][]error{{errDown}, {nil}, {errDown}}, transient},
		{"one fenced, one down", [3][]error{{errFenced}, {nil}, {errDown}}, transient},
		{"all down", [3][]error{{errDown}, {errDown}, {errDown}}, transient},
		{"two fenced", [3][]error{{errFenced}, {nil}, {errFenced}}, fenced},
		{"all fenced", [3][]error{{errFenced}, {errFenced}, {errFenced}}, fenced},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newMockedEnsemble(t)
			block := e.block(t, 0)
			for i, r := range e.rs {
				calls := 0
				r.EXPECT().AddBlock(gomock.Any(), gomock.Any()).DoAndReturn(
					func(ctx context.Context, req *quorumpb.AddBlockRequest, _ ...grpc.CallOption) (*quorumpb.AddBlockResponse, error) {
						if !bytes.Equal(req.GetBlock(), block) || req.GetBlockNo() != 0 {
							t.Errorf("replica %d got block %d with other bytes", i, req.GetBlockNo())
						}
						err := tc.answers[i][min(calls, len(tc.answers[i])-1)]
						calls++
						if err != nil {
							return nil, err
						}
						return &quorumpb.AddBlockResponse{Uploaded: -1}, nil
					}).MinTimes(1)
				// A replica over its budget is sent the block again with
				// the uploader's newest watermark.
				r.EXPECT().Status(gomock.Any(), gomock.Any()).Return(&quorumpb.FenceResponse{Uploaded: -1}, nil).AnyTimes()
			}
			sink, err := e.b.CreateSink(context.Background(), e.ref, 1)
			if err != nil {
				t.Fatal(err)
			}
			err = sink.WriteBlock(context.Background(), 0, block)
			if cerr := sink.Close(); cerr != nil {
				t.Fatal(cerr)
			}
			switch tc.want {
			case acked:
				if err != nil {
					t.Fatalf("block held by a quorum failed: %v", err)
				}
			case transient:
				if err == nil {
					t.Fatal("block held by fewer than 2 replicas was acknowledged")
				}
				if errors.Is(err, walerr.ErrFenced) {
					t.Fatalf("%v: reported fenced, but no quorum of replicas is fenced", err)
				}
			case fenced:
				if !errors.Is(err, walerr.ErrFenced) || !errors.Is(err, walerr.ErrUnknownOutcome) {
					t.Fatalf("%v, want ErrFenced of unknown outcome", err)
				}
			}
		})
	}
}

// fence returns a replica's answer to a recovery fence: vouching for the
// blocks it holds (known), or holding the segment without vouching
// (unknown: restarted since the segment was created).
func fence(known bool, blocks ...int64) *quorumpb.FenceResponse {
	return &quorumpb.FenceResponse{Known: known, Blocks: blocks, Uploaded: -1}
}

// TestRecoverySealsWhatAQuorumVouchesForAndNothingElse drives Recover with
// the uploader unreachable and block 0 already in object storage. A
// recovery that hears from a fence quorum copies the blocks object
// storage lacks from a replica that holds them, and seals the segment at
// the first block found nowhere. It seals nothing, and leaves object
// storage as it was, when fewer than a fence quorum vouch for the segment
// or when the replica it reads from returns a block that does not
// validate: a later recovery can still keep every acknowledged block.
func TestRecoverySealsWhatAQuorumVouchesForAndNothingElse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fences  [2]*quorumpb.FenceResponse // replicas 1 and 2; replica 0 is down
		corrupt bool                       // the replicas return block 1 under the wrong number
		want    error                      // nil: sealed with blocks 0..2
	}{
		{name: "two replicas vouch", fences: [2]*quorumpb.FenceResponse{fence(true, 1, 2), fence(true, 1)}},
		{name: "one vouches, one lags", fences: [2]*quorumpb.FenceResponse{fence(true, 1), fence(true, 1, 2)}},
		{name: "one vouches, one restarted", fences: [2]*quorumpb.FenceResponse{fence(true, 1, 2), fence(false, 1, 2)},
			want: quorum.ErrNoQuorum},
		{name: "a replica returns a wrong block", fences: [2]*quorumpb.FenceResponse{fence(true, 1, 2), fence(true, 1, 2)},
			corrupt: true, want: walerr.ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newMockedEnsemble(t)
			ctx := context.Background()
			blocks := [][]byte{e.block(t, 0), e.block(t, 1), e.block(t, 2)}
			if err := segment.UploadBlock(ctx, e.store, "", e.ref, 0, blocks[0]); err != nil {
				t.Fatal(err)
			}
			e.rs[0].EXPECT().Fence(gomock.Any(), gomock.Any(), gomock.Any()).Return(nil, errDown)
			e.rs[0].EXPECT().Release(gomock.Any(), gomock.Any()).Return(nil, errDown).AnyTimes()
			for i, f := range tc.fences {
				r := e.rs[i+1]
				r.EXPECT().Fence(gomock.Any(), gomock.Any(), gomock.Any()).DoAndReturn(
					func(ctx context.Context, req *quorumpb.FenceRequest, _ ...grpc.CallOption) (*quorumpb.FenceResponse, error) {
						if req.GetSegment().GetEpoch() != 2 {
							t.Errorf("fenced with epoch %d, want 2", req.GetSegment().GetEpoch())
						}
						return f, nil
					})
				r.EXPECT().ReadBlock(gomock.Any(), gomock.Any(), gomock.Any()).DoAndReturn(
					func(ctx context.Context, req *quorumpb.ReadBlockRequest, _ ...grpc.CallOption) (*quorumpb.ReadBlockResponse, error) {
						n := req.GetBlockNo()
						if n < 1 || n > 2 {
							t.Errorf("read block %d, which the replicas do not hold or object storage has", n)
							return nil, status.Error(codes.NotFound, "no such block")
						}
						if tc.corrupt && n == 1 {
							return &quorumpb.ReadBlockResponse{Block: encodeBlock(t, e.ref, 2, 1)}, nil
						}
						return &quorumpb.ReadBlockResponse{Block: blocks[n]}, nil
					}).AnyTimes()
				r.EXPECT().Release(gomock.Any(), gomock.Any()).Return(&quorumpb.ReleaseResponse{}, nil).AnyTimes()
			}
			info, err := e.b.Recover(ctx, e.ref, 2)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("recover: %v, want %v", err, tc.want)
				}
				if _, serr := e.store.Stat(ctx, segment.SealKey("", e.ref.LogID, e.ref.SegmentID)); !errors.Is(serr, objstore.ErrNotFound) {
					t.Fatalf("recovery failed with %v but sealed the segment (%v)", err, serr)
				}
				if _, serr := e.store.Stat(ctx, segment.BlockKey("", e.ref.LogID, e.ref.SegmentID, 1)); !errors.Is(serr, objstore.ErrNotFound) {
					t.Fatalf("recovery failed with %v but wrote slot 1 (%v)", err, serr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if info.Blocks != 3 || info.LastEntry != 2 {
				t.Fatalf("recovered %+v, want 3 blocks through entry 2", info)
			}
			for n, want := range blocks {
				got, err := e.store.Get(ctx, segment.BlockKey("", e.ref.LogID, e.ref.SegmentID, int64(n)))
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("block %d in object storage: %v (equal: %v)", n, err, bytes.Equal(got, want))
				}
			}
			if sealed, err := e.b.ObjectBackend.Scan(ctx, e.ref); err != nil || sealed != info {
				t.Fatalf("object storage says %+v (%v), recovery said %+v", sealed, err, info)
			}
		})
	}
}
