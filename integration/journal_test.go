//go:build linux

package integration

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/segment"
)

// TestJournaledLogStoresLoseNothingWhenAllThreeCrash: 3 `woodpecker
// logstore --data-dir` processes upload through a proxy that refuses every
// PUT, so the acknowledged entries are held by the LogStores alone. All
// three are killed with SIGKILL at once (the whole cluster loses power),
// object storage comes back, they restart from their journals, and a new
// writer's recovery seals the log with every acknowledged entry, in order,
// once. Without the journals the entries would be gone: nothing of them
// reached object storage.
func TestJournaledLogStoresLoseNothingWhenAllThreeCrash(t *testing.T) {
	s3 := testenv.MinIO(t)
	gate := startPutGate(t, s3.Endpoint)
	s := &site{Kind: kindQuorum, EtcdEndpoints: testenv.EtcdEndpoints(t), EtcdRoot: testenv.UniquePrefix(t),
		S3: s3, Bucket: testenv.NewBucket(t, s3)}
	s.stores = startLogStoresWith(t, s, logStoreOptions{journaled: true, s3Endpoint: gate.addr()})
	gate.refuse.Store(true)

	c := s.client(t, nil)
	l := createLog(t, c, "journaled")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w, err := l.OpenWriter(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	var want []seen
	for i, id := range appendSync(t, w, "j", n) {
		want = append(want, seen{ID: id, Tag: "j", Seq: int64(i)})
	}
	if refused := gate.refused.Load(); refused == 0 {
		t.Fatal("no upload was refused: the test would not show that the journals kept the entries")
	}
	objs, err := s.store(t).List(ctx, segment.LogPrefix("", l.ID()), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs.Objects {
		t.Fatalf("object storage holds %s: the entries are not only on the LogStores", o.Key)
	}

	for i := range 3 {
		s.stores.kill(i)
	}
	cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
	_ = w.Close(cctx) // its LogStores are gone; it may not say so cleanly
	ccancel()
	gate.refuse.Store(false)
	for i := range 3 {
		s.stores.start(i)
	}

	c2 := s.client(t, nil)
	l2 := openLog(t, c2, "journaled")
	w2, err := l2.OpenWriter(ctx, 2)
	if err != nil {
		t.Fatalf("a new writer after the crash of every LogStore: %v", err)
	}
	id, err := w2.Append(ctx, makePayload("after", 0))
	if err != nil {
		t.Fatalf("append after the recovery: %v", err)
	}
	want = append(want, seen{ID: id, Tag: "after", Seq: 0})
	if err := w2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := readWhole(t, l2)
	checkOrdered(t, "after the crash of every LogStore", got)
	sameEntries(t, "after the crash of every LogStore", got, want)
}

// putGate forwards S3 requests to MinIO, refusing PUTs with 503 while
// refuse is set.
type putGate struct {
	ln      net.Listener
	refuse  atomic.Bool
	refused atomic.Int64
}

func startPutGate(t *testing.T, target string) *putGate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &putGate{ln: ln}
	to := &url.URL{Scheme: "http", Host: target}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(to)
		pr.Out.Host = pr.In.Host // the request is signed for it
	}}
	srv := &http.Server{ReadHeaderTimeout: time.Minute, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && g.refuse.Load() {
			g.refused.Add(1)
			http.Error(w, "refused by the test", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	})}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-served
	})
	return g
}

func (g *putGate) addr() string { return g.ln.Addr().String() }
