package woodpecker

import (
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/walerr"
)

// EntryID names one entry of a log: the segment that holds it and its
// position in that segment. Ids order entries in log order: by segment,
// then by entry. Valid ids are non-negative in both parts.
type EntryID struct {
	Segment int64
	Entry   int64
}

// EntryIDSize is the length of an EntryID's binary form.
const EntryIDSize = 16

// Compare returns -1, 0 or +1 as id sorts before, with or after other.
func (id EntryID) Compare(other EntryID) int {
	switch {
	case id.Segment != other.Segment:
		if id.Segment < other.Segment {
			return -1
		}
		return 1
	case id.Entry < other.Entry:
		return -1
	case id.Entry > other.Entry:
		return 1
	}
	return 0
}

// Less reports whether id sorts before other.
func (id EntryID) Less(other EntryID) bool { return id.Compare(other) < 0 }

// String returns "segment/entry", the form ParseEntryID reads.
func (id EntryID) String() string {
	return strconv.FormatInt(id.Segment, 10) + "/" + strconv.FormatInt(id.Entry, 10)
}

// Valid reports whether both parts are non-negative.
func (id EntryID) Valid() bool { return id.Segment >= 0 && id.Entry >= 0 }

// MarshalBinary returns the 16-byte big-endian form, whose bytewise order is
// log order for valid ids.
func (id EntryID) MarshalBinary() ([]byte, error) {
	if !id.Valid() {
		return nil, errors.Wrapf(walerr.ErrInvalidID, "entry id %s has a negative part", id)
	}
	b := make([]byte, EntryIDSize)
	binary.BigEndian.PutUint64(b[:8], uint64(id.Segment))
	binary.BigEndian.PutUint64(b[8:], uint64(id.Entry))
	return b, nil
}

// UnmarshalBinary parses the form MarshalBinary writes; anything else is
// ErrInvalidID.
func (id *EntryID) UnmarshalBinary(b []byte) error {
	if len(b) != EntryIDSize {
		return errors.Wrapf(walerr.ErrInvalidID, "binary entry id is %d bytes, want %d", len(b), EntryIDSize)
	}
	v := EntryID{Segment: int64(binary.BigEndian.Uint64(b[:8])), Entry: int64(binary.BigEndian.Uint64(b[8:]))}
	if !v.Valid() {
		return errors.Wrapf(walerr.ErrInvalidID, "binary entry id %x has a negative part", b)
	}
	*id = v
	return nil
}

// ParseEntryID reads the "segment/entry" form. Signs, spaces, empty parts,
// extra slashes and values beyond int64 are ErrInvalidID.
func ParseEntryID(s string) (EntryID, error) {
	segPart, entPart, ok := strings.Cut(s, "/")
	if !ok {
		return EntryID{}, errors.Wrapf(walerr.ErrInvalidID, "entry id %q: want segment/entry", s)
	}
	seg, err := parseNonNegative(segPart)
	if err != nil {
		return EntryID{}, errors.Wrapf(walerr.ErrInvalidID, "entry id %q: segment: %v", s, err)
	}
	ent, err := parseNonNegative(entPart)
	if err != nil {
		return EntryID{}, errors.Wrapf(walerr.ErrInvalidID, "entry id %q: entry: %v", s, err)
	}
	return EntryID{Segment: seg, Entry: ent}, nil
}

func parseNonNegative(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("empty")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, errors.Newf("%q is not a decimal number", s)
		}
	}
	return strconv.ParseInt(s, 10, 64)
}
