package segment

// PrefetchCursor is implemented by cursors that can read the blocks of a
// sealed segment ahead, in parallel. How far to read ahead is the reader's
// setting (reader.prefetchBlocks), not the backend's.
type PrefetchCursor interface {
	Cursor
	// SetPrefetch lets the cursor keep up to blocks block reads in flight
	// once it knows the segment's block count (SetLimit). Below 2 it reads
	// one block at a time, which is also what it does unless told. Call it
	// before the first Next.
	SetPrefetch(blocks int)
}

// BufferCursor is implemented by prefetching cursors that bound the bytes
// of blocks they hold ahead of the reader (reader.maxBufferBytes).
type BufferCursor interface {
	// SetMaxBuffer bounds the bytes of blocks read ahead and not yet
	// returned, those being read included; one block (or one read) is
	// always allowed, so a block larger than the bound is still read.
	// 0: no bound but the prefetch's. Call it before the first Next.
	SetMaxBuffer(bytes int64)
}

// SetPrefetch implements PrefetchCursor.
func (c *objectCursor) SetPrefetch(blocks int) { c.prefetch = blocks }

// SetMaxBuffer implements BufferCursor. The size of a block being read is
// not known before it arrives: the largest block the cursor has read
// stands for it.
func (c *objectCursor) SetMaxBuffer(bytes int64) { c.maxBuffer = bytes }
