// Package objstore is the one small interface every layer above uses to reach
// object storage: MinIO and other S3-compatible stores, AWS S3, a local
// filesystem, and an in-memory store with fault injection for tests.
//
// Create-only writes (PutOptions.IfNotExists) are the storage-level fence of
// the whole design: a block slot, once written, can never be overwritten, so a
// zombie writer whose slot was taken by recovery learns it at once. Backends
// must make them atomic; ProbeConditionalWrite tells whether a store does.
//
// Outcomes: a Put that returns nil is durable. ErrAlreadyExists from a
// create-only Put means the key was taken: backends never retry a
// create-only request that may have reached the store, because the retry
// would find the key taken by the very put being retried. Any other error
// from a Put is an unknown outcome: the object may or may not have landed.
//
// Backends: s3store (minio-go), awss3 (aws-sdk-go-v2), localfs (a
// directory), memstore (in memory, with fault injection). Package
// conformance is the test suite they all pass.
package objstore

import (
	"context"
	"time"

	"github.com/cockroachdb/errors"
)

// Errors every backend returns, testable with errors.Is. Backends wrap them
// with the key and the operation.
var (
	// ErrNotFound: the object (or the bucket) does not exist.
	ErrNotFound = errors.New("object not found")
	// ErrAlreadyExists: a create-only put found the key taken. Exactly one of
	// several racing create-only puts of one key succeeds; the rest get this.
	ErrAlreadyExists = errors.New("object already exists")
	// ErrInvalidRange: a range read starts beyond the object's end
	// (offset > size) or has a negative offset or length.
	ErrInvalidRange = errors.New("invalid byte range")
	// ErrConditionalWriteUnsupported: the store ignores create-only
	// conditions, so it cannot fence a zombie writer. Returned by
	// ProbeConditionalWrite.
	ErrConditionalWriteUnsupported = errors.New("object store does not honour create-only writes (If-None-Match: *)")
)

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key          string
	Size         int64
	LastModified time.Time
}

// PutOptions qualify a Put.
type PutOptions struct {
	// IfNotExists makes the put create-only: it fails with ErrAlreadyExists
	// when the key exists, and never replaces an existing object.
	IfNotExists bool
}

// ListPage is one page of a listing.
type ListPage struct {
	// Objects in ascending key order.
	Objects []ObjectInfo
	// More is true when keys after the last one returned may match; pass the
	// last key as startAfter to get the next page.
	More bool
}

// Store is an object store. Implementations are safe for concurrent use.
// Keys are slash-separated paths relative to the store's root; they never
// start with a slash, and every backend rejects a malformed key or prefix
// with ErrInvalidKey (see ValidateKey). Every method honours ctx: an already
// cancelled ctx fails with an error satisfying errors.Is(err,
// context.Canceled). Data passed to Put is not retained after Put returns;
// slices returned by Get and GetRange belong to the caller.
type Store interface {
	// Put stores data under key. With IfNotExists it is create-only.
	// On success the object is durable (for local FS: fsynced with its
	// directory entry).
	Put(ctx context.Context, key string, data []byte, opts PutOptions) error
	// Get returns the whole object, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// GetRange returns up to length bytes starting at offset; fewer when the
	// object ends first. ErrNotFound for a missing object, ErrInvalidRange
	// when offset is past the end (offset > size) or offset or length is
	// negative. offset == size returns an empty slice and no error (see
	// RangeEnd, which every backend follows).
	GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error)
	// Stat describes the object, or returns ErrNotFound.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// List returns up to limit objects (limit <= 0: a backend default, at
	// most 1000) whose keys start with prefix and sort after startAfter, in
	// ascending key order.
	List(ctx context.Context, prefix, startAfter string, limit int) (ListPage, error)
	// Delete removes the object. Deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error
}
