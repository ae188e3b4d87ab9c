package objstore

import (
	"math"

	"github.com/cockroachdb/errors"
)

// RangeEnd checks a GetRange request against an object of size bytes and
// returns the exclusive end of the bytes to return: [offset, end). It
// returns an error wrapping ErrInvalidRange when offset or length is
// negative or offset > size. offset == size is valid and selects nothing,
// so a reader that has consumed a whole object can ask for "more" without
// an error. Backends use it so they all agree on these edge cases.
func RangeEnd(size, offset, length int64) (int64, error) {
	if offset < 0 || length < 0 {
		return 0, errors.Wrapf(ErrInvalidRange, "offset %d, length %d: must not be negative", offset, length)
	}
	if offset > size {
		return 0, errors.Wrapf(ErrInvalidRange, "offset %d is past the end of a %d-byte object", offset, size)
	}
	end := size
	if length < math.MaxInt64-offset && offset+length < size {
		end = offset + length
	}
	return end, nil
}
