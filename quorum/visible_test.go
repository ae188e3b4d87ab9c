package quorum_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/quorum"
	"github.com/woodpecker-wal/woodpecker/quorum/quorumpb"
	"github.com/woodpecker-wal/woodpecker/quorum/quorumtest"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// gatedPuts is an object store whose puts wait until open is closed.
type gatedPuts struct {
	objstore.Store
	open chan struct{}
}

func (g gatedPuts) Put(ctx context.Context, key string, data []byte, opts objstore.PutOptions) error {
	select {
	case <-g.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Store.Put(ctx, key, data, opts)
}

// TestLatestCountsBlocksUploadedWhileItLooks: a reader from Latest finds
// the end of an open segment from object storage and the replicas. When
// the blocks move from the replicas to object storage while it looks (the
// uploader uploads them and every replica drops them), they must still be
// counted: else the reader starts before entries acknowledged before it
// opened, and delivers them. Found by the chaos suite (a before-start
// violation): the listing came first, the replicas' status second, and
// blocks moving in between were in neither.
func TestLatestCountsBlocksUploadedWhileItLooks(t *testing.T) {
	store := memstore.New()
	gate := make(chan struct{})
	cluster := quorumtest.Start(t, testenv.Etcd(t), 3, gatedPuts{Store: store, open: gate}, "", 64<<20)
	cfg := options.Default()
	cfg.Etcd.RootPath = testenv.UniquePrefix(t)
	cfg.Mode = options.ModeQuorumBuffer
	cfg.Quorum.LogStores = cluster.Addrs()
	newClient := func() (*woodpecker.Client, *quorum.Faults) {
		tr := quorum.NewGRPCTransport(nil)
		t.Cleanup(func() { _ = tr.Close() })
		faults := quorum.NewFaults(tr)
		c, err := woodpecker.New(context.Background(), cfg, woodpecker.WithEtcdClient(testenv.Etcd(t)),
			woodpecker.WithObjectStore(store), woodpecker.WithQuorumTransport(faults))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c, faults
	}
	wc, _ := newClient()
	rc, faults := newClient()
	e := &env{t: t}
	l := e.log(wc, "latest")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := l.OpenWriter(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	const n = 5 // one block each: every append waits for its ack
	for i := range n {
		if _, err := w.Append(ctx, []byte(fmt.Sprintf("entry %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	st, err := l.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seg := &quorumpb.Segment{LogId: l.ID(), SegmentId: st.Segments[len(st.Segments)-1].ID, Epoch: 1}

	// Before the reader's first replica status: the uploads land, and the
	// replicas drop the blocks.
	tr := quorum.NewGRPCTransport(nil)
	defer tr.Close()
	faults.BeforeNext("Status", func() {
		close(gate)
		for i, a := range cluster.Addrs() {
			c, err := tr.Replica(a)
			if err != nil {
				t.Error(err)
				return
			}
			if i == 0 {
				if _, err := c.Flush(ctx, &quorumpb.FlushRequest{Segment: seg, ThroughBlock: n - 1}); err != nil {
					t.Errorf("flush: %v", err)
				}
			}
			if _, err := c.Release(ctx, &quorumpb.ReleaseRequest{Segment: seg}); err != nil {
				t.Errorf("release: %v", err)
			}
		}
	})
	rl, err := rc.OpenLog(ctx, "latest")
	if err != nil {
		t.Fatal(err)
	}
	r, err := rl.OpenReader(ctx, woodpecker.Latest())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Nothing was appended since: Next finds no entry.
	nctx, ncancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer ncancel()
	if ent, err := r.Next(nctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a reader from Latest delivered %q (%v), acknowledged before it opened", ent.Payload, err)
	}
}

// TestLatestStartsAfterTheLastAcknowledgedBlockWhileAReplicaIsSilent: the
// last acknowledged block is on two replicas, one of them silent to the
// reader, and no LAC covers it yet (the writer sends it with the next
// block). A reader from Latest must start after it: it was acknowledged
// before the reader opened. It must not deliver it once the silent replica
// answers again, which makes the block visible. Found by the chaos suite
// (quorum, seed 1206011): Latest was placed at the end of what a quorum of
// answering replicas held, before the block.
func TestLatestStartsAfterTheLastAcknowledgedBlockWhileAReplicaIsSilent(t *testing.T) {
	store := memstore.New()
	gate := make(chan struct{})
	defer close(gate) // before the clients close: their seals upload
	e := &env{t: t, store: store, prefix: testenv.UniquePrefix(t),
		cluster: quorumtest.Start(t, testenv.Etcd(t), 3, gatedPuts{Store: store, open: gate}, "", 64<<20)}
	wc, _ := e.client()
	rc, faults := e.client()
	l := e.log(wc, "silent")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := l.OpenWriter(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3 // one block each: every append waits for its ack
	for i := range n {
		if _, err := w.Append(ctx, []byte(fmt.Sprintf("entry %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	st, err := l.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := st.Segments[len(st.Segments)-1]
	var p struct {
		Nodes    []quorum.Node `json:"nodes"`
		Revision int64         `json:"revision"`
	}
	if err := json.Unmarshal([]byte(last.Placement), &p); err != nil {
		t.Fatal(err)
	}
	// Block n, acknowledged: the writer's replicas 1 and 2 took it (as a
	// writer whose call to replica 0 is still on its way), with LAC n-1.
	seg := &quorumpb.Segment{LogId: l.ID(), SegmentId: last.ID, Epoch: 1}
	block, err := segment.EncodeBlock(nil, segment.BlockHeader{LogID: l.ID(), SegmentID: last.ID, FirstEntry: n,
		Count: 1, Epoch: 1, BlockNo: n}, [][]byte{[]byte("acknowledged")}, segment.CompressionNone)
	if err != nil {
		t.Fatal(err)
	}
	tr := quorum.NewGRPCTransport(nil)
	defer tr.Close()
	for _, node := range p.Nodes[1:] {
		c, err := tr.Replica(node.Addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.AddBlock(ctx, &quorumpb.AddBlockRequest{Segment: seg, BlockNo: n, Block: block, Lac: n - 1,
			Uploaded: -1, CreatedRevision: p.Revision}); err != nil {
			t.Fatal(err)
		}
	}
	// Replica 2 is silent while the reader opens, then answers again.
	silent := p.Nodes[2].Addr
	faults.Partition(silent, true)
	rl, err := rc.OpenLog(ctx, "silent")
	if err != nil {
		t.Fatal(err)
	}
	r, err := rl.OpenReader(ctx, woodpecker.Latest())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	faults.Partition(silent, false)
	nctx, ncancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer ncancel()
	if ent, err := r.Next(nctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a reader from Latest delivered %q (%v), acknowledged before it opened", ent.Payload, err)
	}
}
