package s3http

import (
	"context"
	"io"
	"math"
	"strconv"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
)

// Body is the answer to a GET, as a backend hands it to GetRange.
type Body struct {
	io.ReadCloser
	// Size is the body's announced length; -1 when unknown.
	Size int64
	// Ranged is true when the server honoured the Range header (it sent
	// Content-Range), false when it sent the whole object.
	Ranged bool
}

// ReadBody reads and closes the body of a GET for operation op on key. It
// fails on a body shorter or longer than the announced size (size < 0: any
// size), with the error mapped by MapErr.
func (b *Bucket) ReadBody(body io.ReadCloser, size int64, op, key string) ([]byte, error) {
	defer func() { _ = body.Close() }()
	data, err := readBody(body, size)
	return data, b.MapErr(err, op, key)
}

func readBody(r io.Reader, size int64) ([]byte, error) {
	if size < 0 {
		return io.ReadAll(r)
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, errors.Wrapf(err, "read body of %d bytes", size)
	}
	var one [1]byte
	if n, _ := r.Read(one[:]); n > 0 {
		return nil, errors.Newf("body longer than the announced %d bytes", size)
	}
	return buf, nil
}

// RangeGetter sends one GET of the object name (key is for messages) with
// Range: bytes=first-last, and returns its body, or an error mapped by
// MapErr.
type RangeGetter func(ctx context.Context, name, key string, first, last int64) (Body, error)

// GetRange is objstore.Store.GetRange on a ranged GET, with the edge cases
// every backend shares (objstore.RangeEnd). S3 refuses ranges that select
// nothing, so those are answered from stat (the backend's Stat): empty at
// or before the object's end, ErrInvalidRange past it. A server that
// ignores the Range header and sends the whole object is cut down here.
func (b *Bucket) GetRange(ctx context.Context, key string, offset, length int64, get RangeGetter,
	stat func(ctx context.Context, key string) (objstore.ObjectInfo, error),
) ([]byte, error) {
	name, err := b.ObjectName(ctx, "get range", key)
	if err != nil {
		return nil, err
	}
	if _, err := objstore.RangeEnd(math.MaxInt64, offset, length); err != nil {
		return nil, b.Wrap(err, "get range", key)
	}
	if length == 0 {
		return b.emptyRange(ctx, key, offset, stat)
	}
	body, err := get(ctx, name, key, offset, lastByte(offset, length))
	if errors.Is(err, objstore.ErrInvalidRange) {
		// S3 refuses a range starting at the end; we allow it.
		return b.emptyRange(ctx, key, offset, stat)
	}
	if err != nil {
		return nil, err
	}
	data, err := b.ReadBody(body, body.Size, "get range", key)
	if err != nil {
		return nil, err
	}
	if !body.Ranged {
		end, err := objstore.RangeEnd(int64(len(data)), offset, length)
		if err != nil {
			return nil, b.Wrap(err, "get range", key)
		}
		data = data[offset:end:end]
	}
	return data, nil
}

// lastByte is the inclusive end of a Range header for length > 0 bytes from
// offset, kept below math.MaxInt64 where offset+length would overflow.
func lastByte(offset, length int64) int64 {
	if length > math.MaxInt64-offset {
		return math.MaxInt64 - 1
	}
	return offset + length - 1
}

// RangeHeader is the value of a Range header for bytes first to last,
// inclusive.
func RangeHeader(first, last int64) string {
	return "bytes=" + strconv.FormatInt(first, 10) + "-" + strconv.FormatInt(last, 10)
}

// emptyRange answers a range that selects nothing: empty when offset is at
// most the object's size, ErrInvalidRange past it, ErrNotFound without one.
func (b *Bucket) emptyRange(ctx context.Context, key string, offset int64,
	stat func(ctx context.Context, key string) (objstore.ObjectInfo, error),
) ([]byte, error) {
	info, err := stat(ctx, key)
	if err != nil {
		return nil, err
	}
	if _, err := objstore.RangeEnd(info.Size, offset, 0); err != nil {
		return nil, b.Wrap(err, "get range", key)
	}
	return []byte{}, nil
}
