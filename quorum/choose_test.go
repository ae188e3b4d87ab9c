package quorum

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func ids(nodes []Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.ID
	}
	slices.Sort(out)
	return out
}

func nodes(idList ...string) []Node {
	out := make([]Node, len(idList))
	for i, id := range idList {
		out[i] = Node{ID: id, Addr: id + ":1"}
	}
	return out
}

// The placement avoids a node that failed a block while enough others are
// registered, uses it when not, and fills the ensemble with nodes that left
// the registry when fewer than 3 are registered; a roll helps only when
// enough nodes that did not fail are registered.
func TestPlacementAvoidsFailedNodesOnlyWhenOthersCanTakeTheirPlace(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name       string
		known      []Node // registered at an earlier placement
		registered []Node
		suspects   []string
		want       []string
		rollHelps  bool
	}{
		{name: "four nodes, one failed", registered: nodes("a", "b", "c", "d"), suspects: []string{"c"},
			want: []string{"a", "b", "d"}, rollHelps: true},
		{name: "three nodes, one failed", registered: nodes("a", "b", "c"), suspects: []string{"c"},
			want: []string{"a", "b", "c"}, rollHelps: false},
		{name: "one of three gone", known: nodes("a", "b", "c"), registered: nodes("a", "b"), suspects: []string{"c"},
			want: []string{"a", "b", "c"}, rollHelps: false},
		{name: "a new node replaces the gone one", known: nodes("a", "b", "c"), registered: nodes("a", "b", "d"), suspects: []string{"c"},
			want: []string{"a", "b", "d"}, rollHelps: true},
		{name: "no failure", registered: nodes("a", "b", "c"), want: []string{"a", "b", "c"}, rollHelps: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := New(Config{})
			b.mu.Lock()
			if tc.known != nil {
				b.chooseLocked(tc.known, now)
			}
			for _, id := range tc.suspects {
				b.suspects[id] = now
			}
			got := b.chooseLocked(tc.registered, now)
			b.mu.Unlock()
			if !slices.Equal(ids(got), tc.want) {
				t.Fatalf("ensemble %v, want %v", ids(got), tc.want)
			}
			if got := b.rollHelps(); got != tc.rollHelps {
				t.Fatalf("rollHelps %t, want %t", got, tc.rollHelps)
			}
		})
	}
	// An answer from the node, a refusal included, clears it; a node that
	// does not answer is suspect again.
	b := New(Config{})
	b.mu.Lock()
	b.chooseLocked(nodes("a", "b", "c"), now)
	b.mu.Unlock()
	for _, tc := range []struct {
		err       error
		rollHelps bool
	}{
		{status.Error(codes.Unavailable, "down"), false},
		{status.Error(codes.DataLoss, "segment_lost"), true},
		{status.Error(codes.DeadlineExceeded, "slow"), false},
		{status.Error(codes.Canceled, "the writer's own"), false},
		{nil, true},
		{status.Error(codes.ResourceExhausted, "full"), false},
		{status.Error(codes.FailedPrecondition, "fenced"), true},
	} {
		b.heard("c", tc.err)
		if got := b.rollHelps(); got != tc.rollHelps {
			t.Fatalf("after %v: rollHelps %t, want %t", tc.err, got, tc.rollHelps)
		}
	}

	// A failure is forgotten after suspectFor.
	b = New(Config{})
	b.suspects["c"] = now.Add(-suspectFor)
	b.mu.Lock()
	got := b.chooseLocked(nodes("a", "b", "c", "d"), now)
	b.mu.Unlock()
	if !slices.Contains(ids(got), "c") || !b.rollHelps() {
		t.Fatalf("a failure older than %s still avoided: ensemble %v", suspectFor, ids(got))
	}
}
