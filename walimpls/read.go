package walimpls

import (
	"fmt"

	"github.com/cockroachdb/errors"
)

// DeliverKind says where a scanner starts.
type DeliverKind int

const (
	// DeliverKindAll starts at the first message still stored (the
	// truncation point, when the WAL was truncated).
	DeliverKindAll DeliverKind = iota
	// DeliverKindLatest starts after the last message durable when the
	// scanner opens: it sees only later appends.
	DeliverKindLatest
	// DeliverKindStartFrom starts at an id, inclusive.
	DeliverKindStartFrom
	// DeliverKindStartAfter starts after an id, exclusive.
	DeliverKindStartAfter
)

// String returns "all", "latest", "start-from" or "start-after".
func (k DeliverKind) String() string {
	switch k {
	case DeliverKindAll:
		return "all"
	case DeliverKindLatest:
		return "latest"
	case DeliverKindStartFrom:
		return "start-from"
	case DeliverKindStartAfter:
		return "start-after"
	}
	return fmt.Sprintf("DeliverKind(%d)", int(k))
}

// DeliverPolicy says where a scanner starts. The zero value delivers all
// messages. It is an immutable value.
type DeliverPolicy struct {
	kind DeliverKind
	id   MessageID
}

// DeliverAll starts at the first message still stored.
func DeliverAll() DeliverPolicy { return DeliverPolicy{kind: DeliverKindAll} }

// DeliverLatest starts after the last durable message.
func DeliverLatest() DeliverPolicy { return DeliverPolicy{kind: DeliverKindLatest} }

// DeliverStartFrom starts at id, inclusive.
func DeliverStartFrom(id MessageID) DeliverPolicy {
	return DeliverPolicy{kind: DeliverKindStartFrom, id: id}
}

// DeliverStartAfter starts after id, exclusive.
func DeliverStartAfter(id MessageID) DeliverPolicy {
	return DeliverPolicy{kind: DeliverKindStartAfter, id: id}
}

// Kind returns the policy's kind.
func (p DeliverPolicy) Kind() DeliverKind { return p.kind }

// ID returns the id of a start-from or start-after policy, nil otherwise.
func (p DeliverPolicy) ID() MessageID { return p.id }

// String describes the policy, e.g. "start-after 3/17".
func (p DeliverPolicy) String() string {
	if p.id == nil {
		return p.kind.String()
	}
	return p.kind.String() + " " + p.id.String()
}

// Validate checks that the kind is known and that start-from and
// start-after carry an id. Errors match ErrInvalidOption.
func (p DeliverPolicy) Validate() error {
	switch p.kind {
	case DeliverKindAll, DeliverKindLatest:
		return nil
	case DeliverKindStartFrom, DeliverKindStartAfter:
		if p.id == nil {
			return errors.Wrapf(ErrInvalidOption, "deliver policy %s needs a message id", p.kind)
		}
		return nil
	}
	return errors.Wrapf(ErrInvalidOption, "unknown deliver policy %d", int(p.kind))
}

// ReadOption configures a scanner.
type ReadOption struct {
	// Name of the scanner, for logs and metrics; Scanner.Name returns it.
	Name string
	// ReadAheadBufferSize is how many messages the scanner may read ahead
	// of its consumer; 0 lets the implementation choose.
	ReadAheadBufferSize int
	// DeliverPolicy says where the scanner starts.
	DeliverPolicy DeliverPolicy
}

// Validate checks the deliver policy and that the buffer size is not
// negative. Errors match ErrInvalidOption.
func (o ReadOption) Validate() error {
	if o.ReadAheadBufferSize < 0 {
		return errors.Wrapf(ErrInvalidOption, "scanner %q: read-ahead buffer size %d is negative", o.Name, o.ReadAheadBufferSize)
	}
	if err := o.DeliverPolicy.Validate(); err != nil {
		return errors.Wrapf(err, "scanner %q", o.Name)
	}
	return nil
}

// Scanner delivers a WAL's messages in log order, following its tail. Its
// methods are safe for concurrent use.
type Scanner interface {
	// Name returns the name given in ReadOption.
	Name() string
	// Chan returns the channel of messages. It is closed when the scanner
	// ends: closed by Close, by its WAL's Close, or failed.
	Chan() <-chan ImmutableMessage
	// Error blocks until the scanner has ended and returns why: nil when
	// Close ended it, an error matching ErrClosed when its WAL was closed,
	// and the failure otherwise.
	Error() error
	// Done is closed once the scanner has ended.
	Done() <-chan struct{}
	// Close ends the scanner, waits for it to release its resources, and
	// returns what Error returns. It is idempotent.
	Close() error
}
