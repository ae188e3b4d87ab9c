package milvus

import (
	"context"
	"sync"
	"testing"

	"github.com/cockroachdb/errors"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus/pkg/v2/streaming/util/message"
	"github.com/milvus-io/milvus/pkg/v2/streaming/util/options"
	"github.com/milvus-io/milvus/pkg/v2/streaming/util/types"
	mwal "github.com/milvus-io/milvus/pkg/v2/streaming/walimpls"

	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/walimpls"
	"github.com/woodpecker-wal/woodpecker/walimpls/conformance"
)

// TestConformanceThroughMilvus runs this project's conformance suite, 1000
// messages per term (100 with shared objects), against the builder registered in Milvus's registry
// (configured from Milvus's parameters), seen through Milvus's interfaces:
// every message, id, deliver policy and error crosses the Milvus-facing
// layer twice.
func TestConformanceThroughMilvus(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			setParams(t, b.params(t))
			conformance.Run(t, coreBuilder{b.builder(t)},
				conformance.WithStrictTruncate(), conformance.WithMessagesPerTerm(b.perTerm()))
		})
	}
}

// coreBuilder presents a Milvus builder as a walimpls.OpenerBuilder. Its
// ids are Milvus ids; so that the suite's marshal checks go through
// Milvus's unmarshaler (this package's UnmarshalMessageID), the wrapper
// calls itself walimpls.WALNameTest and registers that under the name.
type coreBuilder struct{ b mwal.OpenerBuilderImpls }

func init() {
	walimpls.RegisterMessageIDUnmarshaler(walimpls.WALNameTest, func(s string) (walimpls.MessageID, error) {
		m, err := message.UnmarshalMessageID(&commonpb.MessageID{WALName: commonpb.WALName_WoodPecker, Id: s})
		if err != nil {
			return nil, fromMilvusError(err)
		}
		return coreID{m}, nil
	})
}

// wrappedName returns the name the wrappers report for a Milvus WAL name:
// walimpls.WALNameTest for Woodpecker, Unknown (which fails the suite's
// checks) for anything else.
func wrappedName(n message.WALName) walimpls.WALName {
	if n == message.WALNameWoodpecker {
		return walimpls.WALNameTest
	}
	return commonpb.WALName_Unknown
}

func (c coreBuilder) Name() walimpls.WALName { return wrappedName(c.b.Name()) }

func (c coreBuilder) Build() (walimpls.Opener, error) {
	o, err := c.b.Build()
	if err != nil {
		return nil, err
	}
	return coreOpener{o}, nil
}

// fromMilvusError keeps only what the Milvus-facing layer says: the Milvus
// sentinels become ours, and the sentinels Milvus has no equivalent of
// (ErrClosed, ErrInvalidOption) pass through. A sentinel counts only when
// both errors.Is functions see it (isBoth), so the suite's checks cover
// the standard library's errors.Is on Milvus's sentinels too.
func fromMilvusError(err error) error {
	if err == nil {
		return nil
	}
	out := errors.New(err.Error())
	if isBoth(err, mwal.ErrFenced) {
		out = walerr.Mark(out, walimpls.ErrFenced)
	}
	if isBoth(err, message.ErrInvalidMessageID) {
		out = walerr.Mark(out, walimpls.ErrInvalidMessageID)
	}
	for _, passed := range []error{walimpls.ErrClosed, walimpls.ErrInvalidOption} {
		if isBoth(err, passed) {
			out = walerr.Mark(out, passed)
		}
	}
	return out
}

var toMilvusMode = map[walimpls.AccessMode]types.AccessMode{
	walimpls.AccessModeRW: types.AccessModeRW,
	walimpls.AccessModeRO: types.AccessModeRO,
}

type coreOpener struct{ o mwal.OpenerImpls }

func (c coreOpener) Open(ctx context.Context, opt walimpls.OpenOption) (walimpls.WAL, error) {
	mode, ok := toMilvusMode[opt.Channel.AccessMode]
	if !ok {
		mode = types.AccessMode(99)
	}
	ch := types.PChannelInfo{Name: opt.Channel.Name, Term: opt.Channel.Term, AccessMode: mode}
	w, err := c.o.Open(ctx, &mwal.OpenOption{Channel: ch})
	if err != nil {
		return nil, fromMilvusError(err)
	}
	return coreWAL{w: w, ch: opt.Channel}, nil
}

func (c coreOpener) Close() { c.o.Close() }

// coreID presents a Milvus id as ours.
type coreID struct{ m message.MessageID }

// toMilvusID converts ids the suite holds: ours, and the suite's foreign
// id.
func toMilvusID(id walimpls.MessageID) message.MessageID {
	if i, ok := id.(coreID); ok {
		return i.m
	}
	return foreignMilvusID{}
}

func (c coreID) WALName() walimpls.WALName { return wrappedName(c.m.WALName()) }
func (c coreID) LT(o walimpls.MessageID) bool {
	_, foreign := toMilvusID(o).(foreignMilvusID)
	return !foreign && c.m.LT(toMilvusID(o))
}
func (c coreID) LTE(o walimpls.MessageID) bool {
	_, foreign := toMilvusID(o).(foreignMilvusID)
	return !foreign && c.m.LTE(toMilvusID(o))
}
func (c coreID) EQ(o walimpls.MessageID) bool {
	_, foreign := toMilvusID(o).(foreignMilvusID)
	return !foreign && c.m.EQ(toMilvusID(o))
}
func (c coreID) Marshal() string { return c.m.Marshal() }
func (c coreID) String() string  { return c.m.String() }

// foreignMilvusID is a Milvus id of another WAL.
type foreignMilvusID struct{}

func (foreignMilvusID) WALName() message.WALName   { return message.WALNameTest }
func (foreignMilvusID) LT(message.MessageID) bool  { return false }
func (foreignMilvusID) LTE(message.MessageID) bool { return false }
func (foreignMilvusID) EQ(message.MessageID) bool  { return false }
func (foreignMilvusID) Marshal() string            { return "foreign" }
func (foreignMilvusID) String() string             { return "foreign" }
func (f foreignMilvusID) IntoProto() *commonpb.MessageID {
	return &commonpb.MessageID{Id: f.Marshal(), WALName: commonpb.WALName_Test}
}

type coreWAL struct {
	w  mwal.WALImpls
	ch walimpls.Channel
}

func (c coreWAL) WALName() walimpls.WALName { return wrappedName(c.w.WALName()) }

func (c coreWAL) Channel() walimpls.Channel {
	got := c.w.Channel()
	if got.Name != c.ch.Name || got.Term != c.ch.Term || got.AccessMode != toMilvusMode[c.ch.AccessMode] {
		return walimpls.Channel{Name: "mismatch: " + got.String()}
	}
	return c.ch
}

func (c coreWAL) Append(ctx context.Context, msg walimpls.Message) (walimpls.MessageID, error) {
	id, err := c.w.Append(ctx, message.NewMutableMessageBeforeAppend(msg.Payload, msg.Properties))
	if err != nil {
		return nil, fromMilvusError(err)
	}
	return coreID{id}, nil
}

func (c coreWAL) Truncate(ctx context.Context, id walimpls.MessageID) error {
	return fromMilvusError(c.w.Truncate(ctx, toMilvusID(id)))
}

func (c coreWAL) Read(ctx context.Context, opt walimpls.ReadOption) (walimpls.Scanner, error) {
	if err := opt.Validate(); err != nil {
		return nil, err // Milvus's options cannot express these
	}
	var p options.DeliverPolicy
	switch opt.DeliverPolicy.Kind() {
	case walimpls.DeliverKindAll:
		p = options.DeliverPolicyAll()
	case walimpls.DeliverKindLatest:
		p = options.DeliverPolicyLatest()
	case walimpls.DeliverKindStartFrom:
		p = options.DeliverPolicyStartFrom(toMilvusID(opt.DeliverPolicy.ID()))
	case walimpls.DeliverKindStartAfter:
		p = options.DeliverPolicyStartAfter(toMilvusID(opt.DeliverPolicy.ID()))
	}
	s, err := c.w.Read(ctx, mwal.ReadOption{Name: opt.Name, ReadAheadBufferSize: opt.ReadAheadBufferSize, DeliverPolicy: p})
	if err != nil {
		return nil, fromMilvusError(err)
	}
	cs := &coreScanner{s: s, ch: make(chan walimpls.ImmutableMessage), done: make(chan struct{}), stop: make(chan struct{})}
	go cs.forward()
	return cs, nil
}

func (c coreWAL) Close() { c.w.Close() }

type coreScanner struct {
	s    mwal.ScannerImpls
	ch   chan walimpls.ImmutableMessage
	done chan struct{}
	stop chan struct{}
	once sync.Once
}

func (c *coreScanner) forward() {
	defer close(c.done)
	defer close(c.ch)
	for m := range c.s.Chan() {
		msg := walimpls.ImmutableMessage{ID: coreID{m.MessageID()}, Payload: m.Payload(), Properties: m.Properties().ToRawMap()}
		select {
		case c.ch <- msg:
		case <-c.stop:
			return
		}
	}
}

func (c *coreScanner) Name() string                           { return c.s.Name() }
func (c *coreScanner) Chan() <-chan walimpls.ImmutableMessage { return c.ch }
func (c *coreScanner) Done() <-chan struct{}                  { return c.done }

func (c *coreScanner) Error() error {
	<-c.done
	return fromMilvusError(c.s.Error())
}

func (c *coreScanner) Close() error {
	c.once.Do(func() { close(c.stop) })
	err := c.s.Close()
	<-c.done
	return fromMilvusError(err)
}
