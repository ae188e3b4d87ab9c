package quorum_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/quorum"
	"github.com/woodpecker-wal/woodpecker/quorum/quorumtest"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// env is a QuorumBuffer deployment inside the test: 3 LogStores uploading
// to a memory object store, and clients whose transports inject faults.
type env struct {
	t       *testing.T
	store   *memstore.Store
	cluster *quorumtest.Cluster
	prefix  string
}

func newEnv(t *testing.T) *env {
	store := memstore.New()
	return &env{t: t, store: store, cluster: quorumtest.Start(t, testenv.Etcd(t), 3, store, "", 64<<20),
		prefix: testenv.UniquePrefix(t)}
}

// client opens a client with its own transport wrapped in faults, its
// configuration changed by tweaks.
func (e *env) client(tweaks ...func(*options.Config)) (*woodpecker.Client, *quorum.Faults) {
	e.t.Helper()
	cfg := options.Default()
	cfg.Etcd.RootPath = e.prefix
	cfg.Mode = options.ModeQuorumBuffer
	cfg.Quorum.LogStores = e.cluster.Addrs()
	cfg.Quorum.CallTimeout = time.Second
	cfg.Writer.UploadRetry.TotalTimeout = 3 * time.Second
	cfg.Writer.UploadRetry.MaxBackoff = 200 * time.Millisecond
	for _, tweak := range tweaks {
		tweak(&cfg)
	}
	tr := quorum.NewGRPCTransport(nil)
	faults := quorum.NewFaults(tr)
	c, err := woodpecker.New(context.Background(), cfg, woodpecker.WithEtcdClient(testenv.Etcd(e.t)),
		woodpecker.WithObjectStore(e.store), woodpecker.WithQuorumTransport(faults))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		_ = c.Close()
		_ = tr.Close()
	})
	return c, faults
}

func (e *env) log(c *woodpecker.Client, name string) *woodpecker.Log {
	e.t.Helper()
	ctx := context.Background()
	if err := c.CreateLog(ctx, name); err != nil && !errors.Is(err, woodpecker.ErrLogExists) {
		e.t.Fatal(err)
	}
	l, err := c.OpenLog(ctx, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

// readAll reads the log from Earliest until it has n entries.
func readAll(t *testing.T, l *woodpecker.Log, n int) []woodpecker.Entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := l.OpenReader(ctx, woodpecker.Earliest())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []woodpecker.Entry
	for len(out) < n {
		e, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("after %d of %d entries: %v", len(out), n, err)
		}
		out = append(out, e)
	}
	return out
}

// checkLog checks that the log holds exactly want, in order, after a fresh
// writer sealed what was open.
func checkLog(t *testing.T, l *woodpecker.Log, want []string) {
	t.Helper()
	st, err := l.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, l, len(want))
	for i, e := range got {
		if string(e.Payload) != want[i] {
			t.Fatalf("entry %d (%v) = %q, want %q", i, e.ID, e.Payload, want[i])
		}
	}
	if st.NonEmpty && int(st.SealedEntries) > len(want) {
		t.Fatalf("the log holds %d entries, want %d", st.SealedEntries, len(want))
	}
}

func appendAll(t *testing.T, w *woodpecker.Writer, prefix string, n int) []string {
	t.Helper()
	var acked []string
	for i := range n {
		p := fmt.Sprintf("%s-%03d", prefix, i)
		if _, err := w.Append(context.Background(), []byte(p)); err != nil {
			t.Fatalf("append %s: %v", p, err)
		}
		acked = append(acked, p)
	}
	return acked
}

// TestWritesContinueWithOneReplicaPartitioned: with one replica of three
// cut off, appends are still acknowledged by the other two, and the
// segment seals and reads back whole.
func TestWritesContinueWithOneReplicaPartitioned(t *testing.T) {
	e := newEnv(t)
	c, faults := e.client()
	l := e.log(c, "one-down")
	w, err := l.OpenWriter(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	acked := appendAll(t, w, "before", 10)
	faults.Partition(e.cluster.Nodes[0].Addr, true) // the uploader
	acked = append(acked, appendAll(t, w, "during", 20)...)
	if err := w.Close(context.Background()); err != nil {
		t.Fatalf("close with the uploader partitioned: %v", err)
	}
	checkLog(t, l, acked)
	checkOneCopyPerBlock(t, e.store, l)
}

// TestTwoReplicasDownNeverFalselySucceeds: with two replicas of three cut
// off, an append cannot reach a quorum: it fails with an unknown outcome
// within the retry bound. After the partition heals, a new writer's
// recovery keeps every acknowledged entry, and the failed one at most once.
func TestTwoReplicasDownNeverFalselySucceeds(t *testing.T) {
	e := newEnv(t)
	c, faults := e.client()
	l := e.log(c, "two-down")
	w, err := l.OpenWriter(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	acked := appendAll(t, w, "ok", 5)
	faults.Partition(e.cluster.Nodes[1].Addr, true)
	faults.Partition(e.cluster.Nodes[2].Addr, true)
	_, err = w.Append(context.Background(), []byte("doomed"))
	if !errors.Is(err, woodpecker.ErrUnknownOutcome) {
		t.Fatalf("append with 2 of 3 replicas down = %v, want ErrUnknownOutcome", err)
	}
	c2, _ := e.client()
	w2, err := e.log(c2, "two-down").OpenWriter(context.Background(), 2)
	if err != nil {
		t.Fatalf("recovery once a quorum is reachable: %v", err)
	}
	defer w2.Close(context.Background())
	got := readAll(t, l, len(acked))
	for i, g := range got {
		if string(g.Payload) != acked[i] {
			t.Fatalf("entry %d = %q, want %q", i, g.Payload, acked[i])
		}
	}
	st, err := l.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := st.SealedEntries; n != int64(len(acked)) && n != int64(len(acked))+1 {
		t.Fatalf("the recovered log holds %d entries, want %d or %d", n, len(acked), len(acked)+1)
	}
}

// TestZombieWriterIsFencedOnEveryReplica: once a newer writer recovered the
// log, the older writer's appends fail with ErrFenced and nothing it sends
// becomes visible, even through replicas the new writer could not reach.
func TestZombieWriterIsFencedOnEveryReplica(t *testing.T) {
	e := newEnv(t)
	c1, _ := e.client()
	l1 := e.log(c1, "zombie")
	old, err := l1.OpenWriter(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	acked := appendAll(t, old, "old", 8)

	c2, faults2 := e.client()
	faults2.Partition(e.cluster.Nodes[2].Addr, true) // the new writer fences 2 of 3
	l2 := e.log(c2, "zombie")
	w, err := l2.OpenWriter(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(context.Background())
	for i := range 3 {
		if _, err := old.Append(context.Background(), []byte(fmt.Sprintf("zombie-%d", i))); !errors.Is(err, woodpecker.ErrFenced) {
			t.Fatalf("zombie append %d = %v, want ErrFenced", i, err)
		}
	}
	acked = append(acked, appendAll(t, w, "new", 4)...)
	checkLog(t, l2, acked)
}

// TestWriterPartitionedFromTwoReplicasLosesNothing: a writer cut off from
// two replicas cannot acknowledge; a new writer that reaches them recovers
// every acknowledged entry.
func TestWriterPartitionedFromTwoReplicasLosesNothing(t *testing.T) {
	e := newEnv(t)
	c1, faults1 := e.client()
	l1 := e.log(c1, "split")
	w1, err := l1.OpenWriter(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	acked := appendAll(t, w1, "a", 12)
	faults1.Partition(e.cluster.Nodes[0].Addr, true)
	faults1.Partition(e.cluster.Nodes[1].Addr, true)
	if _, err := w1.Append(context.Background(), []byte("cut-off")); err == nil {
		t.Fatal("an append acknowledged by one replica of three")
	}
	c2, _ := e.client()
	w2, err := e.log(c2, "split").OpenWriter(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close(context.Background())
	got := readAll(t, l1, len(acked))
	for i, g := range got {
		if string(g.Payload) != acked[i] {
			t.Fatalf("entry %d = %q, want %q", i, g.Payload, acked[i])
		}
	}
}

// TestRestartedReplicaDoesNotBreakItsSegment: a LogStore restarted with an
// empty memory refuses blocks of the segments it lost (it may have lost
// their fence), the other two carry the segment, and recovery does not
// count the restarted one toward its quorum.
func TestRestartedReplicaDoesNotBreakItsSegment(t *testing.T) {
	e := newEnv(t)
	c, _ := e.client()
	l := e.log(c, "restart")
	w, err := l.OpenWriter(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	acked := appendAll(t, w, "before", 6)
	e.cluster.Restart(t, testenv.Etcd(t), 1, e.store, "", 64<<20)
	acked = append(acked, appendAll(t, w, "after", 6)...)
	c2, _ := e.client()
	w2, err := e.log(c2, "restart").OpenWriter(context.Background(), 2) // recovers the open segment
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close(context.Background())
	checkLog(t, l, acked)
}

// checkOneCopyPerBlock checks that object storage holds exactly the
// sealed segments' blocks, each once and valid: no stray object from a
// second uploader or a block beyond a seal.
func checkOneCopyPerBlock(t *testing.T, store *memstore.Store, l *woodpecker.Log) {
	t.Helper()
	ctx := context.Background()
	st, err := l.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, sg := range st.Segments {
		for b := range sg.Blocks {
			want[segment.BlockKey("", l.ID(), sg.ID, b)] = true
		}
	}
	prefix := segment.LogPrefix("", l.ID())
	after := ""
	got := 0
	for {
		page, err := store.List(ctx, prefix, after, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Objects {
			after = o.Key
			if strings.HasSuffix(o.Key, "/"+segment.SealName) {
				continue
			}
			if !want[o.Key] {
				t.Errorf("object %s is no block of a sealed segment", o.Key)
				continue
			}
			data, err := store.Get(ctx, o.Key)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := segment.DecodeBlock(data); err != nil {
				t.Errorf("block %s: %v", o.Key, err)
			}
			got++
		}
		if !page.More {
			break
		}
	}
	if got != len(want) {
		t.Fatalf("object storage holds %d of the %d sealed blocks", got, len(want))
	}
}
