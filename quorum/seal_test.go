package quorum_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/quorum"
	"github.com/woodpecker-wal/woodpecker/quorum/quorumtest"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// TestSealWaitsForALaggingUploaderWhileItMakesProgress: appends are
// acknowledged by the replicas' memory, far ahead of the uploads to a slow
// object store. Sealing on Close must make every block durable in object
// storage first, which takes several times writer.uploadRetry.totalTimeout
// here; the seal keeps going while blocks reach object storage, within
// Close's context, instead of failing after one bounded attempt (found by
// the chaos suite: Close failed and left the segment to recovery).
func TestSealWaitsForALaggingUploaderWhileItMakesProgress(t *testing.T) {
	store := memstore.New()
	slow := slowPuts{Store: store, delay: 40 * time.Millisecond}
	const block = 4 << 10
	cluster := quorumtest.Start(t, testenv.Etcd(t), 3, slow, "", 64<<20)
	cfg := options.Default()
	cfg.Etcd.RootPath = testenv.UniquePrefix(t)
	cfg.Mode = options.ModeQuorumBuffer
	cfg.Quorum.LogStores = cluster.Addrs()
	cfg.Quorum.CallTimeout = 200 * time.Millisecond
	cfg.Writer.MaxBlockBytes = block
	cfg.Writer.MaxEntryBytes = block
	cfg.Writer.UploadRetry.InitialBackoff = 10 * time.Millisecond
	cfg.Writer.UploadRetry.MaxBackoff = 50 * time.Millisecond
	cfg.Writer.UploadRetry.TotalTimeout = 500 * time.Millisecond
	tr := quorum.NewGRPCTransport(nil)
	defer tr.Close()
	// Every replica answers late: the flush the seal asks the uploader for
	// and each block it copies itself take their time too.
	faults := quorum.NewFaults(tr)
	for _, a := range cluster.Addrs() {
		faults.Delay(a, 5*time.Millisecond)
	}
	c, err := woodpecker.New(context.Background(), cfg, woodpecker.WithEtcdClient(testenv.Etcd(t)),
		woodpecker.WithObjectStore(slow), woodpecker.WithQuorumTransport(faults))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e := &env{t: t}
	l := e.log(c, "lagging-uploader")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := l.OpenWriter(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	const n = 60
	var futs []*woodpecker.AppendFuture
	for i := range n {
		payload := make([]byte, block-512)
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
		t.Fatalf("close (seal): %v", err)
	}
	st, err := l.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, sg := range st.Segments {
		if !sg.Sealed {
			t.Errorf("segment %d is open after Close", sg.ID)
		}
	}
	got := readAll(t, l, n)
	for i, ent := range got {
		if want := fmt.Sprintf("entry %03d", i); string(ent.Payload[:len(want)]) != want {
			t.Fatalf("entry %d holds %q", i, ent.Payload[:len(want)])
		}
	}
}
