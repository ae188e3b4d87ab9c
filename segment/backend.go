package segment

import (
	"context"

	"github.com/cockroachdb/errors"
)

// Ref names one segment of one log.
type Ref struct {
	LogID     int64
	SegmentID int64
	// Placement is what the backend's Placer chose for the segment when
	// it was created, as the segment's metadata records it; empty for
	// backends that place nothing (object storage, local files).
	Placement string
	// Owner is the token ("<epoch>:<nonce>") of the writer that writes the
	// segment, set in the Refs a writer gives CreateSink; backends whose
	// fencing is a metadata commit compare it (shared objects).
	Owner string
}

// Placer is implemented by backends that choose where a segment lives
// before it is created (QuorumBuffer: its ensemble of LogStores). The
// writer records the placement with the segment in the same metadata
// transaction that creates it, and passes it back in every Ref.
type Placer interface {
	Place(ctx context.Context, ref Ref) (placement string, err error)
}

// SealInfo is what sealing a segment established.
type SealInfo struct {
	// LastEntry is the segment's last entry id, -1 when it holds none.
	LastEntry int64
	// Blocks is the number of blocks in the segment; a reader reads blocks
	// 0..Blocks-1 and nothing after.
	Blocks int64
	// Bytes is the stored size of those blocks.
	Bytes int64
}

// Backend stores segments: as objects in an object store, or as files in a
// local directory. Implementations are safe for concurrent use.
type Backend interface {
	// Parallel is how many blocks may be written at once. 1 means blocks
	// are written one at a time, in order.
	Parallel() int
	// CreateSink prepares to write the blocks of a new segment.
	CreateSink(ctx context.Context, ref Ref, epoch int64) (Sink, error)
	// Recover seals a segment whose writer is gone or must be stopped: it
	// fences the segment in storage so no later write of the old writer can
	// become visible, finds the last durable block by reading only the
	// segment's tail, and writes the seal record. It is idempotent: a
	// segment already sealed in storage returns its existing seal.
	Recover(ctx context.Context, ref Ref, epoch int64) (SealInfo, error)
	// Scan reports what the segment holds now, without fencing or sealing
	// it: the blocks a reader would find and the last entry among them.
	Scan(ctx context.Context, ref Ref) (SealInfo, error)
	// OpenCursor reads the segment's blocks in order from block 0.
	OpenCursor(ref Ref) Cursor
	// Describe names the backend and its location for messages.
	Describe() string
}

// Sink receives one segment's blocks.
type Sink interface {
	// WriteBlock stores block number blockNo durably, or fails. It returns
	// an error marked ErrFenced when a newer writer fenced the segment; when
	// the block may nevertheless have become part of the log, the error is
	// also marked walerr.ErrUnknownOutcome. Transient failures are returned
	// as they are; the caller retries the same block.
	WriteBlock(ctx context.Context, blockNo int64, block []byte) error
	// WriteSeal stores the seal record after the last block. The segment is
	// sealed in storage once it returns.
	WriteSeal(ctx context.Context, info SealInfo, record []byte) error
	// Close releases the sink's resources. It does not seal.
	Close() error
}

// Degrader is implemented by sinks whose segment lost some of its
// durability while being written (QuorumBuffer: a replica missed a block
// or restarted). The writer then cuts no more blocks into the segment and
// rolls to a new one, which the backend places afresh; the degraded
// segment is sealed as usual.
type Degrader interface {
	Degraded() bool
}

// LatestScanner is implemented by backends whose Scan of an open segment
// can end before an acknowledged entry (QuorumBuffer, when a replica is
// silent: Scan ends at what a quorum is known to hold, which is what
// readers may read). ScanLatest ends at or after every entry acknowledged
// before it was called, and may end after entries that were never
// acknowledged and that recovery may drop: it places a reader at Latest,
// and must not bound what readers read.
type LatestScanner interface {
	ScanLatest(ctx context.Context, ref Ref) (SealInfo, error)
}

// PatientSealer is implemented by sinks whose WriteSeal bounds its own
// time by its progress (QuorumBuffer: the seal waits for the replicas'
// uploads, which may lag the acknowledgements by far more than one retry
// timeout, and gives up once no block reached object storage for that
// long). The writer gives such a seal its own context, which Close's
// context ends, instead of an attempt bounded by the retry timeout.
type PatientSealer interface {
	Sink
	// SealsPatiently reports whether WriteSeal bounds itself.
	SealsPatiently() bool
}

// Cursor walks a segment's blocks in order.
type Cursor interface {
	// Next returns the next block, whole and validated. It returns
	// ErrNoBlockYet when the next block has not been written (yet), and
	// ErrEndOfSegment when storage shows that the segment ends before it
	// (a fence or a seal). The returned slice belongs to the caller.
	Next(ctx context.Context) (BlockHeader, [][]byte, error)
	// SetLimit tells the cursor that the segment is sealed with exactly
	// blocks blocks; reads past them end the segment, and the cursor may
	// read ahead.
	SetLimit(blocks int64)
	// Skip moves the cursor to block blockNo without reading the blocks
	// before it, where the backend can do so cheaply.
	Skip(blockNo int64)
	// Close releases the cursor's resources.
	Close() error
}

// GenerationCursor is implemented by cursors of backends whose sealed
// segments compaction can rewrite (see compact.go). A cursor reads
// generation 0 (the writer's blocks) unless told otherwise; when an object
// of the generation it reads is gone, it moves to the newest generation by
// itself, at the block it was about to read.
type GenerationCursor interface {
	Cursor
	// UseGeneration makes the cursor read the sealed segment's layout of
	// generation gen. Call it after SetLimit and before the first Next.
	UseGeneration(gen int64)
}

// ErrObjectMissing marks a cursor error for an object of a sealed segment
// that is not in storage, with no newer layout to read instead: garbage
// collection deleted the segment, or data was lost. Such errors also wrap
// walerr.ErrCorrupt; callers that know the log's garbage-collection floor
// tell the two apart.
var ErrObjectMissing = errors.New("object of a sealed segment is missing")

// BlockLocator is implemented by backends that can find the block holding
// an entry of a sealed segment without reading the blocks before it.
type BlockLocator interface {
	LocateBlock(ctx context.Context, ref Ref, blocks, entry int64) (int64, error)
}

// Cursor outcomes that are not failures.
var (
	// ErrNoBlockYet: the next block does not exist at this moment; a
	// writer may still write it.
	ErrNoBlockYet = errors.New("no block yet")
	// ErrEndOfSegment: the segment has no more blocks.
	ErrEndOfSegment = errors.New("end of segment")
)
