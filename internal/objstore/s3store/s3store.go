// Package s3store is an objstore.Store on MinIO or any S3-compatible store,
// through github.com/minio/minio-go/v7.
//
// Puts are single requests (no multipart upload), so a create-only put is
// one atomic conditional request (If-None-Match: *), and objects are
// limited to what one PUT may carry (5 GiB on AWS). Payloads are sent
// unsigned (UNSIGNED-PAYLOAD) and without client-side content hashes: the
// data carries its own CRCs, and hashing costs 20-30% of PUT throughput
// over plain HTTP.
package s3store

import (
	"bytes"
	"context"
	"io"
	"net/http"

	"github.com/cockroachdb/errors"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/internal/s3http"
)

// DefaultListLimit is the page size List uses when called with limit <= 0;
// it is also the largest page S3 returns.
const DefaultListLimit = s3http.MaxListKeys

// Config says which bucket to use and how to reach it; an empty Region
// lets the client ask the server.
type Config = s3http.Config

// Store is an objstore.Store on one bucket (and root path). It is safe for
// concurrent use. Close releases its idle connections.
type Store struct {
	cli  *minio.Client
	core minio.Core
	tr   *http.Transport
	b    *s3http.Bucket
}

var _ objstore.Store = (*Store)(nil)

// New returns a store for cfg without contacting the server; Open also
// checks that the server answers and the bucket exists.
func New(cfg Config) (*Store, error) {
	b, err := s3http.NewBucket("s3", s3http.Settings{
		Endpoint: cfg.Endpoint, Secure: cfg.Secure, Bucket: cfg.Bucket, RootPath: cfg.RootPath,
	}, classify)
	if err != nil {
		return nil, err
	}
	tr := s3http.NewTransport(b.Secure, cfg.TLS)
	cli, err := minio.New(b.Host, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:    b.Secure,
		Region:    cfg.Region,
		Transport: tr,
	})
	if err != nil {
		return nil, errors.Wrapf(err, "s3 object store at %s", b.Host)
	}
	return &Store{cli: cli, core: minio.Core{Client: cli}, tr: tr, b: b}, nil
}

// Open is New plus a check that the server is reachable, accepts the
// credentials and has the bucket (created when cfg.CreateBucket is set).
// It does not probe create-only support; see objstore.ProbeConditionalWrite.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	err = s.b.Ensure(cfg.CreateBucket, func() (bool, error) {
		return s.cli.BucketExists(ctx, s.b.Name)
	}, func() error {
		return s.cli.MakeBucket(ctx, s.b.Name, minio.MakeBucketOptions{Region: cfg.Region})
	})
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// Close closes idle connections. It is idempotent; the store stays usable
// (new requests open new connections).
func (s *Store) Close() error {
	s.tr.CloseIdleConnections()
	return nil
}

// classify reads the S3 error code and the HTTP status (0 when no response
// came) out of a minio-go error.
func classify(err error) s3http.Failure {
	var resp minio.ErrorResponse
	if !errors.As(err, &resp) {
		var respPtr *minio.ErrorResponse
		if errors.As(err, &respPtr) && respPtr != nil {
			resp = *respPtr
		}
	}
	return s3http.Failure{Code: resp.Code, Status: resp.StatusCode}
}

// readerOnly hides every method but Read, so minio-go cannot seek back and
// retry the request on its own (see s3http.RetryCreateOnly).
type readerOnly struct{ r io.Reader }

func (r readerOnly) Read(p []byte) (int, error) { return r.r.Read(p) }

// Put implements objstore.Store. A create-only put is sent with
// If-None-Match: * and retried only when the request provably did not
// reach the store, so ErrAlreadyExists means another put created the key
// (or an earlier attempt of the caller's own whose answer it never got).
func (s *Store) Put(ctx context.Context, key string, data []byte, opts objstore.PutOptions) error {
	name, err := s.b.ObjectName(ctx, "put", key)
	if err != nil {
		return err
	}
	popts := minio.PutObjectOptions{
		ContentType:          "application/octet-stream",
		DisableContentSha256: true,
		DisableMultipart:     true,
	}
	if !opts.IfNotExists {
		_, err := s.cli.PutObject(ctx, s.b.Name, name, bytes.NewReader(data), int64(len(data)), popts)
		return s.b.MapErr(err, "put", key)
	}
	popts.SetMatchETagExcept("*")
	err = s3http.RetryCreateOnly(ctx, func() error {
		_, err := s.cli.PutObject(ctx, s.b.Name, name, readerOnly{bytes.NewReader(data)}, int64(len(data)), popts)
		return err
	}, s.b.NotApplied)
	return s.b.MapErr(err, "put", key)
}

// Get implements objstore.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	name, err := s.b.ObjectName(ctx, "get", key)
	if err != nil {
		return nil, err
	}
	body, info, _, err := s.core.GetObject(ctx, s.b.Name, name, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.b.MapErr(err, "get", key)
	}
	return s.b.ReadBody(body, info.Size, "get", key)
}

// GetRange implements objstore.Store.
func (s *Store) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	return s.b.GetRange(ctx, key, offset, length, s.getRange, s.Stat)
}

// getRange is the ranged GET behind GetRange (an s3http.RangeGetter).
func (s *Store) getRange(ctx context.Context, name, key string, first, last int64) (s3http.Body, error) {
	var gopts minio.GetObjectOptions
	if err := gopts.SetRange(first, last); err != nil {
		return s3http.Body{}, s.b.Wrap(err, "get range", key)
	}
	body, info, hdr, err := s.core.GetObject(ctx, s.b.Name, name, gopts)
	if err != nil {
		return s3http.Body{}, s.b.MapErr(err, "get range", key)
	}
	return s3http.Body{ReadCloser: body, Size: info.Size, Ranged: hdr.Get("Content-Range") != ""}, nil
}

// Stat implements objstore.Store.
func (s *Store) Stat(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	name, err := s.b.ObjectName(ctx, "stat", key)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	info, err := s.cli.StatObject(ctx, s.b.Name, name, minio.StatObjectOptions{})
	if err != nil {
		return objstore.ObjectInfo{}, s.b.MapErr(err, "stat", key)
	}
	return objstore.ObjectInfo{Key: key, Size: info.Size, LastModified: info.LastModified}, nil
}

// Delete implements objstore.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	name, err := s.b.ObjectName(ctx, "delete", key)
	if err != nil {
		return err
	}
	err = s.cli.RemoveObject(ctx, s.b.Name, name, minio.RemoveObjectOptions{})
	return s.b.MapDeleteErr(err, key)
}

// List implements objstore.Store. It makes one ListObjectsV2 request for
// pages below DefaultListLimit; a full page of DefaultListLimit reports
// More without looking further.
func (s *Store) List(ctx context.Context, prefix, startAfter string, limit int) (objstore.ListPage, error) {
	limit, err := s.b.ListLimit(ctx, prefix, limit)
	if err != nil {
		return objstore.ListPage{}, err
	}
	// Ask for one more than the page to learn whether there is more.
	want := min(limit+1, DefaultListLimit)
	lopts := minio.ListObjectsOptions{
		Prefix:     s.b.Root + prefix,
		Recursive:  true,
		MaxKeys:    want,
		FetchOwner: new(bool),
	}
	if startAfter != "" {
		lopts.StartAfter = s.b.Root + startAfter
	}
	var page objstore.ListPage
	for obj := range s.cli.ListObjectsIter(ctx, s.b.Name, lopts) {
		if obj.Err != nil {
			return objstore.ListPage{}, s.b.MapErr(obj.Err, "list", prefix)
		}
		key, ok := s.b.ListedKey(obj.Key, startAfter)
		if !ok {
			continue
		}
		page.Objects = append(page.Objects, objstore.ObjectInfo{Key: key, Size: obj.Size, LastModified: obj.LastModified})
		if len(page.Objects) == want {
			break
		}
	}
	// The iterator ends silently on a cancelled context.
	if err := ctx.Err(); err != nil {
		return objstore.ListPage{}, s.b.Wrap(err, "list", prefix)
	}
	if len(page.Objects) > limit {
		page.Objects, page.More = page.Objects[:limit], true
	} else if len(page.Objects) == limit && want == limit {
		page.More = true
	}
	return page, nil
}
