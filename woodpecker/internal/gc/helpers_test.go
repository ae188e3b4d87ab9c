package gc_test

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/s3store"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/shared"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
	"github.com/woodpecker-wal/woodpecker/woodpecker/internal/gc"
)

// clock is a wall clock that tests move forward, so TTLs and grace
// periods of hours pass at once.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time             { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration)    { c.offset.Add(int64(d)) }
func (c *clock) Offset() time.Duration      { return time.Duration(c.offset.Load()) }
func (c *clock) Set(d time.Duration) *clock { c.offset.Store(int64(d)); return c }

// env is one test's MinIO bucket and etcd prefix, a client writing to them
// and what a collector needs.
type env struct {
	s3      testenv.S3
	bucket  string
	root    string // etcd root
	etcd    *clientv3.Client
	store   *s3store.Store
	meta    *meta.Store
	backend *segment.ObjectBackend
	// shared, when set, is the collectors' backend: the per-log layout
	// with shared objects, as a client with writer.batchWindow > 0 has.
	shared *shared.Backend
	client *woodpecker.Client
	clock  clock
}

// baseConfig makes small blocks and short segments, so a few hundred
// entries make many objects.
func baseConfig(root string) options.Config {
	cfg := options.Default()
	cfg.Etcd.RootPath = root
	cfg.Writer.MaxBlockBytes = 2 << 10
	cfg.Writer.RollMaxBlocks = 8
	cfg.Writer.FlushDelay = time.Millisecond
	cfg.Reader.TailBackoffMax = 20 * time.Millisecond
	cfg.Retention.ReaderLeaseTTL = 2 * time.Second
	return cfg
}

func newEnv(t *testing.T, tweak func(*options.Config)) *env {
	t.Helper()
	e := &env{s3: testenv.MinIO(t), root: testenv.UniquePrefix(t), etcd: testenv.Etcd(t)}
	e.bucket = testenv.NewBucket(t, e.s3)
	e.store = openStore(t, e.s3, e.bucket)
	e.meta = meta.New(e.etcd, e.root)
	e.backend = segment.NewObjectBackend(e.store, "", 4)
	e.client = e.newClient(t, e.etcd, tweak)
	return e
}

func openStore(t *testing.T, s3 testenv.S3, bucket string) *s3store.Store {
	t.Helper()
	store, err := s3store.Open(context.Background(), s3store.Config{
		Endpoint: s3.Endpoint, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey,
		Bucket: bucket, Region: s3.Region, Secure: s3.Secure,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return store
}

// newClient returns another client of the env's logs over cli.
func (e *env) newClient(t *testing.T, cli *clientv3.Client, tweak func(*options.Config)) *woodpecker.Client {
	t.Helper()
	cfg := baseConfig(e.root)
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := woodpecker.New(context.Background(), cfg,
		woodpecker.WithObjectStore(e.store), woodpecker.WithEtcdClient(cli))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// gcConfig is the collectors' default in these tests: hours of TTL and
// grace, which the clock skips.
func (e *env) gcConfig() gc.Config {
	return gc.Config{
		TTL:               time.Hour,
		OrphanGracePeriod: time.Hour,
		Compaction: gc.CompactionConfig{
			TargetObjectBytes: 4 << 10, MinBlocks: 3, OldBlocksGracePeriod: 10 * time.Minute,
		},
		LockTTL: 2 * time.Second,
		Now:     e.clock.Now,
	}
}

func (e *env) collector(t *testing.T, tweak func(*gc.Config)) *gc.Collector {
	t.Helper()
	cfg := e.gcConfig()
	if tweak != nil {
		tweak(&cfg)
	}
	var b segment.Backend = e.backend
	if e.shared != nil {
		b = e.shared
	}
	c, err := gc.New(e.meta, b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// run makes one pass and fails the test on any error.
func run(t *testing.T, c *gc.Collector) gc.Report {
	t.Helper()
	rep, err := c.RunOnce(context.Background())
	if err != nil {
		t.Fatalf("garbage collection pass: %v", err)
	}
	if len(rep.Errors) > 0 {
		t.Fatalf("garbage collection pass: %v", rep.Errors)
	}
	return rep
}

func payload(log string, i int) []byte {
	return []byte(fmt.Sprintf("%s-%06d-%s", log, i, bytes.Repeat([]byte{byte('a' + i%26)}, 40+i%61)))
}

// written is what a test wrote to a log.
type written struct {
	log      *woodpecker.Log
	ids      []woodpecker.EntryID
	payloads [][]byte
}

// index returns the position of id in w.ids.
func (w written) index(t *testing.T, id woodpecker.EntryID) int {
	t.Helper()
	i := sort.Search(len(w.ids), func(i int) bool { return !w.ids[i].Less(id) })
	if i == len(w.ids) || w.ids[i] != id {
		t.Fatalf("%s was not written", id)
	}
	return i
}

// write creates the log and appends n entries. With sync each append
// waits for the previous one, so each entry is a block of its own.
func (e *env) write(t *testing.T, c *woodpecker.Client, name string, n int, sync bool) written {
	t.Helper()
	return e.writeSized(t, c, name, n, sync, 0)
}

// writeSized is write with payloads of size bytes each (0: varied sizes).
func (e *env) writeSized(t *testing.T, c *woodpecker.Client, name string, n int, sync bool, size int) written {
	t.Helper()
	ctx := context.Background()
	if err := c.CreateLog(ctx, name); err != nil {
		t.Fatal(err)
	}
	l, err := c.OpenLog(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	w, err := l.OpenWriter(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	out := written{log: l}
	futs := make([]*woodpecker.AppendFuture, 0, n)
	for i := range n {
		p := payload(name, i)
		if size > 0 {
			p = append(p[:0:0], bytes.Repeat([]byte{'.'}, size)...)
			copy(p, fmt.Sprintf("%s-%06d", name, i))
		}
		out.payloads = append(out.payloads, p)
		if sync {
			id, err := w.Append(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			out.ids = append(out.ids, id)
			continue
		}
		f, err := w.AppendAsync(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		futs = append(futs, f)
	}
	for _, f := range futs {
		id, err := f.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out.ids = append(out.ids, id)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return out
}

// readBack reads from `from` to the end of what w wrote and checks every
// entry byte for byte, in order, exactly once.
func readBack(t *testing.T, w written, from int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := w.log.OpenReader(ctx, woodpecker.At(w.ids[from]))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := from; i < len(w.ids); i++ {
		e, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("reading entry %d (%s): %v", i, w.ids[i], err)
		}
		if e.ID != w.ids[i] || !bytes.Equal(e.Payload, w.payloads[i]) {
			t.Fatalf("entry %d: got %s %q, want %s %q", i, e.ID, e.Payload, w.ids[i], w.payloads[i])
		}
	}
}

// objects returns every object of the bucket: key -> size.
func (e *env) objects(t *testing.T) map[string]int64 {
	t.Helper()
	objs, err := objstore.ListAll(context.Background(), e.store, "", "")
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]int64, len(objs))
	for _, o := range objs {
		out[o.Key] = o.Size
	}
	return out
}

func (e *env) put(t *testing.T, key string, data []byte) {
	t.Helper()
	if err := e.store.Put(context.Background(), key, data, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

// referenced returns, for every live log, the objects its metadata needs
// (required: they must exist) and those it may keep (the writer's seal
// record, fences, objects a compaction replaced while they retire), and
// the segments still marked for deletion.
func (e *env) referenced(t *testing.T) (required, allowed map[string]bool, deleting []string) {
	t.Helper()
	ctx := context.Background()
	required, allowed = map[string]bool{}, map[string]bool{}
	infos, err := e.meta.LogInfos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range infos {
		st, err := e.meta.ReadLogState(ctx, info.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, sm := range st.Segments {
			prefix := segment.SegmentPrefix("", sm.LogID, sm.ID)
			if sm.Deleting {
				deleting = append(deleting, fmt.Sprintf("log %d segment %d", sm.LogID, sm.ID))
				continue
			}
			if sm.State != meta.SegmentSealed {
				t.Fatalf("log %d segment %d is open; tests close their writers", sm.LogID, sm.ID)
			}
			allowed[prefix+segment.BlockName(sm.Blocks)] = true // a fence
			if string(sm.Placement) == shared.Placement {
				// Its seal lists the shared objects it reads until it
				// is compacted and their grace period is over.
				required[prefix+shared.SealName] = true
				if sm.Generation == 0 || sm.Retiring {
					seal, err := e.sharedBackend().ReadSeal(ctx, segment.Ref{LogID: sm.LogID, SegmentID: sm.ID, Placement: shared.Placement})
					if err != nil {
						t.Fatalf("log %d segment %d: %v", sm.LogID, sm.ID, err)
					}
					for _, x := range seal.Extents {
						required[x.Object] = true
					}
				}
				if sm.Generation == 0 {
					continue
				}
			}
			if sm.Generation == 0 {
				required[prefix+segment.SealName] = true
				for b := range sm.Blocks {
					required[prefix+segment.BlockName(b)] = true
				}
				continue
			}
			allowed[prefix+segment.SealName] = true
			lay, err := e.backend.ReadLayout(ctx, segment.Ref{LogID: sm.LogID, SegmentID: sm.ID}, sm.Generation, sm.Blocks)
			if err != nil {
				t.Fatalf("log %d segment %d generation %d: %v", sm.LogID, sm.ID, sm.Generation, err)
			}
			for name := range lay.Names() {
				required[prefix+name] = true
			}
			if sm.Retiring {
				for b := range sm.Blocks {
					allowed[prefix+segment.BlockName(b)] = true
				}
				allowed[prefix+segment.LayoutSealName(sm.Generation-1)] = true
				for b := range sm.Blocks {
					allowed[prefix+segment.MergedObjectName(b, sm.Generation-1)] = true
				}
			}
		}
	}
	return required, allowed, deleting
}

// sharedBackend returns the env's shared backend, or one over its store.
func (e *env) sharedBackend() *shared.Backend {
	if e.shared != nil {
		return e.shared
	}
	return shared.NewBackend(e.backend, e.meta, shared.StreamConfig{}, nil)
}

// checkNoDangling checks that no metadata points at a missing object
// (segments marked for deletion excepted: readers treat them as gone).
func (e *env) checkNoDangling(t *testing.T) {
	t.Helper()
	required, _, _ := e.referenced(t)
	objs := e.objects(t)
	for key := range required {
		if _, ok := objs[key]; !ok {
			t.Fatalf("metadata points at %s, which is missing", key)
		}
	}
}

// checkConverged checks the end state of garbage collection: no segment
// left marked, no object that metadata does not need (foreign keys
// excepted), and none missing.
func (e *env) checkConverged(t *testing.T, foreign ...string) {
	t.Helper()
	required, allowed, deleting := e.referenced(t)
	if len(deleting) > 0 {
		t.Fatalf("still marked for deletion: %v", deleting)
	}
	objs := e.objects(t)
	for key := range required {
		if _, ok := objs[key]; !ok {
			t.Fatalf("metadata points at %s, which is missing", key)
		}
	}
	isForeign := map[string]bool{}
	for _, f := range foreign {
		isForeign[f] = true
	}
	var extra []string
	for key := range objs {
		if !required[key] && !isForeign[key] {
			// A fence is the only object beyond the layout a converged
			// segment keeps.
			if allowed[key] && objs[key] < segment.BlockHeaderSize && strings.Contains(key, "/b-") {
				continue
			}
			if allowed[key] && strings.HasSuffix(key, "/"+segment.SealName) {
				continue
			}
			extra = append(extra, key)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Fatalf("%d objects nothing refers to: %v", len(extra), extra)
	}
	for _, f := range foreign {
		if _, ok := objs[f]; !ok {
			t.Fatalf("foreign object %s was deleted", f)
		}
	}
}

// segmentIDs returns the ids of the log's segments in metadata.
func segmentIDs(t *testing.T, l *woodpecker.Log) []int64 {
	t.Helper()
	st, err := l.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, s := range st.Segments {
		ids = append(ids, s.ID)
	}
	return ids
}

// keysOf returns the keys under prefix.
func keysOf(objs map[string]int64, prefix string) []string {
	var out []string
	for k := range objs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
