// Package s3test is the test suite both S3 backends (s3store on minio-go,
// awss3 on aws-sdk-go-v2) run against the real servers of testenv: the
// conformance suite on MinIO and on versitygw, Open's checks and errors,
// root-path isolation, and what goes over the wire (through a wiretest
// proxy). The backends promise the same behaviour, so one suite holds the
// test bodies and each backend's tests only say how to open a store:
//
//	func TestS3(t *testing.T) {
//		s3test.Run(t, s3test.Backend{Name: "awss3", Open: func(ctx context.Context, cfg s3test.Config) (s3test.Store, error) {
//			return awss3.Open(ctx, cfg)
//		}})
//	}
//
// The package that calls Run declares func TestMain(m *testing.M) {
// testenv.Main(m) }, since the suite uses testenv's shared servers.
package s3test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/conformance"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/internal/s3http"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/internal/wiretest"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
)

// Config is the configuration both backends take.
type Config = s3http.Config

// Store is what the suite needs of a backend's store.
type Store interface {
	objstore.Store
	Close() error
}

// Backend is one S3 backend under test.
type Backend struct {
	// Name goes into bucket names: lowercase letters and digits, short.
	Name string
	// Open is the backend's Open. The suite uses the Store only when the
	// error is nil.
	Open func(ctx context.Context, cfg Config) (Store, error)
}

// Run runs the suite as subtests of t. Each subtest gets its own bucket or
// root path, so they may share the servers.
func Run(t *testing.T, b Backend) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, b Backend)
	}{
		{"ConformanceMinIO", testConformanceMinIO},
		{"ConformanceVersityGW", testConformanceVersityGW},
		{"OpenErrors", testOpenErrors},
		{"OpenCreatesBucket", testOpenCreatesBucket},
		{"RootPathIsolation", testRootPathIsolation},
		{"Wire", testWire},
		{"LostResponse", testLostResponse},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, b) })
	}
}

// config says how to reach bucket, under root, on srv.
func config(srv testenv.S3, bucket, root string) Config {
	return Config{
		Endpoint:  srv.Endpoint,
		AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey,
		Secure:    srv.Secure,
		Region:    srv.Region,
		Bucket:    bucket,
		RootPath:  root,
	}
}

// open opens a store that is closed at t.Cleanup, failing the test on error.
func (b Backend) open(t *testing.T, cfg Config) Store {
	t.Helper()
	s, err := b.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// testConformanceMinIO runs the conformance suite against MinIO, each
// subtest under its own root path in one bucket.
func testConformanceMinIO(t *testing.T, b Backend) {
	srv := testenv.MinIO(t)
	bucket := testenv.NewBucket(t, srv)
	conformance.Run(t, func(t *testing.T) objstore.Store {
		return b.open(t, config(srv, bucket, testenv.UniquePrefix(t)))
	}, conformance.Capabilities{ConditionalWrites: true})
}

// testConformanceVersityGW runs the conformance suite against versitygw,
// each subtest in a bucket of its own, at the bucket's top level.
func testConformanceVersityGW(t *testing.T, b Backend) {
	srv := testenv.VersityGW(t)
	conformance.Run(t, func(t *testing.T) objstore.Store {
		return b.open(t, config(srv, testenv.NewBucket(t, srv), ""))
	}, conformance.Capabilities{ConditionalWrites: true})
}

// testOpenErrors checks that Open fails with a message naming what to fix.
func testOpenErrors(t *testing.T, b Backend) {
	srv := testenv.MinIO(t)
	existing := testenv.NewBucket(t, srv)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	wrongKey := config(srv, existing, "")
	wrongKey.SecretKey = "not-the-secret"
	// Nothing listens on port 1.
	unreachable := config(srv, existing, "")
	unreachable.Endpoint = "127.0.0.1:1"

	cases := []struct {
		name    string
		cfg     Config
		wantMsg string
	}{
		{"missing bucket", config(srv, "wp-no-such-bucket-at-all", ""), "does not exist"},
		{"wrong secret", wrongKey, "refused access"},
		{"unreachable", unreachable, "cannot reach"},
		{"no bucket", config(srv, "", ""), "no bucket"},
		{"no endpoint", Config{Bucket: "b"}, "no endpoint"},
		{"endpoint with path", Config{Endpoint: "http://h:1/x", Bucket: "b"}, "without a path"},
		{"root path with a dot-dot segment", config(srv, existing, "a/../b"), "root path"},
		{"root path with an empty segment", config(srv, existing, "/a//b"), "root path"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := b.Open(ctx, c.cfg)
			if err == nil {
				_ = s.Close()
				t.Fatalf("open succeeded, want an error mentioning %q", c.wantMsg)
			}
			if !strings.Contains(err.Error(), c.wantMsg) {
				t.Fatalf("open: %v\nwant it to mention %q", err, c.wantMsg)
			}
		})
	}
}

// testOpenCreatesBucket checks that Open with CreateBucket creates a
// missing bucket, and that opening again finds it there.
func testOpenCreatesBucket(t *testing.T, b Backend) {
	srv := testenv.MinIO(t)
	for _, where := range []struct{ name, root string }{{"top level", ""}, {"under a root path", "root"}} {
		t.Run(where.name, func(t *testing.T) {
			p := testenv.UniquePrefix(t)
			cfg := config(srv, "wp-"+b.Name+"-created-"+p[len(p)-12:], where.root)
			cfg.CreateBucket = true
			s := b.open(t, cfg)
			if err := s.Put(t.Context(), "k", []byte("v"), objstore.PutOptions{IfNotExists: true}); err != nil {
				t.Fatal(err)
			}
			// Opening again with CreateBucket finds it there.
			s2 := b.open(t, cfg)
			got, err := s2.Get(t.Context(), "k")
			if err != nil || string(got) != "v" {
				t.Fatalf("get through a second store: %q, %v", got, err)
			}
		})
	}
}

// testRootPathIsolation checks that stores with different root paths in
// one bucket see only their own objects.
func testRootPathIsolation(t *testing.T, b Backend) {
	srv := testenv.MinIO(t)
	bucket := testenv.NewBucket(t, srv)
	tenantA := b.open(t, config(srv, bucket, "/tenant-a/"))
	tenantAB := b.open(t, config(srv, bucket, "tenant-a-b"))
	top := b.open(t, config(srv, bucket, ""))
	ctx := t.Context()
	for _, s := range []Store{tenantA, tenantAB} {
		if err := s.Put(ctx, "x/1", []byte("1"), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := tenantA.List(ctx, "", "", 0)
	if err != nil || len(page.Objects) != 1 || page.Objects[0].Key != "x/1" {
		t.Fatalf("list in tenant-a: %+v, %v", page, err)
	}
	all, err := objstore.ListAll(ctx, top, "", "")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range all {
		keys = append(keys, o.Key)
	}
	if strings.Join(keys, ",") != "tenant-a-b/x/1,tenant-a/x/1" {
		t.Fatalf("bucket holds %v", keys)
	}
	if _, err := tenantAB.Get(ctx, "1"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("get outside root: %v", err)
	}
}

// proxied opens a store on a new bucket of the shared MinIO, under root,
// through a recording proxy. The test is skipped when MinIO speaks TLS,
// which the proxy does not.
func (b Backend) proxied(t *testing.T, root string) (Store, *wiretest.Proxy) {
	t.Helper()
	srv := testenv.MinIO(t)
	if srv.Secure {
		t.Skip("the recording proxy speaks plain HTTP; this server uses TLS")
	}
	bucket := testenv.NewBucket(t, srv)
	proxy := wiretest.NewProxy(t, srv.Endpoint)
	cfg := config(srv, bucket, root)
	cfg.Endpoint = proxy.Endpoint
	return b.open(t, cfg), proxy
}

// testWire checks what goes over the wire, through a recording proxy in
// front of MinIO: single PUTs with unsigned, unhashed payloads (also for
// objects above multipart thresholds), If-None-Match: * on create-only puts
// only, and no retry of a refused create-only put.
func testWire(t *testing.T, b Backend) {
	s, proxy := b.proxied(t, "wire")
	ctx := t.Context()

	large := make([]byte, 20<<20) // above minio-go's 16 MiB part size
	puts := []struct {
		key  string
		data []byte
		opts objstore.PutOptions
	}{
		{"plain/small", []byte("small"), objstore.PutOptions{}},
		{"plain/large", large, objstore.PutOptions{}},
		{"co/small", []byte("small"), objstore.PutOptions{IfNotExists: true}},
		{"co/large", large, objstore.PutOptions{IfNotExists: true}},
	}
	for _, p := range puts {
		if err := s.Put(ctx, p.key, p.data, p.opts); err != nil {
			t.Fatalf("put %q: %v", p.key, err)
		}
	}
	isCreateOnly := func(path string) bool { return strings.Contains(path, "/wire/co/") }
	if n := wiretest.CheckPuts(t, proxy.Requests(), isCreateOnly); n != len(puts) {
		t.Fatalf("saw %d object PUTs, want %d", n, len(puts))
	}

	proxy.Reset()
	err := s.Put(ctx, "co/small", []byte("again"), objstore.PutOptions{IfNotExists: true})
	if !errors.Is(err, objstore.ErrAlreadyExists) {
		t.Fatalf("second create-only put: %v, want ErrAlreadyExists", err)
	}
	if n := wiretest.CheckPuts(t, proxy.Requests(), isCreateOnly); n != 1 {
		t.Fatalf("a refused create-only put took %d requests, want 1 (no retries)", n)
	}
}

// testLostResponse: when a put reaches the store but its answer is lost, a
// plain put is retried (harmless), while a create-only put is not: a retry
// would come back "already exists" for the object this very put created.
// The caller gets an error that is not ErrAlreadyExists: an unknown
// outcome.
func testLostResponse(t *testing.T, b Backend) {
	s, proxy := b.proxied(t, "lost")
	ctx := t.Context()
	isPut := func(r *http.Request) bool { return r.Method == http.MethodPut }
	countPuts := func() int {
		return wiretest.CheckPuts(t, proxy.Requests(), func(path string) bool { return strings.HasSuffix(path, "/create-only") })
	}

	proxy.LoseResponses(isPut, 1)
	if err := s.Put(ctx, "plain", []byte("p"), objstore.PutOptions{}); err != nil {
		t.Fatalf("plain put with one lost response: %v, want success after a retry", err)
	}
	if n := countPuts(); n != 2 {
		t.Fatalf("plain put took %d requests, want 2 (one retry)", n)
	}

	proxy.Reset()
	proxy.LoseResponses(isPut, 1)
	err := s.Put(ctx, "create-only", []byte("c"), objstore.PutOptions{IfNotExists: true})
	if err == nil || errors.Is(err, objstore.ErrAlreadyExists) {
		t.Fatalf("create-only put with a lost response: err = %v, want an error other than ErrAlreadyExists", err)
	}
	if n := countPuts(); n != 1 {
		t.Fatalf("create-only put took %d requests, want 1 (no retry)", n)
	}
	if got, err := s.Get(ctx, "create-only"); err != nil || string(got) != "c" {
		t.Fatalf("the put did land: get = %q, %v", got, err)
	}
}
