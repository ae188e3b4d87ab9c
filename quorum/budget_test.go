package quorum_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/quorum/quorumtest"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// slowPuts is an object store whose puts take delay: uploads slower than
// the writer.
type slowPuts struct {
	objstore.Store
	delay time.Duration
}

func (s slowPuts) Put(ctx context.Context, key string, data []byte, opts objstore.PutOptions) error {
	time.Sleep(s.delay)
	return s.Store.Put(ctx, key, data, opts)
}

// TestReplicasOverBudgetGetTheBlockAgainWithoutRollingTheSegment: when
// uploads are slower than the writer, the replicas' byte budgets fill and
// they refuse blocks (RESOURCE_EXHAUSTED). The writer then waits for them
// (backpressure) and every append succeeds, in one segment: a refusal for
// the budget is not a replica missing a block, which would roll the
// segment onto an ensemble just as full, again and again.
func TestReplicasOverBudgetGetTheBlockAgainWithoutRollingTheSegment(t *testing.T) {
	store := memstore.New()
	const block = 16 << 10
	// Each LogStore's budget holds 6 blocks, above the writer's memory
	// budget (3 blocks), which bounds what it has not had acknowledged in
	// order: a replica full of blocks above a block it refused could
	// otherwise drop none of them.
	cluster := quorumtest.Start(t, testenv.Etcd(t), 3, slowPuts{Store: store, delay: 10 * time.Millisecond}, "", 6*(block+1024))
	cfg := options.Default()
	cfg.Etcd.RootPath = testenv.UniquePrefix(t)
	cfg.Mode = options.ModeQuorumBuffer
	cfg.Quorum.LogStores = cluster.Addrs()
	cfg.Writer.MaxBlockBytes = block
	cfg.Writer.MemoryBudgetBytes = 3 * block
	cfg.Writer.MaxEntryBytes = block
	c, err := woodpecker.New(context.Background(), cfg, woodpecker.WithEtcdClient(testenv.Etcd(t)), woodpecker.WithObjectStore(store))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e := &env{t: t}
	l := e.log(c, "budget")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := l.OpenWriter(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	const n = 60
	var futs []*woodpecker.AppendFuture
	for i := range n {
		payload := make([]byte, block/2)
		copy(payload, fmt.Sprintf("entry %03d", i))
		f, err := w.AppendAsync(ctx, payload)
		if err != nil {
			t.Fatal(err)
		}
		futs = append(futs, f)
	}
	for i, f := range futs {
		if _, err := f.Wait(ctx); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := l.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Segments) != 1 {
		t.Errorf("%d segments, want 1: full replicas rolled the segment", len(st.Segments))
	}
	got := readAll(t, l, n)
	for i, ent := range got {
		if want := fmt.Sprintf("entry %03d", i); string(ent.Payload[:len(want)]) != want {
			t.Fatalf("entry %d holds %q", i, ent.Payload[:len(want)])
		}
	}
}
