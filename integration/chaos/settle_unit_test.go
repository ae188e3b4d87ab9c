package chaos

import (
	"testing"
	"time"
)

// TestRecoveryCountsWritersInTheOrderTheyBecameActive: a spare writer is
// started long before it is told to write, so a repair writer taken from
// the spares can have a lower process id than the writer a fault started.
// Its acknowledgements show that the log writes again: counting writers
// by process id ignored them, and the runner declared a log that kept
// acknowledging writes wedged (seed 2294817801392090336 under load:
// same-epoch log0, the repair was spare p12, the fault's writer p13).
func TestRecoveryCountsWritersInTheOrderTheyBecameActive(t *testing.T) {
	c := &cluster{procs: map[int]*proc{}}
	r := &runner{c: c, logs: []string{"log0"}}
	healed := time.Now()
	add := func(id int, active int64, ack time.Time) {
		c.procs[id] = &proc{c: c, id: id, role: roleWriter, log: "log0", active: active, lastAck: ack}
	}
	add(5, 1, healed.Add(time.Second))    // the writer before the fault: a zombie now
	add(13, 2, time.Time{})               // the fault's new writer, fenced by the repair
	add(12, 3, healed.Add(2*time.Second)) // the repair, a spare started before p13
	add(14, 0, time.Time{})               // a spare not told to write
	need := c.procs[13].activeSince()
	at, ok := r.ackedSince(0, healed, need)
	if !ok || !at.Equal(healed.Add(2*time.Second)) {
		t.Fatalf("acknowledged since the fault: %v %v, want the repair's at +2s", at, ok)
	}
	delete(c.procs, 12)
	if at, ok := r.ackedSince(0, healed, need); ok {
		t.Fatalf("the zombie's acknowledgement at %v counted as recovery", at)
	}
}
