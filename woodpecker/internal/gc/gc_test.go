package gc_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
	"github.com/woodpecker-wal/woodpecker/woodpecker/internal/gc"
)

// wasWhollyBelow returns the ids of the segments of l wholly below id.
func wasWhollyBelow(t *testing.T, l *woodpecker.Log, id woodpecker.EntryID) []int64 {
	t.Helper()
	st, err := l.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, s := range st.Segments {
		if s.ID < id.Segment || (s.ID == id.Segment && s.LastEntry < id.Entry) {
			out = append(out, s.ID)
		}
	}
	return out
}

// 1. Write, truncate, wait past retention: objects and metadata below the
// point are gone, and everything above still reads back byte for byte.
func TestRetentionDeletesBelowTruncation(t *testing.T) {
	e := newEnv(t, func(c *options.Config) { c.Writer.MaxBlockBytes = 512 })
	ctx := context.Background()
	w := e.write(t, e.client, "orders", 400, false)
	dead := e.write(t, e.client, "dropped", 60, false)
	if err := e.client.DeleteLog(ctx, "dropped"); err != nil {
		t.Fatal(err)
	}
	const cut = 250
	if err := w.log.Truncate(ctx, w.ids[cut]); err != nil {
		t.Fatal(err)
	}
	below := wasWhollyBelow(t, w.log, w.ids[cut])
	if len(below) < 3 {
		t.Fatalf("only %d segments below the truncation point; the test wants several", len(below))
	}
	st, _ := w.log.Stats(ctx)
	last := st.Segments[len(st.Segments)-1]
	// Objects nothing refers to: a segment metadata does not know, a block
	// beyond a sealed segment's end, a log etcd does not know; and one
	// object of someone else, which must stay.
	junk := bytes.Repeat([]byte("j"), 100)
	orphans := []string{
		segment.BlockKey("", w.log.ID(), last.ID+50, 0),
		segment.BlockKey("", w.log.ID(), last.ID, last.Blocks+2),
		segment.BlockKey("", 4242, 0, 0),
	}
	for _, k := range orphans {
		e.put(t, k, junk)
	}
	const foreign = "elsewhere/notes.txt"
	e.put(t, foreign, junk)

	col := e.collector(t, nil)
	before := e.objects(t)
	rep := run(t, col)
	after := e.objects(t)
	if n := len(keysOf(after, segment.LogPrefix("", dead.log.ID()))); n != 0 {
		t.Fatalf("%d objects of the deleted log remain", n)
	}
	if rep.CollectedLogs != 1 || rep.DeletedSegments != 0 {
		t.Fatalf("first pass: %+v; want the deleted log collected and no segment deleted before the TTL", rep)
	}
	if got, want := keysOf(after, segment.LogPrefix("", w.log.ID())), keysOf(before, segment.LogPrefix("", w.log.ID())); !slices.Equal(got, want) {
		t.Fatalf("the live log's objects changed before its TTL passed and its orphans' grace period ended")
	}

	e.clock.Advance(2 * time.Hour)
	rep = run(t, col)
	if rep.DeletedSegments != int64(len(below)) || rep.OrphanObjects != int64(len(orphans)) {
		t.Fatalf("second pass: %+v; want %d segments and %d orphans deleted", rep, len(below), len(orphans))
	}
	ids := segmentIDs(t, w.log)
	if ids[0] != below[len(below)-1]+1 {
		t.Fatalf("segments %v remain; want the first after %v", ids, below)
	}
	after = e.objects(t)
	for _, s := range below {
		if n := len(keysOf(after, segment.SegmentPrefix("", w.log.ID(), s))); n != 0 {
			t.Fatalf("%d objects of deleted segment %d remain", n, s)
		}
	}
	e.checkConverged(t, foreign)
	readBack(t, w, cut)
	readBack(t, w, w.index(t, woodpecker.EntryID{Segment: ids[0]}))

	// Reading what is gone: ErrTruncated with the first available id.
	r, err := w.log.OpenReader(ctx, woodpecker.At(w.ids[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = r.Next(ctx)
	var te *woodpecker.TruncatedError
	if !errors.Is(err, woodpecker.ErrTruncated) || !errors.As(err, &te) || te.First != (woodpecker.EntryID{Segment: ids[0]}) {
		t.Fatalf("reading below the first available entry: %v; want ErrTruncated with first %d:0", err, ids[0])
	}
	if !strings.Contains(err.Error(), te.First.String()) {
		t.Fatalf("error %q does not name the first available entry", err)
	}
	st, err = w.log.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	logObjects := keysOf(after, segment.LogPrefix("", w.log.ID()))
	if st.FirstAvailable != te.First || st.LastGC.IsZero() || st.DeletedSegments != int64(len(below)) ||
		!st.HeldMeasured || st.HeldObjects != int64(len(logObjects)) || st.ReclaimableBytes != 0 {
		t.Fatalf("stats after GC: %+v; want first available %s, %d deleted segments, %d objects held",
			st.RetentionStats, te.First, len(below), len(logObjects))
	}
	m := col.Metrics().Snapshot()
	if m.DeletedSegments != int64(len(below)) || m.CollectedLogs != 1 || m.OrphanObjects != int64(len(orphans)) ||
		m.DeletedObjects != int64(len(before)-len(after)) || m.Errors != 0 || m.Passes != 2 {
		t.Fatalf("metrics %+v; want %d objects deleted in all", m, len(before)-len(after))
	}
	// Nothing left to do: a third pass deletes nothing.
	if rep := run(t, col); rep.DeletedObjects != 0 {
		t.Fatalf("third pass deleted %d objects", rep.DeletedObjects)
	}
}

// killSetup writes what the crash tests collect: a log of 15 segments of
// 8 single-entry blocks truncated in the middle (segments to delete, and
// segments to compact), a deleted log, and orphans.
func killSetup(t *testing.T, e *env) (w written, cut int, foreign string) {
	t.Helper()
	ctx := context.Background()
	w = e.write(t, e.client, "wal", 120, true)
	dead := e.write(t, e.client, "gone", 30, false)
	if err := e.client.DeleteLog(ctx, dead.log.Name()); err != nil {
		t.Fatal(err)
	}
	cut = 64
	if err := w.log.Truncate(ctx, w.ids[cut]); err != nil {
		t.Fatal(err)
	}
	junk := bytes.Repeat([]byte("j"), 100)
	e.put(t, segment.BlockKey("", w.log.ID(), 99, 0), junk)
	e.put(t, segment.BlockKey("", w.log.ID(), 99, 1), junk)
	e.put(t, segment.BlockKey("", 4242, 3, 0), junk)
	foreign = "elsewhere/notes.txt"
	e.put(t, foreign, junk)
	return w, cut, foreign
}

func killConfig(c *gc.Config) {
	c.Compaction.Enabled = true
	c.Compaction.OldBlocksGracePeriod = time.Millisecond
	c.Identity = "gc-under-test"
}

// 3. Two GC instances at once: no error, no double work visible, the same
// end state.
func TestConcurrentCollectors(t *testing.T) {
	e := newEnv(t, nil)
	w, cut, foreign := killSetup(t, e)
	below := wasWhollyBelow(t, w.log, w.ids[cut])
	before := e.objects(t)
	e.clock.Set(3 * time.Hour)
	cols := []*gc.Collector{e.collector(t, nil), e.collector(t, nil)}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for _, col := range cols {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				rep, err := col.RunOnce(context.Background())
				if err == nil && len(rep.Errors) > 0 {
					err = errors.Join(rep.Errors...)
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	e.checkConverged(t, foreign)
	readBack(t, w, cut)
	after := e.objects(t)
	var sum gc.MetricsSnapshot
	for _, col := range cols {
		m := col.Metrics().Snapshot()
		sum.DeletedObjects += m.DeletedObjects
		sum.DeletedSegments += m.DeletedSegments
		sum.CollectedLogs += m.CollectedLogs
		sum.OrphanObjects += m.OrphanObjects
		sum.Errors += m.Errors
	}
	if sum.DeletedObjects != int64(len(before)-len(after)) || sum.DeletedSegments != int64(len(below)) ||
		sum.CollectedLogs != 1 || sum.OrphanObjects != 3 || sum.Errors != 0 {
		t.Fatalf("together the collectors did %+v; want %d objects, %d segments, 1 log, 3 orphans, each once",
			sum, len(before)-len(after), len(below))
	}
	// The same end state as one collector reaches alone.
	solo := newEnv(t, nil)
	sw, _, _ := killSetup(t, solo)
	solo.clock.Set(3 * time.Hour)
	run(t, solo.collector(t, nil))
	if got, want := segmentIDs(t, w.log), segmentIDs(t, sw.log); !slices.Equal(got, want) {
		t.Fatalf("segments %v, alone %v", got, want)
	}
	if got, want := len(after), len(solo.objects(t)); got != want {
		t.Fatalf("%d objects left, alone %d", got, want)
	}
}

// 4. A reader positioned in an old segment survives truncation and GC until
// it closes; after its lease expires the segment goes.
func TestReaderPositionProtectsSegments(t *testing.T) {
	e := newEnv(t, func(c *options.Config) { c.Retention.TTL = 0 })
	ctx := context.Background()
	w := e.write(t, e.client, "events", 48, true) // 6 segments of 8 blocks
	r, err := w.log.OpenReader(ctx, woodpecker.At(w.ids[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	next := 0
	readN := func(r *woodpecker.Reader, n int) {
		t.Helper()
		for range n {
			got, err := r.Next(ctx)
			if err != nil {
				t.Fatalf("entry %d: %v", next, err)
			}
			if got.ID != w.ids[next] || !bytes.Equal(got.Payload, w.payloads[next]) {
				t.Fatalf("entry %d: got %s, want %s", next, got.ID, w.ids[next])
			}
			next++
		}
	}
	readN(r, 3)
	cut := w.ids[40]
	if err := w.log.Truncate(ctx, cut); err != nil {
		t.Fatal(err)
	}
	rep, err := e.client.RunGC(ctx)
	if err != nil || len(rep.Errors) > 0 {
		t.Fatal(err, rep.Errors)
	}
	if rep.DeletedSegments != 0 || len(segmentIDs(t, w.log)) != 6 {
		t.Fatalf("GC deleted %d segments under a reader at segment 0", rep.DeletedSegments)
	}
	st, _ := w.log.Stats(ctx)
	if st.Readers != 1 || st.ReclaimableBytes == 0 {
		t.Fatalf("stats: %d readers, %d bytes reclaimable; want 1 reader and some bytes", st.Readers, st.ReclaimableBytes)
	}
	readN(r, 45) // the whole log, below the truncation point included
	// The reader moved on to the last segment: what lies below it goes
	// (its position is raised in the background, so give it a moment).
	deadline := time.Now().Add(20 * time.Second)
	for len(segmentIDs(t, w.log)) > 1 && time.Now().Before(deadline) {
		if _, err := e.client.RunGC(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ids := segmentIDs(t, w.log); !slices.Equal(ids, []int64{cut.Segment}) {
		t.Fatalf("segments %v remain, want only %d", ids, cut.Segment)
	}
	readN(r, 0)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	// A reader whose process dies: its lease expires, then its segment goes.
	w2 := e.write(t, e.client, "crashy", 24, true)
	cli2 := testenv.Etcd(t)
	l2, err := e.newClient(t, cli2, nil).OpenLog(ctx, "crashy")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := l2.OpenReader(ctx, woodpecker.At(w2.ids[0]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Next(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w2.log.Truncate(ctx, w2.ids[20]); err != nil {
		t.Fatal(err)
	}
	_ = cli2.Close() // the process is gone: no more renewals, no revoke
	if _, err := e.client.RunGC(ctx); err != nil {
		t.Fatal(err)
	}
	if ids := segmentIDs(t, w2.log); len(ids) != 3 {
		t.Fatalf("segments %v remain while the dead reader's lease lives; want all 3", ids)
	}
	deadline = time.Now().Add(30 * time.Second)
	for len(segmentIDs(t, w2.log)) > 1 && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		if _, err := e.client.RunGC(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if ids := segmentIDs(t, w2.log); !slices.Equal(ids, []int64{w2.ids[20].Segment}) {
		t.Fatalf("segments %v remain after the lease expired", ids)
	}
	_ = r2.Close()

	// Readers opened now find the data gone, or start at the first entry
	// still there.
	r3, err := w2.log.OpenReader(ctx, woodpecker.At(w2.ids[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer r3.Close()
	if _, err := r3.Next(ctx); !errors.Is(err, woodpecker.ErrTruncated) {
		t.Fatalf("reading deleted data: %v, want ErrTruncated", err)
	}
	r4, err := w2.log.OpenReader(ctx, woodpecker.Earliest())
	if err != nil {
		t.Fatal(err)
	}
	defer r4.Close()
	if got, err := r4.Next(ctx); err != nil || got.ID != w2.ids[20] {
		t.Fatalf("reading from earliest: %v %v, want %s", got.ID, err, w2.ids[20])
	}
}

// A client with retention.gcEnabled collects in the background.
func TestBackgroundCollection(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	w := e.write(t, e.client, "bg", 24, true) // segments 0, 1, 2
	// Truncate right after the last entry: every segment goes.
	last := w.ids[len(w.ids)-1]
	if err := w.log.Truncate(ctx, woodpecker.EntryID{Segment: last.Segment, Entry: last.Entry + 1}); err != nil {
		t.Fatal(err)
	}
	c := e.newClient(t, e.etcd, func(c *options.Config) {
		c.Retention.GCEnabled = true
		c.Retention.GCInterval = 100 * time.Millisecond
		c.Retention.TTL = 0
	})
	deadline := time.Now().Add(20 * time.Second)
	for (len(segmentIDs(t, w.log)) > 0 || c.GCMetrics().Passes == 0) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if ids := segmentIDs(t, w.log); len(ids) != 0 {
		t.Fatalf("segments %v remain, want none", ids)
	}
	if m := c.GCMetrics(); m.Passes == 0 || m.DeletedSegments != 3 {
		t.Fatalf("metrics %+v", m)
	}
	tail, err := w.log.OpenReader(ctx, woodpecker.Latest())
	if err != nil {
		t.Fatal(err)
	}
	defer tail.Close()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// A new writer continues after the deleted segments, never reusing
	// their ids, and a tail reader opened on the empty log sees it.
	wr, err := w.log.OpenWriter(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	id, err := wr.Append(ctx, []byte("after"))
	if err != nil || id != (woodpecker.EntryID{Segment: 3}) {
		t.Fatalf("append after GC: %s %v, want 3:0", id, err)
	}
	if err := wr.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := tail.Next(ctx); err != nil || got.ID != id {
		t.Fatalf("tail read %s %v, want %s", got.ID, err, id)
	}
}

// A reader whose lease lapsed (etcd unreachable for longer than its TTL)
// takes a new one and publishes its position again.
func TestReaderRenewsALapsedLease(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	w := e.write(t, e.client, "renew", 10, true)
	r, err := w.log.OpenReader(ctx, woodpecker.Earliest())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	st, err := e.meta.ReadLogState(ctx, w.log.ID())
	if err != nil || len(st.Readers) != 1 {
		t.Fatalf("readers %+v, %v; want one", st.Readers, err)
	}
	old := st.Readers[0].Lease
	if _, err := e.etcd.Revoke(ctx, clientv3.LeaseID(old)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		st, err = e.meta.ReadLogState(ctx, w.log.ID())
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Readers) == 1 && st.Readers[0].Lease != old {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(st.Readers) != 1 || st.Readers[0].Lease == old || st.Readers[0].Segment != 0 {
		t.Fatalf("after the lease lapsed: readers %+v; want one on a new lease at segment 0", st.Readers)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.meta.ReadLogState(ctx, w.log.ID()); len(st.Readers) != 0 {
		t.Fatalf("readers %+v after Close; want none", st.Readers)
	}
}

// Local segment files: garbage collection deletes them the same way;
// compaction does not apply.
func TestLocalFilesystem(t *testing.T) {
	dir := t.TempDir()
	root := testenv.UniquePrefix(t)
	cli := testenv.Etcd(t)
	cfg := baseConfig(root)
	cfg.Storage.Type = options.StorageLocal
	cfg.Storage.RootPath = dir
	c, err := woodpecker.New(context.Background(), cfg, woodpecker.WithEtcdClient(cli))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	e := &env{}
	w := e.write(t, c, "local", 40, true) // 5 segments
	ctx := context.Background()
	if err := w.log.Truncate(ctx, w.ids[24]); err != nil {
		t.Fatal(err)
	}
	fb, err := segment.NewFileBackend(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, strconv.FormatInt(w.log.ID(), 10), "0000000000000000077.seg")
	if err := os.WriteFile(junk, []byte("orphan"), 0o644); err != nil {
		t.Fatal(err)
	}
	var clk clock
	col, err := gc.New(meta.New(cli, root), fb, gc.Config{TTL: time.Hour, OrphanGracePeriod: time.Hour,
		Compaction: gc.CompactionConfig{Enabled: true, TargetObjectBytes: 1 << 20, MinBlocks: 2}, Now: clk.Set(2 * time.Hour).Now})
	if err != nil {
		t.Fatal(err)
	}
	rep := run(t, col)
	if rep.DeletedSegments != 3 || rep.OrphanObjects != 1 || rep.CompactedSegments != 0 {
		t.Fatalf("pass: %+v; want 3 segments and 1 orphan deleted, nothing compacted", rep)
	}
	files, _ := filepath.Glob(filepath.Join(dir, strconv.FormatInt(w.log.ID(), 10), "*"))
	for _, f := range files {
		if seg, _ := strconv.ParseInt(strings.SplitN(filepath.Base(f), ".", 2)[0], 10, 64); seg < 3 || seg > 4 {
			t.Fatalf("file %s remains", f)
		}
	}
	if len(files) != 4 { // .seg and .seal of segments 3 and 4
		t.Fatalf("files %v remain, want 4", files)
	}
	readBack(t, w, 24)
}

// 5. Compaction under concurrent readers: each reader sees every entry
// exactly once, in order; object count drops to the expected number.
func TestCompactionUnderConcurrentReaders(t *testing.T) {
	e := newEnv(t, func(c *options.Config) { c.Writer.RollMaxBlocks = 20 })
	ctx := context.Background()
	// Blocks of one 515-byte entry are 585 bytes: 7 fit in the 4 KiB
	// target, so each segment of 20 blocks becomes 7+7+6.
	w := e.writeSized(t, e.client, "compact", 100, true, 515)
	st, err := w.log.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Segments) != 5 {
		t.Fatalf("%d segments, want 5", len(st.Segments))
	}
	if n := len(e.objects(t)); n != 5*21 {
		t.Fatalf("%d objects before compaction, want %d", n, 5*21)
	}
	type reader struct {
		r    *woodpecker.Reader
		next int
	}
	readers := make([]*reader, 3)
	for i := range readers {
		r, err := w.log.OpenReader(ctx, woodpecker.Earliest())
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		readers[i] = &reader{r: r}
	}
	advance := func(rd *reader, n int) {
		t.Helper()
		for range n {
			got, err := rd.r.Next(ctx)
			if err != nil {
				t.Fatalf("entry %d: %v", rd.next, err)
			}
			if got.ID != w.ids[rd.next] || !bytes.Equal(got.Payload, w.payloads[rd.next]) {
				t.Fatalf("entry %d: got %s, want %s", rd.next, got.ID, w.ids[rd.next])
			}
			rd.next++
		}
	}
	// A free-running reader, besides the three moved step by step.
	free := make(chan error, 1)
	go func() {
		r, err := w.log.OpenReader(ctx, woodpecker.Earliest())
		if err != nil {
			free <- err
			return
		}
		defer r.Close()
		for i := range w.ids {
			got, err := r.Next(ctx)
			if err == nil && (got.ID != w.ids[i] || !bytes.Equal(got.Payload, w.payloads[i])) {
				err = errors.Newf("entry %d: got %s, want %s", i, got.ID, w.ids[i])
			}
			if err != nil {
				free <- err
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		free <- nil
	}()
	advance(readers[0], 30)
	advance(readers[1], 5)

	col := e.collector(t, func(c *gc.Config) { c.Compaction.Enabled = true })
	rep := run(t, col)
	if rep.CompactedSegments != 5 {
		t.Fatalf("compacted %d segments, want 5", rep.CompactedSegments)
	}
	advance(readers[0], 20) // still on the old blocks
	advance(readers[1], 30)
	e.clock.Advance(time.Hour) // the old blocks' grace period ends
	rep = run(t, col)
	if rep.RetiredObjects != 100 {
		t.Fatalf("deleted %d replaced objects, want 100", rep.RetiredObjects)
	}
	for _, rd := range readers {
		advance(rd, len(w.ids)-rd.next)
	}
	if err := <-free; err != nil {
		t.Fatal(err)
	}
	// Per segment: 3 data objects, the writer's seal record and seal-1.
	if n := len(e.objects(t)); n != 5*5 {
		t.Fatalf("%d objects after compaction, want %d", n, 5*5)
	}
	e.checkConverged(t)
	readBack(t, w, 0)
	st, err = w.log.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Segments {
		if s.Generation != 1 || s.Objects != 3 {
			t.Fatalf("segment %d: generation %d, %d objects; want 1 and 3", s.ID, s.Generation, s.Objects)
		}
	}
	if st.LastCompaction.IsZero() || st.CompactedSegments != 5 {
		t.Fatalf("stats: last compaction %v, %d compacted", st.LastCompaction, st.CompactedSegments)
	}
	// Nothing more to compact.
	if rep := run(t, col); rep.CompactedSegments != 0 || rep.DeletedObjects != 0 {
		t.Fatalf("a further pass did %+v", rep)
	}
}

// A reader that publishes its position between the collector's read of
// the log and its mark wins: the mark's compare fails, the collector looks
// again and spares the reader's segments.
func TestReaderPublishingDuringMarkWins(t *testing.T) {
	e := newEnv(t, func(c *options.Config) { c.Retention.TTL = 0 })
	ctx := context.Background()
	w := e.write(t, e.client, "race", 32, true) // 4 segments
	if err := w.log.Truncate(ctx, w.ids[24]); err != nil {
		t.Fatal(err)
	}
	lease, err := e.etcd.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = e.etcd.Revoke(context.Background(), lease.ID) })
	marks := 0
	col := e.collector(t, func(c *gc.Config) {
		c.TTL = 0
		c.Hook = func(p gc.Point) error {
			if p == gc.PointMark {
				if marks++; marks == 1 {
					return e.meta.PublishReader(ctx, w.log.ID(), lease.ID, meta.Position{Segment: 1})
				}
			}
			return nil
		}
	})
	rep := run(t, col)
	if marks != 2 || rep.DeletedSegments != 1 {
		t.Fatalf("%d marks, %d segments deleted; want the first mark to fail and only segment 0 to go", marks, rep.DeletedSegments)
	}
	if ids := segmentIDs(t, w.log); !slices.Equal(ids, []int64{1, 2, 3}) {
		t.Fatalf("segments %v, want [1 2 3]", ids)
	}
	readBack(t, w, 8)
}
