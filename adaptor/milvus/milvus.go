// Package milvus plugs Woodpecker into Milvus: it implements Milvus's
// streaming WAL interfaces (github.com/milvus-io/milvus/pkg/v2/streaming/walimpls)
// on top of this project's engine, through package adaptor.
//
// Importing the package registers, under Milvus's WAL name "woodpecker"
// (commonpb.WALName_WoodPecker):
//   - a builder (Milvus's walimpls/registry) that takes its configuration from
//     Milvus's parameters (see ConfigFromParams), and
//   - the message id unmarshaler (Milvus's message package).
//
// Milvus's own Woodpecker backend (walimpls/impls/wp) registers the same
// name, so a Milvus build links one or the other; see the README of this
// project for the swap.
//
// Message ids marshal exactly as Milvus's own Woodpecker backend marshals
// them (see adaptor.MessageID), so positions Milvus already stored parse.
// Errors meaning "fenced" are marked with Milvus's walimpls.ErrFenced and
// malformed ids with message.ErrInvalidMessageID, so Milvus's errors.Is
// checks work.
package milvus

import (
	"context"
	"sync"

	"github.com/cockroachdb/errors"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus/pkg/v2/proto/streamingpb"
	"github.com/milvus-io/milvus/pkg/v2/streaming/util/message"
	"github.com/milvus-io/milvus/pkg/v2/streaming/util/types"
	mwal "github.com/milvus-io/milvus/pkg/v2/streaming/walimpls"
	"github.com/milvus-io/milvus/pkg/v2/streaming/walimpls/registry"

	"github.com/woodpecker-wal/woodpecker/adaptor"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/walimpls"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

func init() {
	registry.RegisterBuilder(NewParamsBuilder())
	message.RegisterMessageIDUnmsarshaler(message.WALNameWoodpecker, UnmarshalMessageID)
}

// MessageID is a Milvus message id of a Woodpecker WAL. It is a comparable
// value, safe for concurrent use.
type MessageID struct {
	id adaptor.MessageID
}

var _ message.MessageID = MessageID{}

// NewMessageID returns the Milvus id of entry id.
func NewMessageID(id woodpecker.EntryID) MessageID { return MessageID{id: adaptor.NewMessageID(id)} }

// EntryID returns the engine's entry id.
func (m MessageID) EntryID() woodpecker.EntryID { return m.id.EntryID() }

// WALName returns message.WALNameWoodpecker.
func (MessageID) WALName() message.WALName { return message.WALNameWoodpecker }

// asCore returns the adaptor id of a Milvus Woodpecker id (value or
// pointer), and false for any other id.
func asCore(other message.MessageID) (adaptor.MessageID, bool) {
	o, ok := walimpls.AsMessageID[MessageID](other)
	return o.id, ok
}

// LT reports whether m sorts before other; false for ids of other WALs.
func (m MessageID) LT(other message.MessageID) bool {
	o, ok := asCore(other)
	return ok && m.id.LT(o)
}

// LTE reports whether m sorts before or equals other; false for ids of
// other WALs.
func (m MessageID) LTE(other message.MessageID) bool {
	o, ok := asCore(other)
	return ok && m.id.LTE(o)
}

// EQ reports whether the ids are equal; false for ids of other WALs.
func (m MessageID) EQ(other message.MessageID) bool {
	o, ok := asCore(other)
	return ok && m.id.EQ(o)
}

// Marshal returns the form Milvus's own Woodpecker backend stores: base64
// of the protobuf message {1: segment, 2: entry}.
func (m MessageID) Marshal() string { return m.id.Marshal() }

// IntoProto returns the id as Milvus stores positions.
func (m MessageID) IntoProto() *commonpb.MessageID {
	return &commonpb.MessageID{Id: m.Marshal(), WALName: commonpb.WALName_WoodPecker}
}

// String returns "segment/entry".
func (m MessageID) String() string { return m.id.String() }

// UnmarshalMessageID parses Marshal's form (and every id Milvus's own
// Woodpecker backend wrote). Malformed input gives an error matching both
// message.ErrInvalidMessageID and walimpls.ErrInvalidMessageID.
func UnmarshalMessageID(data string) (message.MessageID, error) {
	id, err := adaptor.UnmarshalMessageID(data)
	if err != nil {
		return nil, walerr.Mark(err, message.ErrInvalidMessageID)
	}
	return MessageID{id: id}, nil
}

// mapError marks errors with the Milvus sentinels Milvus tests for.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, walimpls.ErrFenced) {
		err = walerr.Mark(err, mwal.ErrFenced)
	}
	if errors.Is(err, walimpls.ErrInvalidMessageID) {
		err = walerr.Mark(err, message.ErrInvalidMessageID)
	}
	return err
}

// Builder implements Milvus's OpenerBuilderImpls. It is safe for
// concurrent use.
type Builder struct {
	// core returns the builder to use and what to release when the opener
	// closes.
	core func() (walimpls.OpenerBuilder, func(), error)
}

var _ mwal.OpenerBuilderImpls = (*Builder)(nil)

// NewBuilder returns a builder on core, for tests and for programs that
// configure Woodpecker themselves (adaptor.NewBuilder, adaptor.FromYAML).
// core must be a Woodpecker builder.
func NewBuilder(core *adaptor.Builder) *Builder {
	return &Builder{core: func() (walimpls.OpenerBuilder, func(), error) { return core, func() {}, nil }}
}

// Name returns message.WALNameWoodpecker.
func (b *Builder) Name() message.WALName { return message.WALNameWoodpecker }

// Build connects to etcd and the storage and returns an opener.
func (b *Builder) Build() (mwal.OpenerImpls, error) {
	core, release, err := b.core()
	if err != nil {
		return nil, err
	}
	o, err := core.Build()
	if err != nil {
		release()
		return nil, err
	}
	return &opener{o: o, release: release}, nil
}

type opener struct {
	o       walimpls.Opener
	release func()
	once    sync.Once
}

var _ mwal.OpenerImpls = (*opener)(nil)

// accessModes maps Milvus's access modes to ours.
var accessModes = map[types.AccessMode]walimpls.AccessMode{
	types.AccessModeRW: walimpls.AccessModeRW,
	types.AccessModeRO: walimpls.AccessModeRO,
}

func (o *opener) Open(ctx context.Context, opt *mwal.OpenOption) (mwal.WALImpls, error) {
	if opt == nil {
		return nil, errors.Wrap(walimpls.ErrInvalidOption, "open woodpecker wal: nil option")
	}
	if err := opt.Validate(); err != nil {
		return nil, walerr.Mark(err, walimpls.ErrInvalidOption)
	}
	ch := walimpls.Channel{Name: opt.Channel.Name, Term: opt.Channel.Term, AccessMode: accessModes[opt.Channel.AccessMode]}
	w, err := o.o.Open(ctx, walimpls.OpenOption{Channel: ch})
	if err != nil {
		return nil, mapError(err)
	}
	return &wal{w: w, ch: opt.Channel}, nil
}

func (o *opener) Close() {
	o.once.Do(func() {
		o.o.Close()
		o.release()
	})
}

type wal struct {
	w  walimpls.WAL
	ch types.PChannelInfo
}

var _ mwal.WALImpls = (*wal)(nil)

func (w *wal) WALName() message.WALName { return message.WALNameWoodpecker }

func (w *wal) Channel() types.PChannelInfo { return w.ch }

func (w *wal) Append(ctx context.Context, msg message.MutableMessage) (message.MessageID, error) {
	if w.ch.AccessMode != types.AccessModeRW {
		panic("woodpecker wal: Append on a read-only wal " + w.ch.String())
	}
	pb := msg.IntoMessageProto()
	id, err := w.w.Append(ctx, walimpls.Message{Payload: pb.GetPayload(), Properties: pb.GetProperties()})
	if err != nil {
		return nil, mapError(err)
	}
	return MessageID{id: id.(adaptor.MessageID)}, nil
}

func (w *wal) Truncate(ctx context.Context, id message.MessageID) error {
	if w.ch.AccessMode != types.AccessModeRW {
		panic("woodpecker wal: Truncate on a read-only wal " + w.ch.String())
	}
	core, ok := asCore(id)
	if !ok {
		return mapError(errors.Wrapf(walimpls.ErrInvalidMessageID, "truncate woodpecker wal %s at %v: not a woodpecker message id", w.ch, id))
	}
	return mapError(w.w.Truncate(ctx, core))
}

// fromProto parses a position of a deliver policy.
func fromProto(pb *commonpb.MessageID) (adaptor.MessageID, error) {
	if name := pb.GetWALName(); name != commonpb.WALName_WoodPecker && name != commonpb.WALName_Unknown {
		return adaptor.MessageID{}, errors.Wrapf(walimpls.ErrInvalidMessageID, "message id %q belongs to WAL %s, not woodpecker", pb.GetId(), name)
	}
	return adaptor.UnmarshalMessageID(pb.GetId())
}

func (w *wal) Read(ctx context.Context, opt mwal.ReadOption) (mwal.ScannerImpls, error) {
	// As Milvus's own Woodpecker backend: no policy means the latest.
	policy := walimpls.DeliverLatest()
	switch p := opt.DeliverPolicy.GetPolicy().(type) {
	case *streamingpb.DeliverPolicy_All:
		policy = walimpls.DeliverAll()
	case *streamingpb.DeliverPolicy_StartFrom:
		id, err := fromProto(p.StartFrom)
		if err != nil {
			return nil, mapError(errors.Wrapf(err, "scanner %q", opt.Name))
		}
		policy = walimpls.DeliverStartFrom(id)
	case *streamingpb.DeliverPolicy_StartAfter:
		id, err := fromProto(p.StartAfter)
		if err != nil {
			return nil, mapError(errors.Wrapf(err, "scanner %q", opt.Name))
		}
		policy = walimpls.DeliverStartAfter(id)
	}
	s, err := w.w.Read(ctx, walimpls.ReadOption{Name: opt.Name, ReadAheadBufferSize: opt.ReadAheadBufferSize, DeliverPolicy: policy})
	if err != nil {
		return nil, mapError(err)
	}
	sc := &scanner{s: s, ch: make(chan message.ImmutableMessage), done: make(chan struct{}), stop: make(chan struct{})}
	go sc.forward()
	return sc, nil
}

func (w *wal) Close() { w.w.Close() }

// scanner converts the messages of an adaptor scanner.
type scanner struct {
	s    walimpls.Scanner
	ch   chan message.ImmutableMessage
	done chan struct{} // closed after ch
	stop chan struct{}
	once sync.Once
}

var _ mwal.ScannerImpls = (*scanner)(nil)

func (s *scanner) forward() {
	defer close(s.done)
	defer close(s.ch)
	for m := range s.s.Chan() {
		msg := message.NewImmutableMesasge(MessageID{id: m.ID.(adaptor.MessageID)}, m.Payload, m.Properties)
		select {
		case s.ch <- msg:
		case <-s.stop:
			return
		}
	}
}

func (s *scanner) Name() string                          { return s.s.Name() }
func (s *scanner) Chan() <-chan message.ImmutableMessage { return s.ch }
func (s *scanner) Done() <-chan struct{}                 { return s.done }

func (s *scanner) Error() error {
	<-s.done
	return mapError(s.s.Error())
}

func (s *scanner) Close() error {
	s.once.Do(func() { close(s.stop) })
	err := s.s.Close()
	<-s.done
	return mapError(err)
}
