package s3http

import (
	"context"
	"net"
	"net/url"
	"testing"

	"github.com/cockroachdb/errors"
)

func TestParseEndpoint(t *testing.T) {
	cases := []struct {
		in         string
		secure     bool
		host       string
		wantSecure bool
		wantErr    bool
	}{
		{"127.0.0.1:9000", false, "127.0.0.1:9000", false, false},
		{"127.0.0.1:9000", true, "127.0.0.1:9000", true, false},
		{"http://minio:9000/", true, "minio:9000", false, false},
		{"https://s3.amazonaws.com", false, "s3.amazonaws.com", true, false},
		{" minio:9000 ", false, "minio:9000", false, false},
		{"", false, "", false, true},
		{"http://", false, "", false, true},
		{"http://h:1/bucket", false, "", false, true},
		{"h:1?x=y", false, "", false, true},
	}
	for _, c := range cases {
		host, secure, err := ParseEndpoint(c.in, c.secure)
		if c.wantErr {
			if err == nil {
				t.Errorf("ParseEndpoint(%q) = %q, want an error", c.in, host)
			}
			continue
		}
		if err != nil || host != c.host || secure != c.wantSecure {
			t.Errorf("ParseEndpoint(%q, %v) = %q, %v, %v; want %q, %v", c.in, c.secure, host, secure, err, c.host, c.wantSecure)
		}
	}
}

func TestRootPrefix(t *testing.T) {
	for in, want := range map[string]string{"": "", "/": "", "a": "a/", "/a/b/": "a/b/", "a/b": "a/b/"} {
		if got, err := RootPrefix(in); err != nil || got != want {
			t.Errorf("RootPrefix(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"a//b", "a/../b", "./a"} {
		if _, err := RootPrefix(in); err == nil {
			t.Errorf("RootPrefix(%q) succeeded, want an error", in)
		}
	}
}

func TestRetryCreateOnly(t *testing.T) {
	errRetryable := errors.New("refused before acting")
	errUnknown := errors.New("connection reset after sending")
	isRetryable := func(err error) bool { return errors.Is(err, errRetryable) }
	cases := []struct {
		name      string
		results   []error // what successive attempts return
		wantCalls int
		wantErr   error
	}{
		{"success", []error{nil}, 1, nil},
		{"retry then success", []error{errRetryable, errRetryable, nil}, 3, nil},
		{"unknown outcome is not retried", []error{errUnknown, nil}, 1, errUnknown},
		{"retryable then unknown", []error{errRetryable, errUnknown}, 2, errUnknown},
		{"gives up", []error{errRetryable, errRetryable, errRetryable, errRetryable, errRetryable, nil}, CreateOnlyAttempts, errRetryable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			err := RetryCreateOnly(t.Context(), func() error {
				calls++
				return c.results[calls-1]
			}, isRetryable)
			if calls != c.wantCalls {
				t.Errorf("%d attempts, want %d", calls, c.wantCalls)
			}
			if (c.wantErr == nil) != (err == nil) || (c.wantErr != nil && !errors.Is(err, c.wantErr)) {
				t.Errorf("err = %v, want %v", err, c.wantErr)
			}
		})
	}

	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	err := RetryCreateOnly(ctx, func() error {
		calls++
		cancel()
		return errRetryable
	}, isRetryable)
	if calls != 1 || !errors.Is(err, errRetryable) {
		t.Fatalf("after cancel: %d attempts, err %v; want 1 and the attempt's error", calls, err)
	}
}

func TestIsDialError(t *testing.T) {
	dial := &url.Error{Op: "Put", URL: "http://x", Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}
	read := &url.Error{Op: "Put", URL: "http://x", Err: &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset")}}
	if !IsDialError(errors.Wrap(dial, "put")) {
		t.Error("a wrapped dial error is not recognised")
	}
	if IsDialError(read) || IsDialError(errors.New("other")) {
		t.Error("a read error or a plain error counts as a dial error")
	}
}
