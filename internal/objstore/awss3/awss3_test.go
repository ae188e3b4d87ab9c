package awss3_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/awss3"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/conformance"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/internal/wiretest"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func config(srv testenv.S3, bucket, root string) awss3.Config {
	return awss3.Config{
		Endpoint:  srv.Endpoint,
		AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey,
		Secure:    srv.Secure,
		Region:    srv.Region,
		Bucket:    bucket,
		RootPath:  root,
	}
}

func open(t *testing.T, cfg awss3.Config) *awss3.Store {
	t.Helper()
	s, err := awss3.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestConformanceMinIO runs the suite through the AWS SDK against MinIO,
// each subtest under its own root path in one bucket.
func TestConformanceMinIO(t *testing.T) {
	srv := testenv.MinIO(t)
	bucket := testenv.NewBucket(t, srv)
	conformance.Run(t, func(t *testing.T) objstore.Store {
		return open(t, config(srv, bucket, testenv.UniquePrefix(t)))
	}, conformance.Capabilities{ConditionalWrites: true})
}

// TestConformanceVersityGW runs the suite through the AWS SDK against
// versitygw, each subtest in a bucket of its own.
func TestConformanceVersityGW(t *testing.T) {
	srv := testenv.VersityGW(t)
	conformance.Run(t, func(t *testing.T) objstore.Store {
		return open(t, config(srv, testenv.NewBucket(t, srv), ""))
	}, conformance.Capabilities{ConditionalWrites: true})
}

func TestOpenErrors(t *testing.T) {
	srv := testenv.MinIO(t)
	existing := testenv.NewBucket(t, srv)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	wrongKey := config(srv, existing, "")
	wrongKey.SecretKey = "not-the-secret"
	unreachable := config(srv, existing, "")
	unreachable.Endpoint = "127.0.0.1:1"

	cases := []struct {
		name    string
		cfg     awss3.Config
		wantMsg string
	}{
		{"missing bucket", config(srv, "wp-no-such-bucket-at-all", ""), "does not exist"},
		{"wrong secret", wrongKey, "refused access"},
		{"unreachable", unreachable, "cannot reach"},
		{"no bucket", config(srv, "", ""), "no bucket"},
		{"no endpoint", awss3.Config{Bucket: "b"}, "no endpoint"},
		{"bad root path", config(srv, existing, "/a//b"), "root path"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := awss3.Open(ctx, c.cfg)
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

func TestOpenCreatesBucket(t *testing.T) {
	srv := testenv.MinIO(t)
	p := testenv.UniquePrefix(t)
	cfg := config(srv, "wp-aws-created-"+p[len(p)-12:], "")
	cfg.CreateBucket = true
	s := open(t, cfg)
	if err := s.Put(t.Context(), "k", []byte("v"), objstore.PutOptions{IfNotExists: true}); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, cfg)
	got, err := s2.Get(t.Context(), "k")
	if err != nil || string(got) != "v" {
		t.Fatalf("get through a second store: %q, %v", got, err)
	}
}

// TestWire checks what goes over the wire, through a recording proxy in
// front of MinIO: single PUTs with unsigned, unhashed payloads (also for
// objects above multipart thresholds), If-None-Match: * on create-only puts
// only, and no retry of a refused create-only put.
func TestWire(t *testing.T) {
	srv := testenv.MinIO(t)
	if srv.Secure {
		t.Skip("the recording proxy speaks plain HTTP; this server uses TLS")
	}
	bucket := testenv.NewBucket(t, srv)
	proxy := wiretest.NewProxy(t, srv.Endpoint)
	cfg := config(srv, bucket, "wire")
	cfg.Endpoint = proxy.Endpoint
	s := open(t, cfg)
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

// TestLostResponse: when a put reaches the store but its answer is lost, a
// plain put is retried (harmless), while a create-only put is not: a retry
// would come back "already exists" for the object this very put created.
// The caller gets an error that is not ErrAlreadyExists: an unknown
// outcome.
func TestLostResponse(t *testing.T) {
	srv := testenv.MinIO(t)
	if srv.Secure {
		t.Skip("the recording proxy speaks plain HTTP; this server uses TLS")
	}
	proxy := wiretest.NewProxy(t, srv.Endpoint)
	cfg := config(srv, testenv.NewBucket(t, srv), "lost")
	cfg.Endpoint = proxy.Endpoint
	s := open(t, cfg)
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
