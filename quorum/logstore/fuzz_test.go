package logstore

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/quorum/quorumpb"
)

// FuzzAddBlockNeverPanicsAndStoresOnlyValidBlocks feeds arbitrary wire
// bytes to AddBlock through the server's codec: the answer is success
// (for a valid block of the segment the request names) or
// INVALID_ARGUMENT, and whatever is stored is a valid block.
func FuzzAddBlockNeverPanicsAndStoresOnlyValidBlocks(f *testing.F) {
	valid, err := proto.Marshal(&quorumpb.AddBlockRequest{Segment: testSegment(), BlockNo: 0,
		Block: blockOf(f, testLog, testSeg, testEpoch, 0, "entry"), Lac: -1, Uploaded: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, wire []byte) {
		s, err := New(Config{Store: memstore.New(), BudgetBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		codec := lenientCodec{CodecV2: encoding.GetCodecV2("proto"), bad: &s.bad}
		req := new(quorumpb.AddBlockRequest)
		if err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire)}, req); err != nil {
			t.Fatalf("the lenient codec failed: %v", err)
		}
		_, err = s.AddBlock(context.Background(), req)
		switch c := status.Code(err); c {
		case codes.OK:
			if err := validateBlock(req.GetBlock(), segKey{req.GetSegment().GetLogId(), req.GetSegment().GetSegmentId()},
				req.GetSegment().GetEpoch(), req.GetBlockNo()); err != nil {
				t.Fatalf("stored an invalid block: %v", err)
			}
		case codes.InvalidArgument:
			if st := s.Stats(); st.Blocks != 0 {
				t.Fatalf("a refused add stored %+v", st)
			}
		default:
			t.Fatalf("AddBlock answered %v", err)
		}
	})
}
