package woodpecker

import (
	"sync"

	"github.com/woodpecker-wal/woodpecker/segment"
)

// tailHub tells readers in this process when a writer in this process made
// more of a log durable, so tail readers wake at once instead of polling.
type tailHub struct {
	mu   sync.Mutex
	logs map[int64]*tailState
}

type tailState struct {
	durable EntryID
	known   bool
	changed chan struct{}
}

func newTailHub() *tailHub { return &tailHub{logs: make(map[int64]*tailState)} }

func (h *tailHub) stateLocked(logID int64) *tailState {
	st := h.logs[logID]
	if st == nil {
		st = &tailState{changed: make(chan struct{})}
		h.logs[logID] = st
	}
	return st
}

// watch returns a channel closed at the log's next change, and the durable
// position a writer of this process reported last (ok false if none).
func (h *tailHub) watch(logID int64) (changed <-chan struct{}, durable EntryID, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.stateLocked(logID)
	return st.changed, st.durable, st.known
}

func (h *tailHub) notify(logID int64, durable *EntryID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.stateLocked(logID)
	if durable != nil {
		st.durable, st.known = *durable, true
	}
	close(st.changed)
	st.changed = make(chan struct{})
}

// observer adapts the hub to one writer.
type hubObserver struct {
	hub   *tailHub
	logID int64
}

var _ segment.Observer = hubObserver{}

func (o hubObserver) Durable(segID, entry int64) {
	o.hub.notify(o.logID, &EntryID{Segment: segID, Entry: entry})
}

func (o hubObserver) Sealed(segID int64, info segment.SealInfo) { o.hub.notify(o.logID, nil) }
