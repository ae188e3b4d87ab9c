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
	"math"
	"net/http"
	"strings"

	"github.com/cockroachdb/errors"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/internal/s3http"
)

// DefaultListLimit is the page size List uses when called with limit <= 0;
// it is also the largest page S3 returns.
const DefaultListLimit = 1000

// Config says which bucket to use and how to reach it.
type Config struct {
	// Endpoint is host:port; an http:// or https:// scheme is accepted
	// and decides Secure.
	Endpoint string
	// AccessKey and SecretKey are static credentials.
	AccessKey, SecretKey string
	Bucket               string
	// Region to sign for; empty lets the client ask the server.
	Region string
	// Secure selects https.
	Secure bool
	// RootPath is a key prefix inside the bucket under which every object
	// of this store lives ("" for the bucket's top level).
	RootPath string
	// CreateBucket makes Open create a missing bucket instead of failing.
	CreateBucket bool
}

// Store is an objstore.Store on one bucket (and root path). It is safe for
// concurrent use. Close releases its idle connections.
type Store struct {
	cli      *minio.Client
	core     minio.Core
	tr       *http.Transport
	bucket   string
	root     string // "" or ending in "/"
	endpoint string
}

var _ objstore.Store = (*Store)(nil)

// New returns a store for cfg without contacting the server; Open also
// checks that the server answers and the bucket exists.
func New(cfg Config) (*Store, error) {
	host, secure, err := s3http.ParseEndpoint(cfg.Endpoint, cfg.Secure)
	if err != nil {
		return nil, errors.Wrap(err, "s3 object store")
	}
	if cfg.Bucket == "" {
		return nil, errors.New("s3 object store: no bucket configured: set storage.bucket")
	}
	root, err := s3http.RootPrefix(cfg.RootPath)
	if err != nil {
		return nil, errors.Wrap(err, "s3 object store: storage.rootPath")
	}
	tr := s3http.NewTransport(secure)
	cli, err := minio.New(host, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:    secure,
		Region:    cfg.Region,
		Transport: tr,
	})
	if err != nil {
		return nil, errors.Wrapf(err, "s3 object store at %s", host)
	}
	scheme := "http://"
	if secure {
		scheme = "https://"
	}
	return &Store{
		cli: cli, core: minio.Core{Client: cli}, tr: tr,
		bucket: cfg.Bucket, root: root, endpoint: scheme + host,
	}, nil
}

// Open is New plus a check that the server is reachable, accepts the
// credentials and has the bucket (created when cfg.CreateBucket is set).
// It does not probe create-only support; see objstore.ProbeConditionalWrite.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.checkBucket(ctx, cfg.CreateBucket, cfg.Region); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) checkBucket(ctx context.Context, create bool, region string) error {
	ok, err := s.cli.BucketExists(ctx, s.bucket)
	if err != nil {
		return s.describeOpenErr(err)
	}
	if ok {
		return nil
	}
	if !create {
		return errors.Newf("bucket %q does not exist at %s: create it or set storage.createBucket: true", s.bucket, s.endpoint)
	}
	err = s.cli.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: region})
	if err != nil {
		switch minioErr(err).Code {
		case "BucketAlreadyOwnedByYou", "BucketAlreadyExists":
			// Created meanwhile by someone else; it exists now.
			return nil
		}
		return errors.Wrapf(s.describeOpenErr(err), "create bucket %q", s.bucket)
	}
	return nil
}

func (s *Store) describeOpenErr(err error) error {
	if ctxErr := contextErr(err); ctxErr != nil {
		return errors.Wrapf(err, "open s3 object store at %s", s.endpoint)
	}
	resp := minioErr(err)
	switch {
	case resp.StatusCode == http.StatusForbidden || resp.Code == "InvalidAccessKeyId" || resp.Code == "SignatureDoesNotMatch" || resp.Code == "AccessDenied":
		return errors.Wrapf(err, "object store at %s refused access to bucket %q: check storage.accessKeyID / storage.secretAccessKey", s.endpoint, s.bucket)
	case resp.StatusCode == 0:
		return errors.Wrapf(err, "cannot reach object store at %s: check storage.endpoint and that the server runs", s.endpoint)
	default:
		return errors.Wrapf(err, "open s3 object store at %s, bucket %q", s.endpoint, s.bucket)
	}
}

// Close closes idle connections. It is idempotent; the store stays usable
// (new requests open new connections).
func (s *Store) Close() error {
	s.tr.CloseIdleConnections()
	return nil
}

func contextErr(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return context.DeadlineExceeded
	}
	return nil
}

func minioErr(err error) minio.ErrorResponse {
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		return resp
	}
	var respPtr *minio.ErrorResponse
	if errors.As(err, &respPtr) && respPtr != nil {
		return *respPtr
	}
	return minio.ErrorResponse{}
}

// mapErr turns a minio-go error into the objstore sentinels.
func (s *Store) mapErr(err error, op, key string) error {
	if err == nil {
		return nil
	}
	resp := minioErr(err)
	switch {
	case resp.Code == "NoSuchBucket":
		return errors.Wrapf(errors.Mark(err, objstore.ErrNotFound),
			"s3 %s %q: bucket %q does not exist at %s", op, key, s.bucket, s.endpoint)
	case resp.Code == "NoSuchKey" || resp.StatusCode == http.StatusNotFound:
		return errors.Wrapf(errors.Mark(err, objstore.ErrNotFound), "s3 %s %q", op, key)
	case resp.Code == "InvalidRange" || resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		return errors.Wrapf(errors.Mark(err, objstore.ErrInvalidRange), "s3 %s %q", op, key)
	case op == "put" && (resp.Code == "PreconditionFailed" || resp.StatusCode == http.StatusPreconditionFailed):
		return errors.Wrapf(errors.Mark(err, objstore.ErrAlreadyExists), "s3 %s %q", op, key)
	}
	return errors.Wrapf(err, "s3 %s %q in bucket %q at %s", op, key, s.bucket, s.endpoint)
}

// objectName validates key and returns its name in the bucket.
func (s *Store) objectName(op, key string) (string, error) {
	if err := objstore.ValidateKey(key); err != nil {
		return "", errors.Wrapf(err, "s3 %s", op)
	}
	return s.root + key, nil
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
	name, err := s.objectName("put", key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return errors.Wrapf(err, "s3 put %q", key)
	}
	popts := minio.PutObjectOptions{
		ContentType:          "application/octet-stream",
		DisableContentSha256: true,
		DisableMultipart:     true,
	}
	if !opts.IfNotExists {
		_, err := s.cli.PutObject(ctx, s.bucket, name, bytes.NewReader(data), int64(len(data)), popts)
		return s.mapErr(err, "put", key)
	}
	popts.SetMatchETagExcept("*")
	err = s3http.RetryCreateOnly(ctx, func() error {
		_, err := s.cli.PutObject(ctx, s.bucket, name, readerOnly{bytes.NewReader(data)}, int64(len(data)), popts)
		return err
	}, func(err error) bool {
		if s3http.IsDialError(err) {
			return true
		}
		resp := minioErr(err)
		// 503 SlowDown: refused before acting. 409: AWS's "a conflicting
		// conditional operation is in progress, retry".
		return resp.Code == "SlowDown" || resp.Code == "ConditionalRequestConflict" ||
			resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusConflict
	})
	return s.mapErr(err, "put", key)
}

// Get implements objstore.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	name, err := s.objectName("get", key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, errors.Wrapf(err, "s3 get %q", key)
	}
	body, info, _, err := s.core.GetObject(ctx, s.bucket, name, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.mapErr(err, "get", key)
	}
	defer func() { _ = body.Close() }()
	data, err := readBody(body, info.Size)
	return data, s.mapErr(err, "get", key)
}

// readBody reads a response body of the announced size (or of unknown size,
// when size < 0) and fails on a short or long body.
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

// GetRange implements objstore.Store.
func (s *Store) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	name, err := s.objectName("get range", key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, errors.Wrapf(err, "s3 get range %q", key)
	}
	if _, err := objstore.RangeEnd(math.MaxInt64, offset, length); err != nil {
		return nil, errors.Wrapf(err, "s3 get range %q", key)
	}
	if length == 0 {
		return s.emptyRange(ctx, key, offset)
	}
	last := offset + length - 1
	if length > math.MaxInt64-offset {
		last = math.MaxInt64 - 1
	}
	var gopts minio.GetObjectOptions
	if err := gopts.SetRange(offset, last); err != nil {
		return nil, errors.Wrapf(err, "s3 get range %q", key)
	}
	body, info, hdr, err := s.core.GetObject(ctx, s.bucket, name, gopts)
	if err != nil {
		err = s.mapErr(err, "get range", key)
		if errors.Is(err, objstore.ErrInvalidRange) {
			// S3 refuses a range starting at the end; we allow it.
			return s.emptyRange(ctx, key, offset)
		}
		return nil, err
	}
	defer func() { _ = body.Close() }()
	data, err := readBody(body, info.Size)
	if err != nil {
		return nil, s.mapErr(err, "get range", key)
	}
	if hdr.Get("Content-Range") == "" {
		// The server ignored the range and sent the whole object.
		end, err := objstore.RangeEnd(int64(len(data)), offset, length)
		if err != nil {
			return nil, errors.Wrapf(err, "s3 get range %q", key)
		}
		data = data[offset:end:end]
	}
	return data, nil
}

// emptyRange answers a range that selects nothing: empty when offset is at
// most the object's size, ErrInvalidRange past it, ErrNotFound without one.
func (s *Store) emptyRange(ctx context.Context, key string, offset int64) ([]byte, error) {
	info, err := s.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	if _, err := objstore.RangeEnd(info.Size, offset, 0); err != nil {
		return nil, errors.Wrapf(err, "s3 get range %q", key)
	}
	return []byte{}, nil
}

// Stat implements objstore.Store.
func (s *Store) Stat(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	name, err := s.objectName("stat", key)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return objstore.ObjectInfo{}, errors.Wrapf(err, "s3 stat %q", key)
	}
	info, err := s.cli.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
	if err != nil {
		return objstore.ObjectInfo{}, s.mapErr(err, "stat", key)
	}
	return objstore.ObjectInfo{Key: key, Size: info.Size, LastModified: info.LastModified}, nil
}

// Delete implements objstore.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	name, err := s.objectName("delete", key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return errors.Wrapf(err, "s3 delete %q", key)
	}
	err = s.cli.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{})
	if err != nil && minioErr(err).Code == "NoSuchKey" {
		return nil
	}
	return s.mapErr(err, "delete", key)
}

// List implements objstore.Store. It makes one ListObjectsV2 request for
// pages below DefaultListLimit; a full page of DefaultListLimit reports
// More without looking further.
func (s *Store) List(ctx context.Context, prefix, startAfter string, limit int) (objstore.ListPage, error) {
	if err := objstore.ValidatePrefix(prefix); err != nil {
		return objstore.ListPage{}, errors.Wrap(err, "s3 list")
	}
	if err := ctx.Err(); err != nil {
		return objstore.ListPage{}, errors.Wrapf(err, "s3 list %q", prefix)
	}
	if limit <= 0 || limit > DefaultListLimit {
		limit = DefaultListLimit
	}
	// Ask for one more than the page to learn whether there is more.
	want := min(limit+1, DefaultListLimit)
	lopts := minio.ListObjectsOptions{
		Prefix:     s.root + prefix,
		Recursive:  true,
		MaxKeys:    want,
		FetchOwner: new(bool),
	}
	if startAfter != "" {
		lopts.StartAfter = s.root + startAfter
	}
	var page objstore.ListPage
	for obj := range s.cli.ListObjectsIter(ctx, s.bucket, lopts) {
		if obj.Err != nil {
			return objstore.ListPage{}, s.mapErr(obj.Err, "list", prefix)
		}
		key, ok := strings.CutPrefix(obj.Key, s.root)
		if !ok || key <= startAfter {
			continue // not ours, or a server that ignored StartAfter
		}
		page.Objects = append(page.Objects, objstore.ObjectInfo{Key: key, Size: obj.Size, LastModified: obj.LastModified})
		if len(page.Objects) == want {
			break
		}
	}
	// The iterator ends silently on a cancelled context.
	if err := ctx.Err(); err != nil {
		return objstore.ListPage{}, errors.Wrapf(err, "s3 list %q", prefix)
	}
	if len(page.Objects) > limit {
		page.Objects, page.More = page.Objects[:limit], true
	} else if len(page.Objects) == limit && want == limit {
		page.More = true
	}
	return page, nil
}
