package quorum

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/errors"
)

func known(blocks ...int64) Answer   { return Answer{Kind: Known, Blocks: blocks, Uploaded: -1} }
func unknown(blocks ...int64) Answer { return Answer{Kind: Unknown, Blocks: blocks, Uploaded: -1} }

var down = Answer{Kind: Unreachable}

// TestRecoveryKeepsEveryAcknowledgedBlock enumerates every way the 3
// replicas can hold blocks 0..3 of a segment whose acknowledged prefix is
// acked blocks (each on at least 2 replicas, as an ack requires), every
// choice of which replica is unreachable or restarted empty, and checks
// that a decision, when one is made, keeps every acknowledged block and
// ends at a contiguous prefix of blocks some replica holds.
func TestRecoveryKeepsEveryAcknowledgedBlock(t *testing.T) {
	const blocks = 4
	// Each block goes to a subset of the 3 replicas: 8 subsets.
	var cases int
	for acked := 0; acked <= blocks; acked++ {
		var placements func(b int, held [3][]int64)
		placements = func(b int, held [3][]int64) {
			if b == blocks {
				for _, fault := range faults() {
					cases++
					checkRecovery(t, acked, held, fault)
				}
				return
			}
			for mask := 0; mask < 8; mask++ {
				if b < acked && popcount(mask) < AckQuorum {
					continue // an acknowledged block is on a quorum
				}
				var next [3][]int64
				for r := range 3 {
					next[r] = append([]int64(nil), held[r]...)
					if mask&(1<<r) != 0 {
						next[r] = append(next[r], int64(b))
					}
				}
				placements(b+1, next)
			}
		}
		placements(0, [3][]int64{})
	}
	if cases == 0 {
		t.Fatal("no case enumerated")
	}
}

// fault says what happened to each replica before recovery: ok, down
// (unreachable) or restarted (its memory lost: it answers Unknown with
// nothing).
type fault [3]string

func faults() []fault {
	var out []fault
	kinds := []string{"ok", "down", "restarted"}
	for _, a := range kinds {
		for _, b := range kinds {
			for _, c := range kinds {
				out = append(out, fault{a, b, c})
			}
		}
	}
	return out
}

func checkRecovery(t *testing.T, acked int, held [3][]int64, f fault) {
	t.Helper()
	answers := make([]Answer, 3)
	lost := 0
	for r := range 3 {
		switch f[r] {
		case "ok":
			answers[r] = known(held[r]...)
		case "down":
			answers[r] = down
		case "restarted":
			answers[r] = unknown()
			lost++
		}
	}
	d, err := DecideRecovery(answers, 0)
	name := fmt.Sprintf("acked=%d held=%v faults=%v", acked, held, f)
	if err != nil {
		if !errors.Is(err, ErrNoQuorum) {
			t.Fatalf("%s: %v", name, err)
		}
		if f.count("ok") >= FenceQuorum {
			t.Fatalf("%s: no decision with %d replicas answering", name, f.count("ok"))
		}
		return
	}
	if d.End < int64(acked) {
		// Only a double loss (both holders restarted) may lose a block,
		// and then DecideRecovery must have refused: reaching here is
		// the bug.
		t.Fatalf("%s: recovered %d blocks, but %d were acknowledged (%d replicas lost memory)", name, d.End, acked, lost)
	}
	for b := range d.End {
		src, ok := d.Sources[b]
		if !ok || !contains(answers[src].Blocks, b) {
			t.Fatalf("%s: block %d has no source holding it (%v)", name, b, d.Sources)
		}
	}
}

func (f fault) count(kind string) int {
	n := 0
	for _, k := range f {
		if k == kind {
			n++
		}
	}
	return n
}

func popcount(m int) int {
	n := 0
	for ; m != 0; m &= m - 1 {
		n++
	}
	return n
}

func contains(s []int64, v int64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestRecoveryRefusesWithoutAFenceQuorum: one answer, or answers from
// replicas that cannot vouch for the segment, are not enough to decide:
// deciding on them could cut acknowledged blocks.
func TestRecoveryRefusesWithoutAFenceQuorum(t *testing.T) {
	for _, answers := range [][]Answer{
		{known(0, 1), down, down},
		{known(0, 1), unknown(), down},
		{unknown(0), unknown(0), known(0)},
		{down, down, down},
	} {
		if _, err := DecideRecovery(answers, 0); !errors.Is(err, ErrNoQuorum) {
			t.Errorf("DecideRecovery(%v) = %v, want ErrNoQuorum", answers, err)
		}
	}
}

// TestRecoveryEndsAtTheFirstGap: a block nobody holds ends the segment,
// even when later blocks exist (they were never acknowledged).
func TestRecoveryEndsAtTheFirstGap(t *testing.T) {
	d, err := DecideRecovery([]Answer{known(0, 1, 3), known(0, 1, 3, 4), down}, 0)
	if err != nil || d.End != 2 {
		t.Fatalf("got %+v, %v; want End 2", d, err)
	}
}

// TestRecoveryStartsAboveStoredBlocks: blocks already in object storage
// need no replica (they were dropped after the upload).
func TestRecoveryStartsAboveStoredBlocks(t *testing.T) {
	d, err := DecideRecovery([]Answer{known(5, 6), known(5), unknown()}, 5)
	if err != nil || d.End != 7 || d.Sources[5] != 0 || d.Sources[6] != 0 {
		t.Fatalf("got %+v, %v; want End 7 with blocks 5 and 6 from replica 0", d, err)
	}
	if d, err := DecideRecovery([]Answer{known(), known(), down}, 3); err != nil || d.End != 3 || len(d.Sources) != 0 {
		t.Fatalf("nothing held above 3 stored blocks: got %+v, %v", d, err)
	}
}

// TestVisibleNeedsAQuorumOrStorage: readers see a block once it is in
// object storage or on 2 replicas, never on 1.
func TestVisibleNeedsAQuorumOrStorage(t *testing.T) {
	for _, tt := range []struct {
		stored int64
		held   [][]int64
		want   int64
	}{
		{0, [][]int64{{0, 1}, {0}, {}}, 1},
		{0, [][]int64{{0, 1}, {0, 1}, {0, 1, 2}}, 2},
		{2, [][]int64{{2}, {}, {2, 3}}, 3},
		{0, [][]int64{{1}, {1}, {1}}, 0},
		{4, nil, 4},
		{0, [][]int64{{0, 0}, {}, {}}, 0}, // one replica listing a block twice is still one copy
	} {
		if got := Visible(tt.stored, tt.held); got != tt.want {
			t.Errorf("Visible(%d, %v) = %d, want %d", tt.stored, tt.held, got, tt.want)
		}
	}
}

// TestLACIsTheAcknowledgedPrefix: the LAC is the highest block below which
// every block is acknowledged, whatever order acks arrive in.
func TestLACIsTheAcknowledgedPrefix(t *testing.T) {
	tr := newLACTracker()
	for _, step := range []struct{ block, want int64 }{{1, -1}, {2, -1}, {0, 2}, {4, 2}, {3, 4}, {3, 4}} {
		if got := tr.acked(step.block); got != step.want {
			t.Fatalf("after ack of %d LAC = %d, want %d", step.block, got, step.want)
		}
	}
}

// TestVisibleCountsAcknowledgedBlocksWhenAReplicaIsSilent: blocks 0..4 were
// acknowledged (a replica heard LAC 4) on the silent replica and one that
// answers; counting holders alone sees only block 0 on a quorum.
func TestVisibleCountsAcknowledgedBlocksWhenAReplicaIsSilent(t *testing.T) {
	held := [][]int64{{0, 1, 2, 3, 4, 5}, {0}}
	if n := Visible(0, held); n != 1 {
		t.Fatalf("Visible: %d, want 1 (only block 0 has two answering holders)", n)
	}
	if n := VisibleWithLAC(0, held, 4); n != 5 {
		t.Fatalf("VisibleWithLAC: %d, want 5", n)
	}
	if n := VisibleWithLAC(3, [][]int64{{3, 4}, {3, 4}}, -1); n != 5 {
		t.Fatalf("without a LAC: %d, want Visible's 5", n)
	}
}

// TestLatestEndIsPastEveryAcknowledgedBlock enumerates, as the recovery
// test does, every way the 3 replicas can hold blocks 0..3 with a prefix
// acknowledged, every LAC the writer may have sent (none up to the last
// acknowledged block), and every choice of replicas down or restarted
// empty: when LatestEnd decides, it ends past every acknowledged block; it
// refuses only when fewer than FenceQuorum replicas vouch; and with every
// replica vouching it skips nothing Visible would show.
func TestLatestEndIsPastEveryAcknowledgedBlock(t *testing.T) {
	const blocks = 4
	var cases int
	for acked := 0; acked <= blocks; acked++ {
		var placements func(b int, held [3][]int64)
		placements = func(b int, held [3][]int64) {
			if b == blocks {
				for _, f := range faults() {
					for lac := int64(-1); lac < int64(acked); lac++ {
						cases++
						checkLatestEnd(t, acked, held, f, lac)
					}
				}
				return
			}
			for mask := 0; mask < 8; mask++ {
				if b < acked && popcount(mask) < AckQuorum {
					continue
				}
				var next [3][]int64
				for r := range 3 {
					next[r] = append([]int64(nil), held[r]...)
					if mask&(1<<r) != 0 {
						next[r] = append(next[r], int64(b))
					}
				}
				placements(b+1, next)
			}
		}
		placements(0, [3][]int64{})
	}
	if cases == 0 {
		t.Fatal("no case enumerated")
	}
}

func checkLatestEnd(t *testing.T, acked int, held [3][]int64, f fault, lac int64) {
	t.Helper()
	answers := make([]Answer, 3)
	for r := range 3 {
		switch f[r] {
		case "ok":
			answers[r] = known(held[r]...)
		case "down":
			answers[r] = down
		case "restarted":
			answers[r] = unknown()
		}
	}
	name := fmt.Sprintf("acked=%d held=%v faults=%v lac=%d", acked, held, f, lac)
	n, err := LatestEnd(0, answers, lac)
	if err != nil {
		if !errors.Is(err, ErrNoQuorum) {
			t.Fatalf("%s: %v", name, err)
		}
		if f.count("ok") >= FenceQuorum {
			t.Fatalf("%s: no answer with %d replicas vouching", name, f.count("ok"))
		}
		return
	}
	if n < int64(acked) {
		t.Fatalf("%s: Latest placed after %d blocks, before acknowledged block %d", name, n, n)
	}
	if f.count("ok") == EnsembleSize {
		if v := VisibleWithLAC(0, held[:], lac); n != v {
			t.Fatalf("%s: every replica answered, yet Latest ends at %d, not at the visible end %d", name, n, v)
		}
	}
}

// TestLatestEndCoversTheLastAcknowledgedBlockWhenAReplicaIsSilent is the
// chaos suite's case (quorum, seed 1206011), one block on: blocks 0..5
// were acknowledged, block 5 by the silent replica and one that answers,
// and the LAC (sent with the next block) covers only 0..4. Visible ends at
// 5, and must: a reader may not read block 5, which no answer shows on a
// quorum. Latest must end past it.
func TestLatestEndCoversTheLastAcknowledgedBlockWhenAReplicaIsSilent(t *testing.T) {
	answers := []Answer{known(0, 1, 2, 3, 4, 5), known(0, 1, 2, 3, 4), down}
	if n := VisibleWithLAC(0, [][]int64{answers[0].Blocks, answers[1].Blocks}, 4); n != 5 {
		t.Fatalf("visible: %d blocks, want 5", n)
	}
	n, err := LatestEnd(0, answers, 4)
	if err != nil {
		t.Fatal(err)
	}
	if n != 6 {
		t.Fatalf("Latest after %d blocks, want 6 (past acknowledged block 5)", n)
	}
	// A replica that restarted cannot vouch for what it lacks: the same.
	answers[2] = unknown()
	if n, err := LatestEnd(0, answers, 4); err != nil || n != 6 {
		t.Fatalf("with a restarted replica: %d, %v; want 6", n, err)
	}
	// Blocks in object storage count as before.
	if n, err := LatestEnd(7, []Answer{known(), known(), down}, -1); err != nil || n != 7 {
		t.Fatalf("all uploaded: %d, %v; want 7", n, err)
	}
}

// TestLatestEndRefusesWithoutAFenceQuorum: with one replica vouching, an
// acknowledged block may be on the other two only; no answer bounds it.
func TestLatestEndRefusesWithoutAFenceQuorum(t *testing.T) {
	for _, answers := range [][]Answer{
		{known(0, 1), down, down},
		{known(0, 1), unknown(0, 1), down},
		{unknown(0), unknown(0), unknown(0)},
	} {
		if _, err := LatestEnd(0, answers, 1); !errors.Is(err, ErrNoQuorum) {
			t.Fatalf("%v: %v, want ErrNoQuorum", answers, err)
		}
	}
}
