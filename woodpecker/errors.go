package woodpecker

import "github.com/woodpecker-wal/woodpecker/internal/walerr"

// Errors returned by the client, testable with errors.Is. Each is wrapped
// with what failed and where.
var (
	// ErrFenced: a newer writer (higher epoch, or a newer writer of the
	// same epoch) owns the log. Nothing this writer writes afterwards becomes
	// visible. Reopen with the current epoch to continue writing.
	ErrFenced = walerr.ErrFenced
	// ErrLogNotFound: no log has this name (or it was deleted).
	ErrLogNotFound = walerr.ErrLogNotFound
	// ErrLogExists: CreateLog found the name taken.
	ErrLogExists = walerr.ErrLogExists
	// ErrEntryTooLarge: the entry exceeds writer.maxEntryBytes.
	ErrEntryTooLarge = walerr.ErrEntryTooLarge
	// ErrEmptyEntry: entries must hold at least one byte.
	ErrEmptyEntry = walerr.ErrEmptyEntry
	// ErrTruncated: the position lies below the first entry still stored.
	ErrTruncated = walerr.ErrTruncated
	// ErrCorrupt: stored data failed validation; the message names the log,
	// segment and block.
	ErrCorrupt = walerr.ErrCorrupt
	// ErrUnknownOutcome: the append may or may not be durable. Readers will
	// see it exactly if it is. Appends failing with any other error are
	// definitely not in the log.
	ErrUnknownOutcome = walerr.ErrUnknownOutcome
	// ErrClosed: the writer, reader or client is closed.
	ErrClosed = walerr.ErrClosed
	// ErrInvalidID: a malformed entry id.
	ErrInvalidID = walerr.ErrInvalidID
	// ErrBeyondEnd: Truncate was given an id beyond the log's last durable
	// entry; nothing changed. Truncate at an id an append or a reader
	// returned.
	ErrBeyondEnd = walerr.ErrBeyondEnd
	// ErrInvalidName: a malformed log name.
	ErrInvalidName = walerr.ErrInvalidName
	// ErrWeakFencing: the object store ignores create-only writes, so it
	// cannot fence a zombie writer, and storage.fencing.conditionalWrite is
	// "required".
	ErrWeakFencing = walerr.ErrWeakFencing
	// ErrInvalidEpoch: OpenWriter was given an epoch below 0 or above
	// MaxEpoch; nothing changed.
	ErrInvalidEpoch = walerr.ErrInvalidEpoch
)

// MaxEpoch is the highest epoch OpenWriter accepts (2^62-1); the epochs
// above it are reserved. A writer of the same epoch as the log's takes it
// over, so a log at MaxEpoch stays writable at MaxEpoch.
const MaxEpoch = walerr.MaxEpoch
