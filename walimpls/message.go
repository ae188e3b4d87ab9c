package walimpls

import (
	"maps"
	"slices"
	"sync"

	"github.com/cockroachdb/errors"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"

	"github.com/woodpecker-wal/woodpecker/internal/walerr"
)

// Message is what Append writes: opaque payload bytes and string
// properties. The WAL does not interpret either. Append does not keep the
// message; the caller must not modify it until Append returns.
type Message struct {
	Payload    []byte
	Properties map[string]string
}

// ImmutableMessage is a message read from a WAL, with the id it was stored
// at. Its payload and properties belong to the receiver.
type ImmutableMessage struct {
	ID         MessageID
	Payload    []byte
	Properties map[string]string
}

// MessageID names a message's position in one WAL. Ids of one WAL are
// totally ordered in log order. Implementations are immutable values, safe
// for concurrent use.
//
// Comparing ids of two different implementations is a programming error:
// LT, LTE and EQ then return false rather than panic.
type MessageID interface {
	// WALName returns the name of the implementation the id belongs to.
	WALName() WALName
	// LT reports whether the id sorts before other.
	LT(other MessageID) bool
	// LTE reports whether the id sorts before or equals other.
	LTE(other MessageID) bool
	// EQ reports whether the ids are equal.
	EQ(other MessageID) bool
	// Marshal returns the id's stable string form, which the unmarshaler
	// registered under WALName reads back.
	Marshal() string
	// String returns a form for humans.
	String() string
}

// MessageIDUnmarshaler parses the form MessageID.Marshal returns. It must
// reject malformed input with an error matching ErrInvalidMessageID and
// must not panic.
type MessageIDUnmarshaler func(data string) (MessageID, error)

var unmarshalers struct {
	mu sync.RWMutex
	m  map[WALName]MessageIDUnmarshaler
}

// RegisterMessageIDUnmarshaler registers how to parse the ids of the WAL
// named name. It is meant to be called from an init function: registering a
// name twice, or a nil function, is a programming error and panics. Safe for
// concurrent use.
func RegisterMessageIDUnmarshaler(name WALName, fn MessageIDUnmarshaler) {
	if fn == nil {
		panic("walimpls: nil message id unmarshaler for " + name.String())
	}
	unmarshalers.mu.Lock()
	defer unmarshalers.mu.Unlock()
	if unmarshalers.m == nil {
		unmarshalers.m = make(map[WALName]MessageIDUnmarshaler)
	}
	if _, dup := unmarshalers.m[name]; dup {
		panic("walimpls: message id unmarshaler registered twice for " + name.String())
	}
	unmarshalers.m[name] = fn
}

// RegisteredWALNames returns the names that have an unmarshaler, sorted.
func RegisteredWALNames() []WALName {
	unmarshalers.mu.RLock()
	defer unmarshalers.mu.RUnlock()
	names := slices.Collect(maps.Keys(unmarshalers.m))
	slices.Sort(names)
	return names
}

// UnmarshalMessageID parses data, the Marshal form of an id of the WAL
// named name. An unregistered name or malformed data gives an error
// matching ErrInvalidMessageID.
func UnmarshalMessageID(name WALName, data string) (MessageID, error) {
	unmarshalers.mu.RLock()
	fn := unmarshalers.m[name]
	unmarshalers.mu.RUnlock()
	if fn == nil {
		return nil, errors.Wrapf(ErrInvalidMessageID,
			"no message id unmarshaler is registered for WAL %s (registered: %v); import its implementation", name, RegisteredWALNames())
	}
	id, err := fn(data)
	if err != nil {
		if !errors.Is(err, ErrInvalidMessageID) {
			err = walerr.Mark(err, ErrInvalidMessageID)
		}
		return nil, err
	}
	if id == nil {
		return nil, errors.Wrapf(ErrInvalidMessageID, "the %s unmarshaler returned no id for %q", name, data)
	}
	return id, nil
}

// IntoProto returns id as the milvus-proto message id (WAL name and
// marshalled form), the form positions are stored in. A nil id gives nil.
func IntoProto(id MessageID) *commonpb.MessageID {
	if id == nil {
		return nil
	}
	return &commonpb.MessageID{Id: id.Marshal(), WALName: id.WALName()}
}

// FromProto parses a milvus-proto message id through the registered
// unmarshalers. nil or malformed input gives an error matching
// ErrInvalidMessageID.
func FromProto(pb *commonpb.MessageID) (MessageID, error) {
	if pb == nil {
		return nil, errors.Wrap(ErrInvalidMessageID, "message id is nil")
	}
	return UnmarshalMessageID(pb.GetWALName(), pb.GetId())
}
