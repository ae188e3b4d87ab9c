package segment

import "context"

// BlockWatcher is implemented by backends that can tell a tail reader when
// more of an open segment may have become readable, so that it waits for
// that instead of polling storage on a timer (QuorumBuffer: a stream from
// each replica of the segment's ensemble). Shared objects need none: their
// commits are etcd writes, which the reader watches itself.
type BlockWatcher interface {
	// WatchBlocks watches the open segment ref until stop is called or
	// ctx ends, and sends on wake, without blocking (a full channel
	// already says "look again"), whenever a block may have become
	// readable: a cursor's Next that returned ErrNoBlockYet may now return
	// a block. Wakes may be spurious (the cursor decides); they are sent
	// at least when a block became readable and the backend could tell.
	// When it cannot (its replicas do not support watching, or are down),
	// wake stays silent, so callers keep a fallback timer. stop is
	// idempotent and returns once every goroutine of the watch has ended.
	WatchBlocks(ctx context.Context, ref Ref, wake chan<- struct{}) (stop func())
}
