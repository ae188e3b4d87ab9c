package s3http

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
)

// failure is an error that carries its own Failure, for a test Classify.
type failure struct{ f Failure }

func (e failure) Error() string { return e.f.Code }

func testBucket(t *testing.T) *Bucket {
	t.Helper()
	b, err := NewBucket("test s3", Settings{Endpoint: "h:1", Bucket: "b", RootPath: "root"}, func(err error) Failure {
		var f failure
		errors.As(err, &f)
		return f.f
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNewBucket(t *testing.T) {
	b := testBucket(t)
	if b.Root != "root/" || b.Host != "h:1" || b.Secure || b.Endpoint != "http://h:1" {
		t.Errorf("NewBucket = %+v", b)
	}
	for _, c := range []struct {
		set     Settings
		wantMsg string
	}{
		{Settings{Bucket: "b"}, "test s3 object store: no endpoint"},
		{Settings{Endpoint: "h:1"}, "test s3 object store: no bucket"},
		{Settings{Endpoint: "h:1", Bucket: "b", RootPath: "a/../b"}, "storage.rootPath"},
	} {
		if _, err := NewBucket("test s3", c.set, nil); err == nil || !strings.Contains(err.Error(), c.wantMsg) {
			t.Errorf("NewBucket(%+v) = %v, want an error mentioning %q", c.set, err, c.wantMsg)
		}
	}
}

func TestMapErr(t *testing.T) {
	b := testBucket(t)
	cases := []struct {
		op   string
		f    Failure
		want error // nil: none of the sentinels
	}{
		{"get", Failure{Code: "NoSuchBucket", Status: 404}, objstore.ErrNotFound},
		{"get", Failure{Code: "NoSuchKey", Status: 404}, objstore.ErrNotFound},
		{"stat", Failure{Code: "NotFound"}, objstore.ErrNotFound},
		{"stat", Failure{Status: 404}, objstore.ErrNotFound},
		{"get range", Failure{Code: "InvalidRange"}, objstore.ErrInvalidRange},
		{"get range", Failure{Status: 416}, objstore.ErrInvalidRange},
		{"put", Failure{Code: "PreconditionFailed", Status: 412}, objstore.ErrAlreadyExists},
		{"get", Failure{Code: "PreconditionFailed", Status: 412}, nil},
		{"put", Failure{Code: "SlowDown", Status: 503}, nil},
	}
	for _, c := range cases {
		err := b.MapErr(failure{c.f}, c.op, "k")
		for _, sentinel := range []error{objstore.ErrNotFound, objstore.ErrInvalidRange, objstore.ErrAlreadyExists} {
			if got := errors.Is(err, sentinel); got != (sentinel == c.want) {
				t.Errorf("MapErr(%+v, %s) = %v: errors.Is(%v) = %v", c.f, c.op, err, sentinel, got)
			}
		}
		if !strings.HasPrefix(err.Error(), `test s3 `+c.op+` "k"`) {
			t.Errorf("MapErr(%+v, %s) = %q: want it to start with the backend, operation and key", c.f, c.op, err)
		}
	}
	if err := b.MapErr(nil, "get", "k"); err != nil {
		t.Errorf("MapErr(nil) = %v", err)
	}
	if err := b.MapDeleteErr(failure{Failure{Code: "NoSuchKey", Status: 404}}, "k"); err != nil {
		t.Errorf("MapDeleteErr(NoSuchKey) = %v, want nil", err)
	}
	if err := b.MapDeleteErr(failure{Failure{Code: "AccessDenied", Status: 403}}, "k"); err == nil {
		t.Error("MapDeleteErr(AccessDenied) = nil, want an error")
	}
}

func TestNotApplied(t *testing.T) {
	b := testBucket(t)
	cases := []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{failure{Failure{Code: "SlowDown", Status: 503}}, true},
		{failure{Failure{Status: 503}}, true},
		{failure{Failure{Code: "ConditionalRequestConflict", Status: 409}}, true},
		{failure{Failure{Code: "InternalError", Status: 500}}, false},
		{failure{Failure{Code: "PreconditionFailed", Status: 412}}, false},
		{&net.OpError{Op: "read", Err: errors.New("connection reset")}, false},
	}
	for _, c := range cases {
		if got := b.NotApplied(c.err); got != c.want {
			t.Errorf("NotApplied(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestEnsureErrors(t *testing.T) {
	b := testBucket(t)
	exists := func(ok bool, err error) func() (bool, error) {
		return func() (bool, error) { return ok, err }
	}
	made := func(err error) func() error { return func() error { return err } }
	cases := []struct {
		name    string
		create  bool
		exists  func() (bool, error)
		make    func() error
		wantMsg string // "" for success
	}{
		{"exists", false, exists(true, nil), nil, ""},
		{"missing", false, exists(false, nil), nil, "does not exist"},
		{"created", true, exists(false, nil), made(nil), ""},
		{"created meanwhile", true, exists(false, nil), made(failure{Failure{Code: "BucketAlreadyOwnedByYou", Status: 409}}), ""},
		{"create refused", true, exists(false, nil), made(failure{Failure{Code: "AccessDenied", Status: 403}}), "create bucket"},
		{"denied", false, exists(false, failure{Failure{Status: 403}}), nil, "refused access"},
		{"unauthorized", false, exists(false, failure{Failure{Status: 401}}), nil, "refused access"},
		{"bad signature", false, exists(false, failure{Failure{Code: "SignatureDoesNotMatch", Status: 400}}), nil, "refused access"},
		{"unreachable", false, exists(false, errors.New("connection refused")), nil, "cannot reach"},
		{"untrusted certificate", false, exists(false, &url.Error{Op: "Head", URL: "https://b/", Err: &tls.CertificateVerificationError{
			Err: x509.UnknownAuthorityError{}}}), nil, "storage.tls.caFile"},
		{"certificate for another name", false, exists(false, &url.Error{Op: "Head", URL: "https://b/", Err: x509.HostnameError{
			Certificate: &x509.Certificate{}, Host: "b"}}), nil, "a name the certificate covers"},
		{"cancelled", false, exists(false, context.Canceled), nil, "open test s3 object store"},
		{"other", false, exists(false, failure{Failure{Code: "InternalError", Status: 500}}), nil, `bucket "b"`},
	}
	for _, c := range cases {
		err := b.Ensure(c.create, c.exists, c.make)
		if c.wantMsg == "" {
			if err != nil {
				t.Errorf("%s: Ensure = %v, want nil", c.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.wantMsg) {
			t.Errorf("%s: Ensure = %v, want an error mentioning %q", c.name, err, c.wantMsg)
		}
	}
}

func TestListHelpers(t *testing.T) {
	b := testBucket(t)
	for in, want := range map[int]int{0: MaxListKeys, -1: MaxListKeys, 5: 5, MaxListKeys + 1: MaxListKeys} {
		if got, err := b.ListLimit(t.Context(), "p/", in); err != nil || got != want {
			t.Errorf("ListLimit(%d) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := b.ListLimit(t.Context(), "/abs", 0); !errors.Is(err, objstore.ErrInvalidKey) {
		t.Errorf("ListLimit(/abs) = %v, want ErrInvalidKey", err)
	}
	for _, c := range []struct {
		name, startAfter, key string
		ok                    bool
	}{
		{"root/a", "", "a", true},
		{"root/b", "a", "b", true},
		{"root/a", "a", "a", false},
		{"other/a", "", "", false},
	} {
		if key, ok := b.ListedKey(c.name, c.startAfter); ok != c.ok || (ok && key != c.key) {
			t.Errorf("ListedKey(%q, %q) = %q, %v; want %q, %v", c.name, c.startAfter, key, ok, c.key, c.ok)
		}
	}
}

// fakeObject answers GetRange's requests for one object of data, as a
// server that honours Range headers or (wholeObject) one that ignores them.
type fakeObject struct {
	data        []byte
	wholeObject bool
}

func (o fakeObject) get(_ context.Context, _, _ string, first, last int64) (Body, error) {
	if first >= int64(len(o.data)) {
		return Body{}, walerr.Mark(errors.New("range not satisfiable"), objstore.ErrInvalidRange)
	}
	if o.wholeObject {
		return Body{ReadCloser: io.NopCloser(strings.NewReader(string(o.data))), Size: int64(len(o.data))}, nil
	}
	part := o.data[first:min(last+1, int64(len(o.data)))]
	return Body{ReadCloser: io.NopCloser(strings.NewReader(string(part))), Size: int64(len(part)), Ranged: true}, nil
}

func (o fakeObject) stat(_ context.Context, key string) (objstore.ObjectInfo, error) {
	return objstore.ObjectInfo{Key: key, Size: int64(len(o.data))}, nil
}

func TestGetRange(t *testing.T) {
	b := testBucket(t)
	cases := []struct {
		offset, length int64
		want           string
		wantErr        error
	}{
		{0, 3, "012", nil},
		{7, 5, "789", nil},
		{2, math.MaxInt64, "23456789", nil},
		{10, 1, "", nil},
		{10, 0, "", nil},
		{11, 1, "", objstore.ErrInvalidRange},
		{-1, 1, "", objstore.ErrInvalidRange},
	}
	for _, whole := range []bool{false, true} {
		o := fakeObject{data: []byte("0123456789"), wholeObject: whole}
		for _, c := range cases {
			got, err := b.GetRange(t.Context(), "k", c.offset, c.length, o.get, o.stat)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Errorf("whole object %v: GetRange(%d, %d) = %q, %v; want %v", whole, c.offset, c.length, got, err, c.wantErr)
				}
				continue
			}
			if err != nil || string(got) != c.want {
				t.Errorf("whole object %v: GetRange(%d, %d) = %q, %v; want %q", whole, c.offset, c.length, got, err, c.want)
			}
		}
	}
}

func TestReadBody(t *testing.T) {
	b := testBucket(t)
	for _, c := range []struct {
		body    string
		size    int64
		wantErr bool
	}{
		{"abc", 3, false},
		{"abc", -1, false},
		{"ab", 3, true},
		{"abcd", 3, true},
	} {
		got, err := b.ReadBody(io.NopCloser(strings.NewReader(c.body)), c.size, "get", "k")
		if (err != nil) != c.wantErr || (err == nil && string(got) != c.body) {
			t.Errorf("ReadBody(%q, size %d) = %q, %v; want error %v", c.body, c.size, got, err, c.wantErr)
		}
	}
}

func TestRangeHeader(t *testing.T) {
	if got := RangeHeader(5, lastByte(5, math.MaxInt64)); got != "bytes=5-9223372036854775806" {
		t.Errorf("RangeHeader for an unbounded length = %q", got)
	}
	if got := RangeHeader(5, lastByte(5, 3)); got != "bytes=5-7" {
		t.Errorf("RangeHeader(5, 3 bytes) = %q", got)
	}
}
