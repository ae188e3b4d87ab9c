package quorum

import "github.com/woodpecker-wal/woodpecker/segment"

var (
	_ segment.PrefetchCursor = (*cursor)(nil)
	_ segment.BufferCursor   = (*cursor)(nil)
)

// SetPrefetch implements segment.PrefetchCursor: it forwards to the object
// cursor, which reads sealed segments ahead from object storage.
func (c *cursor) SetPrefetch(blocks int) {
	if p, ok := c.inner.(segment.PrefetchCursor); ok {
		p.SetPrefetch(blocks)
	}
}

// SetMaxBuffer implements segment.BufferCursor: it forwards to the cursor
// of object storage.
func (c *cursor) SetMaxBuffer(bytes int64) {
	if b, ok := c.inner.(segment.BufferCursor); ok {
		b.SetMaxBuffer(bytes)
	}
}
