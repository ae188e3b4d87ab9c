package gc

import (
	"time"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/segment"
)

// verdict is what the collector does with one stored object.
type verdict int

const (
	// keep: metadata refers to the object, or it is not ours.
	keep verdict = iota
	// orphan: nothing refers to it; delete it once its LastModified is
	// older than the orphan grace period.
	orphan
	// retired: it belongs to a layout a compaction replaced; delete it
	// once the old-blocks grace period after the compaction has passed.
	retired
)

func (v verdict) String() string {
	switch v {
	case keep:
		return "keep"
	case orphan:
		return "orphan"
	case retired:
		return "retired"
	default:
		return "verdict(?)"
	}
}

// classifySealed decides about object name (of size bytes) in the prefix
// of the sealed object-store segment sm. index holds the names of the
// current layout when sm.Generation > 0. Pure.
//
//   - the writer's seal record, and the current layout's seal record and
//     objects, are kept;
//   - the fence recovery put into block slot sm.Blocks is kept (it stops a
//     zombie writer's late block from landing there);
//   - blocks above it are orphans: they can never have been acknowledged;
//   - objects of a generation above the current one are orphans: a
//     compaction that never committed;
//   - objects of older generations not in the current layout are retired
//     (those it reuses, being large already, are kept).
func classifySealed(sm meta.SegmentMeta, index map[string]bool, name string, size int64) verdict {
	n := segment.ParseObjectName(name)
	cur := sm.Generation
	switch n.Kind {
	case segment.ObjectSeal:
		switch {
		case n.Generation == 0 || n.Generation == cur:
			return keep
		case n.Generation > cur:
			return orphan
		default:
			return retired
		}
	case segment.ObjectBlock:
		switch {
		case n.Block == sm.Blocks && size < segment.BlockHeaderSize:
			return keep // the fence
		case n.Block >= sm.Blocks:
			return orphan
		case cur == 0 || index[name]:
			return keep
		default:
			return retired
		}
	case segment.ObjectMerged:
		switch {
		case index[name]:
			return keep // of this generation, or a large one kept from an older
		case n.Generation >= cur:
			return orphan
		default:
			return retired
		}
	default:
		return keep
	}
}

// due reports whether an object of verdict v may be deleted at now.
func due(v verdict, sm meta.SegmentMeta, modified, now time.Time, cfg Config) bool {
	switch v {
	case orphan:
		return !modified.After(now.Add(-cfg.OrphanGracePeriod))
	case retired:
		return !sm.CompactedAt.IsZero() && !now.Before(sm.CompactedAt.Add(cfg.Compaction.OldBlocksGracePeriod))
	default:
		return false
	}
}

// sealedAge is the time a segment has been sealed at now; segments sealed
// before SealedAt was recorded count from their creation.
func sealedAge(sm meta.SegmentMeta, now time.Time) time.Duration {
	t := sm.SealedAt
	if t.IsZero() {
		t = sm.CreatedAt
	}
	return now.Sub(t)
}

// whollyBelow reports whether every entry of the sealed segment sm lies
// below the truncation point p.
func whollyBelow(sm meta.SegmentMeta, p meta.Position) bool {
	return sm.ID < p.Segment || (sm.ID == p.Segment && sm.LastEntry < p.Entry)
}

// eligible returns the segments of st garbage collection may mark for
// deletion now: the longest run, from the log's lowest live segment up, of
// sealed segments wholly below the truncation point, sealed at least ttl
// ago, and below every published reader position. At most limit. Pure.
func eligible(st meta.LogState, ttl time.Duration, now time.Time, limit int) []meta.SegmentMeta {
	if !st.Truncated {
		return nil
	}
	minReader := int64(-1)
	for _, r := range st.Readers {
		if minReader < 0 || r.Segment < minReader {
			minReader = r.Segment
		}
	}
	var out []meta.SegmentMeta
	for _, sm := range st.Segments {
		if sm.Deleting {
			continue
		}
		if sm.State != meta.SegmentSealed || !whollyBelow(sm, st.Truncation) ||
			(minReader >= 0 && sm.ID >= minReader) || sealedAge(sm, now) < ttl || len(out) == limit {
			break
		}
		out = append(out, sm)
	}
	return out
}
