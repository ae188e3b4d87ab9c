package logstore

import (
	"context"
	"fmt"
	"sync"

	"github.com/cockroachdb/errors"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/woodpecker-wal/woodpecker/quorum/quorumpb"
)

// ErrorDomain is the domain of the google.rpc.ErrorInfo detail the server
// attaches to its refusals.
const ErrorDomain = "logstore.woodpecker"

// Reasons of refusals, the Reason of the ErrorInfo detail of the status.
// Read them with Reason.
const (
	// ReasonFenced (FAILED_PRECONDITION): the segment was fenced (or
	// released, or object storage holds a fence in its next slot); it
	// takes no more blocks.
	ReasonFenced = "fenced"
	// ReasonSegmentLost (DATA_LOSS): the replica registered after the
	// segment was created and holds nothing of it. A restart may have cost
	// it the segment's blocks and fence, so it takes no part in the
	// segment: a writer counts it as a replica that is down.
	ReasonSegmentLost = "segment_lost"
	// ReasonInvalid (INVALID_ARGUMENT): the request or its block failed
	// validation; nothing was stored.
	ReasonInvalid = "invalid"
	// ReasonBudget (RESOURCE_EXHAUSTED): the replica's byte budget is
	// full. Retry with backoff: the budget frees up as uploads complete.
	ReasonBudget = "budget"
)

// Reason returns the reason (one of the Reason constants) of an error
// returned by a LogStore call, or "" when it carries none.
func Reason(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return ""
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == ErrorDomain {
			return info.GetReason()
		}
	}
	return ""
}

// refuse returns the status error for a refusal: code, reason and message.
func (s *Server) refuse(c codes.Code, reason, format string, args ...any) error {
	st := status.New(c, fmt.Sprintf(format, args...))
	if reason != "" {
		info := &errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain,
			Metadata: map[string]string{"node": s.cfg.NodeID}}
		if d, err := st.WithDetails(info); err == nil {
			st = d
		}
	}
	if reason != "" {
		s.m.rejected.WithLabelValues(reason).Inc()
	}
	return st.Err()
}

// ctxStatus turns the end of a call's context into its status.
func ctxStatus(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Canceled, err.Error())
}

// segmentRequest is what every request of the LogStore service has.
type segmentRequest interface {
	proto.Message
	GetSegment() *quorumpb.Segment
}

// lenientCodec is the proto codec, except that a LogStore request that
// does not parse is not refused by gRPC itself (which answers INTERNAL)
// but handed to the handler empty and recorded in bad, so that the
// handler answers INVALID_ARGUMENT as the protocol says. Messages of other
// services (health, reflection) are decoded as usual.
type lenientCodec struct {
	encoding.CodecV2
	bad *sync.Map // segmentRequest -> error
}

func (c lenientCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.CodecV2.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	m, ok := v.(segmentRequest)
	if !ok {
		return err
	}
	proto.Reset(m)
	c.bad.Store(m, err)
	return nil
}

// malformed returns the refusal of req when it did not parse (see
// lenientCodec), or nil.
func (s *Server) malformed(req segmentRequest) error {
	if v, ok := s.bad.LoadAndDelete(req); ok {
		return s.refuse(codes.InvalidArgument, ReasonInvalid, "malformed request: %v", v)
	}
	return nil
}
