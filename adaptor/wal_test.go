package adaptor

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore/s3store"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/quorum/quorumtest"
	"github.com/woodpecker-wal/woodpecker/walimpls"
	"github.com/woodpecker-wal/woodpecker/walimpls/conformance"
)

// backend writes the woodpecker section of a configuration for a test.
type backend struct {
	name    string
	section func(t *testing.T) string
	// messages is how many messages each term of the conformance suite
	// appends per channel; 0 means the suite's default (1000).
	messages int
}

func etcdSection(t *testing.T) string { return etcdSectionAt(t, testenv.UniquePrefix(t)) }

// etcdSectionAt is the etcd section with root as etcd.rootPath.
func etcdSectionAt(t *testing.T, root string) string {
	return fmt.Sprintf("  etcd:\n    endpoints: [%s]\n    rootPath: %q\n",
		strings.Join(quoteAll(testenv.EtcdEndpoints(t)), ", "), root)
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

func minioSection(t *testing.T) string {
	s3 := testenv.MinIO(t)
	return etcdSection(t) + fmt.Sprintf("  storage:\n    type: minio\n    endpoint: %q\n    bucket: %q\n    rootPath: %q\n"+
		"    accessKey: %q\n    secretKey: %q\n    region: %q\n    useSSL: %t\n",
		s3.Endpoint, testenv.NewBucket(t, s3), testenv.UniquePrefix(t), s3.AccessKey, s3.SecretKey, s3.Region, s3.Secure)
}

var backends = []backend{
	{name: "minio", section: minioSection},
	{name: "localfs", section: func(t *testing.T) string {
		return etcdSection(t) + fmt.Sprintf("  storage:\n    type: local\n    rootPath: %q\n", t.TempDir())
	}},
	// QuorumBuffer: 3 in-process LogStores uploading to MinIO.
	{name: "quorum", section: func(t *testing.T) string { return quorumSection(t, false) }},
	// QuorumBuffer whose LogStores write shared objects.
	{name: "quorum-shared", section: func(t *testing.T) string { return quorumSection(t, true) }},
	// MinIO with shared objects (docs/shared-objects.md): the blocks of
	// every channel of the opener go into objects shared by all of them.
	// Each synchronous append waits for the window, a PUT and an etcd
	// transaction, so the terms are shorter (1000 took 8 minutes under
	// -race on 2 cores).
	{name: "shared", section: func(t *testing.T) string {
		return minioSection(t) + "  writer:\n    batchWindow: 5ms\n"
	}, messages: 100},
}

// quorumSection is the section of QuorumBuffer on 3 in-process LogStores
// uploading to MinIO; with shared, they write shared objects
// (writer.batchWindow > 0).
func quorumSection(t *testing.T, shared bool) string {
	s3 := testenv.MinIO(t)
	bucket, root, etcdRoot := testenv.NewBucket(t, s3), testenv.UniquePrefix(t), testenv.UniquePrefix(t)
	store, err := s3store.Open(context.Background(), s3store.Config{Endpoint: s3.Endpoint, AccessKey: s3.AccessKey,
		SecretKey: s3.SecretKey, Bucket: bucket, Region: s3.Region, Secure: s3.Secure, RootPath: root})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	var cluster *quorumtest.Cluster
	writer := ""
	if shared {
		cluster = quorumtest.StartShared(t, testenv.Etcd(t), etcdRoot, 5*time.Millisecond, 3, store, "", 256<<20)
		writer = "  writer:\n    batchWindow: 5ms\n"
	} else {
		cluster = quorumtest.Start(t, testenv.Etcd(t), 3, store, "", 256<<20)
	}
	return etcdSectionAt(t, etcdRoot) + fmt.Sprintf("  storage:\n    type: minio\n    endpoint: %q\n    bucket: %q\n    rootPath: %q\n"+
		"    accessKey: %q\n    secretKey: %q\n    region: %q\n    useSSL: %t\n"+
		"  mode: quorumBuffer\n  quorum:\n    logStores: [%s]\n",
		s3.Endpoint, bucket, root, s3.AccessKey, s3.SecretKey, s3.Region, s3.Secure,
		strings.Join(quoteAll(cluster.Addrs()), ", ")) + writer
}

// newBuilder returns the builder a database configuration selecting
// Woodpecker on b gives.
func newBuilder(t *testing.T, b backend) walimpls.OpenerBuilder {
	t.Helper()
	doc := "mq:\n  type: woodpecker\nwoodpecker:\n" + b.section(t)
	ob, err := FromYAML([]byte(doc))
	if err != nil {
		t.Fatalf("FromYAML:\n%s\n%v", doc, err)
	}
	return ob
}

// TestConformance runs the walimpls conformance suite, 1000 messages per
// term (100 with MemoryBuffer's shared objects), on each backend: MinIO +
// etcd, a local directory + etcd, QuorumBuffer, QuorumBuffer whose
// LogStores write shared objects, and MinIO with shared objects.
func TestConformance(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ob := newBuilder(t, b)
			if w := ob.(*Builder).Config().Writer.BatchWindow; (w > 0) != strings.HasSuffix(b.name, "shared") {
				t.Fatalf("writer.batchWindow is %v on backend %s", w, b.name)
			}
			opts := []conformance.Option{conformance.WithStrictTruncate(), conformance.WithInvalidMessageIDs(invalidIDs...)}
			if b.messages > 0 {
				opts = append(opts, conformance.WithMessagesPerTerm(b.messages))
			}
			conformance.Run(t, ob, opts...)
		})
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func openWAL(t *testing.T, o walimpls.Opener, name string, term int64, mode walimpls.AccessMode) walimpls.WAL {
	t.Helper()
	w, err := o.Open(testContext(t), walimpls.OpenOption{Channel: walimpls.Channel{Name: name, Term: term, AccessMode: mode}})
	if err != nil {
		t.Fatalf("Open(%s, %d, %v): %v", name, term, mode, err)
	}
	t.Cleanup(w.Close)
	return w
}

func build(t *testing.T, b backend) *Opener {
	t.Helper()
	o, err := newBuilder(t, b).Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	t.Cleanup(o.Close)
	return o.(*Opener)
}

// TestMalformedEntryEndsScanner writes an entry that is not a frame
// straight through the engine: a scanner reaching it ends with
// ErrMalformedFrame, after delivering what came before.
func TestMalformedEntryEndsScanner(t *testing.T) {
	o := build(t, backends[1])
	ctx := testContext(t)
	w := openWAL(t, o, "malformed", 1, walimpls.AccessModeRW)
	good, err := w.Append(ctx, walimpls.Message{Payload: []byte("good")})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	l, err := o.Client().OpenLog(ctx, "malformed")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := l.OpenWriter(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Append(ctx, []byte("not a frame")); err != nil {
		t.Fatal(err)
	}
	if err := raw.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ro := openWAL(t, o, "malformed", 2, walimpls.AccessModeRO)
	sc, err := ro.Read(ctx, walimpls.ReadOption{Name: "s"})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	m, ok := <-sc.Chan()
	if !ok || !m.ID.EQ(good) || string(m.Payload) != "good" {
		t.Fatalf("first message = %+v, %t; want the good one at %v", m, ok, good)
	}
	if _, ok := <-sc.Chan(); ok {
		t.Fatal("the malformed entry was delivered")
	}
	if err := sc.Error(); !errors.Is(err, ErrMalformedFrame) {
		t.Fatalf("Error() = %v, want ErrMalformedFrame", err)
	}
	if err := sc.Close(); !errors.Is(err, ErrMalformedFrame) {
		t.Errorf("Close() = %v, want the failure", err)
	}
}

// TestOpenerCloseEndsEverything closes an opener under open WALs and
// scanners.
func TestOpenerCloseEndsEverything(t *testing.T) {
	o := build(t, backends[1])
	ctx := testContext(t)
	w := openWAL(t, o, "closing", 1, walimpls.AccessModeRW)
	sc, err := w.Read(ctx, walimpls.ReadOption{Name: "tail", DeliverPolicy: walimpls.DeliverLatest()})
	if err != nil {
		t.Fatal(err)
	}
	o.Close()
	<-sc.Done()
	if err := sc.Error(); !errors.Is(err, walimpls.ErrClosed) {
		t.Errorf("scanner Error() = %v, want ErrClosed", err)
	}
	if _, err := w.Append(ctx, walimpls.Message{Payload: []byte("x")}); !errors.Is(err, walimpls.ErrClosed) {
		t.Errorf("Append after the opener closed = %v, want ErrClosed", err)
	}
	if _, err := o.Open(ctx, walimpls.OpenOption{Channel: walimpls.Channel{Name: "closing", Term: 2}}); !errors.Is(err, walimpls.ErrClosed) {
		t.Errorf("Open after Close = %v, want ErrClosed", err)
	}
}

// TestInvalidChannelName maps the engine's name check to ErrInvalidOption.
func TestInvalidChannelName(t *testing.T) {
	o := build(t, backends[1])
	for _, name := range []string{"a/b", "tab\tname", strings.Repeat("x", 10000)} {
		w, err := o.Open(testContext(t), walimpls.OpenOption{Channel: walimpls.Channel{Name: name, Term: 1}})
		if !errors.Is(err, walimpls.ErrInvalidOption) {
			if w != nil {
				w.Close()
			}
			t.Errorf("Open(%.20q) = %v, want ErrInvalidOption", name, err)
		}
	}
}
