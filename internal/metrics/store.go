package metrics

import (
	"context"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/segment"
)

// instrumented is an objstore.Store that reports the fencing events
// passing through it.
type instrumented struct {
	objstore.Store
	m *Metrics
}

// InstrumentStore returns a store that forwards every call to next and
// records the fencing events that only the store sees, from the keys
// (segment.BlockKey layout, relative to the segments' root) and contents
// of its writes: a fence object written into a block slot as a
// fence_placed event, and a create-only block write that finds its slot
// taken as a slot_taken event. The engine reports everything else (block
// writes, retries, seals, appends) through woodpecker.WithMetrics, so the
// store does not count those again. next stays the caller's. The result
// is safe for concurrent use.
func InstrumentStore(next objstore.Store, m *Metrics) objstore.Store {
	return &instrumented{Store: next, m: m}
}

func (s *instrumented) Put(ctx context.Context, key string, data []byte, opts objstore.PutOptions) error {
	err := s.Store.Put(ctx, key, data, opts)
	_, _, name, ok := segment.ParseSegmentKey(key)
	if !ok {
		return err
	}
	if _, isBlock := segment.ParseBlockName(name); !isBlock {
		return err
	}
	switch {
	case segment.IsFence(data):
		if err == nil {
			s.m.Fencing(FencePlaced)
		}
	case errors.Is(err, objstore.ErrAlreadyExists):
		// The slot holds a fence, another writer's block, or this
		// write's own earlier attempt (a lost acknowledgement).
		s.m.Fencing(FenceSlotTaken)
	}
	return err
}
