package woodpecker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/shared"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// TestSharedObjectsHoldOneBlockPerLog: with shared objects a writer keeps
// one block in flight, so the appends made while it waits join its next
// block, and an object never holds two blocks of one log (each block is an
// etcd extent in the object's commit, whose size etcd bounds).
func TestSharedObjectsHoldOneBlockPerLog(t *testing.T) {
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
	objects := 0
	for _, key := range store.Keys() {
		if !strings.HasPrefix(key, "shared/") {
			continue
		}
		objects++
		data, _ := store.Peek(key)
		at, size, err := shared.DecodeTrailer(data[len(data)-shared.TrailerSize:], int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		exts, err := shared.DecodeIndex(key, data[at:at+size], at)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[[2]int64]bool{}
		for _, x := range exts {
			k := [2]int64{x.LogID, x.SegmentID}
			if seen[k] {
				t.Fatalf("object %s holds two blocks of log %d segment %d: %+v", key, x.LogID, x.SegmentID, exts)
			}
			seen[k] = true
		}
	}
	if objects == 0 {
		t.Fatal("no shared object")
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
