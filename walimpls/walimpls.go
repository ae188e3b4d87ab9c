// Package walimpls is the streaming interface through which a database
// reaches a write-ahead log: one WAL per channel, opened at a term, appended
// to, read from any position, and truncated. It has the shape of Milvus's
// streaming walimpls interface without depending on Milvus, so the same
// contract can be met by Woodpecker (package adaptor), by Kafka or Pulsar
// backends, and checked by one conformance suite (package
// walimpls/conformance).
//
// Lifetimes nest: an OpenerBuilder lives for the whole program and builds
// Openers; an Opener owns the connections to the backend and opens WALs; a
// WAL owns its writer and opens Scanners. Closing an outer object closes
// what it opened.
//
// The contract, beyond the method signatures:
//
//   - A channel is opened read-write at a term. Opening it read-write at a
//     term fences every handle opened read-write at a lower term, and any
//     earlier handle of the same term: their Appends fail with an error
//     matching ErrFenced, and nothing they append afterwards becomes visible.
//     Opening it read-write at a lower term than one already opened fails
//     with an error matching ErrFenced.
//   - A channel opened read-only can be read but not written: Append and
//     Truncate panic, as in Milvus, because calling them is a programming
//     error.
//   - Append returns once the message is durable. Messages appended
//     concurrently are ordered by their ids; ids increase along the log.
//   - Truncate(id) declares the messages before id no longer needed. The
//     message at id and everything after it stay readable.
//   - Message ids marshal to strings that UnmarshalMessageID turns back into
//     equal ids, in any process, through the unmarshaler registered under the
//     WAL's name.
package walimpls

import (
	"context"
	"fmt"

	"github.com/cockroachdb/errors"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
)

// Errors of the contract, testable with errors.Is.
var (
	// ErrFenced: the WAL handle was fenced by a read-write open at a higher
	// term (or a later open at the same term), or the open itself asked for
	// a term lower than one already opened. A fenced handle never recovers:
	// close it and open the channel again at the current term.
	ErrFenced = errors.New("wal fenced by a newer term")
	// ErrInvalidOption: an OpenOption or ReadOption is malformed (empty
	// channel name, negative term, unknown access mode, deliver policy
	// without an id).
	ErrInvalidOption = errors.New("invalid wal option")
	// ErrInvalidMessageID: a message id could not be parsed, or belongs to
	// another WAL implementation than the one it was given to.
	ErrInvalidMessageID = errors.New("invalid message id")
	// ErrClosed: the WAL or opener was closed. A scanner whose WAL was
	// closed under it ends with this error.
	ErrClosed = errors.New("wal closed")
)

// WALName names a WAL implementation. It is the WAL name enum of
// milvus-proto, so ids and positions carry the same name Milvus stores.
type WALName = commonpb.WALName

// WAL names of the implementations this project knows.
const (
	// WALNameWoodpecker is the name of the Woodpecker implementation.
	WALNameWoodpecker WALName = commonpb.WALName_WoodPecker
	// WALNameTest is reserved for test implementations.
	WALNameTest WALName = commonpb.WALName_Test
)

// AccessMode says whether a channel is opened for reading only or for
// reading and writing.
type AccessMode int

const (
	// AccessModeRW opens the channel for reading and writing; it fences
	// lower terms. It is the zero value, as in Milvus.
	AccessModeRW AccessMode = iota
	// AccessModeRO opens the channel for reading only; it fences nobody.
	AccessModeRO
)

// String returns "rw" or "ro".
func (m AccessMode) String() string {
	switch m {
	case AccessModeRW:
		return "rw"
	case AccessModeRO:
		return "ro"
	}
	return fmt.Sprintf("AccessMode(%d)", int(m))
}

// Channel names the channel a WAL serves and how it is held.
type Channel struct {
	// Name of the channel; each name is one log.
	Name string
	// Term of the holder, >= 0. Read-write opens at a higher term fence
	// lower ones.
	Term int64
	// AccessMode says whether the WAL may be written.
	AccessMode AccessMode
}

// String returns "name@term(mode)".
func (c Channel) String() string { return fmt.Sprintf("%s@%d(%s)", c.Name, c.Term, c.AccessMode) }

// OpenOption says which channel to open and how.
type OpenOption struct {
	Channel Channel
}

// Validate checks the option: a non-empty channel name, a non-negative term
// and a known access mode. Errors match ErrInvalidOption.
func (o OpenOption) Validate() error {
	switch {
	case o.Channel.Name == "":
		return errors.Wrap(ErrInvalidOption, "channel name is empty")
	case o.Channel.Term < 0:
		return errors.Wrapf(ErrInvalidOption, "channel %q: term %d is negative", o.Channel.Name, o.Channel.Term)
	case o.Channel.AccessMode != AccessModeRW && o.Channel.AccessMode != AccessModeRO:
		return errors.Wrapf(ErrInvalidOption, "channel %q: unknown access mode %d", o.Channel.Name, int(o.Channel.AccessMode))
	}
	return nil
}

// OpenerBuilder builds Openers of one implementation. It lives for the
// whole program and is safe for concurrent use.
type OpenerBuilder interface {
	// Name returns the implementation's WAL name.
	Name() WALName
	// Build connects to the backend and returns an Opener the caller owns
	// and must Close.
	Build() (Opener, error)
}

// Opener opens WALs. It owns the connections to the backend. It is safe for
// concurrent use.
type Opener interface {
	// Open opens the channel opt names. A read-write open fences lower
	// terms (see the package documentation); a read-only open returns a WAL
	// whose Append and Truncate panic. ctx bounds the open only. Options
	// failing OpenOption.Validate give an error matching ErrInvalidOption;
	// after Close, Open fails with an error matching ErrClosed.
	Open(ctx context.Context, opt OpenOption) (WAL, error)
	// Close closes the WALs still open and releases the backend's
	// resources. It is idempotent.
	Close()
}

// ROWAL is a WAL that can be read. It is safe for concurrent use.
type ROWAL interface {
	// WALName returns the implementation's name.
	WALName() WALName
	// Channel returns the channel the WAL was opened for, as given to Open.
	Channel() Channel
	// Read opens a scanner at the position opts.DeliverPolicy names. ctx
	// bounds the open only: the scanner lives until it is closed, or its
	// WAL is. An id in the policy that does not belong to this
	// implementation gives an error matching ErrInvalidMessageID, options
	// failing ReadOption.Validate one matching ErrInvalidOption, and a
	// closed WAL one matching ErrClosed.
	Read(ctx context.Context, opts ReadOption) (Scanner, error)
	// Close closes the scanners still open (they end with ErrClosed) and,
	// for a read-write WAL, waits for pending appends and releases the
	// writer. It is idempotent.
	Close()
}

// WAL is a WAL that can be read and, when opened read-write, written.
type WAL interface {
	ROWAL
	// Append writes msg and returns its id once it is durable. Appends may
	// be called concurrently; their ids order them. An error matching
	// ErrFenced means the handle lost its term: close it and reopen. After
	// Close, Append fails with an error matching ErrClosed. Append panics
	// when the WAL was opened read-only.
	Append(ctx context.Context, msg Message) (MessageID, error)
	// Truncate declares the messages before id no longer needed; id and
	// later messages stay readable. Scanners opened afterwards with
	// DeliverAll may start at id. Truncate panics when the WAL was opened
	// read-only; an id of another implementation gives an error matching
	// ErrInvalidMessageID.
	Truncate(ctx context.Context, id MessageID) error
}
