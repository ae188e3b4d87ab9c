package chaos

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// s3Fault is what an s3Proxy does to the S3 requests it forwards. The zero
// value forwards them unchanged.
type s3Fault struct {
	// ErrorPct is the percentage of requests answered with a 5xx S3 error
	// (503 SlowDown or 500 InternalError, drawn per request, with an S3
	// XML error body): half of them before the request reaches the server
	// (nothing happened), half after the server ran it (a PUT that
	// happened, which the client takes for a failure: the outcome it must
	// not misreport).
	ErrorPct int
	// PutDelay delays every PUT and POST (uploads, seals, fences) before
	// it is forwarded.
	PutDelay time.Duration
}

// s3Proxy is an HTTP reverse proxy in front of the object store, with
// faults (s3Fault) that can be changed at any time. It forwards requests
// unchanged (their Host header too: they are signed for it), so clients
// reach it exactly as they would the server; when the server is
// unreachable it resets the client's connection, as a TCP proxy would. It
// is safe for concurrent use.
type s3Proxy struct {
	name   string
	ln     net.Listener
	srv    *http.Server
	rp     *httputil.ReverseProxy
	tr     *http.Transport
	done   chan struct{}
	errors atomic.Int64 // 5xx answers injected

	mu    sync.Mutex
	fault s3Fault
	rng   *rand.Rand
}

// startS3Proxy listens on a free port of 127.0.0.1 and forwards to target
// (host:port, plain HTTP).
func startS3Proxy(name, target string, seed uint64) (*s3Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	to := &url.URL{Scheme: "http", Host: target}
	p := &s3Proxy{name: name, ln: ln, done: make(chan struct{}), rng: rand.New(rand.NewPCG(seed, 0x53))}
	p.tr = &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		DisableCompression:  true,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(to)
			pr.Out.Host = pr.In.Host // the request is signed for it
		},
		Transport:    p.tr,
		ErrorHandler: resetClient,
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: time.Minute}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// Addr is the address clients dial.
func (p *s3Proxy) Addr() string { return p.ln.Addr().String() }

// Set replaces the fault.
func (p *s3Proxy) Set(f s3Fault) {
	p.mu.Lock()
	p.fault = f
	p.mu.Unlock()
}

// Heal forwards unchanged from now on.
func (p *s3Proxy) Heal() { p.Set(s3Fault{}) }

// Errors returns how many 5xx answers the proxy made up.
func (p *s3Proxy) Errors() int64 { return p.errors.Load() }

// Close stops the proxy and closes its connections.
func (p *s3Proxy) Close() {
	select {
	case <-p.done:
		return
	default:
	}
	close(p.done)
	_ = p.srv.Close()
	p.tr.CloseIdleConnections()
}

// s3Error is an error answer of S3.
type s3Error struct {
	status  int
	code    string
	message string
}

var s3ErrorAnswers = []s3Error{
	{http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate."},
	{http.StatusInternalServerError, "InternalError", "We encountered an internal error, please try again."},
}

// draw decides a request's fate under the current fault: the error to
// answer (nil: none), and whether to answer it after forwarding.
func (p *s3Proxy) draw() (f s3Fault, e *s3Error, after bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f = p.fault
	if f.ErrorPct > 0 && p.rng.IntN(100) < f.ErrorPct {
		e = &s3ErrorAnswers[p.rng.IntN(len(s3ErrorAnswers))]
		after = p.rng.IntN(2) == 0
	}
	return f, e, after
}

func (p *s3Proxy) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	f, e, after := p.draw()
	if f.PutDelay > 0 && (req.Method == http.MethodPut || req.Method == http.MethodPost) {
		t := time.NewTimer(f.PutDelay)
		select {
		case <-t.C:
		case <-req.Context().Done():
			t.Stop()
			return
		case <-p.done:
			t.Stop()
			return
		}
	}
	if e == nil {
		p.rp.ServeHTTP(w, req)
		return
	}
	if after {
		// The server runs the request; its answer is lost.
		rec := httptest.NewRecorder()
		p.rp.ServeHTTP(rec, req)
		if rec.Code == http.StatusBadGateway && rec.Header().Get("X-Chaos-Reset") != "" {
			resetClient(w, req, nil)
			return
		}
	}
	writeS3Error(w, req, *e, p.errors.Add(1))
}

// writeS3Error answers req with e the way S3 does: the status, and for
// other methods than HEAD an XML error document.
func writeS3Error(w http.ResponseWriter, req *http.Request, e s3Error, n int64) {
	reqID := fmt.Sprintf("CHAOS%012d", n)
	h := w.Header()
	h.Set("x-amz-request-id", reqID)
	if e.status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	if req.Method == http.MethodHead {
		w.WriteHeader(e.status)
		return
	}
	body := fmt.Sprintf("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"+
		"<Error><Code>%s</Code><Message>%s</Message><Resource>%s</Resource><RequestId>%s</RequestId></Error>",
		e.code, e.message, xmlEscape(req.URL.Path), reqID)
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(e.status)
	_, _ = w.Write([]byte(body))
}

func xmlEscape(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '<':
			out = append(out, "&lt;"...)
		case '>':
			out = append(out, "&gt;"...)
		case '&':
			out = append(out, "&amp;"...)
		default:
			out = append(out, c)
		}
	}
	return string(out)
}

// resetClient is the reverse proxy's answer when the server is
// unreachable (killed, paused past the transport's patience): the
// client's connection is reset, as a TCP proxy's would be, rather than
// answered 502, which no S3 server sends.
func resetClient(w http.ResponseWriter, req *http.Request, _ error) {
	if req.Context().Err() != nil {
		return // the client left
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		// A recorder (an answer to lose anyway): say so.
		w.Header().Set("X-Chaos-Reset", "1")
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}
