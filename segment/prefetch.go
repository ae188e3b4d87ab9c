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

// SetPrefetch implements PrefetchCursor.
func (c *objectCursor) SetPrefetch(blocks int) { c.prefetch = blocks }
