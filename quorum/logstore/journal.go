package logstore

import (
	"maps"
	"slices"
	"time"

	"github.com/cockroachdb/errors"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"

	"github.com/woodpecker-wal/woodpecker/quorum/logstore/journal"
	"github.com/woodpecker-wal/woodpecker/segment"
)

// The journal (Config.Journal). A replica with one writes a block it takes,
// and a fence it answers, to the segment's journal file and syncs before
// it answers, so that what it acknowledged survives a crash of its process
// or machine. On start it replays the journal: it holds again the blocks
// above the last drop it recorded, stays fenced where it was, and keeps
// its tombstones. What it does not record (the LAC and upload watermark it
// heard) starts from the recorded drop, a lower bound.
//
// Writes to one segment's file are serialized by segState.jmu, taken
// before Server.mu and held across the write: a Fence waits for an add in
// progress, so the blocks it lists include every block acknowledged before
// it, and no block is acknowledged after it.

// rewriteSlack is how much a journal file may hold beyond twice the bytes
// of its segment's held blocks before it is rewritten with what is still
// needed: rewrites cost at most one copy of each byte written, and files
// stay within twice the held bytes plus this.
const rewriteSlack = 8 << 20

// restore rebuilds the state of the segments the journal holds. Called by
// New, before serving.
func (s *Server) restore(segs []journal.Segment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, js := range segs {
		k := segKey{js.Log, js.Seg}
		st := s.segLocked(k, true)
		if js.Released {
			st.blocks = nil
			st.fenced, st.released, st.jfenced, st.jreleased = true, true, true, true
			st.cancel()
			s.released = append(s.released, k)
			continue
		}
		st.jfile = js.File
		for _, r := range js.Records {
			switch r.Kind {
			case journal.KindFence:
				st.fenced, st.jfenced = true, true
			case journal.KindDropped:
				st.dropped = max(st.dropped, r.N)
				st.jdropped = st.dropped
			case journal.KindBlock:
				h, err := segment.DecodeBlockHeader(r.Data)
				if err == nil && st.epoch >= 0 && h.Epoch != st.epoch {
					err = errors.Newf("written by epoch %d, the segment's earlier blocks by epoch %d", h.Epoch, st.epoch)
				}
				if err == nil {
					err = validateBlock(r.Data, k, h.Epoch, r.N)
				}
				if err != nil {
					s.log.Warn("journal: skipping a block that does not belong to its segment",
						zap.Int64("log", k.log), zap.Int64("segment", k.seg), zap.Int64("block", r.N), zap.Error(err))
					continue
				}
				st.epoch = h.Epoch
				// A copy: the record shares the whole file's bytes.
				st.blocks[r.N] = slices.Clone(r.Data)
			}
		}
		for n, b := range st.blocks {
			if n <= st.dropped {
				delete(st.blocks, n)
				continue
			}
			st.bytes += int64(len(b))
			s.held += int64(len(b))
			s.nblocks++
		}
		// Every block up to the drop was uploaded and confirmed.
		st.uploaded, st.lac = st.dropped, st.dropped
		st.watchChangedLocked()
	}
	s.m.segments.Set(float64(len(s.segs)))
	s.m.bytesHeld.Set(float64(s.held))
	s.m.blocksHeld.Set(float64(s.nblocks))
	s.log.Info("journal replayed", zap.String("dir", s.cfg.Journal.Path()), zap.Int("segments", len(segs)),
		zap.Int64("blocks", s.nblocks), zap.Int64("bytes", s.held))
}

// persistLocked writes recs to the segment's journal and syncs, with what
// it needs first (the file, the drop watermark), rewriting the file when
// it has grown well past what is still needed. Requires st.jmu and s.mu;
// s.mu is released during the write. Without a journal it does nothing.
func (s *Server) persistLocked(st *segState, recs ...journal.Record) error {
	if s.cfg.Journal == nil {
		return nil
	}
	dropped := st.dropped
	var rewrite []journal.Record
	if st.jfile != nil && st.jfile.Size() > 2*st.bytes+rewriteSlack {
		if st.jfenced {
			rewrite = append(rewrite, journal.Record{Kind: journal.KindFence})
		}
		rewrite = append(rewrite, journal.Record{Kind: journal.KindDropped, N: dropped})
		held := make([]int64, 0, len(st.blocks))
		for n := range st.blocks {
			held = append(held, n)
		}
		slices.Sort(held)
		for _, n := range held {
			rewrite = append(rewrite, journal.Record{Kind: journal.KindBlock, N: n, Data: st.blocks[n]})
		}
	}
	s.mu.Unlock()
	start := time.Now()
	err := s.persist(st, dropped, rewrite, recs)
	s.mu.Lock()
	if err == nil {
		s.m.journalSyncSeconds.Observe(time.Since(start).Seconds())
	}
	if err != nil {
		s.m.journalErrors.Inc()
		s.log.Warn("journal write failed", zap.Int64("log", st.key.log), zap.Int64("segment", st.key.seg), zap.Error(err))
		return s.refuse(codes.Unavailable, "", "logstore %s: journal of log %d segment %d: %v; this replica cannot acknowledge "+
			"until its data directory is writable again", s.cfg.NodeID, st.key.log, st.key.seg, err)
	}
	return nil
}

// persist does persistLocked's I/O. Requires st.jmu.
func (s *Server) persist(st *segState, dropped int64, rewrite, recs []journal.Record) error {
	var err error
	if st.jfile == nil {
		if st.jfile, err = s.cfg.Journal.Create(st.key.log, st.key.seg); err != nil {
			return err
		}
	}
	if rewrite != nil {
		if err = st.jfile.Rewrite(append(rewrite, recs...)...); err == nil {
			s.m.journalRewrites.Inc()
		}
	} else {
		if dropped > st.jdropped {
			recs = append([]journal.Record{{Kind: journal.KindDropped, N: dropped}}, recs...)
		}
		err = st.jfile.Append(recs...)
	}
	if err != nil {
		return err
	}
	st.jdropped = max(st.jdropped, dropped)
	for _, r := range recs {
		if r.Kind == journal.KindFence {
			st.jfenced = true
		}
	}
	return nil
}

// releaseJournal turns the segment's journal file into its tombstone.
// Requires st.jmu.
func (s *Server) releaseJournal(st *segState) error {
	if s.cfg.Journal == nil || st.jreleased {
		return nil
	}
	var err error
	if st.jfile == nil {
		// The tombstone keeps the fence even where no block came.
		st.jfile, err = s.cfg.Journal.Create(st.key.log, st.key.seg)
	}
	if err == nil {
		err = st.jfile.Release()
	}
	if err != nil {
		s.m.journalErrors.Inc()
		return s.refuse(codes.Unavailable, "", "logstore %s: journal of log %d segment %d: %v", s.cfg.NodeID, st.key.log, st.key.seg, err)
	}
	st.jreleased = true
	return nil
}

// closeJournal closes the journal files. Called by Close, once no call runs.
func (s *Server) closeJournal() {
	if s.cfg.Journal == nil {
		return
	}
	s.mu.Lock()
	states := slices.Collect(maps.Values(s.segs))
	s.mu.Unlock()
	for _, st := range states {
		st.jmu.Lock()
		if st.jfile != nil {
			_ = st.jfile.Close()
		}
		st.jmu.Unlock()
	}
}
