// Package wiretest records the HTTP requests an S3 client sends, by placing
// a reverse proxy between it and a real server, so tests can check what
// goes over the wire (headers, payload signing, conditional writes).
package wiretest

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Request is what the proxy saw of one request.
type Request struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
}

// Proxy forwards to a server and records every request. Safe for
// concurrent use.
type Proxy struct {
	// Endpoint is the proxy's host:port; point the client under test here.
	Endpoint string

	mu        sync.Mutex
	reqs      []Request
	failMatch func(*http.Request) bool
	failLeft  int
}

// NewProxy starts a proxy to the plain-HTTP server at target (host:port),
// stopped at t.Cleanup. The Host header passes through unchanged, so
// SigV4 signatures made for the proxy's address stay valid.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p := &Proxy{}
	tr := &http.Transport{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(&url.URL{Scheme: "http", Host: target})
			r.Out.Host = r.In.Host
			p.mu.Lock()
			p.reqs = append(p.reqs, Request{
				Method: r.In.Method,
				Path:   r.In.URL.Path,
				Query:  r.In.URL.Query(),
				Header: r.In.Header.Clone(),
			})
			p.mu.Unlock()
		},
		Transport: tr,
		ModifyResponse: func(resp *http.Response) error {
			if p.takeFailure(resp.Request) {
				return errLostResponse
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(func() {
		srv.Close()
		tr.CloseIdleConnections()
	})
	p.Endpoint = strings.TrimPrefix(srv.URL, "http://")
	return p
}

var errLostResponse = errors.New("wiretest: response dropped on purpose")

// LoseResponses makes the proxy forward the next n requests that match,
// let the server act on them, and then answer 502 Bad Gateway instead of
// the server's response: a request whose outcome the client cannot know.
func (p *Proxy) LoseResponses(match func(*http.Request) bool, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failMatch, p.failLeft = match, n
}

func (p *Proxy) takeFailure(r *http.Request) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failLeft <= 0 || p.failMatch == nil || !p.failMatch(r) {
		return false
	}
	p.failLeft--
	return true
}

// Requests returns the requests recorded so far, oldest first.
func (p *Proxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.reqs...)
}

// Reset forgets the recorded requests.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reqs = nil
}

// CheckPuts checks the object PUTs recorded: each is a single request (no
// multipart upload), with an unsigned payload, no client-side content hash
// or checksum header, and If-None-Match: * exactly when createOnly says so
// for its path. It returns how many PUTs it saw.
func CheckPuts(t testing.TB, reqs []Request, createOnly func(path string) bool) int {
	t.Helper()
	n := 0
	for _, r := range reqs {
		if r.Query.Has("uploads") || r.Query.Has("uploadId") {
			t.Errorf("%s %s?%s: multipart upload, want single PUTs", r.Method, r.Path, r.Query.Encode())
		}
		if r.Method != http.MethodPut || strings.Count(strings.Trim(r.Path, "/"), "/") == 0 {
			continue // not an object PUT (bucket creation has no key)
		}
		n++
		if got := r.Header.Get("X-Amz-Content-Sha256"); got != "UNSIGNED-PAYLOAD" {
			t.Errorf("PUT %s: X-Amz-Content-Sha256 = %q, want UNSIGNED-PAYLOAD", r.Path, got)
		}
		if got := r.Header.Get("Content-Md5"); got != "" {
			t.Errorf("PUT %s: Content-Md5 sent; payload hashing should be off", r.Path)
		}
		for h := range r.Header {
			if strings.HasPrefix(strings.ToLower(h), "x-amz-checksum-") || strings.EqualFold(h, "X-Amz-Trailer") {
				t.Errorf("PUT %s: %s sent; client-side checksums should be off", r.Path, h)
			}
		}
		want := ""
		if createOnly(r.Path) {
			want = "*"
		}
		if got := r.Header.Get("If-None-Match"); got != want {
			t.Errorf("PUT %s: If-None-Match = %q, want %q", r.Path, got, want)
		}
	}
	return n
}
