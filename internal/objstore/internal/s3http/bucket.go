package s3http

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strings"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
)

// Failure is what the shared logic needs to know of a failed request. Each
// backend reads it out of its client library's errors (Bucket.Classify), so
// that the decisions taken on it are made once, here.
type Failure struct {
	// Code is the S3 error code ("NoSuchKey"); "" when there is none.
	Code string
	// Status is the HTTP status; 0 when no response came.
	Status int
}

// Settings are the configuration fields both backends take alike.
type Settings struct {
	// Endpoint is host:port; an http:// or https:// scheme decides Secure.
	Endpoint string
	// Secure selects https when Endpoint has no scheme.
	Secure bool
	// Bucket is the bucket's name.
	Bucket string
	// RootPath is the configured key prefix inside the bucket.
	RootPath string
}

// Bucket is one bucket (and root path) at one endpoint, with the logic the
// S3 backends build on it: key checks, error messages, the mapping of S3
// errors to the objstore sentinels, and which failed create-only puts may be
// retried. The backends differ only in the client library they drive; this
// is what keeps them alike. A Bucket is not modified after NewBucket and is
// safe for concurrent use.
type Bucket struct {
	// Label names the backend and starts every error message: "s3", "aws s3".
	Label string
	// Name is the bucket's name.
	Name string
	// Root is the key prefix of every object: "" or ending in "/".
	Root string
	// Host is the server's host:port; Secure selects TLS.
	Host   string
	Secure bool
	// Endpoint is the server's URL (scheme and Host), for messages.
	Endpoint string
	// Classify reads a failed request's error.
	Classify func(error) Failure
}

// NewBucket checks the settings and returns the Bucket a backend labelled
// label works on. Errors name the setting to fix.
func NewBucket(label string, set Settings, classify func(error) Failure) (*Bucket, error) {
	host, secure, err := ParseEndpoint(set.Endpoint, set.Secure)
	if err != nil {
		return nil, errors.Wrapf(err, "%s object store", label)
	}
	if set.Bucket == "" {
		return nil, errors.Newf("%s object store: no bucket configured: set storage.bucket", label)
	}
	root, err := RootPrefix(set.RootPath)
	if err != nil {
		return nil, errors.Wrapf(err, "%s object store: storage.rootPath", label)
	}
	scheme := "http://"
	if secure {
		scheme = "https://"
	}
	return &Bucket{
		Label: label, Name: set.Bucket, Root: root,
		Host: host, Secure: secure, Endpoint: scheme + host,
		Classify: classify,
	}, nil
}

// Wrap adds the backend, the operation and the key (or prefix) to err.
func (b *Bucket) Wrap(err error, op, key string) error {
	return errors.Wrapf(err, "%s %s %q", b.Label, op, key)
}

// ObjectName checks key and ctx before operation op and returns the
// object's name in the bucket. The key is checked first, so a malformed key
// is reported as such even on a cancelled context.
func (b *Bucket) ObjectName(ctx context.Context, op, key string) (string, error) {
	if err := objstore.ValidateKey(key); err != nil {
		return "", errors.Wrapf(err, "%s %s", b.Label, op)
	}
	if err := ctx.Err(); err != nil {
		return "", b.Wrap(err, op, key)
	}
	return b.Root + key, nil
}

// MapErr turns a client library's error into the objstore sentinels, with
// the operation and key; nil stays nil. Only a put maps 412 Precondition
// Failed to ErrAlreadyExists: elsewhere it is no statement about the key.
func (b *Bucket) MapErr(err error, op, key string) error {
	if err == nil {
		return nil
	}
	f := b.Classify(err)
	switch {
	case f.Code == "NoSuchBucket":
		return errors.Wrapf(walerr.Mark(err, objstore.ErrNotFound),
			"%s %s %q: bucket %q does not exist at %s", b.Label, op, key, b.Name, b.Endpoint)
	case f.Code == "NoSuchKey" || f.Code == "NotFound" || f.Status == http.StatusNotFound:
		return b.Wrap(walerr.Mark(err, objstore.ErrNotFound), op, key)
	case f.Code == "InvalidRange" || f.Status == http.StatusRequestedRangeNotSatisfiable:
		return b.Wrap(walerr.Mark(err, objstore.ErrInvalidRange), op, key)
	case op == "put" && (f.Code == "PreconditionFailed" || f.Status == http.StatusPreconditionFailed):
		return b.Wrap(walerr.Mark(err, objstore.ErrAlreadyExists), op, key)
	}
	return errors.Wrapf(err, "%s %s %q in bucket %q at %s", b.Label, op, key, b.Name, b.Endpoint)
}

// MapDeleteErr is MapErr for a delete, where a missing object is no error
// (objstore.Store.Delete).
func (b *Bucket) MapDeleteErr(err error, key string) error {
	if err != nil && b.Classify(err).Code == "NoSuchKey" {
		return nil
	}
	return b.MapErr(err, "delete", key)
}

// NotApplied reports whether a failed create-only put provably did not
// reach the store, so RetryCreateOnly may send it again: the connection was
// never made, or the server refused the request before acting on it (503
// SlowDown; 409 ConditionalRequestConflict, AWS's "a conflicting
// conditional operation is in progress, retry").
func (b *Bucket) NotApplied(err error) bool {
	if IsDialError(err) {
		return true
	}
	f := b.Classify(err)
	return f.Code == "SlowDown" || f.Code == "ConditionalRequestConflict" ||
		f.Status == http.StatusServiceUnavailable || f.Status == http.StatusConflict
}

// Ensure checks at Open that the bucket exists, through exists, and creates
// it with makeBucket when it does not and create is set. A bucket created
// meanwhile by someone else counts as created. Errors say what to check:
// the credentials, the endpoint, or storage.createBucket.
func (b *Bucket) Ensure(create bool, exists func() (bool, error), makeBucket func() error) error {
	ok, err := exists()
	if err != nil {
		return b.openErr(err)
	}
	if ok {
		return nil
	}
	if !create {
		return errors.Newf("bucket %q does not exist at %s: create it or set storage.createBucket: true", b.Name, b.Endpoint)
	}
	if err := makeBucket(); err != nil {
		switch b.Classify(err).Code {
		case "BucketAlreadyOwnedByYou", "BucketAlreadyExists":
			return nil
		}
		return errors.Wrapf(b.openErr(err), "create bucket %q", b.Name)
	}
	return nil
}

// openErr describes a failure to reach or use the bucket at Open, naming the
// setting most likely wrong.
func (b *Bucket) openErr(err error) error {
	f := b.Classify(err)
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return errors.Wrapf(err, "open %s object store at %s", b.Label, b.Endpoint)
	case deniedAccess(f):
		return errors.Wrapf(err, "object store at %s refused access to bucket %q: check storage.accessKeyID / storage.secretAccessKey", b.Endpoint, b.Name)
	case untrustedCertificate(err):
		return errors.Wrapf(err, "object store at %s presented a certificate that is not trusted: "+
			"check storage.tls.caFile (the CA that signed it) and that storage.endpoint is a name the certificate covers", b.Endpoint)
	case f.Status == 0:
		return errors.Wrapf(err, "cannot reach object store at %s: check storage.endpoint and that the server runs", b.Endpoint)
	default:
		return errors.Wrapf(err, "open %s object store at %s, bucket %q", b.Label, b.Endpoint, b.Name)
	}
}

// untrustedCertificate reports whether err is a failure to verify the
// server's TLS certificate: signed by an unknown CA, for another name, or
// invalid.
func untrustedCertificate(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid)
}

// deniedAccess reports whether the server refused the credentials.
func deniedAccess(f Failure) bool {
	switch f.Code {
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied":
		return true
	}
	return f.Status == http.StatusForbidden || f.Status == http.StatusUnauthorized
}

// MaxListKeys is the largest page S3 returns.
const MaxListKeys = 1000

// ListLimit checks a listing's prefix and ctx and returns the page size to
// ask for: limit, or MaxListKeys when limit is <= 0 or larger.
func (b *Bucket) ListLimit(ctx context.Context, prefix string, limit int) (int, error) {
	if err := objstore.ValidatePrefix(prefix); err != nil {
		return 0, errors.Wrapf(err, "%s list", b.Label)
	}
	if err := ctx.Err(); err != nil {
		return 0, b.Wrap(err, "list", prefix)
	}
	if limit <= 0 || limit > MaxListKeys {
		limit = MaxListKeys
	}
	return limit, nil
}

// ListedKey turns an object name from a listing into its key. ok is false
// for a name outside the root path, and for a key not after startAfter
// (from a server that ignored StartAfter): the listing skips both.
func (b *Bucket) ListedKey(name, startAfter string) (key string, ok bool) {
	key, ok = strings.CutPrefix(name, b.Root)
	return key, ok && key > startAfter
}
