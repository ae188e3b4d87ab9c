package quorum

import "github.com/woodpecker-wal/woodpecker/segment"

var _ segment.PrefetchCursor = (*cursor)(nil)

// SetPrefetch implements segment.PrefetchCursor: it forwards to the object
// cursor, which reads sealed segments ahead from object storage.
func (c *cursor) SetPrefetch(blocks int) {
	if p, ok := c.inner.(segment.PrefetchCursor); ok {
		p.SetPrefetch(blocks)
	}
}
