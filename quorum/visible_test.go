package quorum_test

import (
	"context"
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
