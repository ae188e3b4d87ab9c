package options

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/woodpecker-wal/woodpecker/segment"
)

// TestOversizedEntriesAreAConfigurationError: writer.maxEntryBytes above
// what one block can hold (a 512MiB entry, say, which used to fail only at
// append time with "block entries exceed 268435456 bytes" and leave an empty
// open segment) is refused by validation, naming the key and the limit.
func TestOversizedEntriesAreAConfigurationError(t *testing.T) {
	c := Default()
	c.Writer.MaxEntryBytes = 512 * MiB
	c.Writer.MemoryBudgetBytes = GiB
	c.Reader.MaxBufferBytes = GiB
	err := c.Validate()
	requireProblems(t, err, "writer.maxEntryBytes")
	if !strings.Contains(err.Error(), "writer.maxEntryBytes: 512MiB is above the largest entry a block can hold, 268435452 bytes") {
		t.Errorf("message %q", err)
	}
}

// TestBlockLimitIsTheFormats keeps the limit validation checks equal to
// the block format's.
func TestBlockLimitIsTheFormats(t *testing.T) {
	if MaxBlockEntriesBytes != segment.MaxBlockRawLen {
		t.Fatalf("MaxBlockEntriesBytes %d, segment.MaxBlockRawLen %d", MaxBlockEntriesBytes, segment.MaxBlockRawLen)
	}
	// The largest entry validation accepts, with its stored length, fills a
	// block exactly.
	var buf [binary.MaxVarintLen64]byte
	if n := binary.PutUvarint(buf[:], uint64(MaxEntryBytesLimit)); MaxEntryBytesLimit+int64(n) != segment.MaxBlockRawLen {
		t.Fatalf("an entry of %d bytes and its %d-byte length take %d bytes, not the block limit %d",
			MaxEntryBytesLimit, n, MaxEntryBytesLimit+int64(n), segment.MaxBlockRawLen)
	}
}
