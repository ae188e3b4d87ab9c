package gc_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/quorum/quorumtest"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/shared"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
	"github.com/woodpecker-wal/woodpecker/woodpecker/internal/gc"
)

// sharedCollector returns a collector whose backend knows shared objects
// (as the client's does), with compaction on.
func (e *env) sharedCollector(t *testing.T, hook func(gc.Point) error) *gc.Collector {
	t.Helper()
	cfg := e.gcConfig()
	cfg.Compaction.Enabled = true
	cfg.Hook = hook
	b := shared.NewBackend(segment.NewObjectBackend(e.store, "", 4), e.meta, shared.StreamConfig{}, nil)
	c, err := gc.New(e.meta, b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// writeTogether appends n entries to each of the named new logs, one
// entry of every log at a time, each round waiting for the previous one:
// the logs' blocks meet in shared objects.
func (e *env) writeTogether(t *testing.T, names []string, n int) []written {
	t.Helper()
	ctx := context.Background()
	logs := make([]written, len(names))
	writers := make([]*woodpecker.Writer, len(names))
	for i, name := range names {
		if err := e.client.CreateLog(ctx, name); err != nil {
			t.Fatal(err)
		}
		l, err := e.client.OpenLog(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if writers[i], err = l.OpenWriter(ctx, 1); err != nil {
			t.Fatal(err)
		}
		logs[i].log = l
	}
	for k := range n {
		futs := make([]*woodpecker.AppendFuture, len(names))
		for i, name := range names {
			p := payload(name, k)
			logs[i].payloads = append(logs[i].payloads, p)
			var err error
			if futs[i], err = writers[i].AppendAsync(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		for i, f := range futs {
			id, err := f.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			logs[i].ids = append(logs[i].ids, id)
		}
	}
	for _, w := range writers {
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return logs
}

func (e *env) sharedKeys(t *testing.T) []string {
	return keysOf(e.objects(t), "shared/")
}

func (e *env) sharedRecords(t *testing.T) []string {
	t.Helper()
	_, names, err := e.meta.SharedObjects(context.Background(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestSharedObjectsCompactedThenCollected: logs written into shared
// objects are compacted into per-log objects, and the shared objects are
// deleted once no segment reads them any more (after the readers' grace
// period), along with uncommitted orphans past theirs; every entry reads
// back at every step, also through a reader that opened on the shared
// layout before the objects went away. Every pass is also failed at each
// of its steps in turn (a crash), with nothing lost at any of them.
func TestSharedObjectsCompactedThenCollected(t *testing.T) {
	e := newEnv(t, func(c *options.Config) { c.Writer.BatchWindow = 2 * time.Millisecond })
	logs := e.writeTogether(t, []string{"a", "b", "c"}, 40)
	if n := len(e.sharedKeys(t)); n == 0 || n >= 120 {
		t.Fatalf("%d shared objects for 120 blocks of 3 logs", n)
	}
	e.put(t, "shared/0000000000000000-orphan-1", []byte("an object never committed"))

	// A reader on the shared layout, halfway through log a.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	early, err := logs[0].log.OpenReader(ctx, woodpecker.Earliest())
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()
	for i := range 20 {
		if en, err := early.Next(ctx); err != nil || en.ID != logs[0].ids[i] {
			t.Fatalf("early reader entry %d: %v %v", i, en.ID, err)
		}
	}

	// Crash every pass at its k-th step until one completes, with the
	// clock moving past the readers' grace period and the orphans' on the
	// way; after each crash every entry still reads back.
	errCrash := errors.New("injected crash")
	steps, failAt := 0, 0
	col := e.sharedCollector(t, func(p gc.Point) error {
		if steps++; steps == failAt {
			return errCrash
		}
		return nil
	})
	for failAt = 1; ; failAt++ {
		steps = 0
		_, err := col.RunOnce(context.Background())
		for _, w := range logs {
			readBack(t, w, 0)
		}
		if err == nil {
			if len(e.sharedKeys(t)) == 0 {
				break
			}
			e.clock.Advance(11 * time.Minute) // the grace periods pass
			continue
		}
		if !errors.Is(err, errCrash) {
			t.Fatalf("pass failing at step %d: %v", failAt, err)
		}
		if failAt > 500 {
			t.Fatal("the passes do not converge")
		}
	}
	t.Logf("passes failed at steps 1..%d before the shared objects were gone", failAt-1)
	e.clock.Advance(2 * time.Hour)
	failAt = -1
	run(t, col)
	e.checkSharedGone(t, logs)
	// The early reader's shared objects are gone: it goes on in the
	// compacted layout, without a gap or a repeat.
	for i := 20; i < len(logs[0].ids); i++ {
		if en, err := early.Next(ctx); err != nil || en.ID != logs[0].ids[i] || string(en.Payload) != string(logs[0].payloads[i]) {
			t.Fatalf("early reader entry %d: %v %v", i, en.ID, err)
		}
	}
}

// TestYoungSharedOrphanIsKept: an object without a commit record may be an
// upload whose commit is still in flight; it is deleted only once older
// than the orphan grace period.
func TestYoungSharedOrphanIsKept(t *testing.T) {
	e := newEnv(t, func(c *options.Config) { c.Writer.BatchWindow = 2 * time.Millisecond })
	e.writeTogether(t, []string{"a", "b"}, 5)
	young := "shared/ffffffffffffffff-young-1"
	e.put(t, young, []byte("in flight"))
	col := e.sharedCollector(t, nil)
	run(t, col)
	keys := e.sharedKeys(t)
	if !strings.Contains(strings.Join(keys, " "), young) {
		t.Fatalf("a young orphan was deleted: %v", keys)
	}
	if len(keys) < 2 {
		t.Fatalf("committed shared objects were deleted before compaction: %v", keys)
	}
}

// TestQuorumSharedSegmentsCompactedThenCollected: segments whose LogStores
// wrote them into shared objects (QuorumBuffer, writer.batchWindow > 0)
// are compacted into per-log objects by a collector over the QuorumBuffer
// client's own backend, their shared objects and records are deleted, and
// every entry reads back.
func TestQuorumSharedSegmentsCompactedThenCollected(t *testing.T) {
	e := newEnv(t, nil)
	cluster := quorumtest.StartShared(t, e.etcd, e.root, 2*time.Millisecond, 3, e.store, "", 64<<20)
	e.client = e.newClient(t, e.etcd, func(c *options.Config) {
		c.Mode = options.ModeQuorumBuffer
		c.Quorum.LogStores = cluster.Addrs()
		c.Writer.BatchWindow = 2 * time.Millisecond
		// Segments of fewer blocks than the compaction's minimum keep
		// their shared objects: one segment per log.
		c.Writer.RollMaxBlocks = 1000
	})
	logs := e.writeTogether(t, []string{"a", "b", "c"}, 40)
	if n := len(e.sharedKeys(t)); n == 0 {
		t.Fatal("no shared object: the LogStores wrote per-log objects")
	}
	cfg := e.gcConfig()
	cfg.Compaction.Enabled = true
	col, err := gc.New(e.meta, e.client.Backend(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		run(t, col)
		e.clock.Advance(11 * time.Minute) // the readers' grace period passes
	}
	e.clock.Advance(2 * time.Hour) // and the orphans'
	run(t, col)
	e.checkSharedGone(t, logs)
}

// checkSharedGone checks that no shared object or record is left, that
// every segment of logs is compacted (generation 1), and that every entry
// reads back.
func (e *env) checkSharedGone(t *testing.T, logs []written) {
	t.Helper()
	if keys, recs := e.sharedKeys(t), e.sharedRecords(t); len(keys) > 0 || len(recs) > 0 {
		t.Fatalf("left: objects %v, records %v", keys, recs)
	}
	for _, w := range logs {
		st, err := w.log.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range st.Segments {
			if s.Generation != 1 {
				t.Fatalf("log %s segment %d: generation %d", w.log.Name(), s.ID, s.Generation)
			}
		}
		readBack(t, w, 0)
	}
}
