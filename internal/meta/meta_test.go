package meta_test

import (
	"context"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/internal/meta/metafault"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// newStore returns a store on a fresh prefix of the shared etcd whose
// requests go through a fault injector.
func newStore(t *testing.T) (*meta.Store, *metafault.KV) {
	t.Helper()
	var faults *metafault.KV
	s := meta.New(testenv.Etcd(t), testenv.UniquePrefix(t), meta.WithKV(func(kv clientv3.KV) clientv3.KV {
		faults = metafault.New(kv)
		return faults
	}))
	return s, faults
}

// newLog creates a log and makes a writer at epoch its owner.
func newLog(t *testing.T, s *meta.Store, name string, epoch int64) (meta.LogInfo, meta.WriterToken) {
	t.Helper()
	ctx := context.Background()
	info, err := s.CreateLog(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.AcquireWriter(ctx, info.ID, epoch)
	if err != nil {
		t.Fatal(err)
	}
	return info, tok
}

func segments(t *testing.T, s *meta.Store, logID int64) []meta.SegmentMeta {
	t.Helper()
	segs, err := s.Segments(context.Background(), logID)
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

// TestCreateSegmentRetryAfterLostReplySucceeds: a creation whose
// transaction committed but whose reply was lost succeeds when retried,
// with the record it wrote, instead of failing an assertion.
func TestCreateSegmentRetryAfterLostReplySucceeds(t *testing.T) {
	s, faults := newStore(t)
	ctx := context.Background()
	info, tok := newLog(t, s, "create", 1)
	faults.Add(metafault.Rule{Kind: metafault.LoseReply, Op: metafault.TxnOp, Key: "/seg/", Times: 1})
	if _, err := s.CreateSegment(ctx, tok, 0, []byte("ensemble-a")); !errors.Is(err, metafault.ErrReplyLost) {
		t.Fatalf("first attempt = %v, want the lost reply", err)
	}
	sm, err := s.CreateSegment(ctx, tok, 0, []byte("ensemble-a"))
	if err != nil {
		t.Fatalf("retry after a lost reply: %v", err)
	}
	segs := segments(t, s, info.ID)
	if len(segs) != 1 || segs[0].Revision != sm.Revision || segs[0].State != meta.SegmentOpen {
		t.Fatalf("segments %+v, want the one record the retry returned (%+v)", segs, sm)
	}
	if string(segs[0].Placement) != "ensemble-a" {
		t.Fatalf("placement %q, want %q", segs[0].Placement, "ensemble-a")
	}
	// A retry that asks for another placement is not the same creation.
	if _, err := s.CreateSegment(ctx, tok, 0, []byte("ensemble-b")); err == nil {
		t.Fatal("creating the segment again with another placement succeeded")
	}
}

// TestSealSegmentRetryAfterLostReplySucceeds: a seal whose transaction
// committed but whose reply was lost succeeds when retried; the writer,
// which still owns the log, is not told it was fenced.
func TestSealSegmentRetryAfterLostReplySucceeds(t *testing.T) {
	s, faults := newStore(t)
	ctx := context.Background()
	info, tok := newLog(t, s, "seal", 1)
	sm, err := s.CreateSegment(ctx, tok, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	sm.LastEntry, sm.Blocks, sm.Bytes = 41, 3, 4096
	faults.Add(metafault.Rule{Kind: metafault.LoseReply, Op: metafault.TxnOp, Key: "/seg/", Times: 1})
	if _, err := s.SealSegment(ctx, tok, sm); !errors.Is(err, metafault.ErrReplyLost) {
		t.Fatalf("first attempt = %v, want the lost reply", err)
	}
	sealed, err := s.SealSegment(ctx, tok, sm)
	if err != nil {
		t.Fatalf("retry after a lost reply = %v, want success (the writer still owns the log)", err)
	}
	segs := segments(t, s, info.ID)
	if len(segs) != 1 || segs[0].State != meta.SegmentSealed || segs[0].LastEntry != 41 || segs[0].Revision != sealed.Revision {
		t.Fatalf("segments %+v after the retried seal", segs)
	}
	// A retry claiming another end is a conflict, not a success.
	other := sm
	other.LastEntry = 40
	if _, err := s.SealSegment(ctx, tok, other); !errors.Is(err, walerr.ErrFenced) {
		t.Fatalf("sealing again at another end = %v, want ErrFenced", err)
	}
}

// TestSealSegmentSurvivesRevisionConflict: another client rewriting the
// open record without changing it only makes the seal compare again.
func TestSealSegmentSurvivesRevisionConflict(t *testing.T) {
	s, faults := newStore(t)
	ctx := context.Background()
	info, tok := newLog(t, s, "conflict", 1)
	sm, err := s.CreateSegment(ctx, tok, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	faults.Add(metafault.Rule{Kind: metafault.Conflict, Op: metafault.TxnOp, Key: "/seg/", Times: 2})
	sm.LastEntry, sm.Blocks, sm.Bytes = 9, 1, 100
	if _, err := s.SealSegment(ctx, tok, sm); err != nil {
		t.Fatalf("seal under revision conflicts: %v", err)
	}
	if got := faults.Hits(metafault.Conflict); got != 2 {
		t.Fatalf("%d conflicts injected, want 2", got)
	}
	if segs := segments(t, s, info.ID); segs[0].State != meta.SegmentSealed {
		t.Fatalf("segment %+v is not sealed", segs[0])
	}
}

// TestSupersededWriterIsFencedOnEveryChange: once a newer writer owns the
// log, every metadata change of the older one fails with ErrFenced and
// changes nothing, including retries that look like lost replies.
func TestSupersededWriterIsFencedOnEveryChange(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	info, old := newLog(t, s, "fenced", 3)
	sm, err := s.CreateSegment(ctx, old, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcquireWriter(ctx, info.ID, 2); !errors.Is(err, walerr.ErrFenced) {
		t.Fatalf("acquire at a lower epoch = %v, want ErrFenced", err)
	}
	newer, err := s.AcquireWriter(ctx, info.ID, 3) // the same epoch takes over
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSegment(ctx, old, 1, nil); !errors.Is(err, walerr.ErrFenced) {
		t.Errorf("create by the superseded writer = %v, want ErrFenced", err)
	}
	if _, err := s.CreateSegment(ctx, old, 0, nil); !errors.Is(err, walerr.ErrFenced) {
		t.Errorf("a superseded writer's retried create = %v, want ErrFenced", err)
	}
	sm.LastEntry = 5
	if _, err := s.SealSegment(ctx, old, sm); !errors.Is(err, walerr.ErrFenced) {
		t.Errorf("seal by the superseded writer = %v, want ErrFenced", err)
	}
	if err := s.Truncate(ctx, info.ID, meta.Position{Entry: 1}, &old); !errors.Is(err, walerr.ErrFenced) {
		t.Errorf("truncate by the superseded writer = %v, want ErrFenced", err)
	}
	if _, ok, _ := s.Truncation(ctx, info.ID); ok {
		t.Error("the superseded writer moved the truncation point")
	}
	if segs := segments(t, s, info.ID); len(segs) != 1 || segs[0].State != meta.SegmentOpen {
		t.Fatalf("segments %+v changed", segs)
	}
	// The new owner seals the old segment (recovery) and goes on.
	if _, err := s.SealSegment(ctx, newer, sm); err != nil {
		t.Fatalf("the owner's recovery seal: %v", err)
	}
	if _, err := s.CreateSegment(ctx, newer, 1, nil); err != nil {
		t.Fatal(err)
	}
	// Another writer's record is never taken for one's own.
	if _, err := s.CreateSegment(ctx, newer, 0, nil); err == nil || errors.Is(err, walerr.ErrFenced) {
		t.Fatalf("creating another writer's segment again = %v, want an assertion failure", err)
	}
}

// TestFailedTransactionChangesNothing: a transaction that fails before it
// reaches etcd leaves the state as it was, and the call can be repeated.
func TestFailedTransactionChangesNothing(t *testing.T) {
	s, faults := newStore(t)
	ctx := context.Background()
	info, tok := newLog(t, s, "fail", 1)
	faults.Add(metafault.Rule{Kind: metafault.Fail, Op: metafault.TxnOp, Key: "/seg/", Skip: 1, Times: 1})
	if _, err := s.CreateSegment(ctx, tok, 0, nil); err != nil { // skipped by the rule
		t.Fatal(err)
	}
	if _, err := s.CreateSegment(ctx, tok, 1, nil); !errors.Is(err, metafault.ErrInjected) {
		t.Fatalf("second create = %v, want the injected failure", err)
	}
	if segs := segments(t, s, info.ID); len(segs) != 1 {
		t.Fatalf("%d segments after a failed create, want 1", len(segs))
	}
	if _, err := s.CreateSegment(ctx, tok, 1, nil); err != nil {
		t.Fatalf("repeating the failed create: %v", err)
	}
}

// TestDelayedRequestEndsWithItsContext: a slow etcd never holds a caller
// past its context.
func TestDelayedRequestEndsWithItsContext(t *testing.T) {
	s, faults := newStore(t)
	info, _ := newLog(t, s, "slow", 1)
	faults.Add(metafault.Rule{Kind: metafault.Delay, Op: metafault.GetOp, Delay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Segments(ctx, info.ID); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read under an hour's delay = %v, want the context's deadline", err)
	}
}

// TestTruncateOnlyMovesForward: a truncation point moves up, never down,
// and a retry after a lost reply finds it moved.
func TestTruncateOnlyMovesForward(t *testing.T) {
	s, faults := newStore(t)
	ctx := context.Background()
	info, tok := newLog(t, s, "trunc", 1)
	faults.Add(metafault.Rule{Kind: metafault.LoseReply, Op: metafault.TxnOp, Key: "/trunc", Times: 1})
	p := meta.Position{Segment: 2, Entry: 7}
	if err := s.Truncate(ctx, info.ID, p, &tok); !errors.Is(err, metafault.ErrReplyLost) {
		t.Fatalf("first attempt = %v, want the lost reply", err)
	}
	if err := s.Truncate(ctx, info.ID, p, &tok); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if err := s.Truncate(ctx, info.ID, meta.Position{Segment: 1}, nil); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := s.Truncation(ctx, info.ID); err != nil || !ok || got != p {
		t.Fatalf("truncation point %v (%v, %v), want %v", got, ok, err, p)
	}
	if err := s.DeleteLog(ctx, "trunc"); err != nil {
		t.Fatal(err)
	}
	if err := s.Truncate(ctx, info.ID, meta.Position{Segment: 9}, nil); !errors.Is(err, walerr.ErrLogNotFound) {
		t.Fatalf("truncating a deleted log = %v, want ErrLogNotFound", err)
	}
}

// TestLogLifecycle: names are unique, ids distinct, deleted logs are gone
// and fence their writers.
func TestLogLifecycle(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	a, tok := newLog(t, s, "a", 1)
	if _, err := s.CreateLog(ctx, "a"); !errors.Is(err, walerr.ErrLogExists) {
		t.Fatalf("creating a twice = %v, want ErrLogExists", err)
	}
	b, err := s.CreateLog(ctx, "b")
	if err != nil || b.ID == a.ID {
		t.Fatalf("CreateLog(b) = %+v, %v; want an id other than %d", b, err, a.ID)
	}
	for _, bad := range []string{"", "x/y", "bell\a"} {
		if _, err := s.CreateLog(ctx, bad); !errors.Is(err, walerr.ErrInvalidName) {
			t.Errorf("CreateLog(%q) = %v, want ErrInvalidName", bad, err)
		}
	}
	if names, err := s.ListLogs(ctx); err != nil || len(names) != 2 || names[0] != "a" || names[1] != "b" {
		t.Fatalf("ListLogs = %v, %v", names, err)
	}
	if err := s.DeleteLog(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLog(ctx, "a"); !errors.Is(err, walerr.ErrLogNotFound) {
		t.Fatalf("GetLog after delete = %v, want ErrLogNotFound", err)
	}
	if _, err := s.CreateSegment(ctx, tok, 0, nil); !errors.Is(err, walerr.ErrFenced) {
		t.Fatalf("the deleted log's writer creating a segment = %v, want ErrFenced", err)
	}
	if _, err := s.AcquireWriter(ctx, a.ID, 9); !errors.Is(err, walerr.ErrLogNotFound) {
		t.Fatalf("acquiring a deleted log = %v, want ErrLogNotFound", err)
	}
}
