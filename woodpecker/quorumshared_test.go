package woodpecker_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/quorum/quorumtest"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// quorumSharedClient starts 3 LogStores writing shared objects into
// logstores (the store they upload to) and a QuorumBuffer client placing
// its segments there, reading store.
func quorumSharedClient(t *testing.T, store *memstore.Store, logstores objstore.Store) *woodpecker.Client {
	t.Helper()
	b := backend{name: "quorum-shared", setup: func(t *testing.T, cfg *options.Config) []woodpecker.Option {
		cluster := quorumtest.StartShared(t, testenv.Etcd(t), cfg.Etcd.RootPath, 5*time.Millisecond, 3, logstores, "", 64<<20)
		cfg.Mode = options.ModeQuorumBuffer
		cfg.Quorum.LogStores = cluster.Addrs()
		cfg.Writer.BatchWindow = 5 * time.Millisecond
		return []woodpecker.Option{woodpecker.WithObjectStore(store)}
	}}
	return newClient(t, b, func(cfg *options.Config) {
		cfg.Writer.UploadRetry.TotalTimeout = 20 * time.Second
	})
}

// objectKinds counts the shared objects in store, the blocks they hold, and
// the largest number of logs one of them holds blocks of; and the
// per-log block objects.
func objectKinds(t *testing.T, store *memstore.Store) (objects, blocks, maxLogs, perLog int) {
	t.Helper()
	for _, key := range store.Keys() {
		if !strings.HasPrefix(key, "shared/") {
			if strings.Contains(key, "/b-") {
				perLog++
			}
			continue
		}
		objects++
		exts := objectIndex(t, store, key)
		blocks += len(exts)
		logs := map[int64]bool{}
		for _, x := range exts {
			logs[x.LogID] = true
		}
		maxLogs = max(maxLogs, len(logs))
	}
	return objects, blocks, maxLogs, perLog
}

// TestLogStoresPackTheBlocksOfManyLogsIntoSharedObjects: with
// writer.batchWindow > 0 in QuorumBuffer mode, the LogStores upload the
// blocks of every log they serve into shared objects, several logs to an
// object, instead of one object per block; seals and reads go through
// them, and every acknowledged entry reads back in order.
func TestLogStoresPackTheBlocksOfManyLogsIntoSharedObjects(t *testing.T) {
	store := memstore.New()
	c := quorumSharedClient(t, store, store)
	ctx := context.Background()
	const logs, n = 8, 40
	var wg sync.WaitGroup
	ls := make([]*woodpecker.Log, logs)
	errs := make(chan error, logs)
	for i := range logs {
		ls[i] = openLog(t, c, string(rune('a'+i)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := ls[i].OpenWriter(ctx, 1)
			if err != nil {
				errs <- err
				return
			}
			for j := range n {
				if _, err := w.Append(ctx, payload(j)); err != nil {
					errs <- errors.Wrapf(err, "log %d append %d", i, j)
					return
				}
			}
			errs <- w.Close(ctx) // seals: the uploads must be committed
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	objects, blocks, maxLogs, perLog := objectKinds(t, store)
	if perLog != 0 {
		t.Fatalf("%d per-log block objects: the LogStores did not write shared objects", perLog)
	}
	// Each LogStore uploads only the segments it is the first of; copies
	// made by seals are shared objects too. Every block is in one.
	if objects == 0 || blocks < logs*n {
		t.Fatalf("%d shared objects hold %d blocks, want all %d", objects, blocks, logs*n)
	}
	if maxLogs < 2 {
		t.Fatalf("no shared object holds blocks of two logs (%d objects, %d blocks)", objects, blocks)
	}
	for i, l := range ls {
		st, err := l.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Segments) != 1 || !st.Segments[0].Sealed || st.Segments[0].LastEntry != n-1 {
			t.Fatalf("log %d: %+v", i, st.Segments)
		}
		got := readN(t, mustReader(t, l, woodpecker.Earliest()), n)
		for j, e := range got {
			if string(e.Payload) != string(payload(j)) {
				t.Fatalf("log %d entry %d: %q", i, j, e.Payload)
			}
		}
	}
}

// refusedSharedPuts refuses every shared object the LogStores write while
// refuse is set.
type refusedSharedPuts struct {
	objstore.Store
	mu     sync.Mutex
	refuse bool
}

func (s *refusedSharedPuts) Put(ctx context.Context, key string, data []byte, opts objstore.PutOptions) error {
	s.mu.Lock()
	refuse := s.refuse && strings.HasPrefix(key, "shared/")
	s.mu.Unlock()
	if refuse {
		return errors.New("test: shared object PUTs are refused")
	}
	return s.Store.Put(ctx, key, data, opts)
}

func (s *refusedSharedPuts) set(refuse bool) {
	s.mu.Lock()
	s.refuse = refuse
	s.mu.Unlock()
}

// appendNotUploaded appends entry(0..n-1) with a writer of epoch 1 on a
// QuorumBuffer client whose LogStores cannot write shared objects (gate
// refuses them until told otherwise): the acknowledged entries exist only
// on the LogStores. The writer is closed when the test ends.
func appendNotUploaded(t *testing.T, n int, entry func(int) []byte) (*memstore.Store, *refusedSharedPuts, *woodpecker.Log, *woodpecker.Writer) {
	t.Helper()
	store := memstore.New()
	gate := &refusedSharedPuts{Store: store, refuse: true}
	c := quorumSharedClient(t, store, gate)
	ctx := context.Background()
	l := openLog(t, c, "unuploaded")
	old, err := l.OpenWriter(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = old.Close(ctx) }) // fenced by then
	for i := range n {
		if _, err := old.Append(ctx, entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	return store, gate, l, old
}

// TestRecoveryCopiesWhatTheLogStoresDidNotCommit: the LogStores cannot
// write shared objects, so acknowledged entries exist only on them; a new
// writer's recovery copies them into a shared object under its own
// ownership and seals the segment with every one. The old writer is
// fenced on append, and the LogStores' late uploads of its segment, once
// object storage takes them again, commit nothing: the log stays as
// recovery sealed it.
func TestRecoveryCopiesWhatTheLogStoresDidNotCommit(t *testing.T) {
	ctx := context.Background()
	const n = 30
	store, gate, l, old := appendNotUploaded(t, n, payload)
	if objects, _, _, _ := objectKinds(t, store); objects != 0 {
		t.Fatalf("%d shared objects while their PUTs are refused", objects)
	}
	w, err := l.OpenWriter(ctx, 2) // recovers the old writer's segment
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	gate.set(false)
	if _, err := old.Append(ctx, payload(n)); !errors.Is(err, woodpecker.ErrFenced) {
		t.Fatalf("append by the replaced writer: %v, want ErrFenced", err)
	}
	if _, err := w.Append(ctx, payload(n)); err != nil {
		t.Fatal(err)
	}
	st, err := l.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Segments) < 1 || !st.Segments[0].Sealed || st.Segments[0].LastEntry != n-1 {
		t.Fatalf("after recovery: %+v", st.Segments)
	}
	got := readN(t, mustReader(t, l, woodpecker.Earliest()), n+1)
	for i, e := range got {
		if string(e.Payload) != string(payload(i)) {
			t.Fatalf("entry %d: %q", i, e.Payload)
		}
	}
}

// TestRecoveryCopiesManyMegabytesInSeveralObjects: a recovery that copies
// 20 MiB the LogStores never uploaded writes them in objects of about 8 MiB
// (one etcd commit each), and every entry reads back.
func TestRecoveryCopiesManyMegabytesInSeveralObjects(t *testing.T) {
	ctx := context.Background()
	const n, size = 40, 512 << 10 // 20 MiB in 40 blocks
	entry := func(i int) []byte { return append([]byte(fmt.Sprintf("%04d", i)), make([]byte, size-4)...) }
	store, _, l, _ := appendNotUploaded(t, n, entry)
	w, err := l.OpenWriter(ctx, 2) // recovery copies the 40 blocks
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	var objects int
	for _, key := range store.Keys() {
		if !strings.HasPrefix(key, "shared/") {
			continue
		}
		objects++
		data, _ := store.Peek(key)
		// 8 MiB, plus the read batch (8 blocks) that crossed it.
		if len(data) > 8<<20+8*(size+1024) {
			t.Fatalf("shared object %s holds %d bytes: the copy was not written in bounded objects", key, len(data))
		}
	}
	if objects < 3 {
		t.Fatalf("%d shared objects for 20 MiB of copied blocks, want 3 or more", objects)
	}
	got := readN(t, mustReader(t, l, woodpecker.Earliest()), n)
	for i, e := range got {
		if string(e.Payload[:4]) != fmt.Sprintf("%04d", i) || len(e.Payload) != size {
			t.Fatalf("entry %d: %q... (%d bytes)", i, e.Payload[:4], len(e.Payload))
		}
	}
}
