package chaos

import (
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestS3ProxyFaults: the S3 proxy forwards requests unchanged (the Host
// header they were signed for too); under a fault it answers 5xx with an S3
// XML error, before or after the server ran the request, and delays PUTs;
// healed, it forwards again; with the server gone it resets the client's
// connection instead of answering.
func TestS3ProxyFaults(t *testing.T) {
	var puts atomic.Int64
	var host atomic.Value
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host.Store(r.Host)
		if r.Method == http.MethodPut {
			_, _ = io.Copy(io.Discard, r.Body)
			puts.Add(1)
		}
		_, _ = io.WriteString(w, "ok")
	}))
	p, err := startS3Proxy("test", strings.TrimPrefix(backend.URL, "http://"), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cli := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	do := func(method string) (*http.Response, string, error) {
		req, err := http.NewRequest(method, "http://"+p.Addr()+"/bucket/key", strings.NewReader("data"))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "signed-for.example:9000"
		resp, err := cli.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b), nil
	}

	resp, body, err := do(http.MethodPut)
	if err != nil || resp.StatusCode != http.StatusOK || body != "ok" {
		t.Fatalf("forwarded PUT: %v %v %q", resp, err, body)
	}
	if h, _ := host.Load().(string); h != "signed-for.example:9000" {
		t.Fatalf("the server saw Host %q", h)
	}

	p.Set(s3Fault{ErrorPct: 100})
	before := puts.Load()
	for range 20 {
		resp, body, err := do(http.MethodPut)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("status %d under a 100%% error fault", resp.StatusCode)
		}
		var e struct {
			Code      string
			RequestID string `xml:"RequestId"`
		}
		if err := xml.Unmarshal([]byte(body), &e); err != nil || (e.Code != "SlowDown" && e.Code != "InternalError") || e.RequestID == "" {
			t.Fatalf("error body %q: %v", body, err)
		}
	}
	if ran := puts.Load() - before; ran == 0 || ran == 20 {
		t.Fatalf("%d of 20 failed PUTs reached the server, want some but not all", ran)
	}
	if p.Errors() != 20 {
		t.Fatalf("%d errors counted, want 20", p.Errors())
	}

	// A PUT held far longer than its client waits never reaches the
	// server.
	p.Set(s3Fault{PutDelay: time.Hour})
	before = puts.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+p.Addr()+"/bucket/key", strings.NewReader("data"))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := cli.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("a PUT delayed by an hour answered %d", resp.StatusCode)
	}
	cancel()
	if puts.Load() != before {
		t.Fatal("a delayed PUT reached the server")
	}

	p.Heal()
	if resp, _, err := do(http.MethodGet); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healed GET: %v %v", resp, err)
	}

	backend.Close()
	if resp, _, err := do(http.MethodGet); err == nil {
		t.Fatalf("GET with the server gone answered %d; want a reset connection", resp.StatusCode)
	}
}
