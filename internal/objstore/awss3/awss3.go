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
	"net/http"

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
const DefaultListLimit = s3http.MaxListKeys

// DefaultRegion is used when Config.Region is empty.
const DefaultRegion = "us-east-1"

// Config says which bucket to use and how to reach it; an empty Region
// means DefaultRegion.
type Config = s3http.Config

// Store is an objstore.Store on one bucket (and root path). It is safe for
// concurrent use. Close releases its idle connections.
type Store struct {
	cli    *s3.Client
	tr     *http.Transport
	b      *s3http.Bucket
	region string
}

var _ objstore.Store = (*Store)(nil)

// New returns a store for cfg without contacting the server; Open also
// checks that the server answers and the bucket exists.
func New(cfg Config) (*Store, error) {
	b, err := s3http.NewBucket("aws s3", s3http.Settings{
		Endpoint: cfg.Endpoint, Secure: cfg.Secure, Bucket: cfg.Bucket, RootPath: cfg.RootPath,
	}, classify)
	if err != nil {
		return nil, err
	}
	region := cfg.Region
	if region == "" {
		region = DefaultRegion
	}
	tr := s3http.NewTransport(b.Secure, cfg.TLS)
	cli := s3.New(s3.Options{
		BaseEndpoint: aws.String(b.Endpoint),
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
	return &Store{cli: cli, tr: tr, b: b, region: region}, nil
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
		return s.bucketExists(ctx)
	}, func() error {
		return s.createBucket(ctx)
	})
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// bucketExists asks with HeadBucket, where 404 means no bucket.
func (s *Store) bucketExists(ctx context.Context) (bool, error) {
	_, err := s.cli.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.b.Name)})
	switch {
	case err == nil:
		return true, nil
	case classify(err).Status == http.StatusNotFound:
		return false, nil
	}
	return false, err
}

// createBucket creates the bucket in the store's region (us-east-1 takes no
// location constraint).
func (s *Store) createBucket(ctx context.Context) error {
	in := &s3.CreateBucketInput{Bucket: aws.String(s.b.Name)}
	if s.region != DefaultRegion {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(s.region),
		}
	}
	_, err := s.cli.CreateBucket(ctx, in)
	return err
}

// Close closes idle connections. It is idempotent; the store stays usable.
func (s *Store) Close() error {
	s.tr.CloseIdleConnections()
	return nil
}

// classify reads the S3 error code and the HTTP status (0 when no response
// came) out of an SDK error.
func classify(err error) s3http.Failure {
	var f s3http.Failure
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		f.Status = re.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		f.Code = ae.ErrorCode()
	}
	return f
}

// contentLength is a response's announced body length, -1 when unknown.
func contentLength(n *int64) int64 {
	if n == nil {
		return -1
	}
	return *n
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
	name, err := s.b.ObjectName(ctx, "put", key)
	if err != nil {
		return err
	}
	in := func() *s3.PutObjectInput {
		return &s3.PutObjectInput{
			Bucket:        aws.String(s.b.Name),
			Key:           aws.String(name),
			Body:          bytes.NewReader(data),
			ContentLength: aws.Int64(int64(len(data))),
			ContentType:   aws.String("application/octet-stream"),
		}
	}
	if !opts.IfNotExists {
		_, err := s.cli.PutObject(ctx, in(), unsignedPayload)
		return s.b.MapErr(err, "put", key)
	}
	err = s3http.RetryCreateOnly(ctx, func() error {
		req := in()
		req.IfNoneMatch = aws.String("*")
		_, err := s.cli.PutObject(ctx, req, unsignedPayload, noRetries)
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
	out, err := s.cli.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.b.Name), Key: aws.String(name)})
	if err != nil {
		return nil, s.b.MapErr(err, "get", key)
	}
	return s.b.ReadBody(out.Body, contentLength(out.ContentLength), "get", key)
}

// GetRange implements objstore.Store.
func (s *Store) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	return s.b.GetRange(ctx, key, offset, length, s.getRange, s.Stat)
}

// getRange is the ranged GET behind GetRange (an s3http.RangeGetter).
func (s *Store) getRange(ctx context.Context, name, key string, first, last int64) (s3http.Body, error) {
	out, err := s.cli.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.b.Name),
		Key:    aws.String(name),
		Range:  aws.String(s3http.RangeHeader(first, last)),
	})
	if err != nil {
		return s3http.Body{}, s.b.MapErr(err, "get range", key)
	}
	return s3http.Body{
		ReadCloser: out.Body,
		Size:       contentLength(out.ContentLength),
		Ranged:     aws.ToString(out.ContentRange) != "",
	}, nil
}

// Stat implements objstore.Store.
func (s *Store) Stat(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	name, err := s.b.ObjectName(ctx, "stat", key)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	out, err := s.cli.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.b.Name), Key: aws.String(name)})
	if err != nil {
		return objstore.ObjectInfo{}, s.b.MapErr(err, "stat", key)
	}
	return objstore.ObjectInfo{Key: key, Size: aws.ToInt64(out.ContentLength), LastModified: aws.ToTime(out.LastModified)}, nil
}

// Delete implements objstore.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	name, err := s.b.ObjectName(ctx, "delete", key)
	if err != nil {
		return err
	}
	_, err = s.cli.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.b.Name), Key: aws.String(name)})
	return s.b.MapDeleteErr(err, key)
}

// List implements objstore.Store with one ListObjectsV2 request.
func (s *Store) List(ctx context.Context, prefix, startAfter string, limit int) (objstore.ListPage, error) {
	limit, err := s.b.ListLimit(ctx, prefix, limit)
	if err != nil {
		return objstore.ListPage{}, err
	}
	in := &s3.ListObjectsV2Input{
		Bucket: aws.String(s.b.Name),
		Prefix: aws.String(s.b.Root + prefix),
		// One more than the page, when S3 allows, to learn whether there
		// is more without trusting IsTruncated alone.
		MaxKeys: aws.Int32(int32(min(limit+1, DefaultListLimit))),
	}
	if startAfter != "" {
		in.StartAfter = aws.String(s.b.Root + startAfter)
	}
	out, err := s.cli.ListObjectsV2(ctx, in)
	if err != nil {
		return objstore.ListPage{}, s.b.MapErr(err, "list", prefix)
	}
	var page objstore.ListPage
	for _, obj := range out.Contents {
		if key, ok := s.b.ListedKey(aws.ToString(obj.Key), startAfter); ok {
			page.Objects = append(page.Objects, objstore.ObjectInfo{
				Key: key, Size: aws.ToInt64(obj.Size), LastModified: aws.ToTime(obj.LastModified),
			})
		}
	}
	if len(page.Objects) > limit {
		page.Objects, page.More = page.Objects[:limit], true
	} else {
		page.More = aws.ToBool(out.IsTruncated)
	}
	return page, nil
}
