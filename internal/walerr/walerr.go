// Package walerr holds the sentinel errors shared by the engine's layers
// (metadata, segments, client). Package woodpecker re-exports them; callers
// outside the module use those names.
package walerr

import "github.com/cockroachdb/errors"

var (
	// ErrFenced: a writer of a newer epoch (or a newer writer of the same
	// epoch) took the log over. Nothing this writer writes after the fence
	// becomes visible. Open a new writer with the current epoch to continue.
	ErrFenced = errors.New("writer fenced by a newer writer")
	// ErrLogNotFound: no log has this name.
	ErrLogNotFound = errors.New("log not found")
	// ErrLogExists: a log with this name already exists.
	ErrLogExists = errors.New("log already exists")
	// ErrEntryTooLarge: the entry exceeds writer.maxEntryBytes.
	ErrEntryTooLarge = errors.New("entry too large")
	// ErrEmptyEntry: entries must hold at least one byte.
	ErrEmptyEntry = errors.New("empty entry")
	// ErrTruncated: the requested position lies below the log's first
	// available entry.
	ErrTruncated = errors.New("position truncated")
	// ErrCorrupt: stored data failed validation (CRC, format).
	ErrCorrupt = errors.New("corrupt data")
	// ErrUnknownOutcome: the append may or may not have become durable;
	// a reader will see it exactly when it did. Check by reading.
	ErrUnknownOutcome = errors.New("append outcome unknown")
	// ErrClosed: the writer, reader or client was closed.
	ErrClosed = errors.New("closed")
	// ErrInvalidID: a malformed entry id.
	ErrInvalidID = errors.New("invalid entry id")
	// ErrBeyondEnd: the position lies beyond the log's last durable
	// entry, so acting on it (truncating there) would cut entries that do
	// not exist yet. Use an id an append or a reader returned.
	ErrBeyondEnd = errors.New("position beyond the log's last durable entry")
	// ErrInvalidName: a malformed log name.
	ErrInvalidName = errors.New("invalid log name")
	// ErrWeakFencing: the object store ignores create-only writes and the
	// configuration did not accept etcd-only fencing.
	ErrWeakFencing = errors.New("object store cannot fence writers")
	// ErrInvalidEpoch: a writer epoch outside 0..MaxEpoch.
	ErrInvalidEpoch = errors.New("invalid writer epoch")
)

// MaxEpoch is the highest writer epoch, 2^62-1. Epochs above it are
// reserved: a caller deriving its epoch from a counter (a term plus one)
// can never overflow into a negative one, and a later version can give
// them a meaning without a format change.
const MaxEpoch = int64(1)<<62 - 1
