// Package awss3 is an objstore.Store on AWS S3 (or any S3-compatible store)
// through github.com/aws/aws-sdk-go-v2/service/s3, with path-style
// addressing, a custom endpoint and static credentials.
//
// Like s3store, puts are single requests (objects up to 5 GiB), create-only
// puts use If-None-Match: *, and payloads are neither hashed nor signed:
// the SDK's default request checksums are limited to the operations that
// require them, and the SHA-256 payload hash is replaced by UNSIGNED-PAYLOAD
// (over plain HTTP the SDK would otherwise hash every body it sends).
package awss3

import (
	"bytes"
	"context"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/internal/s3http"
)

// DefaultListLimit is the page size List uses when called with limit <= 0;
// it is also the largest page S3 returns.
const DefaultListLimit = 1000

// DefaultRegion is used when Config.Region is empty.
const DefaultRegion = "us-east-1"

// Config says which bucket to use and how to reach it.
type Config struct {
	// Endpoint is host:port; an http:// or https:// scheme is accepted
	// and decides Secure.
	Endpoint string
	// AccessKey and SecretKey are static credentials.
	AccessKey, SecretKey string
	Bucket               string
	// Region to sign for; empty means DefaultRegion.
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
	cli      *s3.Client
	tr       *http.Transport
	bucket   string
	root     string // "" or ending in "/"
	endpoint string
	region   string
}

var _ objstore.Store = (*Store)(nil)

// New returns a store for cfg without contacting the server; Open also
// checks that the server answers and the bucket exists.
func New(cfg Config) (*Store, error) {
	host, secure, err := s3http.ParseEndpoint(cfg.Endpoint, cfg.Secure)
	if err != nil {
		return nil, errors.Wrap(err, "aws s3 object store")
	}
	if cfg.Bucket == "" {
		return nil, errors.New("aws s3 object store: no bucket configured: set storage.bucket")
	}
	root, err := s3http.RootPrefix(cfg.RootPath)
	if err != nil {
		return nil, errors.Wrap(err, "aws s3 object store: storage.rootPath")
	}
	region := cfg.Region
	if region == "" {
		region = DefaultRegion
	}
	endpoint := "http://" + host
	if secure {
		endpoint = "https://" + host
	}
	tr := s3http.NewTransport(secure)
	cli := s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, ""),
		HTTPClient:   &http.Client{Transport: tr},
		// Checksums only where an operation requires one: our objects
		// carry their own CRCs.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		// No Expect: 100-continue round trip before large bodies.
		ContinueHeaderThresholdBytes: -1,
		// Retry transient failures, without the client-side retry quota
		// that fails requests outright under many parallel uploads.
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.RateLimiter = ratelimit.None
		}),
	})
	return &Store{cli: cli, tr: tr, bucket: cfg.Bucket, root: root, endpoint: endpoint, region: region}, nil
}

// Open is New plus a check that the server is reachable, accepts the
// credentials and has the bucket (created when cfg.CreateBucket is set).
// It does not probe create-only support; see objstore.ProbeConditionalWrite.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.checkBucket(ctx, cfg.CreateBucket); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) checkBucket(ctx context.Context, create bool) error {
	_, err := s.cli.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	if err == nil {
		return nil
	}
	if httpStatus(err) != http.StatusNotFound {
		return s.describeOpenErr(err)
	}
	if !create {
		return errors.Newf("bucket %q does not exist at %s: create it or set storage.createBucket: true", s.bucket, s.endpoint)
	}
	in := &s3.CreateBucketInput{Bucket: aws.String(s.bucket)}
	if s.region != DefaultRegion {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(s.region),
		}
	}
	if _, err := s.cli.CreateBucket(ctx, in); err != nil {
		switch errorCode(err) {
		case "BucketAlreadyOwnedByYou", "BucketAlreadyExists":
			return nil // created meanwhile by someone else
		}
		return errors.Wrapf(s.describeOpenErr(err), "create bucket %q", s.bucket)
	}
	return nil
}

func (s *Store) describeOpenErr(err error) error {
	switch status := httpStatus(err); {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return errors.Wrapf(err, "open aws s3 object store at %s", s.endpoint)
	case status == http.StatusForbidden || status == http.StatusUnauthorized:
		return errors.Wrapf(err, "object store at %s refused access to bucket %q: check storage.accessKeyID / storage.secretAccessKey", s.endpoint, s.bucket)
	case status == 0:
		return errors.Wrapf(err, "cannot reach object store at %s: check storage.endpoint and that the server runs", s.endpoint)
	default:
		return errors.Wrapf(err, "open aws s3 object store at %s, bucket %q", s.endpoint, s.bucket)
	}
}

// Close closes idle connections. It is idempotent; the store stays usable.
func (s *Store) Close() error {
	s.tr.CloseIdleConnections()
	return nil
}

// httpStatus returns the HTTP status of a failed request, or 0 when no
// response came.
func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// mapErr turns an SDK error into the objstore sentinels.
func (s *Store) mapErr(err error, op, key string) error {
	if err == nil {
		return nil
	}
	code, status := errorCode(err), httpStatus(err)
	switch {
	case code == "NoSuchBucket":
		return errors.Wrapf(errors.Mark(err, objstore.ErrNotFound),
			"aws s3 %s %q: bucket %q does not exist at %s", op, key, s.bucket, s.endpoint)
	case code == "NoSuchKey" || code == "NotFound" || status == http.StatusNotFound:
		return errors.Wrapf(errors.Mark(err, objstore.ErrNotFound), "aws s3 %s %q", op, key)
	case code == "InvalidRange" || status == http.StatusRequestedRangeNotSatisfiable:
		return errors.Wrapf(errors.Mark(err, objstore.ErrInvalidRange), "aws s3 %s %q", op, key)
	case op == "put" && (code == "PreconditionFailed" || status == http.StatusPreconditionFailed):
		return errors.Wrapf(errors.Mark(err, objstore.ErrAlreadyExists), "aws s3 %s %q", op, key)
	}
	return errors.Wrapf(err, "aws s3 %s %q in bucket %q at %s", op, key, s.bucket, s.endpoint)
}

// objectName validates key and returns its name in the bucket.
func (s *Store) objectName(op, key string) (string, error) {
	if err := objstore.ValidateKey(key); err != nil {
		return "", errors.Wrapf(err, "aws s3 %s", op)
	}
	return s.root + key, nil
}

// unsignedPayload sends UNSIGNED-PAYLOAD instead of hashing the body.
var unsignedPayload = s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)

// noRetries makes an operation a single attempt (see s3http.RetryCreateOnly).
func noRetries(o *s3.Options) { o.RetryMaxAttempts = 1 }

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
		return errors.Wrapf(err, "aws s3 put %q", key)
	}
	in := func() *s3.PutObjectInput {
		return &s3.PutObjectInput{
			Bucket:        aws.String(s.bucket),
			Key:           aws.String(name),
			Body:          bytes.NewReader(data),
			ContentLength: aws.Int64(int64(len(data))),
			ContentType:   aws.String("application/octet-stream"),
		}
	}
	if !opts.IfNotExists {
		_, err := s.cli.PutObject(ctx, in(), unsignedPayload)
		return s.mapErr(err, "put", key)
	}
	err = s3http.RetryCreateOnly(ctx, func() error {
		req := in()
		req.IfNoneMatch = aws.String("*")
		_, err := s.cli.PutObject(ctx, req, unsignedPayload, noRetries)
		return err
	}, func(err error) bool {
		if s3http.IsDialError(err) {
			return true
		}
		// 503 SlowDown: refused before acting. 409: "a conflicting
		// conditional operation is in progress, retry".
		code, status := errorCode(err), httpStatus(err)
		return code == "SlowDown" || code == "ConditionalRequestConflict" ||
			status == http.StatusServiceUnavailable || status == http.StatusConflict
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
		return nil, errors.Wrapf(err, "aws s3 get %q", key)
	}
	out, err := s.cli.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(name)})
	if err != nil {
		return nil, s.mapErr(err, "get", key)
	}
	defer func() { _ = out.Body.Close() }()
	data, err := readBody(out.Body, aws.ToInt64(out.ContentLength), out.ContentLength != nil)
	return data, s.mapErr(err, "get", key)
}

// readBody reads a response body of the announced size (any size when
// known is false) and fails on a short or long body.
func readBody(r io.Reader, size int64, known bool) ([]byte, error) {
	if !known || size < 0 {
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
		return nil, errors.Wrapf(err, "aws s3 get range %q", key)
	}
	if _, err := objstore.RangeEnd(math.MaxInt64, offset, length); err != nil {
		return nil, errors.Wrapf(err, "aws s3 get range %q", key)
	}
	if length == 0 {
		return s.emptyRange(ctx, key, offset)
	}
	last := offset + length - 1
	if length > math.MaxInt64-offset {
		last = math.MaxInt64 - 1
	}
	out, err := s.cli.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(name),
		Range:  aws.String("bytes=" + strconv.FormatInt(offset, 10) + "-" + strconv.FormatInt(last, 10)),
	})
	if err != nil {
		err = s.mapErr(err, "get range", key)
		if errors.Is(err, objstore.ErrInvalidRange) {
			// S3 refuses a range starting at the end; we allow it.
			return s.emptyRange(ctx, key, offset)
		}
		return nil, err
	}
	defer func() { _ = out.Body.Close() }()
	data, err := readBody(out.Body, aws.ToInt64(out.ContentLength), out.ContentLength != nil)
	if err != nil {
		return nil, s.mapErr(err, "get range", key)
	}
	if aws.ToString(out.ContentRange) == "" {
		// The server ignored the range and sent the whole object.
		end, err := objstore.RangeEnd(int64(len(data)), offset, length)
		if err != nil {
			return nil, errors.Wrapf(err, "aws s3 get range %q", key)
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
		return nil, errors.Wrapf(err, "aws s3 get range %q", key)
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
		return objstore.ObjectInfo{}, errors.Wrapf(err, "aws s3 stat %q", key)
	}
	out, err := s.cli.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(name)})
	if err != nil {
		return objstore.ObjectInfo{}, s.mapErr(err, "stat", key)
	}
	return objstore.ObjectInfo{Key: key, Size: aws.ToInt64(out.ContentLength), LastModified: aws.ToTime(out.LastModified)}, nil
}

// Delete implements objstore.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	name, err := s.objectName("delete", key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return errors.Wrapf(err, "aws s3 delete %q", key)
	}
	_, err = s.cli.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(name)})
	if err != nil && errorCode(err) == "NoSuchKey" {
		return nil
	}
	return s.mapErr(err, "delete", key)
}

// List implements objstore.Store with one ListObjectsV2 request.
func (s *Store) List(ctx context.Context, prefix, startAfter string, limit int) (objstore.ListPage, error) {
	if err := objstore.ValidatePrefix(prefix); err != nil {
		return objstore.ListPage{}, errors.Wrap(err, "aws s3 list")
	}
	if err := ctx.Err(); err != nil {
		return objstore.ListPage{}, errors.Wrapf(err, "aws s3 list %q", prefix)
	}
	if limit <= 0 || limit > DefaultListLimit {
		limit = DefaultListLimit
	}
	in := &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(s.root + prefix),
		// One more than the page, when S3 allows, to learn whether there
		// is more without trusting IsTruncated alone.
		MaxKeys: aws.Int32(int32(min(limit+1, DefaultListLimit))),
	}
	if startAfter != "" {
		in.StartAfter = aws.String(s.root + startAfter)
	}
	out, err := s.cli.ListObjectsV2(ctx, in)
	if err != nil {
		return objstore.ListPage{}, s.mapErr(err, "list", prefix)
	}
	var page objstore.ListPage
	for _, obj := range out.Contents {
		key, ok := strings.CutPrefix(aws.ToString(obj.Key), s.root)
		if !ok || key <= startAfter {
			continue // not ours, or a server that ignored StartAfter
		}
		page.Objects = append(page.Objects, objstore.ObjectInfo{
			Key: key, Size: aws.ToInt64(obj.Size), LastModified: aws.ToTime(obj.LastModified),
		})
	}
	if len(page.Objects) > limit {
		page.Objects, page.More = page.Objects[:limit], true
	} else {
		page.More = aws.ToBool(out.IsTruncated)
	}
	return page, nil
}
