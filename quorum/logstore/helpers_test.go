package logstore

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/s3store"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/quorum/quorumpb"
	"github.com/woodpecker-wal/woodpecker/segment"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The segment most tests write.
const (
	testLog   = 7
	testSeg   = 3
	testEpoch = 5
)

func testSegment() *quorumpb.Segment {
	return &quorumpb.Segment{LogId: testLog, SegmentId: testSeg, Epoch: testEpoch}
}

// replica is a server under test and a gRPC client of it.
type replica struct {
	srv  *Server
	addr string
	conn *grpc.ClientConn
	quorumpb.LogStoreClient
	reg *prometheus.Registry
}

// startReplica serves a server with cfg (a memory store and a 64 MiB
// budget unless set) on 127.0.0.1, closed at cleanup.
func startReplica(t *testing.T, cfg Config) *replica {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = memstore.New()
	}
	if cfg.BudgetBytes == 0 {
		cfg.BudgetBytes = 64 << 20
	}
	if cfg.NodeID == "" {
		cfg.NodeID = "ls-" + t.Name()
	}
	if cfg.UploadBackoffMax == 0 {
		cfg.UploadBackoffMin, cfg.UploadBackoffMax = time.Millisecond, 20*time.Millisecond
	}
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{srv: srv, addr: ln.Addr().String(), conn: conn, LogStoreClient: quorumpb.NewLogStoreClient(conn), reg: reg}
	t.Cleanup(func() {
		_ = conn.Close()
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return r
}

// block encodes block n of the test segment, with entries that make
// every block's bytes distinct.
func block(t *testing.T, n int64) []byte {
	t.Helper()
	return blockOf(t, testLog, testSeg, testEpoch, n, fmt.Sprintf("entry %d", n))
}

func blockOf(t testing.TB, logID, segID, epoch, n int64, entries ...string) []byte {
	t.Helper()
	es := make([][]byte, len(entries))
	for i, e := range entries {
		es[i] = []byte(e)
	}
	b, err := segment.EncodeBlock(nil, segment.BlockHeader{LogID: logID, SegmentID: segID, FirstEntry: n * 10,
		Epoch: epoch, BlockNo: n}, es, segment.CompressionNone)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// addReq is an add of block n of the test segment, with nothing
// acknowledged or uploaded yet.
func addReq(t *testing.T, n int64) *quorumpb.AddBlockRequest {
	t.Helper()
	return &quorumpb.AddBlockRequest{Segment: testSegment(), BlockNo: n, Block: block(t, n), Lac: -1, Uploaded: -1}
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustAdd(t *testing.T, r *replica, req *quorumpb.AddBlockRequest) *quorumpb.AddBlockResponse {
	t.Helper()
	resp, err := r.AddBlock(ctxT(t), req)
	if err != nil {
		t.Fatalf("add block %d: %v", req.GetBlockNo(), err)
	}
	return resp
}

// wantRefusal checks err's code and reason.
func wantRefusal(t *testing.T, err error, code codes.Code, reason string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("got %v, want code %v", err, code)
	}
	if got := Reason(err); got != reason {
		t.Fatalf("reason %q, want %q (%v)", got, reason, err)
	}
}

func status1(t *testing.T, r *replica, created int64) *quorumpb.FenceResponse {
	t.Helper()
	resp, err := r.Status(ctxT(t), &quorumpb.StatusRequest{Segment: testSegment(), CreatedRevision: created})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func wantHeld(t *testing.T, r *replica, want ...int64) {
	t.Helper()
	if got := status1(t, r, 0).GetBlocks(); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("replica holds blocks %v, want %v", got, want)
	}
}

// counter returns the value of a counter of the replica's registry.
func (r *replica) counter(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue metrics
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

// recordingStore records the keys of successful puts, in order.
type recordingStore struct {
	objstore.Store
	mu   sync.Mutex
	puts []string
}

func (s *recordingStore) Put(ctx context.Context, key string, data []byte, opts objstore.PutOptions) error {
	err := s.Store.Put(ctx, key, data, opts)
	if err == nil {
		s.mu.Lock()
		s.puts = append(s.puts, key)
		s.mu.Unlock()
	}
	return err
}

func (s *recordingStore) Puts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.puts)
}

// stalledStore blocks every put until the put's context ends: an
// uploader that hangs (or is about to be killed).
type stalledStore struct{ objstore.Store }

func (stalledStore) Put(ctx context.Context, _ string, _ []byte, _ objstore.PutOptions) error {
	<-ctx.Done()
	return ctx.Err()
}

// stores are the object stores the upload tests run against: memory, and
// MinIO (skipped when there is none), each in a fresh bucket or prefix.
func stores(t *testing.T) map[string]func(t *testing.T) objstore.Store {
	return map[string]func(t *testing.T) objstore.Store{
		"memstore": func(*testing.T) objstore.Store { return memstore.New() },
		"minio": func(t *testing.T) objstore.Store {
			s3 := testenv.MinIO(t)
			st, err := s3store.Open(context.Background(), s3store.Config{
				Endpoint: s3.Endpoint, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey,
				Bucket: testenv.NewBucket(t, s3), Region: s3.Region, Secure: s3.Secure,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			return st
		},
	}
}

// blockObjects returns the test segment's objects in store, by key.
func blockObjects(t *testing.T, store objstore.Store) map[string][]byte {
	t.Helper()
	ctx := ctxT(t)
	out := map[string][]byte{}
	after := ""
	for {
		page, err := store.List(ctx, segment.SegmentPrefix("", testLog, testSeg), after, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Objects {
			data, err := store.Get(ctx, o.Key)
			if err != nil {
				t.Fatal(err)
			}
			out[o.Key] = data
			after = o.Key
		}
		if !page.More {
			return out
		}
	}
}

// wantUploaded checks that store holds exactly blocks 0..n-1 of the test
// segment, each once, with the bytes the writer sent.
func wantUploaded(t *testing.T, store objstore.Store, n int64) {
	t.Helper()
	objs := blockObjects(t, store)
	if int64(len(objs)) != n {
		keys := make([]string, 0, len(objs))
		for k := range objs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		t.Fatalf("object store holds %d objects of the segment, want %d: %v", len(objs), n, keys)
	}
	for i := range n {
		key := segment.BlockKey("", testLog, testSeg, i)
		if got, ok := objs[key]; !ok || string(got) != string(block(t, i)) {
			t.Fatalf("object %s: present %t, bytes equal to the block %t", key, ok, string(got) == string(block(t, i)))
		}
	}
}
