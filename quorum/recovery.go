// Package quorum is QuorumBuffer: a segment backend whose blocks are
// acknowledged once 2 of the 3 LogStore replicas of the segment's ensemble
// hold them, and which the replicas then upload to object storage. The
// protocol is in docs/quorum.md. The bookkeeping (who holds what, the
// last-add-confirmed, where a recovered segment ends) is pure logic in
// this package; the gRPC transport and the server (quorum/logstore) are
// thin drivers around it.
package quorum

import (
	"slices"

	"github.com/cockroachdb/errors"
)

// Ensemble and quorum sizes. Every ack quorum (2 of 3) intersects every
// fence quorum (2 of 3): that intersection is what makes recovery keep
// every acknowledged block.
const (
	EnsembleSize = 3
	AckQuorum    = 2
	// FenceQuorum is how many replicas recovery must fence and hear from:
	// EnsembleSize - AckQuorum + 1, the fewest that meet every ack quorum.
	FenceQuorum = EnsembleSize - AckQuorum + 1
)

// ErrNoQuorum: too few replicas answered (or could vouch for what they
// hold) to decide safely. Nothing was changed; retry when more replicas are
// reachable.
var ErrNoQuorum = errors.New("too few replicas answered to decide safely")

// AnswerKind is what recovery heard from one replica.
type AnswerKind int

const (
	// Unreachable: no answer (down, partitioned, timed out).
	Unreachable AnswerKind = iota
	// Known: the replica answered, is fenced, and vouches for the blocks
	// it lists.
	Known
	// Unknown: the replica answered but cannot vouch for the segment: it
	// restarted after the segment was created and holds nothing of it.
	Unknown
)

// Answer is one replica's answer to a recovery fence.
type Answer struct {
	Kind AnswerKind
	// Blocks are the block numbers the replica holds (any order).
	Blocks []int64
	// Uploaded is the upload watermark it heard of (-1: none).
	Uploaded int64
}

// Decision is where a recovered segment ends and where each block that
// object storage lacks comes from.
type Decision struct {
	// End is the number of blocks of the recovered segment: blocks
	// 0..End-1 survive, nothing above.
	End int64
	// Sources gives, for each block in [stored, End), the index of an
	// answer holding it.
	Sources map[int64]int
}

// DecideRecovery decides where a segment ends after its writer is gone.
// answers are the replicas' answers to the fence, stored is the number of
// blocks object storage already holds (0..stored-1, contiguous).
//
// It needs at least FenceQuorum Known answers; otherwise ErrNoQuorum. An
// acknowledged block was held by AckQuorum replicas, one of which is among
// any FenceQuorum answers, or it is in object storage. So every
// acknowledged block is found, and the first block found nowhere was never
// acknowledged, nor was anything after it (acknowledgements are in
// order): the segment ends there.
func DecideRecovery(answers []Answer, stored int64) (Decision, error) {
	known := 0
	for _, a := range answers {
		if a.Kind == Known {
			known++
		}
	}
	if known < FenceQuorum {
		return Decision{}, errors.Wrapf(ErrNoQuorum, "%d of %d replicas vouch for the segment, recovery needs %d",
			known, len(answers), FenceQuorum)
	}
	holders := map[int64]int{}
	for i, a := range answers {
		// An Unknown replica's blocks are still real copies: it may hold
		// blocks it received after its restart. Using them to extend the
		// segment is safe (they were sent by the writer in order, so the
		// blocks before them exist somewhere or the gap ends the segment
		// first), but only Known answers count toward the quorum above.
		if a.Kind == Unreachable {
			continue
		}
		for _, b := range a.Blocks {
			if _, ok := holders[b]; !ok && b >= stored {
				holders[b] = i
			}
		}
	}
	d := Decision{End: stored, Sources: map[int64]int{}}
	for {
		i, ok := holders[d.End]
		if !ok {
			return d, nil
		}
		d.Sources[d.End] = i
		d.End++
	}
}

// Visible returns how many blocks of a segment readers may see: blocks
// 0..n-1 each in object storage (the first stored) or held by AckQuorum
// replicas, which every recovery keeps. held lists, per replica, the
// blocks it holds.
func Visible(stored int64, held [][]int64) int64 { return VisibleWithLAC(stored, held, -1) }

// HeldBy lists the blocks each answering replica holds.
func HeldBy(answers []Answer) [][]int64 {
	var held [][]int64
	for _, a := range answers {
		if a.Kind != Unreachable {
			held = append(held, a.Blocks)
		}
	}
	return held
}

// LatestEnd returns a number of blocks n of an open segment such that
// every block its writer acknowledged is below n: where a reader opened at
// Latest starts. answers are the replicas' answers to a status query
// (Known only when the replica vouches for the segment), stored is the
// number of blocks object storage held when listed after the answers came,
// and lac is the highest last-add-confirmed an answer reported.
//
// It differs from VisibleWithLAC, which is what a reader may read: a block
// held by one answering replica while another is silent (or restarted, so
// cannot vouch for what it lacks) may be on a quorum with the silent one,
// and acknowledged. It is then below LatestEnd but not visible: LatestEnd
// is past every block a vouching replica holds. That may skip blocks never
// acknowledged (their appends had not completed when the reader opened, so
// a Latest reader may skip them), never an acknowledged one: it sits on
// AckQuorum replicas, and when FenceQuorum replicas vouch, one of them
// holds it (or it was uploaded, then dropped, and stored counts it). With
// fewer vouching replicas no answer bounds the acknowledged blocks:
// ErrNoQuorum, to retry when more replicas answer.
func LatestEnd(stored int64, answers []Answer, lac int64) (int64, error) {
	known, last := 0, int64(-1)
	for _, a := range answers {
		if a.Kind == Known {
			known++
			for _, b := range a.Blocks {
				last = max(last, b)
			}
		}
	}
	n := VisibleWithLAC(stored, HeldBy(answers), lac)
	switch {
	case known == EnsembleSize:
		// Every replica vouches: an acknowledged block is held by
		// AckQuorum of them, so Visible counts it.
		return n, nil
	case known >= FenceQuorum:
		return max(n, last+1), nil
	default:
		return 0, errors.Wrapf(ErrNoQuorum, "%d of %d replicas vouch for the segment, placing Latest needs %d",
			known, EnsembleSize, FenceQuorum)
	}
}

// VisibleWithLAC is Visible through at least lac, the highest
// last-add-confirmed a replica reported, and on past it over blocks held
// by AckQuorum replicas: the writer acknowledged blocks 0..lac, so a
// quorum holds each (or object storage does), whichever replica is
// silent. Without it, a silent replica that holds a block with
// one answering replica made the block look unacknowledged, and a reader
// opened at Latest started before entries acknowledged before it opened
// (the chaos suite, seed 1206011).
func VisibleWithLAC(stored int64, held [][]int64, lac int64) int64 {
	count := map[int64]int{}
	for _, blocks := range held {
		for _, b := range slices.Compact(slices.Sorted(slices.Values(blocks))) {
			count[b]++
		}
	}
	n := stored
	for n <= lac || count[n] >= AckQuorum {
		n++
	}
	return n
}
