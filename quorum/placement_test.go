package quorum_test

import (
	"context"
	"testing"

	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/quorum"
)

// TestWritesContinueWhenOneOfThreeLogStoresIsGoneForGood: with exactly 3
// LogStores, found in the etcd registry, one stops and leaves the registry
// (its lease expired). Appends go on with the two left, across segment
// rolls (a new segment is placed on the two and the gone node, and
// acknowledged by the two), without a segment per block, and everything
// acknowledged reads back.
func TestWritesContinueWhenOneOfThreeLogStoresIsGoneForGood(t *testing.T) {
	e := newEnv(t)
	etcd := testenv.Etcd(t)
	e.cluster.Register(t, etcd, e.prefix)
	c, _ := e.client(func(cfg *options.Config) {
		cfg.Quorum.LogStores = nil // the registry
		cfg.Writer.RollMaxBlocks = 4
	})
	l := e.log(c, "gone")
	w, err := l.OpenWriter(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	acked := appendAll(t, w, "before", 10)
	gone := e.cluster.Nodes[2]
	_ = e.cluster.Servers[2].Close()
	if _, err := etcd.Delete(context.Background(), quorum.RegistryPrefix(e.prefix)+gone.ID); err != nil {
		t.Fatal(err)
	}
	const after = 40
	acked = append(acked, appendAll(t, w, "after", after)...)
	if err := w.Close(context.Background()); err != nil {
		t.Fatalf("close with a LogStore gone: %v", err)
	}
	checkLog(t, l, acked)
	st, err := l.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Synchronous appends make a block each: 4 per segment, so about
	// 50/4 segments. A writer that rolled at every block that the gone
	// node failed would make one per block.
	if len(st.Segments) > (10+after)/4+4 {
		t.Fatalf("%d segments for %d appends of 4 blocks a segment: the writer rolled at every failure", len(st.Segments), 10+after)
	}
}

// TestWriterRollsAwayFromAReplicaThatRestarted: a LogStore that restarted
// with an empty memory refuses the blocks of the segment it lost, but it
// answers: the writer rolls at once to a segment on all three, and the
// degraded one is sealed.
func TestWriterRollsAwayFromAReplicaThatRestarted(t *testing.T) {
	e := newEnv(t)
	etcd := testenv.Etcd(t)
	e.cluster.Register(t, etcd, e.prefix)
	c, _ := e.client(func(cfg *options.Config) { cfg.Quorum.LogStores = nil })
	l := e.log(c, "rolls")
	w, err := l.OpenWriter(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(context.Background())
	acked := appendAll(t, w, "before", 5)
	st, err := l.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	first := st.Segments[len(st.Segments)-1].ID
	e.cluster.Restart(t, etcd, 1, e.store, "", 64<<20)
	e.cluster.Register(t, etcd, e.prefix)
	acked = append(acked, appendAll(t, w, "after", 10)...)
	st, err = l.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, sg := range st.Segments {
		if sg.ID == first && !sg.Sealed {
			t.Fatalf("segment %d, degraded by the restart, is still open after 10 more appends (segments %+v)", first, st.Segments)
		}
	}
	_ = acked
}
