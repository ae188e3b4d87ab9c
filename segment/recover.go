package segment

import (
	"context"

	"github.com/cockroachdb/errors"
)

// Recovery seals a segment whose writer is gone or must be stopped. Every
// backend does it in the same steps:
//
//  1. Read the seal record. A sealed segment is done: its seal stands.
//  2. Find the end: what storage shows of the segment's blocks, and whether
//     a fence already ends them.
//  3. Fence, unless a fence is there: a conditional create that no write of
//     an older writer can pass. When the fence's place was taken meanwhile (a
//     block landed in the slot an object store fence was meant for), go back
//     to step 2 from where it stopped, and fence the next gap.
//  4. Read the tail below the fence: the last block and its last entry.
//  5. Write the seal record, create-only. When another recovery sealed the
//     segment first, its seal stands: read it back.
//
// RecoverSegment runs the steps over a backend's Recoverable; the decisions
// between them are the recovery type's, which does no I/O.

// Tail is what recovery knows about the end of a segment's blocks.
type Tail struct {
	// Blocks: blocks 0..Blocks-1 are known to be in storage, contiguous.
	// A backend whose fence is not tied to a block slot (local files) may
	// report 0 and find the end in ReadTail.
	Blocks int64
	// Bytes is the stored size of those blocks.
	Bytes int64
	// Fenced is set when a fence ends the segment: directly after block
	// Blocks-1, for a backend that fences a block slot.
	Fenced bool
}

// Recoverable is a backend's storage of segments, as the recovery
// procedure (RecoverSegment) sees it. Each method is one step's I/O; none
// decides what to do next. Implementations are safe for concurrent use, also
// by concurrent recoveries of the same segment in other processes.
type Recoverable interface {
	// ReadSeal returns the segment's seal record; ok is false when the
	// segment has none.
	ReadSeal(ctx context.Context, ref Ref) (info SealInfo, ok bool, err error)
	// FindEnd reports the segment's end as storage shows it now, without
	// changing anything. from is what an earlier call found (the zero Tail
	// at first): FindEnd looks only beyond it, so that going back to FindEnd
	// after a taken fence costs no more than reading what is new. The
	// result is never shorter than from.
	FindEnd(ctx context.Context, ref Ref, from Tail) (Tail, error)
	// Fence makes every later write of a writer older than epoch to the
	// segment fail, where at ends it: at.Blocks is the slot to fence, for a
	// backend that fences slots. held is false when the place was taken
	// before the fence got there (a block landed in the slot); then nothing
	// was fenced and FindEnd will show what is there.
	Fence(ctx context.Context, ref Ref, epoch int64, at Tail) (held bool, err error)
	// ReadTail reads the end of the fenced segment and returns the seal it
	// gets. at is where FindEnd and Fence left it (at.Fenced is set); for a
	// backend that fences slots, the segment ends at at.Blocks. It reads
	// the last block, not all of them, where the backend can. It may repair
	// the tail (cut a torn block) and make it durable; it never removes a
	// whole valid block.
	ReadTail(ctx context.Context, ref Ref, at Tail) (SealInfo, error)
	// WriteSeal stores record as the segment's seal record, create-only.
	// created is false when the segment already had a seal record, which is
	// left as it is.
	WriteSeal(ctx context.Context, ref Ref, record []byte) (created bool, err error)
}

// RecoverSegment seals segment ref of storage s for a writer of epoch
// epoch, fencing every older writer first, and returns the seal. It is
// idempotent: a segment sealed already returns its existing seal, and of
// two concurrent recoveries the first seal written stands for both.
func RecoverSegment(ctx context.Context, s Recoverable, ref Ref, epoch int64) (SealInfo, error) {
	r := newRecovery(ref)
	for {
		switch r.step {
		case stepReadSeal, stepReadWinner:
			info, ok, err := s.ReadSeal(ctx, ref)
			r.sealRead(info, ok, err)
		case stepFindEnd:
			tail, err := s.FindEnd(ctx, ref, r.tail)
			r.endFound(tail, err)
		case stepFence:
			held, err := s.Fence(ctx, ref, epoch, r.tail)
			r.fenced(held, err)
		case stepReadTail:
			info, err := s.ReadTail(ctx, ref, r.tail)
			r.tailRead(info, err)
		case stepWriteSeal:
			rec, err := EncodeSealInfo(ref.LogID, ref.SegmentID, epoch, r.info)
			if err != nil {
				return SealInfo{}, err
			}
			created, err := s.WriteSeal(ctx, ref, rec)
			r.sealWritten(created, err)
		case stepDone:
			return r.info, r.err
		}
	}
}

// recoveryStep is the step a recovery takes next.
type recoveryStep int

const (
	stepReadSeal   recoveryStep = iota // is the segment sealed already?
	stepFindEnd                        // where do its blocks end?
	stepFence                          // fence where they end
	stepReadTail                       // read the last block below the fence
	stepWriteSeal                      // write the seal, create-only
	stepReadWinner                     // read the seal a concurrent recovery wrote first
	stepDone                           // info or err is the result
)

func (s recoveryStep) String() string {
	switch s {
	case stepReadSeal:
		return "read seal"
	case stepFindEnd:
		return "find end"
	case stepFence:
		return "fence"
	case stepReadTail:
		return "read tail"
	case stepWriteSeal:
		return "write seal"
	case stepReadWinner:
		return "read the winning seal"
	case stepDone:
		return "done"
	default:
		return "step(?)"
	}
}

// recovery holds the decisions of the recovery procedure: given what a
// step's I/O returned, which step comes next. It does no I/O; RecoverSegment
// calls the step named by step, then reports its outcome to the matching
// method.
type recovery struct {
	ref  Ref
	step recoveryStep
	tail Tail     // the end found so far
	info SealInfo // the seal to write, then the result
	err  error    // the result, once step is stepDone
	// taken is set when the last fence found its place taken: the next
	// FindEnd must show what took it.
	taken bool
}

func newRecovery(ref Ref) *recovery {
	return &recovery{ref: ref, step: stepReadSeal}
}

func (r *recovery) fail(err error) {
	r.err = errors.Wrapf(err, "recover segment %d of log %d: %s", r.ref.SegmentID, r.ref.LogID, r.step)
	r.info = SealInfo{}
	r.step = stepDone
}

func (r *recovery) done(info SealInfo) {
	r.info, r.err, r.step = info, nil, stepDone
}

// sealRead takes the outcome of stepReadSeal or stepReadWinner.
func (r *recovery) sealRead(info SealInfo, ok bool, err error) {
	switch {
	case err != nil:
		r.fail(err)
	case ok:
		r.done(info)
	case r.step == stepReadWinner:
		// WriteSeal found a seal that is gone now: only deleting a sealed
		// segment removes seals, and nothing recovers a deleted segment.
		r.fail(errors.New("the seal record that won the create-only write is gone"))
	default:
		r.step = stepFindEnd
	}
}

// endFound takes the outcome of stepFindEnd.
func (r *recovery) endFound(tail Tail, err error) {
	switch {
	case err != nil:
		r.fail(err)
		return
	case tail.Blocks < r.tail.Blocks:
		r.fail(errors.AssertionFailedf("the segment's end went back from %d blocks to %d", r.tail.Blocks, tail.Blocks))
		return
	case r.taken && !tail.Fenced && tail.Blocks == r.tail.Blocks:
		// The fence's place was taken, yet nothing is there: a loop of
		// fencing and finding would never end.
		r.fail(errors.Newf("slot %d was taken when fenced, but storage shows neither a block nor a fence there", tail.Blocks))
		return
	}
	r.tail, r.taken = tail, false
	if tail.Fenced {
		r.step = stepReadTail
	} else {
		r.step = stepFence
	}
}

// fenced takes the outcome of stepFence.
func (r *recovery) fenced(held bool, err error) {
	switch {
	case err != nil:
		r.fail(err)
	case held:
		r.tail.Fenced = true
		r.step = stepReadTail
	default:
		// A block landed where the fence was to go: it belongs to the
		// segment. Look further and fence the next gap.
		r.taken = true
		r.step = stepFindEnd
	}
}

// tailRead takes the outcome of stepReadTail.
func (r *recovery) tailRead(info SealInfo, err error) {
	if err != nil {
		r.fail(err)
		return
	}
	r.info = info
	r.step = stepWriteSeal
}

// sealWritten takes the outcome of stepWriteSeal.
func (r *recovery) sealWritten(created bool, err error) {
	switch {
	case err != nil:
		r.fail(err)
	case created:
		r.done(r.info)
	default:
		// A concurrent recovery sealed the segment first; its seal
		// stands.
		r.step = stepReadWinner
	}
}
