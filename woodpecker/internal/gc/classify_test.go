package gc

import (
	"testing"
	"time"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/segment"
)

func TestClassifySealed(t *testing.T) {
	gen0 := meta.SegmentMeta{State: meta.SegmentSealed, Blocks: 10}
	gen2 := meta.SegmentMeta{State: meta.SegmentSealed, Blocks: 10, Generation: 2}
	index := map[string]bool{segment.MergedObjectName(0, 2): true, segment.BlockName(5): true,
		segment.MergedObjectName(6, 1): true, segment.LayoutSealName(2): true}
	big := int64(500)
	tests := []struct {
		name string
		sm   meta.SegmentMeta
		obj  string
		size int64
		want verdict
	}{
		{"writer's seal", gen0, segment.SealName, 90, keep},
		{"block", gen0, segment.BlockName(9), big, keep},
		{"fence above the last block", gen0, segment.BlockName(10), segment.FenceSize, keep},
		{"block above the last block", gen0, segment.BlockName(10), big, orphan},
		{"block above the fence", gen0, segment.BlockName(11), big, orphan},
		{"uncommitted merged object", gen0, segment.MergedObjectName(0, 1), big, orphan},
		{"uncommitted seal record", gen0, segment.LayoutSealName(1), 90, orphan},
		{"foreign name", gen0, "notes.txt", 3, keep},

		{"writer's seal after compaction", gen2, segment.SealName, 90, keep},
		{"current seal record", gen2, segment.LayoutSealName(2), 90, keep},
		{"older seal record", gen2, segment.LayoutSealName(1), 90, retired},
		{"newer seal record", gen2, segment.LayoutSealName(3), 90, orphan},
		{"current merged object", gen2, segment.MergedObjectName(0, 2), big, keep},
		{"kept large block", gen2, segment.BlockName(5), big, keep},
		{"kept merged object of an older generation", gen2, segment.MergedObjectName(6, 1), big, keep},
		{"replaced block", gen2, segment.BlockName(1), big, retired},
		{"replaced merged object", gen2, segment.MergedObjectName(2, 1), big, retired},
		{"merged object of the current generation not in the index", gen2, segment.MergedObjectName(3, 2), big, orphan},
		{"fence after compaction", gen2, segment.BlockName(10), segment.FenceSize, keep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idx := index
			if tt.sm.Generation == 0 {
				idx = nil
			}
			if got := classifySealed(tt.sm, idx, tt.obj, tt.size); got != tt.want {
				t.Fatalf("classifySealed(%s) = %s, want %s", tt.obj, got, tt.want)
			}
		})
	}
}

func TestDue(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	cfg := Config{OrphanGracePeriod: time.Hour, Compaction: CompactionConfig{OldBlocksGracePeriod: 10 * time.Minute}}
	compacted := meta.SegmentMeta{CompactedAt: now.Add(-10 * time.Minute)}
	tests := []struct {
		name     string
		v        verdict
		sm       meta.SegmentMeta
		modified time.Time
		want     bool
	}{
		{"kept objects never", keep, compacted, now.Add(-100 * time.Hour), false},
		{"young orphan", orphan, meta.SegmentMeta{}, now.Add(-59 * time.Minute), false},
		{"old orphan", orphan, meta.SegmentMeta{}, now.Add(-time.Hour), true},
		{"retired within the grace period", retired, meta.SegmentMeta{CompactedAt: now.Add(-9 * time.Minute)}, now.Add(-100 * time.Hour), false},
		{"retired after the grace period", retired, compacted, now, true},
		{"retired without a compaction time", retired, meta.SegmentMeta{}, now.Add(-100 * time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := due(tt.v, tt.sm, tt.modified, now, cfg); got != tt.want {
				t.Fatalf("due = %t, want %t", got, tt.want)
			}
		})
	}
}

func TestEligible(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	old := now.Add(-2 * time.Hour)
	seg := func(id, last int64, state meta.SegmentState, sealedAt time.Time) meta.SegmentMeta {
		return meta.SegmentMeta{ID: id, LastEntry: last, State: state, SealedAt: sealedAt}
	}
	base := []meta.SegmentMeta{
		seg(3, 9, meta.SegmentSealed, old), seg(4, 9, meta.SegmentSealed, old),
		seg(5, 9, meta.SegmentSealed, now.Add(-time.Minute)), seg(6, 9, meta.SegmentSealed, old),
		seg(7, -1, meta.SegmentOpen, time.Time{}),
	}
	trunc := func(s, e int64) meta.LogState {
		return meta.LogState{Segments: base, Truncated: true, Truncation: meta.Position{Segment: s, Entry: e}}
	}
	ids := func(segs []meta.SegmentMeta) []int64 {
		var out []int64
		for _, s := range segs {
			out = append(out, s.ID)
		}
		return out
	}
	withReader := trunc(7, 0)
	withReader.Readers = []meta.ReaderPosition{{Position: meta.Position{Segment: 4}}}
	marked := trunc(7, 0)
	marked.Segments = append([]meta.SegmentMeta{{ID: 2, Deleting: true, State: meta.SegmentSealed}}, base...)
	tests := []struct {
		name  string
		st    meta.LogState
		ttl   time.Duration
		limit int
		want  []int64
	}{
		{"never truncated", meta.LogState{Segments: base}, 0, 10, nil},
		{"below the point, in order", trunc(7, 0), 0, 10, []int64{3, 4, 5, 6}},
		{"the segment holding the point stays", trunc(4, 5), 0, 10, []int64{3}},
		{"a point after a segment's last entry", trunc(4, 10), 0, 10, []int64{3, 4}},
		{"a young segment stops the run", trunc(7, 0), time.Hour, 10, []int64{3, 4}},
		{"a reader protects its segment and all after", withReader, 0, 10, []int64{3}},
		{"limit", trunc(7, 0), 0, 2, []int64{3, 4}},
		{"marked segments are skipped", marked, 0, 10, []int64{3, 4, 5, 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ids(eligible(tt.st, tt.ttl, now, tt.limit))
			if len(got) != len(tt.want) {
				t.Fatalf("eligible = %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("eligible = %v, want %v", got, tt.want)
				}
			}
		})
	}
}
