package woodpecker_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/s3store"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/quorum/quorumtest"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// backend is one way of storing log data the tests run against.
type backend struct {
	name string
	// setup adjusts cfg and returns client options.
	setup func(t *testing.T, cfg *options.Config) []woodpecker.Option
}

func memBackend(store *memstore.Store) backend {
	return backend{name: "memstore", setup: func(t *testing.T, cfg *options.Config) []woodpecker.Option {
		s := store
		if s == nil {
			s = memstore.New()
		}
		return []woodpecker.Option{woodpecker.WithObjectStore(s)}
	}}
}

var localBackend = backend{name: "localfs", setup: func(t *testing.T, cfg *options.Config) []woodpecker.Option {
	cfg.Storage.Type = options.StorageLocal
	cfg.Storage.RootPath = t.TempDir()
	return nil
}}

var minioBackend = backend{name: "minio", setup: func(t *testing.T, cfg *options.Config) []woodpecker.Option {
	s3 := testenv.MinIO(t)
	store, err := s3store.Open(context.Background(), s3store.Config{
		Endpoint: s3.Endpoint, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey,
		Bucket: testenv.NewBucket(t, s3), Region: s3.Region, Secure: s3.Secure,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return []woodpecker.Option{woodpecker.WithObjectStore(store)}
}}

// quorumBackend is QuorumBuffer: 3 in-process LogStores uploading to one
// memory object store, which the client also reads.
var quorumBackend = backend{name: "quorum", setup: func(t *testing.T, cfg *options.Config) []woodpecker.Option {
	store := memstore.New()
	cluster := quorumtest.Start(t, testenv.Etcd(t), 3, store, "", 64<<20)
	cfg.Mode = options.ModeQuorumBuffer
	cfg.Quorum.LogStores = cluster.Addrs()
	return []woodpecker.Option{woodpecker.WithObjectStore(store)}
}}

// quorumSharedBackend is QuorumBuffer whose LogStores write shared objects
// (writer.batchWindow > 0 places the segments so).
var quorumSharedBackend = backend{name: "quorum-shared", setup: func(t *testing.T, cfg *options.Config) []woodpecker.Option {
	store := memstore.New()
	cluster := quorumtest.StartShared(t, testenv.Etcd(t), cfg.Etcd.RootPath, 5*time.Millisecond, 3, store, "", 64<<20)
	cfg.Mode = options.ModeQuorumBuffer
	cfg.Quorum.LogStores = cluster.Addrs()
	cfg.Writer.BatchWindow = 5 * time.Millisecond
	return []woodpecker.Option{woodpecker.WithObjectStore(store)}
}}

// sharedBackend is MinIO with shared objects (docs/shared-objects.md): the
// blocks of every log of the client go into objects shared by all logs.
var sharedBackend = backend{name: "shared", setup: func(t *testing.T, cfg *options.Config) []woodpecker.Option {
	cfg.Writer.BatchWindow = 5 * time.Millisecond
	return minioBackend.setup(t, cfg)
}}

func allBackends() []backend {
	return []backend{memBackend(nil), localBackend, minioBackend, quorumBackend, quorumSharedBackend, sharedBackend}
}

// newClient returns a client on a fresh etcd prefix and the backend's storage.
func newClient(t *testing.T, b backend, tweak func(*options.Config)) *woodpecker.Client {
	t.Helper()
	cfg := options.Default()
	cfg.Etcd.RootPath = testenv.UniquePrefix(t)
	opts := b.setup(t, &cfg)
	if tweak != nil {
		tweak(&cfg)
	}
	opts = append(opts, woodpecker.WithEtcdClient(testenv.Etcd(t)))
	c, err := woodpecker.New(context.Background(), cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func openLog(t *testing.T, c *woodpecker.Client, name string) *woodpecker.Log {
	t.Helper()
	ctx := context.Background()
	if err := c.CreateLog(ctx, name); err != nil {
		t.Fatal(err)
	}
	l, err := c.OpenLog(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func payload(i int) []byte {
	return []byte(fmt.Sprintf("entry-%06d-%s", i, bytes.Repeat([]byte{'x'}, i%97)))
}

// readN reads n entries and fails the test on any error.
func readN(t *testing.T, r *woodpecker.Reader, n int) []woodpecker.Entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out := make([]woodpecker.Entry, 0, n)
	for len(out) < n {
		e, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("after %d of %d entries: %v", len(out), n, err)
		}
		out = append(out, e)
	}
	return out
}

// expectSilent checks that the reader has nothing to return for a moment.
func expectSilent(t *testing.T, r *woodpecker.Reader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if e, err := r.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reader returned %v, %v; want nothing", e.ID, err)
	}
}

func TestAppendAndReadBack(t *testing.T) {
	for _, b := range allBackends() {
		t.Run(b.name, func(t *testing.T) {
			c := newClient(t, b, func(cfg *options.Config) {
				cfg.Writer.MaxBlockBytes = 4 << 10 // many blocks
				cfg.Writer.RollMaxBlocks = 7       // several segments
			})
			l := openLog(t, c, "orders")
			ctx := context.Background()
			tail, err := l.OpenReader(ctx, woodpecker.Latest())
			if err != nil {
				t.Fatal(err)
			}
			defer tail.Close()
			w, err := l.OpenWriter(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			const n = 3000
			futs := make([]*woodpecker.AppendFuture, n)
			for i := range n {
				if futs[i], err = w.AppendAsync(ctx, payload(i)); err != nil {
					t.Fatal(err)
				}
			}
			ids := make([]woodpecker.EntryID, n)
			for i, f := range futs {
				if ids[i], err = f.Wait(ctx); err != nil {
					t.Fatalf("append %d: %v", i, err)
				}
				if i > 0 && !ids[i-1].Less(ids[i]) {
					t.Fatalf("ids out of order: %v then %v", ids[i-1], ids[i])
				}
			}
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			for _, r := range []*woodpecker.Reader{tail, mustReader(t, l, woodpecker.Earliest())} {
				got := readN(t, r, n)
				for i, e := range got {
					if e.ID != ids[i] || !bytes.Equal(e.Payload, payload(i)) {
						t.Fatalf("entry %d: got %v %q, want %v %q", i, e.ID, e.Payload, ids[i], payload(i))
					}
				}
				expectSilent(t, r)
			}
			st, err := l.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Segments) < 2 || st.SealedEntries != n {
				t.Fatalf("stats: %d segments, %d sealed entries; want several segments and %d entries", len(st.Segments), st.SealedEntries, n)
			}
			if !st.NonEmpty || st.First != ids[0] || st.Last != ids[n-1] {
				t.Fatalf("stats: first %v last %v (non-empty %v), want %v and %v", st.First, st.Last, st.NonEmpty, ids[0], ids[n-1])
			}
			// Start positions in the middle.
			mid := ids[n/2]
			if e := readN(t, mustReader(t, l, woodpecker.At(mid)), 1)[0]; e.ID != mid {
				t.Fatalf("At(%v) read %v", mid, e.ID)
			}
			if e := readN(t, mustReader(t, l, woodpecker.After(mid)), 1)[0]; e.ID != ids[n/2+1] {
				t.Fatalf("After(%v) read %v, want %v", mid, e.ID, ids[n/2+1])
			}
		})
	}
}

func mustReader(t *testing.T, l *woodpecker.Log, from woodpecker.StartPosition) *woodpecker.Reader {
	t.Helper()
	r, err := l.OpenReader(context.Background(), from)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestZombieWriterIsFenced(t *testing.T) {
	for _, b := range allBackends() {
		t.Run(b.name, func(t *testing.T) {
			c := newClient(t, b, nil)
			l := openLog(t, c, "zombie")
			ctx := context.Background()
			a, err := l.OpenWriter(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			var acked []woodpecker.EntryID
			for i := range 10 {
				id, err := a.Append(ctx, payload(i))
				if err != nil {
					t.Fatal(err)
				}
				acked = append(acked, id)
			}
			bw, err := l.OpenWriter(ctx, 2)
			if err != nil {
				t.Fatal(err)
			}
			if e, ok, err := l.WriterEpoch(ctx); err != nil || !ok || e != 2 {
				t.Fatalf("writer epoch after B opened: %d %v %v, want 2", e, ok, err)
			}
			if _, err := a.Append(ctx, []byte("from the zombie")); !errors.Is(err, woodpecker.ErrFenced) {
				t.Fatalf("zombie append: %v, want ErrFenced", err)
			}
			if _, err := l.OpenWriter(ctx, 1); !errors.Is(err, woodpecker.ErrFenced) {
				t.Fatalf("open at a lower epoch: %v, want ErrFenced", err)
			}
			idB, err := bw.Append(ctx, []byte("from B"))
			if err != nil {
				t.Fatal(err)
			}
			_ = a.Close(ctx)
			if err := bw.Close(ctx); err != nil {
				t.Fatal(err)
			}
			got := readN(t, mustReader(t, l, woodpecker.Earliest()), 11)
			for i, id := range acked {
				if got[i].ID != id {
					t.Fatalf("entry %d: %v, want %v", i, got[i].ID, id)
				}
			}
			if got[10].ID != idB || string(got[10].Payload) != "from B" {
				t.Fatalf("after A's entries: %v %q, want B's %v", got[10].ID, got[10].Payload, idB)
			}
		})
	}
}

func TestReopenSameEpochAfterClose(t *testing.T) {
	c := newClient(t, memBackend(nil), nil)
	l := openLog(t, c, "reopen")
	ctx := context.Background()
	for round := range 3 {
		w, err := l.OpenWriter(ctx, 5)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if _, err := w.Append(ctx, payload(round)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got := readN(t, mustReader(t, l, woodpecker.Earliest()), 3)
	for i, e := range got {
		if !bytes.Equal(e.Payload, payload(i)) {
			t.Fatalf("entry %d: %q", i, e.Payload)
		}
	}
}

// TestCrashedWriterIsRecovered abandons a writer without closing it (its
// segment stays open) and checks that the next writer seals it with every
// acknowledged entry.
func TestCrashedWriterIsRecovered(t *testing.T) {
	for _, b := range allBackends() {
		t.Run(b.name, func(t *testing.T) {
			c := newClient(t, b, nil)
			l := openLog(t, c, "crash")
			ctx := context.Background()
			a, err := l.OpenWriter(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 25 {
				if _, err := a.Append(ctx, payload(i)); err != nil {
					t.Fatal(err)
				}
			}
			defer a.Close(ctx) // after the test: it is fenced by then
			b2, err := l.OpenWriter(ctx, 2)
			if err != nil {
				t.Fatal(err)
			}
			defer b2.Close(ctx)
			st, err := l.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Segments) != 1 || !st.Segments[0].Sealed || st.Segments[0].LastEntry != 24 {
				t.Fatalf("after recovery: %+v", st.Segments)
			}
			got := readN(t, mustReader(t, l, woodpecker.Earliest()), 25)
			for i, e := range got {
				if !bytes.Equal(e.Payload, payload(i)) {
					t.Fatalf("entry %d: %q", i, e.Payload)
				}
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	c := newClient(t, memBackend(nil), func(cfg *options.Config) { cfg.Writer.MaxEntryBytes = 1024 })
	ctx := context.Background()
	for _, name := range []string{"", "a/b", "bad\x00name", string(bytes.Repeat([]byte{'n'}, 300))} {
		if err := c.CreateLog(ctx, name); !errors.Is(err, woodpecker.ErrInvalidName) {
			t.Errorf("CreateLog(%q): %v, want ErrInvalidName", name, err)
		}
	}
	if _, err := c.OpenLog(ctx, "missing"); !errors.Is(err, woodpecker.ErrLogNotFound) {
		t.Errorf("OpenLog(missing): %v", err)
	}
	l := openLog(t, c, "input")
	if err := c.CreateLog(ctx, "input"); !errors.Is(err, woodpecker.ErrLogExists) {
		t.Errorf("CreateLog twice: %v", err)
	}
	w, err := l.OpenWriter(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	if _, err := w.Append(ctx, nil); !errors.Is(err, woodpecker.ErrEmptyEntry) {
		t.Errorf("empty append: %v", err)
	}
	if _, err := w.Append(ctx, make([]byte, 1025)); !errors.Is(err, woodpecker.ErrEntryTooLarge) {
		t.Errorf("large append: %v", err)
	}
	// The writer still works after rejected input.
	if id, err := w.Append(ctx, []byte("ok")); err != nil || id != (woodpecker.EntryID{}) {
		t.Errorf("append after bad input: %v %v", id, err)
	}
	if err := l.Truncate(ctx, woodpecker.EntryID{Segment: -1}); !errors.Is(err, woodpecker.ErrInvalidID) {
		t.Errorf("truncate at a negative id: %v", err)
	}
}

func TestTruncateMovesEarliest(t *testing.T) {
	c := newClient(t, memBackend(nil), nil)
	l := openLog(t, c, "trunc")
	ctx := context.Background()
	w, err := l.OpenWriter(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var ids []woodpecker.EntryID
	for i := range 10 {
		id, err := w.Append(ctx, payload(i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := l.Truncate(ctx, ids[6]); err != nil {
		t.Fatal(err)
	}
	if err := l.Truncate(ctx, ids[2]); err != nil { // lower: a no-op
		t.Fatal(err)
	}
	got := readN(t, mustReader(t, l, woodpecker.Earliest()), 4)
	if got[0].ID != ids[6] || got[3].ID != ids[9] {
		t.Fatalf("after truncation read %v..%v, want %v..%v", got[0].ID, got[3].ID, ids[6], ids[9])
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentAppendersAndTailReaders(t *testing.T) {
	for _, b := range []backend{memBackend(nil), localBackend} {
		t.Run(b.name, func(t *testing.T) {
			c := newClient(t, b, func(cfg *options.Config) { cfg.Writer.MaxBlockBytes = 32 << 10 })
			l := openLog(t, c, "busy")
			ctx := context.Background()
			w, err := l.OpenWriter(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			readers := []*woodpecker.Reader{mustReader(t, l, woodpecker.Earliest()), mustReader(t, l, woodpecker.Earliest())}
			const appenders, each = 8, 500
			var mu sync.Mutex
			acked := map[woodpecker.EntryID][]byte{}
			var wg sync.WaitGroup
			for g := range appenders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						p := []byte(fmt.Sprintf("g%d-%d", g, i))
						id, err := w.Append(ctx, p)
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						acked[id] = p
						mu.Unlock()
					}
				}()
			}
			results := make([][]woodpecker.Entry, len(readers))
			var rwg sync.WaitGroup
			for i, r := range readers {
				rwg.Add(1)
				go func() { defer rwg.Done(); results[i] = readN(t, r, appenders*each) }()
			}
			wg.Wait()
			rwg.Wait()
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			for ri, got := range results {
				for i, e := range got {
					if i > 0 && !got[i-1].ID.Less(e.ID) {
						t.Fatalf("reader %d: %v after %v", ri, e.ID, got[i-1].ID)
					}
					if want, ok := acked[e.ID]; !ok || !bytes.Equal(want, e.Payload) {
						t.Fatalf("reader %d: entry %v = %q, acked %q (%v)", ri, e.ID, e.Payload, want, ok)
					}
				}
			}
		})
	}
}

// TestStoreWithoutConditionalWrites refuses writers unless configured.
func TestStoreWithoutConditionalWrites(t *testing.T) {
	store := memstore.New(memstore.WithoutConditionalWrites())
	c := newClient(t, memBackend(store), nil)
	l := openLog(t, c, "weak")
	if _, err := l.OpenWriter(context.Background(), 1); !errors.Is(err, woodpecker.ErrWeakFencing) {
		t.Fatalf("open writer on a store without conditional writes: %v, want ErrWeakFencing", err)
	}
	c2 := newClient(t, memBackend(store), func(cfg *options.Config) {
		cfg.Storage.Fencing.ConditionalWrite = options.ConditionalWriteAllowEtcdOnly
	})
	l2 := openLog(t, c2, "weak")
	w, err := l2.OpenWriter(context.Background(), 1)
	if err != nil {
		t.Fatalf("with allowEtcdOnly: %v", err)
	}
	_ = w.Close(context.Background())
}

var _ objstore.Store = (*memstore.Store)(nil)

// TestStorageFromConfig builds clients the way users do, from the storage
// section alone, for both S3 client libraries against MinIO.
func TestStorageFromConfig(t *testing.T) {
	for _, typ := range []options.StorageType{options.StorageMinIO, options.StorageS3} {
		t.Run(string(typ), func(t *testing.T) {
			s3 := testenv.MinIO(t)
			c := newClient(t, backend{name: string(typ), setup: func(t *testing.T, cfg *options.Config) []woodpecker.Option {
				cfg.Storage = options.Default().Storage
				cfg.Storage.Type = typ
				cfg.Storage.Endpoint = s3.Endpoint
				cfg.Storage.AccessKey, cfg.Storage.SecretKey = s3.AccessKey, s3.SecretKey
				cfg.Storage.Bucket = testenv.NewBucket(t, s3)
				cfg.Storage.Region = s3.Region
				cfg.Storage.UseSSL = s3.Secure
				return nil
			}}, nil)
			l := openLog(t, c, "from-config")
			ctx := context.Background()
			w, err := l.OpenWriter(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 20 {
				if _, err := w.Append(ctx, payload(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			for i, e := range readN(t, mustReader(t, l, woodpecker.Earliest()), 20) {
				if !bytes.Equal(e.Payload, payload(i)) {
					t.Fatalf("entry %d: %q", i, e.Payload)
				}
			}
		})
	}
	t.Run("tls CA file is used", func(t *testing.T) {
		cfg := options.Default()
		cfg.Storage.UseSSL = true
		cfg.Storage.TLS.CAFile = t.TempDir() + "/missing-ca.pem"
		_, err := woodpecker.New(context.Background(), cfg, woodpecker.WithEtcdClient(testenv.Etcd(t)))
		if err == nil || !strings.Contains(err.Error(), "missing-ca.pem") {
			t.Fatalf("New with a missing storage.tls.caFile: %v, want an error naming the file", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		cfg := options.Default()
		cfg.Storage.Endpoint = "127.0.0.1:1" // nothing listens there
		cfg.Storage.RequestTimeout = 2 * time.Second
		_, err := woodpecker.New(context.Background(), cfg, woodpecker.WithEtcdClient(testenv.Etcd(t)))
		if err == nil {
			t.Fatal("New succeeded against an unreachable object store")
		}
	})
}

// TestReaderStartsInTheMiddleWithoutReadingThePrefix opens readers deep in a
// large sealed segment and checks they find their block by a handful of
// header reads rather than reading every block before it.
func TestReaderStartsInTheMiddleWithoutReadingThePrefix(t *testing.T) {
	store := memstore.New()
	c := newClient(t, memBackend(store), nil)
	l := openLog(t, c, "seek")
	ctx := context.Background()
	w, err := l.OpenWriter(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	const n = 400 // a lone writer: one block per append
	ids := make([]woodpecker.EntryID, n)
	for i := range n {
		if ids[i], err = w.Append(ctx, payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, at := range []int{1, 199, 200, 398, 399} {
		store.ResetCounts()
		r := mustReader(t, l, woodpecker.At(ids[at]))
		got := readN(t, r, n-at)
		for i, e := range got {
			if e.ID != ids[at+i] || !bytes.Equal(e.Payload, payload(at+i)) {
				t.Fatalf("At(%v): entry %d is %v", ids[at], i, e.ID)
			}
		}
		// Header probes (log2 400 < 9) plus the blocks from the position on.
		reads := store.Count(memstore.OpGet) + store.Count(memstore.OpGetRange)
		if limit := int64(n-at) + 16; reads > limit {
			t.Fatalf("At(%v) made %d reads, want at most %d: it read blocks before its position", ids[at], reads, limit)
		}
		r.Close()
	}
}

// TestRecoveryReportsMidFileCorruption damages a block in the middle of a
// crashed writer's local segment file: recovery must report corruption and
// keep the file, never cut the blocks after the damage (they hold
// acknowledged entries).
func TestRecoveryReportsMidFileCorruption(t *testing.T) {
	c := newClient(t, localBackend, nil)
	l := openLog(t, c, "midfile")
	ctx := context.Background()
	a, err := l.OpenWriter(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	for i := range 5 { // a lone writer: one block per append
		if _, err := a.Append(ctx, payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	files, err := filepath.Glob(filepath.Join(c.Config().Storage.RootPath, "*", "*.seg"))
	if err != nil || len(files) != 1 {
		t.Fatalf("segment files: %v %v", files, err)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff // inside block 2 of 5
	if err := os.WriteFile(files[0], data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := l.OpenWriter(ctx, 2); !errors.Is(err, woodpecker.ErrCorrupt) {
		t.Fatalf("recovery over a damaged middle block: %v, want ErrCorrupt", err)
	}
	if st, err := os.Stat(files[0]); err != nil || st.Size() != int64(len(data)) {
		t.Fatalf("segment file after failed recovery: %v %v, want it untouched at %d bytes", st.Size(), err, len(data))
	}
}
