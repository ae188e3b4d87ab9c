package shared_test

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"go.uber.org/mock/gomock"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/mocks"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/shared"
)

// TestCommitOutcomeWhenTheIndexFails drives a stream's commit against a
// mocked Index (mocks.MockIndex) that fails in ways the in-memory fake of
// stream_test.go does not: every outcome a writer gets must be true. A
// commit that never got an answer is of unknown outcome, never a definite
// failure; a log fenced after such a commit is ErrFenced only when the
// index shows the block absent, success when it shows it present, and of
// unknown outcome when the index cannot be read. Every retry commits the
// same object with the same extents, so one that applies after a lost
// reply commits nothing else.
func TestCommitOutcomeWhenTheIndexFails(t *testing.T) {
	const logID = 1
	errDown := errors.New("injected: etcd unavailable")
	type answer struct {
		fenced bool
		err    error
	}
	for _, tc := range []struct {
		name    string
		commits []answer // one per attempt; the last repeats
		extents func(committed meta.Extent) ([]meta.Extent, error)
		want    string
	}{
		{name: "fenced at the first attempt", commits: []answer{{fenced: true}}, want: "fenced"},
		{name: "index down until the retry timeout", commits: []answer{{err: errDown}}, want: "unknown"},
		{name: "index down, then fenced, block absent", commits: []answer{{err: errDown}, {fenced: true}},
			extents: func(meta.Extent) ([]meta.Extent, error) { return nil, nil }, want: "fenced"},
		{name: "index down, then fenced, block present", commits: []answer{{err: errDown}, {fenced: true}},
			extents: func(e meta.Extent) ([]meta.Extent, error) { return []meta.Extent{e}, nil }, want: "durable"},
		{name: "index down, then fenced, index unreadable", commits: []answer{{err: errDown}, {fenced: true}},
			extents: func(meta.Extent) ([]meta.Extent, error) { return nil, errDown }, want: "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctrl := gomock.NewController(t)
			idx := mocks.NewMockIndex(ctrl)
			var (
				mu   sync.Mutex
				seen []meta.ObjectCommit
			)
			idx.EXPECT().CommitObject(gomock.Any(), gomock.Any()).DoAndReturn(
				func(ctx context.Context, c meta.ObjectCommit) ([]int64, error) {
					mu.Lock()
					defer mu.Unlock()
					seen = append(seen, c)
					a := tc.commits[min(len(seen), len(tc.commits))-1]
					if a.fenced {
						return []int64{logID}, nil
					}
					return nil, a.err
				}).MinTimes(1)
			if tc.extents != nil {
				idx.EXPECT().Extents(gomock.Any(), int64(logID), int64(0), int64(0), gomock.Any()).DoAndReturn(
					func(ctx context.Context, logID, segID, from int64, limit int) ([]meta.Extent, error) {
						mu.Lock()
						defer mu.Unlock()
						return tc.extents(seen[0].Extents[0])
					}).MinTimes(1)
			}
			b := shared.NewBackend(segment.NewObjectBackend(memstore.New(), "", 4), idx, shared.StreamConfig{
				Window: time.Millisecond, ObjectSize: 8 << 20, MaxInflight: 1,
				RetryTimeout: 200 * time.Millisecond, RetryInitial: time.Millisecond, RetryMax: 10 * time.Millisecond}, nil)
			t.Cleanup(func() { _ = b.Close() })

			tok := meta.WriterToken{LogID: logID, Epoch: 1, Nonce: "n1"}
			ext, err := b.Stream().Write(context.Background(), tok, piece(t, logID, 0, 0))
			switch tc.want {
			case "durable":
				if err != nil {
					t.Fatalf("block committed by an earlier attempt reported as %v", err)
				}
				if !reflect.DeepEqual(ext, seen[0].Extents[0]) {
					t.Fatalf("write returned extent %+v, the index holds %+v", ext, seen[0].Extents[0])
				}
			case "fenced":
				if !errors.Is(err, walerr.ErrFenced) || errors.Is(err, walerr.ErrUnknownOutcome) {
					t.Fatalf("%v, want a definite ErrFenced", err)
				}
			case "unknown":
				if err == nil || !errors.Is(err, walerr.ErrUnknownOutcome) || errors.Is(err, walerr.ErrFenced) {
					t.Fatalf("%v, want ErrUnknownOutcome, not ErrFenced", err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for i, c := range seen[1:] {
				if c.Object != seen[0].Object || !reflect.DeepEqual(c.Extents, seen[0].Extents) ||
					!reflect.DeepEqual(c.Owners, seen[0].Owners) {
					t.Fatalf("attempt %d committed %+v, the first %+v", i+2, c, seen[0])
				}
			}
		})
	}
}

// piece is block blockNo of segment segID of log logID, one entry.
func piece(t *testing.T, logID, segID, blockNo int64) shared.Piece {
	t.Helper()
	data, err := segment.EncodeBlock(nil, segment.BlockHeader{LogID: logID, SegmentID: segID, BlockNo: blockNo,
		FirstEntry: blockNo, Count: 1, Epoch: 1}, [][]byte{[]byte("entry")}, segment.CompressionNone)
	if err != nil {
		t.Fatal(err)
	}
	return shared.Piece{LogID: logID, SegmentID: segID, BlockNo: blockNo, FirstEntry: blockNo, Count: 1, Data: data}
}
