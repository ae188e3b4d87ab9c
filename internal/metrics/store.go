package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/segment"
)

// maxRemembered bounds the keys of failed block writes remembered to
// recognise retries.
const maxRemembered = 4096

// instrumented is an objstore.Store that reports the block writes passing
// through it.
type instrumented struct {
	objstore.Store
	m *Metrics

	mu     sync.Mutex
	failed map[string]struct{} // block keys whose last write failed
}

// InstrumentStore returns a store that forwards every call to next and
// records, from the keys and contents of the writes, what the engine's
// object backend does: each block PUT (segment.BlockKey layout, with next's
// keys relative to the segments' root) as a block write with its size,
// latency and outcome, a PUT of a key whose previous PUT failed as a retry,
// a fence object as a fence_placed event, a create-only PUT that finds its
// slot taken as a slot_taken event, and a seal record as a sealed segment.
// Other calls pass through unrecorded. next stays the caller's. The result
// is safe for concurrent use.
func InstrumentStore(next objstore.Store, m *Metrics) objstore.Store {
	return &instrumented{Store: next, m: m, failed: make(map[string]struct{})}
}

func (s *instrumented) Put(ctx context.Context, key string, data []byte, opts objstore.PutOptions) error {
	_, _, name, ok := segment.ParseSegmentKey(key)
	if !ok {
		return s.Store.Put(ctx, key, data, opts)
	}
	if name == segment.SealName {
		err := s.Store.Put(ctx, key, data, opts)
		if err == nil {
			s.m.SegmentSealed()
		}
		return err
	}
	if _, isBlock := segment.ParseBlockName(name); !isBlock {
		return s.Store.Put(ctx, key, data, opts)
	}
	if segment.IsFence(data) {
		err := s.Store.Put(ctx, key, data, opts)
		if err == nil {
			s.m.Fencing(FencePlaced)
		}
		return err
	}
	s.mu.Lock()
	_, retry := s.failed[key]
	s.mu.Unlock()
	s.m.BlockWriteStarted(retry)
	start := time.Now()
	err := s.Store.Put(ctx, key, data, opts)
	d := time.Since(start)
	switch {
	case errors.Is(err, objstore.ErrAlreadyExists):
		// Not a failure of the store: the slot holds a fence, another
		// writer's block, or this write's own earlier attempt.
		s.m.uploadsInFlight.Dec()
		s.m.Fencing(FenceSlotTaken)
	default:
		s.m.BlockWriteDone(len(data), d, err)
	}
	s.mu.Lock()
	if err != nil && !errors.Is(err, objstore.ErrAlreadyExists) {
		if len(s.failed) >= maxRemembered {
			clear(s.failed)
		}
		s.failed[key] = struct{}{}
	} else {
		delete(s.failed, key)
	}
	s.mu.Unlock()
	return err
}
