package logstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/internal/objstore/memstore"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/quorum/quorumpb"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/shared"
)

// TestSharedSegmentUploadsCommitUnderItsWriterAndStopWhenReplaced: the
// blocks of a segment whose requests name a shared owner go into shared
// objects committed in etcd under that writer's token, never into per-log
// block objects, and the watermark moves as they commit. Once another
// writer owns the log, the uploader's commits fail: nothing more of the
// segment is committed, and a Flush says the segment is fenced.
func TestSharedSegmentUploadsCommitUnderItsWriterAndStopWhenReplaced(t *testing.T) {
	ctx := ctxT(t)
	ms := meta.New(testenv.Etcd(t), testenv.UniquePrefix(t))
	store := memstore.New()
	up := shared.NewUploader(segment.NewObjectBackend(store, "", 4), ms, shared.StreamConfig{
		Window: time.Millisecond, ObjectSize: 1 << 20, MaxInflight: 2,
		RetryTimeout: 5 * time.Second, RetryInitial: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond}, nil)
	defer up.Close()
	r := startReplica(t, Config{Store: store, Shared: up})
	owner, err := ms.AcquireWriter(ctx, testLog, testEpoch)
	if err != nil {
		t.Fatal(err)
	}
	seg := func() *quorumpb.Segment {
		s := testSegment()
		s.SharedOwner = owner.String()
		return s
	}
	add := func(n int64) {
		t.Helper()
		req := addReq(t, n)
		req.Segment, req.Uploader, req.Lac = seg(), true, n
		mustAdd(t, r, req)
	}
	for n := range int64(4) {
		add(n)
	}
	resp, err := r.Flush(ctx, &quorumpb.FlushRequest{Segment: seg(), ThroughBlock: 3})
	if err != nil || resp.GetUploaded() != 3 {
		t.Fatalf("flush: %v %v, want blocks 0-3 uploaded", resp, err)
	}
	exts, err := ms.Extents(ctx, testLog, testSeg, 0, 0)
	if err != nil || len(exts) != 4 {
		t.Fatalf("extents %+v %v, want 4", exts, err)
	}
	for _, k := range store.Keys() {
		if !strings.HasPrefix(k, "shared/") {
			t.Fatalf("object %s: a shared segment's block went to a per-log object", k)
		}
	}

	// A new writer takes the log: the old writer's next blocks stay out.
	if _, err := ms.AcquireWriter(ctx, testLog, testEpoch+1); err != nil {
		t.Fatal(err)
	}
	add(4)
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = r.Flush(fctx, &quorumpb.FlushRequest{Segment: seg(), ThroughBlock: 4})
	wantRefusal(t, err, codes.FailedPrecondition, ReasonFenced)
	if exts, err := ms.Extents(ctx, testLog, testSeg, 0, 0); err != nil || len(exts) != 4 {
		t.Fatalf("extents after the writer was replaced: %+v %v, want the 4 committed before", exts, err)
	}
}
