package quorum

import (
	"testing"

	"github.com/woodpecker-wal/woodpecker/quorum/quorumpb"
)

func TestReadableCountsBlocksOnAQuorumOrCoveredByLACOrWatermark(t *testing.T) {
	ev := func(lac, uploaded int64, held ...int64) *quorumpb.WatchEvent {
		return &quorumpb.WatchEvent{Lac: lac, Uploaded: uploaded, Held: held}
	}
	tests := []struct {
		name   string
		states []*quorumpb.WatchEvent
		want   int64
	}{
		{"nothing heard", []*quorumpb.WatchEvent{nil, nil, nil}, 0},
		{"empty segment", []*quorumpb.WatchEvent{ev(-1, -1), ev(-1, -1), ev(-1, -1)}, 0},
		{"one replica holds a block", []*quorumpb.WatchEvent{ev(-1, -1, 0, 0), ev(-1, -1), nil}, 0},
		{"two replicas hold it", []*quorumpb.WatchEvent{ev(-1, -1, 0, 0), ev(-1, -1, 0, 0), nil}, 1},
		{"runs of different lengths", []*quorumpb.WatchEvent{ev(-1, -1, 0, 9), ev(-1, -1, 0, 4), ev(-1, -1, 0, 6)}, 7},
		{"a block missing on one of two", []*quorumpb.WatchEvent{ev(-1, -1, 0, 9), ev(-1, -1, 0, 4, 6, 9), nil}, 5},
		{"a block missing on one of three", []*quorumpb.WatchEvent{ev(-1, -1, 0, 9), ev(-1, -1, 0, 4, 6, 9), ev(-1, -1, 5, 7)}, 10},
		{"the LAC covers what one replica holds", []*quorumpb.WatchEvent{ev(7, -1, 0, 8), nil, nil}, 8},
		{"the watermark covers dropped blocks", []*quorumpb.WatchEvent{ev(3, 5, 6, 8), ev(3, 5, 6, 7), ev(-1, -1)}, 8},
		{"a later block on a quorum before an earlier one", []*quorumpb.WatchEvent{ev(1, -1, 0, 1, 3, 3), ev(1, -1, 0, 1, 3, 3), ev(-1, -1, 0, 2)}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := readable(tt.states); got != tt.want {
				t.Fatalf("readable = %d, want %d", got, tt.want)
			}
		})
	}
}
