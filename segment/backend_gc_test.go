package segment

import (
	"context"
	"strings"
	"testing"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
)

// gcKeys is the key scheme garbage collection reads (woodpecker/internal/gc.Storage).
type gcKeys interface {
	Store() objstore.Store
	KeyRoot() string
	LogKeyPrefix(logID int64) string
	SegmentKeyPrefix(ref Ref) string
	ParseKey(key string) (Ref, bool)
}

// TestGCKeysMatchWhatBackendsWrite writes segments through each backend
// and checks that every key it wrote maps back to its segment and lies
// under the prefixes garbage collection lists, so that the collector's
// view and the backend's layout cannot drift apart.
func TestGCKeysMatchWhatBackendsWrite(t *testing.T) {
	ctx := context.Background()
	fb, err := NewFileBackend(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	backends := map[string]interface {
		Backend
		gcKeys
	}{
		"object":         NewObjectBackend(memstore.New(), "", 1),
		"object at root": NewObjectBackend(memstore.New(), "/wal/x/", 1),
		"file":           fb,
	}
	refs := []Ref{{LogID: 5, SegmentID: 12}, {LogID: 5, SegmentID: 13}, {LogID: 50, SegmentID: 0}}
	for name, b := range backends {
		t.Run(name, func(t *testing.T) {
			for _, ref := range refs {
				sink, err := b.CreateSink(ctx, ref, 1)
				if err != nil {
					t.Fatal(err)
				}
				block, err := EncodeBlock(nil, BlockHeader{LogID: ref.LogID, SegmentID: ref.SegmentID, Count: 1, Epoch: 1},
					[][]byte{[]byte("entry")}, CompressionNone)
				if err != nil {
					t.Fatal(err)
				}
				if err := sink.WriteBlock(ctx, 0, block); err != nil {
					t.Fatal(err)
				}
				if err := sink.WriteSeal(ctx, SealInfo{LastEntry: 0, Blocks: 1}, []byte("seal")); err != nil {
					t.Fatal(err)
				}
				if err := sink.Close(); err != nil {
					t.Fatal(err)
				}
			}
			objs, err := objstore.ListAll(ctx, b.Store(), "", "")
			if err != nil {
				t.Fatal(err)
			}
			seen := map[Ref]int{}
			for _, o := range objs {
				ref, ok := b.ParseKey(o.Key)
				if !ok {
					t.Errorf("ParseKey(%q) = not segment data; the backend wrote it", o.Key)
					continue
				}
				seen[ref]++
				for _, prefix := range []string{b.KeyRoot(), b.LogKeyPrefix(ref.LogID), b.SegmentKeyPrefix(ref)} {
					if !strings.HasPrefix(o.Key, prefix) {
						t.Errorf("key %q of %+v is not under %q", o.Key, ref, prefix)
					}
				}
			}
			for _, ref := range refs {
				if seen[ref] < 2 {
					t.Errorf("segment %+v: %d keys parsed, want its block and its seal; keys %v", ref, seen[ref], objs)
				}
			}
			// Log 5's prefix must not cover log 50's keys, nor segment
			// 1's those of segment 12.
			if strings.HasPrefix(b.LogKeyPrefix(50), b.LogKeyPrefix(5)) {
				t.Errorf("LogKeyPrefix(5) %q covers LogKeyPrefix(50) %q", b.LogKeyPrefix(5), b.LogKeyPrefix(50))
			}
			if strings.HasPrefix(b.SegmentKeyPrefix(Ref{LogID: 5, SegmentID: 12}), b.SegmentKeyPrefix(Ref{LogID: 5, SegmentID: 1})) {
				t.Errorf("SegmentKeyPrefix of segment 1 covers segment 12's")
			}
		})
	}
}

func TestGCParseKeyRejects(t *testing.T) {
	fb, err := NewFileBackend(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		b    gcKeys
		keys []string
	}{
		{"object", NewObjectBackend(memstore.New(), "wal", 1), []string{
			"other/5/0000000000000000012/seal",       // outside the root
			"5/0000000000000000012/seal",             // outside the root
			"wal/5/0000000000000000012/b-1/extra",    // too deep
			"wal/5/0000000000000000012",              // no name
			"wal/05/0000000000000000012/seal",        // log id with a leading zero
			"wal/-5/0000000000000000012/seal",        // negative log id
			"wal/5/12/seal",                          // segment id not padded
			"wal/lone-object",                        // not a log's
			"wal/5/000000000000000001x/b-0000000000", // not digits
		}},
		{"file", fb, []string{
			"5/12.seg",                    // segment id not padded
			"05/0000000000000000012.seg",  // log id with a leading zero
			"+5/0000000000000000012.seg",  // signed log id
			"5/0000000000000000012",       // no extension
			"5/x/0000000000000000012.seg", // too deep
			"0000000000000000012.seg",     // no log
			"/0000000000000000012.seg",    // empty log id
		}},
	}
	for _, tt := range tests {
		for _, key := range tt.keys {
			if ref, ok := tt.b.ParseKey(key); ok {
				t.Errorf("%s: ParseKey(%q) = %+v, want not segment data", tt.name, key, ref)
			}
		}
	}
	if ref, ok := tests[0].b.ParseKey("wal/5/0000000000000000012/seal"); !ok || ref != (Ref{LogID: 5, SegmentID: 12}) {
		t.Errorf("object: ParseKey of a seal = %+v, %v", ref, ok)
	}
	if ref, ok := tests[1].b.ParseKey("0/0000000000000000012.fence"); !ok || ref != (Ref{LogID: 0, SegmentID: 12}) {
		t.Errorf("file: ParseKey of a fence = %+v, %v", ref, ok)
	}
}
