package bench

import (
	"context"
	"testing"
	"time"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/quorum"
	"github.com/woodpecker-wal/woodpecker/quorum/quorumtest"
)

// TestQuorumTargetWritesBlocksToAQuorumAndLeavesNothing: the raw quorum
// target's writes are accepted by the LogStores, several streams share a
// segment, and once closed the LogStores hold nothing and nothing was
// uploaded.
func TestQuorumTargetWritesBlocksToAQuorumAndLeavesNothing(t *testing.T) {
	store := memstore.New()
	cluster := quorumtest.Start(t, testenv.Etcd(t), quorum.EnsembleSize, store, "", 64<<20)
	tr := quorum.NewGRPCTransport(nil)
	defer tr.Close()
	if _, err := NewQuorumTarget(tr, cluster.Addrs()[:2], 4, time.Second); err == nil {
		t.Fatal("a target on 2 LogStores was accepted")
	}
	raw, err := NewQuorumTarget(tr, cluster.Addrs(), 4, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Raw: raw, Interval: time.Second}
	for _, streams := range []int{1, 8} {
		res, err := rawPhase(context.Background(), cfg, PhaseRawThroughput, "t", streams, 4<<10, 300*4<<10, time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if res.Ops != 300 || res.Latency.Count != 300 || res.MiBps <= 0 {
			t.Fatalf("%d streams: %+v", streams, res)
		}
	}
	for i, s := range cluster.Servers {
		if st := s.Stats(); st.Blocks != 0 || st.Segments != 2 {
			t.Errorf("logstore %d holds %+v after the streams closed, want 2 released segments and no block", i, st)
		}
	}
	if objs, err := objstore.ListAll(context.Background(), store, "", ""); err != nil || len(objs) != 0 {
		t.Errorf("the raw writes uploaded %d objects (%v)", len(objs), err)
	}
}
