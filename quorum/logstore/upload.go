package logstore

import (
	"context"
	"time"

	"github.com/cockroachdb/errors"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/quorum/quorumpb"
	"github.com/woodpecker-wal/woodpecker/segment"
)

// Uploads. A segment's blocks are uploaded from the block after the
// watermark, up to segmentUploadParallel at once, by one goroutine per
// segment that has work: the segment's uploader replica uploads every
// block it is sent (until the segment is fenced), any replica uploads up
// to what a Flush asks for. The watermark moves over the blocks uploaded
// without a gap below them. The goroutine ends when the next block is not
// held here and no put runs; an add or a Flush starts it again. Puts
// across segments share Config.UploadParallel slots.
//
// Puts of one segment run in parallel because a writer of small blocks
// makes them faster than one PUT at a time stores them: the uploader fell
// thousands of blocks behind, and a seal waited for them all. Only blocks
// at or below the LAC the replica heard go in parallel: they were
// acknowledged, so no recovery ends the segment before them and no fence
// can land below them, and none is left in object storage above a
// segment's end. Past the LAC blocks go one at a time, as a fence in the
// next slot stops the uploads. A crash may leave acknowledged blocks in
// object storage above one that is not: create-only puts of deterministic
// bytes make a seal's or a recovery's later copy of the missing one land
// the same.

// segmentUploadParallel bounds the puts in flight for one segment.
const segmentUploadParallel = 4

// sharedUploadParallel bounds the blocks of one segment in flight to the
// shared object stream, which packs them into objects with the blocks of
// every other segment: enough to fill an object (and not held twice: the
// stream keeps references to the held blocks).
const sharedUploadParallel = 64

// parallel is how many blocks of the segment may be uploading at once.
func (st *segState) parallel() int {
	if st.owner != "" {
		return sharedUploadParallel
	}
	return segmentUploadParallel
}

// wantsUploadLocked reports whether the segment's next block should be
// uploaded. Requires s.mu.
func (s *Server) wantsUploadLocked(st *segState) bool {
	if st.released || st.putErr != nil || (st.owner != "" && s.cfg.Shared == nil) {
		return false // a shared segment on a LogStore without a stream: its seal copies the blocks
	}
	return (st.uploader && !st.fenced) || st.uploaded+1 <= st.flushTo
}

// startUploadLocked starts the segment's upload goroutine when there is
// work and none runs. Requires s.mu.
func (s *Server) startUploadLocked(st *segState) {
	if st.uploading {
		// More may start now (a block came, the LAC moved).
		select {
		case st.uploadKick <- struct{}{}:
		default:
		}
		return
	}
	if s.closed || !s.wantsUploadLocked(st) {
		return
	}
	if _, ok := st.blocks[st.uploaded+1]; !ok {
		return
	}
	st.uploading = true
	s.uploads.Add(1)
	go s.uploadLoop(st)
}

// uploadLoop uploads the segment's blocks from the one after the
// watermark for as long as they are held and wanted, several at once. The
// puts it starts end before it returns.
func (s *Server) uploadLoop(st *segState) {
	defer s.uploads.Done()
	type result struct {
		n   int64
		err error
	}
	results := make(chan result, sharedUploadParallel)
	running := 0
	next := int64(-1)        // the next block to put
	done := map[int64]bool{} // put, above the watermark
	for {
		s.mu.Lock()
		next = max(next, st.uploaded+1)
		for running < st.parallel() && !s.closed && s.wantsUploadLocked(st) {
			if done[next] {
				next++
				continue
			}
			if !(st.uploader && !st.fenced) && next > st.flushTo {
				break // a Flush's work ends there
			}
			if next > st.lac && running > 0 {
				break // beyond the acknowledged prefix, one at a time
			}
			data, ok := st.blocks[next]
			if !ok {
				break
			}
			n, ctx, owner := next, st.ctx, st.owner
			running++
			next++
			go func() { results <- result{n, s.put(ctx, st.key, owner, n, data)} }()
		}
		if running == 0 {
			st.uploading = false
			st.notifyLocked()
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()

		var r result
		select {
		case r = <-results:
		case <-st.uploadKick:
			continue
		}
		running--

		s.mu.Lock()
		switch {
		case r.err == nil:
			done[r.n] = true
			moved := false
			for done[st.uploaded+1] {
				st.uploaded++
				moved = true
			}
			for n := range done {
				if n <= st.uploaded {
					delete(done, n)
				}
			}
			if moved {
				s.dropLocked(st)
				st.notifyLocked()
			}
		case errors.Is(r.err, walerr.ErrFenced):
			// The slot holds a fence or another writer's block, or (shared
			// objects) the writer no longer owns the log: a recovery owns
			// the segment now.
			if st.putErr == nil {
				s.log.Warn("upload stopped: the segment was fenced in object storage or etcd",
					zap.Int64("log", st.key.log), zap.Int64("segment", st.key.seg), zap.Int64("block", r.n), zap.Error(r.err))
			}
			st.putErr = r.err
			st.fenced = true
		}
		// Otherwise the segment was released or the server closed: no
		// more puts start, and the loop ends once the running ones have.
		s.mu.Unlock()
	}
}

// put uploads block n of segment k, create-only, retrying failures with
// backoff until it succeeds, the slot turns out to hold other data
// (walerr.ErrFenced), or ctx ends. With an owner the block goes to a
// shared object committed under it (walerr.ErrFenced: the owner lost the
// log); the stream bounds those uploads, not the slots.
func (s *Server) put(ctx context.Context, k segKey, owner string, n int64, data []byte) error {
	wait := s.cfg.UploadBackoffMin
	for attempt := 1; ; attempt++ {
		var err error
		start := time.Now()
		if owner != "" {
			err = s.cfg.Shared.Upload(ctx, owner, k.sharedRef(), n, data)
		} else {
			select {
			case s.slots <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			actx, cancel := context.WithTimeout(ctx, s.cfg.UploadTimeout)
			err = segment.UploadBlock(actx, s.cfg.Store, s.cfg.Root, k.ref(), n, data)
			cancel()
			<-s.slots
		}
		switch {
		case err == nil:
			s.m.uploads.WithLabelValues(uploadOK).Inc()
			s.m.uploadSeconds.Observe(time.Since(start).Seconds())
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, walerr.ErrFenced):
			s.m.uploads.WithLabelValues(uploadFailed).Inc()
			return err
		}
		s.m.uploads.WithLabelValues(uploadRetry).Inc()
		if attempt == 1 || attempt%10 == 0 {
			s.log.Warn("upload failed; retrying", zap.Int64("log", k.log), zap.Int64("segment", k.seg),
				zap.Int64("block", n), zap.Int("attempt", attempt), zap.Duration("backoff", wait), zap.Error(err))
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		wait = min(2*wait, s.cfg.UploadBackoffMax)
	}
}

// slotContent is what object storage holds in a block's slot.
type slotContent int

const (
	slotEmpty slotContent = iota
	slotBlock
	slotFence
)

// probe says what object storage holds in the slot of block n of k. A
// shared segment's block is there once it is committed; it has no fences.
func (s *Server) probe(ctx context.Context, k segKey, owner string, n int64) (slotContent, error) {
	if owner != "" {
		if s.cfg.Shared == nil {
			return slotEmpty, nil
		}
		ok, err := s.cfg.Shared.Committed(ctx, k.sharedRef(), n)
		if ok {
			return slotBlock, err
		}
		return slotEmpty, err
	}
	info, err := s.cfg.Store.Stat(ctx, segment.BlockKey(s.cfg.Root, k.log, k.seg, n))
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		return slotEmpty, nil
	case err != nil:
		return slotEmpty, err
	case info.Size < segment.BlockHeaderSize: // fences are smaller than any block
		return slotFence, nil
	}
	return slotBlock, nil
}

// Flush implements quorumpb.LogStoreServer: it uploads the blocks this
// replica holds up to through_block, in order, whether or not it is the
// segment's uploader, and returns the watermark once it reaches
// through_block. When the replica lacks the next block it looks in object
// storage (another replica or the writer may have uploaded it) and goes
// on; when object storage lacks it too, Flush returns the lower watermark
// at once: the caller copies that block from a replica that holds it. A
// replica that holds nothing of the segment answers -1.
//
// Errors: FAILED_PRECONDITION (ReasonFenced) when object storage holds a
// fence (or other data) where the next block belongs; UNAVAILABLE when
// object storage cannot be asked or the server closes; the context's end.
func (s *Server) Flush(ctx context.Context, req *quorumpb.FlushRequest) (*quorumpb.FlushResponse, error) {
	k, err := s.begin(req)
	if err != nil {
		return nil, err
	}
	through := req.GetThroughBlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.segLocked(k, false)
	if st == nil {
		return &quorumpb.FlushResponse{Uploaded: -1}, nil
	}
	probed := int64(-2) // the block whose slot was found empty
	for {
		switch {
		case st.uploaded >= through, st.released:
			return &quorumpb.FlushResponse{Uploaded: st.uploaded}, nil
		case s.closed:
			return nil, s.refuse(codes.Unavailable, "", "logstore %s is shutting down", s.cfg.NodeID)
		case st.putErr != nil:
			return nil, s.refuse(codes.FailedPrecondition, ReasonFenced, "log %d segment %d: upload of block %d: %v",
				k.log, k.seg, st.uploaded+1, st.putErr)
		}
		st.flushTo = max(st.flushTo, through)
		st.learnOwner(req.GetSegment())
		s.startUploadLocked(st)
		if !st.uploading { // the next block is not held here
			next := st.uploaded + 1
			if probed == next {
				return &quorumpb.FlushResponse{Uploaded: st.uploaded}, nil
			}
			probed = next
			owner := st.owner // read under s.mu: an add may set it
			s.mu.Unlock()
			slot, err := s.probe(ctx, k, owner, next)
			s.mu.Lock()
			switch {
			case ctx.Err() != nil:
				return nil, ctxStatus(ctx.Err())
			case err != nil:
				return nil, s.refuse(codes.Unavailable, "", "log %d segment %d: look for block %d in object storage: %v",
					k.log, k.seg, next, err)
			case slot == slotFence:
				st.fenced = true
				return nil, s.refuse(codes.FailedPrecondition, ReasonFenced,
					"log %d segment %d: object storage holds a fence in the slot of block %d", k.log, k.seg, next)
			case slot == slotBlock && next > st.uploaded:
				st.uploaded = next
				s.dropLocked(st)
				st.notifyLocked()
			}
			continue
		}
		changed := st.changed
		s.mu.Unlock()
		select {
		case <-changed:
			s.mu.Lock()
		case <-ctx.Done():
			s.mu.Lock()
			return nil, ctxStatus(ctx.Err())
		}
	}
}
