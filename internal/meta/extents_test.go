package meta_test

import (
	"context"
	"slices"
	"testing"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
)

func ext(tok meta.WriterToken, seg, block int64, object string) meta.Extent {
	return meta.Extent{LogID: tok.LogID, SegmentID: seg, BlockNo: block, Object: object,
		Offset: 100 * block, Length: 100, FirstEntry: block, Count: 1, CRC: uint32(block)}
}

// TestCommitObjectComparesEveryOwner: one transaction commits the extents
// of every log whose owner is in place; a log whose owner changed makes
// the transaction commit nothing and is named, so the caller commits the
// others again.
func TestCommitObjectComparesEveryOwner(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	_, a := newLog(t, s, "a", 1)
	_, b := newLog(t, s, "b", 1)
	c := meta.ObjectCommit{Object: "shared/1", Owners: map[int64]meta.WriterToken{a.LogID: a, b.LogID: b},
		Extents: []meta.Extent{ext(a, 0, 0, "shared/1"), ext(a, 0, 1, "shared/1"), ext(b, 2, 0, "shared/1")}}
	if fenced, err := s.CommitObject(ctx, c); err != nil || fenced != nil {
		t.Fatalf("commit: %v %v", fenced, err)
	}
	got, err := s.Extents(ctx, a.LogID, 0, 0, 0)
	if err != nil || !slices.Equal(got, c.Extents[:2]) {
		t.Fatalf("extents of a: %+v %v", got, err)
	}
	if got, err := s.Extents(ctx, a.LogID, 0, 1, 1); err != nil || len(got) != 1 || got[0].BlockNo != 1 {
		t.Fatalf("extents of a from block 1: %+v %v", got, err)
	}

	// b gets a new owner: the next object's commit names it and commits
	// nothing, not even a's extent.
	if _, err := s.AcquireWriter(ctx, b.LogID, 2); err != nil {
		t.Fatal(err)
	}
	c2 := meta.ObjectCommit{Object: "shared/2", Owners: c.Owners,
		Extents: []meta.Extent{ext(a, 0, 2, "shared/2"), ext(b, 2, 1, "shared/2")}}
	fenced, err := s.CommitObject(ctx, c2)
	if err != nil || !slices.Equal(fenced, []int64{b.LogID}) {
		t.Fatalf("commit with b fenced: %v %v", fenced, err)
	}
	if got, _ := s.Extents(ctx, a.LogID, 0, 2, 0); len(got) != 0 {
		t.Fatalf("a's extent committed by a failed transaction: %+v", got)
	}
	c2.Owners = map[int64]meta.WriterToken{a.LogID: a}
	c2.Extents = c2.Extents[:1]
	if fenced, err := s.CommitObject(ctx, c2); err != nil || fenced != nil {
		t.Fatalf("commit of a alone: %v %v", fenced, err)
	}
	// Committing the same extents again (a retry after a lost reply) is
	// harmless.
	if fenced, err := s.CommitObject(ctx, c2); err != nil || fenced != nil {
		t.Fatalf("repeated commit: %v %v", fenced, err)
	}
	recs, names, err := s.SharedObjects(ctx, "", 0)
	if err != nil || !slices.Equal(names, []string{"shared/1", "shared/2"}) || len(recs["shared/1"].Segments) != 2 {
		t.Fatalf("object records: %v %+v %v", names, recs, err)
	}
}

// TestSealFoldsExtents: the seal transaction deletes the segment's extents
// (its seal record holds them from then on), and only that segment's.
func TestSealFoldsExtents(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	_, a := newLog(t, s, "a", 1)
	sm, err := s.CreateSegment(ctx, a, 1, []byte("shared"))
	if err != nil {
		t.Fatal(err)
	}
	c := meta.ObjectCommit{Object: "o", Owners: map[int64]meta.WriterToken{a.LogID: a},
		Extents: []meta.Extent{ext(a, 1, 0, "o"), ext(a, 10, 0, "o")}}
	if _, err := s.CommitObject(ctx, c); err != nil {
		t.Fatal(err)
	}
	sm.LastEntry, sm.Blocks = 0, 1
	if _, err := s.SealSegment(ctx, a, sm); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Extents(ctx, a.LogID, 1, 0, 0); len(got) != 0 {
		t.Fatalf("sealed segment keeps extents %+v", got)
	}
	if got, _ := s.Extents(ctx, a.LogID, 10, 0, 0); len(got) != 1 {
		t.Fatalf("segment 10 lost its extents when segment 1 was sealed: %+v", got)
	}
}
