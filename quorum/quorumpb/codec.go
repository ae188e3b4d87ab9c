package quorumpb

// Not generated: the gRPC codec the LogStore's client and server use.

import (
	"math/bits"
	"sync"

	"github.com/cockroachdb/errors"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Codec is the proto codec (same name, same wire format) with the copies
// and the memory of block-sized messages cut down. gRPC's own codec gets
// its buffers from a pool whose tiers jump from 32 KiB to 1 MiB and that
// zeroes a whole buffer on every use, so every message between 32 KiB and
// 1 MiB costs clearing 1 MiB, and copies a block twice on the way in.
// Codec instead
//
//   - marshals the block of an AddBlockRequest or ReadBlockResponse by
//     reference: the message is sent from the caller's bytes (which it
//     must not change until the call returns, as gRPC requires anyway);
//   - unmarshals such a message into one buffer of its own, which its
//     block then shares instead of being copied out of it;
//   - gets every other buffer from a pool with one tier per power of two,
//     not zeroed (a buffer is always written before it is read).
//
// Use it on both ends: grpc.ForceCodecV2(Codec{}) as a default call
// option and grpc.ForceServerCodecV2 (the server wraps it). Other
// services on the connection (health, reflection) go through the generic
// path, which is the proto codec's with the pool above.
type Codec struct{}

var _ encoding.CodecV2 = Codec{}

// bulkMin is the size from which a block is sent by reference and
// received in a buffer of its own; below it the copies cost less than the
// bookkeeping.
const bulkMin = 16 << 10

// bulkField returns the field of m that holds a block, or nil.
func bulkField(m proto.Message) protoreflect.FieldDescriptor {
	switch m.(type) {
	case *AddBlockRequest, *ReadBlockResponse:
		return m.ProtoReflect().Descriptor().Fields().ByName("block")
	}
	return nil
}

func message(v any) (proto.Message, error) {
	switch m := v.(type) {
	case protoadapt.MessageV2:
		return m, nil
	case protoadapt.MessageV1:
		return protoadapt.MessageV2Of(m), nil
	}
	return nil, errors.Newf("quorumpb codec: %T is not a proto message", v)
}

// Name implements encoding.CodecV2: the proto codec's name, so that the
// content type on the wire is unchanged.
func (Codec) Name() string { return "proto" }

// Marshal implements encoding.CodecV2.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	m, err := message(v)
	if err != nil {
		return nil, err
	}
	if fd := bulkField(m); fd != nil {
		r := m.ProtoReflect()
		if block := r.Get(fd).Bytes(); len(block) >= bulkMin {
			// The other fields, then the block by reference. Field order
			// does not matter to a proto parser.
			rest := r.New()
			r.Range(func(f protoreflect.FieldDescriptor, v protoreflect.Value) bool {
				if f != fd {
					rest.Set(f, v)
				}
				return true
			})
			rest.SetUnknown(r.GetUnknown())
			out, err := marshalPooled(rest.Interface())
			if err != nil {
				return nil, err
			}
			tag := protowire.AppendTag(make([]byte, 0, 16), fd.Number(), protowire.BytesType)
			tag = protowire.AppendVarint(tag, uint64(len(block)))
			return append(out, mem.SliceBuffer(tag), mem.SliceBuffer(block)), nil
		}
	}
	return marshalPooled(m)
}

// marshalPooled marshals m into a buffer of the pool.
func marshalPooled(m proto.Message) (mem.BufferSlice, error) {
	size := proto.Size(m)
	if size == 0 {
		return nil, nil
	}
	// UseCachedSize reuses the size just computed (m is not changed
	// concurrently, as gRPC requires).
	opts := proto.MarshalOptions{UseCachedSize: true}
	if mem.IsBelowBufferPoolingThreshold(size) {
		b, err := opts.Marshal(m)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	buf := pool.Get(size)
	b, err := opts.MarshalAppend((*buf)[:0], m)
	if err != nil {
		pool.Put(buf)
		return nil, err
	}
	*buf = b
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

// Unmarshal implements encoding.CodecV2.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, err := message(v)
	if err != nil {
		return err
	}
	fd := bulkField(m)
	if fd == nil || data.Len() < bulkMin {
		buf := data.MaterializeToBuffer(pool)
		defer buf.Free()
		return proto.Unmarshal(buf.ReadOnlyData(), m)
	}
	// One copy into memory of the message's own (data's buffers go back
	// to gRPC's pool); the block then stays where it is.
	return unmarshalBulk(data.Materialize(), m, fd)
}

// unmarshalBulk unmarshals b into m, with the (last) bytes field fd
// sharing b instead of copied out of it. b must not be used elsewhere. It
// gives what proto.Unmarshal gives, errors included.
func unmarshalBulk(b []byte, m proto.Message, fd protoreflect.FieldDescriptor) error {
	var rest, bulk []byte
	found := false
	for i := 0; i < len(b); {
		num, typ, n := protowire.ConsumeTag(b[i:])
		if n < 0 {
			return proto.Unmarshal(b, m) // malformed: proto says how
		}
		vn := protowire.ConsumeFieldValue(num, typ, b[i+n:])
		if vn < 0 {
			return proto.Unmarshal(b, m)
		}
		if num == fd.Number() && typ == protowire.BytesType {
			bulk, _ = protowire.ConsumeBytes(b[i+n : i+n+vn])
			found = true
		} else {
			rest = append(rest, b[i:i+n+vn]...)
		}
		i += n + vn
	}
	if err := proto.Unmarshal(rest, m); err != nil {
		return err
	}
	if found {
		// Capacity cut to the block: appending to it cannot reach what
		// follows it in b.
		m.ProtoReflect().Set(fd, protoreflect.ValueOfBytes(bulk[:len(bulk):len(bulk)]))
	}
	return nil
}

// pool is the codec's buffer pool: one sync.Pool per power of two, from
// 1 KiB; buffers are not zeroed.
var pool = &tieredPool{}

type tieredPool struct {
	tiers [48]sync.Pool // tier i holds buffers of capacity 1<<i
}

func (p *tieredPool) Get(n int) *[]byte {
	t := bits.Len(uint(max(n, 1) - 1))
	if t < len(p.tiers) {
		if b, ok := p.tiers[t].Get().(*[]byte); ok {
			*b = (*b)[:n]
			return b
		}
	}
	b := make([]byte, n, 1<<t)
	return &b
}

func (p *tieredPool) Put(b *[]byte) {
	c := cap(*b)
	if c == 0 || c&(c-1) != 0 {
		return // not one of ours
	}
	if t := bits.Len(uint(c - 1)); t < len(p.tiers) {
		p.tiers[t].Put(b)
	}
}
