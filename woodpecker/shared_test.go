package woodpecker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/shared"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// TestSharedObjectsBatchEachLogsAppends: with shared objects the appends
// of a log made while its blocks are in flight join its next block, so an
// object holds no more blocks of one log than the writer keeps in flight
// (writer.maxInflightUploads), and a burst of appends costs far fewer
// blocks, each an etcd extent in its object's commit, than appends.
func TestSharedObjectsBatchEachLogsAppends(t *testing.T) {
	store := memstore.New()
	b := backend{name: "shared-mem", setup: func(t *testing.T, cfg *options.Config) []woodpecker.Option {
		cfg.Writer.BatchWindow = 5 * time.Millisecond
		return []woodpecker.Option{woodpecker.WithObjectStore(store)}
	}}
	c := newClient(t, b, nil)
	ctx := context.Background()
	var logs []*woodpecker.Log
	var writers []*woodpecker.Writer
	for _, name := range []string{"a", "b"} {
		l := openLog(t, c, name)
		w, err := l.OpenWriter(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		logs, writers = append(logs, l), append(writers, w)
	}
	const n = 300
	var futs []*woodpecker.AppendFuture
	for i := range n {
		for _, w := range writers {
			f, err := w.AppendAsync(ctx, payload(i))
			if err != nil {
				t.Fatal(err)
			}
			futs = append(futs, f)
		}
		if i%50 == 0 {
			time.Sleep(3 * time.Millisecond) // let blocks be cut in between
		}
	}
	for _, f := range futs {
		if _, err := f.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range writers {
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	objects, blocks := 0, 0
	inflight := options.Default().Writer.MaxInflightUploads
	for _, key := range store.Keys() {
		if !strings.HasPrefix(key, "shared/") {
			continue
		}
		objects++
		exts := objectIndex(t, store, key)
		blocks += len(exts)
		perLog := map[[2]int64]int{}
		for _, x := range exts {
			k := [2]int64{x.LogID, x.SegmentID}
			perLog[k]++
			if perLog[k] > inflight {
				t.Fatalf("object %s holds %d blocks of log %d segment %d, more than the %d a writer keeps in flight: %+v",
					key, perLog[k], x.LogID, x.SegmentID, inflight, exts)
			}
		}
	}
	if objects == 0 {
		t.Fatal("no shared object")
	}
	if appends := n * len(writers); blocks > appends/4 {
		t.Fatalf("%d appends in bursts made %d blocks: appends made while blocks were in flight did not join one", appends, blocks)
	}
	for _, l := range logs {
		got := readN(t, mustReader(t, l, woodpecker.Earliest()), n)
		for i, e := range got {
			if string(e.Payload) != string(payload(i)) {
				t.Fatalf("log %s entry %d: %q", l.Name(), i, e.Payload)
			}
		}
	}
}

// objectIndex returns the extents the index of shared object key lists.
func objectIndex(t *testing.T, store *memstore.Store, key string) []meta.Extent {
	t.Helper()
	data, _ := store.Peek(key)
	at, size, err := shared.DecodeTrailer(data[len(data)-shared.TrailerSize:], int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	exts, err := shared.DecodeIndex(key, data[at:at+size], at)
	if err != nil {
		t.Fatal(err)
	}
	return exts
}
