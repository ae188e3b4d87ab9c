package adaptor

import (
	"encoding/base64"
	"strings"

	"github.com/cockroachdb/errors"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/woodpecker-wal/woodpecker/walimpls"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

func init() {
	walimpls.RegisterMessageIDUnmarshaler(walimpls.WALNameWoodpecker, func(s string) (walimpls.MessageID, error) {
		return UnmarshalMessageID(s)
	})
}

// MessageID is the id of a message in a Woodpecker-backed WAL: the engine's
// entry id. It is a comparable value, safe for concurrent use.
//
// Its Marshal form is the one Milvus's own Woodpecker backend stores:
// standard base64 of a protobuf message with the segment id in field 1 and
// the entry id in field 2 (varints; zero fields omitted, so the first
// entry of segment 0 marshals to ""). Positions written by either backend
// parse in the other.
type MessageID struct {
	id woodpecker.EntryID
}

var _ walimpls.MessageID = MessageID{}

// NewMessageID returns the id of entry id.
func NewMessageID(id woodpecker.EntryID) MessageID { return MessageID{id: id} }

// EntryID returns the engine's entry id.
func (m MessageID) EntryID() woodpecker.EntryID { return m.id }

// WALName returns walimpls.WALNameWoodpecker.
func (MessageID) WALName() walimpls.WALName { return walimpls.WALNameWoodpecker }

// asEntryID returns the entry id of a Woodpecker MessageID (value or
// pointer), and false for any other id.
func asEntryID(other walimpls.MessageID) (woodpecker.EntryID, bool) {
	o, ok := walimpls.AsMessageID[MessageID](other)
	return o.id, ok
}

// LT reports whether m sorts before other; false when other is not a
// Woodpecker id.
func (m MessageID) LT(other walimpls.MessageID) bool {
	o, ok := asEntryID(other)
	return ok && m.id.Compare(o) < 0
}

// LTE reports whether m sorts before or equals other; false when other is
// not a Woodpecker id.
func (m MessageID) LTE(other walimpls.MessageID) bool {
	o, ok := asEntryID(other)
	return ok && m.id.Compare(o) <= 0
}

// EQ reports whether the ids are equal; false when other is not a
// Woodpecker id.
func (m MessageID) EQ(other walimpls.MessageID) bool {
	o, ok := asEntryID(other)
	return ok && m.id == o
}

// Marshal returns the base64 protobuf form described on MessageID.
func (m MessageID) Marshal() string {
	return base64.StdEncoding.EncodeToString(marshalEntryID(m.id))
}

// String returns "segment/entry".
func (m MessageID) String() string { return m.id.String() }

// Protobuf field numbers of the stored id.
const (
	fieldSegment protowire.Number = 1
	fieldEntry   protowire.Number = 2
)

func marshalEntryID(id woodpecker.EntryID) []byte {
	var b []byte
	if id.Segment != 0 {
		b = protowire.AppendTag(b, fieldSegment, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(id.Segment))
	}
	if id.Entry != 0 {
		b = protowire.AppendTag(b, fieldEntry, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(id.Entry))
	}
	return b
}

// UnmarshalMessageID parses the Marshal form. It accepts what a protobuf
// decoder of Milvus's id message accepts from Milvus's writer (fields in
// any order, explicit zeros), and rejects, with an error matching
// walimpls.ErrInvalidMessageID: anything that is not standard padded
// base64 (line breaks included), truncated or overlong varints, other field
// numbers or wire types, repeated fields, and negative values.
func UnmarshalMessageID(s string) (MessageID, error) {
	if strings.ContainsAny(s, "\r\n") {
		return MessageID{}, errors.Wrapf(walimpls.ErrInvalidMessageID, "woodpecker message id %q contains a line break", s)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return MessageID{}, errors.Wrapf(walimpls.ErrInvalidMessageID, "woodpecker message id %q is not base64: %v", s, err)
	}
	var id woodpecker.EntryID
	var seen [3]bool
	for rest := b; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 {
			return MessageID{}, errors.Wrapf(walimpls.ErrInvalidMessageID, "woodpecker message id %q: bad field tag: %v", s, protowire.ParseError(n))
		}
		rest = rest[n:]
		if (num != fieldSegment && num != fieldEntry) || typ != protowire.VarintType {
			return MessageID{}, errors.Wrapf(walimpls.ErrInvalidMessageID,
				"woodpecker message id %q: unexpected field %d of wire type %d (want varint fields 1 and 2)", s, num, typ)
		}
		if seen[num] {
			return MessageID{}, errors.Wrapf(walimpls.ErrInvalidMessageID, "woodpecker message id %q: field %d repeated", s, num)
		}
		seen[num] = true
		v, n := protowire.ConsumeVarint(rest)
		if n < 0 {
			return MessageID{}, errors.Wrapf(walimpls.ErrInvalidMessageID, "woodpecker message id %q: field %d: %v", s, num, protowire.ParseError(n))
		}
		rest = rest[n:]
		if num == fieldSegment {
			id.Segment = int64(v)
		} else {
			id.Entry = int64(v)
		}
	}
	if !id.Valid() {
		return MessageID{}, errors.Wrapf(walimpls.ErrInvalidMessageID, "woodpecker message id %q is negative (%s)", s, id)
	}
	return MessageID{id: id}, nil
}
