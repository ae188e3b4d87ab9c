// Package s3http holds what the two S3 backends (s3store on minio-go,
// awss3 on aws-sdk-go-v2) share, so that they behave alike: an HTTP
// transport tuned for many parallel uploads, endpoint and root-path parsing,
// the retry policy for create-only puts, and (Bucket) key checks, error
// messages, the mapping of S3 errors to the objstore sentinels, and the edge
// cases of range reads. Each backend keeps only the calls into its client
// library.
package s3http

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
)

// NewTransport returns an HTTP transport for one S3 endpoint, sized so that
// dozens of concurrent uploads each keep a warm connection: the standard
// library keeps only 2 idle connections per host by default, so parallel
// PUTs would otherwise open and close a TCP connection per request.
// Responses are not decompressed (objects are opaque bytes).
// tlsConfig, when set, replaces the default client TLS settings (a private
// CA, or skipping verification for a test server).
func NewTransport(secure bool, tlsConfig *tls.Config) *http.Transport {
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		// Counted from the end of the request body, so a large upload is
		// not cut short; the server only needs to persist and answer.
		ResponseHeaderTimeout: 2 * time.Minute,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		WriteBufferSize:       128 << 10,
		ReadBufferSize:        128 << 10,
	}
	if secure {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if tlsConfig != nil {
			tr.TLSClientConfig = tlsConfig.Clone()
		}
	}
	return tr
}

// ParseEndpoint accepts "host:port", "http://host:port" or
// "https://host:port" and returns host:port and whether to use TLS (a
// scheme overrides secure).
func ParseEndpoint(endpoint string, secure bool) (hostPort string, useTLS bool, err error) {
	e := strings.TrimSpace(endpoint)
	switch {
	case strings.HasPrefix(e, "https://"):
		e, secure = strings.TrimPrefix(e, "https://"), true
	case strings.HasPrefix(e, "http://"):
		e, secure = strings.TrimPrefix(e, "http://"), false
	}
	e = strings.TrimSuffix(e, "/")
	if e == "" {
		return "", false, errors.New("no endpoint configured: set storage.endpoint to host:port")
	}
	if strings.ContainsAny(e, "/?#") {
		return "", false, errors.Newf("endpoint %q: want host:port, without a path", endpoint)
	}
	return e, secure, nil
}

// RootPrefix turns a configured root path ("a/b", "/a/b/", "") into the key
// prefix of every object ("a/b/", "").
func RootPrefix(rootPath string) (string, error) {
	r := strings.Trim(rootPath, "/")
	if r == "" {
		return "", nil
	}
	if err := objstore.ValidateKey(r); err != nil {
		return "", errors.Wrapf(err, "root path %q", rootPath)
	}
	return r + "/", nil
}

// CreateOnlyAttempts bounds how often a create-only put is tried.
const CreateOnlyAttempts = 5

// RetryCreateOnly runs attempt until it succeeds, fails with an error
// notApplied does not accept, or CreateOnlyAttempts are used up.
//
// Create-only puts are sent without the client library's own retries: a
// retry of a put whose first attempt did reach the store (its answer was
// lost) would come back "already exists" for an object this very put
// created, turning an unknown outcome into a false "someone else holds the
// slot". So only failures that prove the request was not applied (the
// connection was never made, the server refused it before acting) are
// retried here; any other error goes to the caller as it is, an unknown
// outcome.
func RetryCreateOnly(ctx context.Context, attempt func() error, notApplied func(error) bool) error {
	backoff := 20 * time.Millisecond
	for i := 1; ; i++ {
		err := attempt()
		if err == nil || i >= CreateOnlyAttempts || !notApplied(err) || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return errors.CombineErrors(err, ctx.Err())
		}
		backoff *= 2
	}
}

// IsDialError reports whether err is a failure to connect, which proves the
// request never reached the server.
func IsDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// Config says which bucket to use and how to reach it. Both S3 backends
// take it (as their own Config alias), so they cannot drift apart.
type Config struct {
	// Endpoint is host:port; an http:// or https:// scheme is accepted
	// and decides Secure.
	Endpoint string
	// AccessKey and SecretKey are static credentials.
	AccessKey, SecretKey string
	Bucket               string
	// Region to sign for; what empty means is up to the backend.
	Region string
	// Secure selects https.
	Secure bool
	// RootPath is a key prefix inside the bucket under which every object
	// of this store lives ("" for the bucket's top level).
	RootPath string
	// CreateBucket makes Open create a missing bucket instead of failing.
	CreateBucket bool
	// TLS, when set, is the client TLS configuration used with Secure.
	TLS *tls.Config
}
