package quorumpb

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

func addBlock(size int) *AddBlockRequest {
	block := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
	return &AddBlockRequest{Segment: &Segment{LogId: 1, SegmentId: 2, Epoch: 3}, BlockNo: 4, Block: block,
		Lac: 5, Uploaded: -1, Uploader: true, CreatedRevision: 7}
}

// manyRuns returns n runs of one block each, every other block.
func manyRuns(n int) []int64 {
	out := make([]int64, 0, 2*n)
	for i := range int64(n) {
		out = append(out, 2*i, 2*i)
	}
	return out
}

// split cuts b into buffers of at most n bytes, as the transport hands
// over a message received in frames.
func split(b []byte, n int) mem.BufferSlice {
	var out mem.BufferSlice
	for len(b) > 0 {
		k := min(n, len(b))
		out = append(out, mem.SliceBuffer(bytes.Clone(b[:k])))
		b = b[k:]
	}
	return out
}

// TestCodecRoundTripsLikeProto: what Codec marshals, proto reads as the
// same message, and what proto marshals, Codec reads as the same message,
// for small and block-sized messages of every type with a block, and for
// a message without one.
func TestCodecRoundTripsLikeProto(t *testing.T) {
	msgs := []proto.Message{
		addBlock(10), addBlock(bulkMin - 1), addBlock(bulkMin), addBlock(1 << 20),
		&ReadBlockResponse{Block: addBlock(100 << 10).Block}, &ReadBlockResponse{},
		&FenceResponse{Known: true, Blocks: []int64{1, 2, 3}, Lac: 2, Uploaded: 1},
		&AddBlockRequest{},
		&WatchRequest{Segment: &Segment{LogId: 1, SegmentId: 2}, CreatedRevision: 9}, &WatchEvent{},
		&WatchEvent{Held: []int64{0, 4, 6, 9}, Lac: 3, Uploaded: -1, Fenced: true, Known: true},
		&WatchEvent{Held: manyRuns(3000), Lac: 1}, // a stream message beyond bulkMin
	}
	for _, m := range msgs {
		out, err := Codec{}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		wire := out.Materialize()
		out.Free()
		got := m.ProtoReflect().New().Interface()
		if err := proto.Unmarshal(wire, got); err != nil || !proto.Equal(got, m) {
			t.Fatalf("%T: proto reads Codec's bytes as %v (%v)", m, got, err)
		}

		std, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, frame := range []int{16 << 10, 1 << 30} {
			got := m.ProtoReflect().New().Interface()
			if err := (Codec{}).Unmarshal(split(std, frame), got); err != nil || !proto.Equal(got, m) {
				t.Fatalf("%T in frames of %d: Codec reads proto's bytes as %v (%v)", m, frame, got, err)
			}
		}
	}
}

// TestCodecBlockSharesNoCallerMemory: a received block does not share the
// buffers it came in (the transport reuses them), and a sent one is not
// copied but not changed either.
func TestCodecBlockSharesNoCallerMemory(t *testing.T) {
	m := addBlock(64 << 10)
	std, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	in := mem.BufferSlice{mem.SliceBuffer(std)} // one buffer: materializing it would not copy
	got := new(AddBlockRequest)
	if err := (Codec{}).Unmarshal(in, got); err != nil {
		t.Fatal(err)
	}
	clear(std)
	if !bytes.Equal(got.GetBlock(), m.GetBlock()) {
		t.Fatal("the received block changed with the buffer it came in")
	}
	if cap(got.GetBlock()) != len(got.GetBlock()) {
		t.Errorf("the received block has room to grow into other memory: len %d cap %d", len(got.GetBlock()), cap(got.GetBlock()))
	}
	before := bytes.Clone(m.Block)
	out, err := Codec{}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	out.Free()
	if !bytes.Equal(m.Block, before) {
		t.Fatal("marshaling changed the block")
	}
}

// FuzzCodecUnmarshalMatchesProto: for any bytes, the block-sharing
// decoder gives what proto.Unmarshal gives: the same message, or an error
// for both.
func FuzzCodecUnmarshalMatchesProto(f *testing.F) {
	for _, m := range []proto.Message{addBlock(3), addBlock(100), &ReadBlockResponse{Block: []byte("xyz")}} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(append(b, b...), false) // repeated fields: the last block wins, segments merge
		f.Add(b[:len(b)/2], false)
	}
	f.Add([]byte{0xff, 0xff, 0xff}, true)
	f.Add([]byte{0x1a, 0x05, 'a'}, false) // a block longer than the message
	f.Add([]byte{0x18, 0x01}, false)      // field 3 as a varint
	f.Fuzz(func(t *testing.T, wire []byte, read bool) {
		var want, got proto.Message = new(AddBlockRequest), new(AddBlockRequest)
		if read {
			want, got = new(ReadBlockResponse), new(ReadBlockResponse)
		}
		fd := bulkField(got)
		werr := proto.Unmarshal(wire, want)
		gerr := unmarshalBulk(bytes.Clone(wire), got, fd)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("proto: %v; codec: %v", werr, gerr)
		}
		if werr == nil && !proto.Equal(want, got) {
			t.Fatalf("proto read %v, codec %v", want, got)
		}
	})
}

func TestTieredPool(t *testing.T) {
	for _, n := range []int{1, 1000, 1024, 1025, 64 << 10, (64 << 10) + 1, 5 << 20} {
		b := pool.Get(n)
		if len(*b) != n || cap(*b)&(cap(*b)-1) != 0 || cap(*b) >= 2*n && n > 1 {
			t.Fatalf("Get(%d): len %d cap %d", n, len(*b), cap(*b))
		}
		pool.Put(b)
	}
	odd := make([]byte, 10, 12)
	pool.Put(&odd) // not a pool buffer: ignored
}
