//go:build linux

package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/shared"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// sharedHealthyLogs is how many logs the process of
// TestZombieSharesObjects writes beside its zombie log.
const sharedHealthyLogs = 4

// TestZombieSharesObjects runs, in a child process with shared objects
// (writer.batchWindow 5 ms), writers of 4 healthy logs and of log z, whose
// blocks go into the same objects and commits. This process then opens z at
// the next epoch: the child's writer of z is a zombie whose blocks still
// ride in objects with the healthy logs' blocks.
//
// "paused": the child is stopped (SIGSTOP) while the new writer fences z
// and appends, and then continued, so its objects in flight are committed
// after the fence. "running": the fence lands while the child writes.
//
// Then the zombie must learn it is fenced (every failure of its appends
// satisfies ErrFenced or ErrUnknownOutcome); z must hold every append the
// zombie was told succeeded, none it was told failed definitely, the
// zombie's entries before the new writer's, and the new writer's; the
// healthy logs must have no failed append, keep being written after the
// fence (each gets 50 more acknowledgements), and after the child is
// killed with SIGKILL hold every acknowledged entry exactly once, in
// order (the checks of TestCrash). The objects in the bucket must show, in
// one round at least, that the scenario happened: an object that holds a
// block of z that z does not include (the zombie's) and blocks the healthy
// logs include (segments of 64 blocks, so that the zombie mostly learns of
// the fence from such a commit rather than from a roll).
func TestZombieSharesObjects(t *testing.T) {
	rounds := 2
	if soak() {
		rounds = 20
	}
	mixed := 0
	for _, pause := range []bool{true, false} {
		name := "running"
		if pause {
			name = "paused"
		}
		t.Run(name, func(t *testing.T) {
			for round := range rounds {
				mixed += runZombieShared(t, pause, round)
			}
		})
	}
	if mixed == 0 && !t.Failed() {
		t.Fatalf("in %d rounds no object held a block of the zombie beside blocks of healthy logs: the test exercised too little", 2*rounds)
	}
}

// runZombieShared runs one round of TestZombieSharesObjects and returns
// how many objects held a zombie block beside committed healthy blocks.
func runZombieShared(t *testing.T, pause bool, round int) int {
	s := newSite(t, kindShared)
	c := s.client(t, crashTweak)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	z := sharedHealthyLogs // index of the zombie's log
	// Segments long enough that the zombie mostly learns of the fence
	// from a commit of an object it shares, rather than from a roll.
	spec := crashSpec{Site: *s, Epoch: 1, Depth: 128, RollMaxBlocks: 64}
	logs := make([]*woodpecker.Log, sharedHealthyLogs+1)
	for i := range logs {
		name, tag := fmt.Sprintf("h-%d", i), crashTag(1, i)
		if i == z {
			name, tag = "z", "A"
		}
		logs[i] = createLog(t, c, name)
		spec.Logs = append(spec.Logs, name)
		spec.Tags = append(spec.Tags, tag)
		spec.Records = append(spec.Records, filepath.Join(dir, "acked-"+name))
		spec.Fails = append(spec.Fails, filepath.Join(dir, "failed-"+name))
	}
	child := startCrashChild(t, spec)
	child.waitReady(t, "zombie child")
	acked := func(i int) int {
		r, err := readRecords(spec.Records[i], spec.Tags[i])
		if err != nil {
			t.Fatal(err)
		}
		return len(r)
	}
	// waitAcked waits until log i has at least n acknowledged appends.
	waitAcked := func(i, n int, what string) {
		deadline := time.Now().Add(2 * time.Minute)
		for acked(i) < n {
			if time.Now().After(deadline) {
				child.fail(t, fmt.Sprintf("%s: log %s has %d acknowledged appends, want %d", what, spec.Logs[i], acked(i), n))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for i := range logs {
		waitAcked(i, 50, "before the fence")
	}

	if pause {
		if err := child.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	b, err := logs[z].OpenWriter(ctx, 2)
	if err != nil {
		t.Fatalf("open writer B of z at epoch 2: %v", err)
	}
	o := newOutcomes()
	for seq := range int64(20) {
		id, err := b.Append(ctx, makePayload("B", seq))
		if err != nil {
			t.Fatalf("B append %d: %v", seq, err)
		}
		o.record(appendKey{"B", seq}, id, nil)
	}
	if pause {
		if err := child.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}

	// The zombie learns it is fenced; the healthy logs go on.
	var zFailures []failure
	deadline := time.Now().Add(2 * time.Minute)
	for {
		f, complete, err := readFailures(spec.Fails[z])
		if err != nil {
			t.Fatal(err)
		}
		if complete {
			zFailures = f
			break
		}
		if time.Now().After(deadline) {
			child.fail(t, "the zombie writer of z never learned it was fenced")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := range sharedHealthyLogs {
		waitAcked(i, acked(i)+50, "after the fence")
	}
	child.kill(t, "zombie child")

	if len(zFailures) == 0 {
		t.Fatal("the zombie writer of z ended without a failed append")
	}
	for _, f := range zFailures {
		switch f.Class {
		case "f":
			o.definite[appendKey{"A", f.Seq}] = errors.New(f.Err)
		case "u", "uf":
			o.unknown[appendKey{"A", f.Seq}] = errors.New(f.Err)
		default:
			t.Fatalf("the zombie's append %d failed with %q; want ErrFenced or ErrUnknownOutcome", f.Seq, f.Err)
		}
	}
	zAcked, err := readRecords(spec.Records[z], "A")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range zAcked {
		o.record(r.Key, r.ID, nil)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	zWhole := readWhole(t, logs[z])
	checkZombieLog(t, zWhole, o)

	healthyAcked := 0
	for i := range sharedHealthyLogs {
		f, _, err := readFailures(spec.Fails[i])
		if err != nil {
			t.Fatal(err)
		}
		if len(f) > 0 {
			t.Fatalf("healthy log %s: append %d failed: %s", spec.Logs[i], f[0].Seq, f[0].Err)
		}
		records, err := readRecords(spec.Records[i], spec.Tags[i])
		if err != nil {
			t.Fatal(err)
		}
		w, err := logs[i].OpenWriter(ctx, 2)
		if err != nil {
			t.Fatalf("healthy log %s: open writer after the kill: %v", spec.Logs[i], err)
		}
		if _, err := w.Append(ctx, makePayload("final", 0)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		checkCrashLog(t, &crashLog{name: spec.Logs[i], records: records}, i, readWhole(t, logs[i]))
		healthyAcked += len(records)
	}

	mixed := mixedObjects(ctx, t, s, logs[z], logs[:sharedHealthyLogs])
	fromA := 0
	for _, e := range zWhole {
		if e.Tag == "A" {
			fromA++
		}
	}
	t.Logf("round %d: zombie: %d acked, %d unknown outcome, %d definitely failed; %d of its entries in z, then %d of B; "+
		"healthy logs: %d acked; %d objects hold a zombie block beside healthy logs' blocks",
		round, len(zAcked), len(o.unknown), len(o.definite), fromA, len(zWhole)-fromA,
		healthyAcked, mixed)
	return mixed
}

// mixedObjects returns how many shared objects in the site's bucket hold a
// block of log z that z does not include (its seal records do not name it)
// beside blocks that the healthy logs include. Every segment must be
// sealed.
func mixedObjects(ctx context.Context, t *testing.T, s *site, z *woodpecker.Log, healthy []*woodpecker.Log) int {
	t.Helper()
	store := s.store(t)
	type at struct {
		object string
		offset int64
	}
	included := func(l *woodpecker.Log) map[at]bool {
		st, err := l.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[at]bool{}
		for _, sg := range st.Segments {
			data, err := store.Get(ctx, segment.SegmentPrefix("", l.ID(), sg.ID)+shared.SealName)
			if errors.Is(err, objstore.ErrNotFound) {
				continue // not a shared segment, or empty
			}
			if err != nil {
				t.Fatal(err)
			}
			seal, err := shared.DecodeSeal(data)
			if err != nil {
				t.Fatalf("log %s segment %d: %v", l.Name(), sg.ID, err)
			}
			for _, e := range seal.Extents {
				out[at{e.Object, e.Offset}] = true
			}
		}
		return out
	}
	inZ := included(z)
	inHealthy := map[at]bool{}
	healthyIDs := map[int64]bool{}
	for _, l := range healthy {
		for k := range included(l) {
			inHealthy[k] = true
		}
		healthyIDs[l.ID()] = true
	}
	mixed := 0
	after := ""
	for {
		page, err := store.List(ctx, "shared/", after, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range page.Objects {
			after = obj.Key
			data, err := store.Get(ctx, obj.Key)
			if err != nil {
				t.Fatal(err)
			}
			size := int64(len(data))
			indexAt, indexLen, err := shared.DecodeTrailer(data[size-shared.TrailerSize:], size)
			if err != nil {
				t.Fatalf("object %s: %v", obj.Key, err)
			}
			exts, err := shared.DecodeIndex(obj.Key, data[indexAt:indexAt+indexLen], indexAt)
			if err != nil {
				t.Fatalf("object %s: %v", obj.Key, err)
			}
			var zombie, healthyIn bool
			for _, e := range exts {
				k := at{obj.Key, e.Offset}
				switch {
				case e.LogID == z.ID() && !inZ[k]:
					zombie = true
				case healthyIDs[e.LogID] && inHealthy[k]:
					healthyIn = true
				}
			}
			if zombie && healthyIn {
				mixed++
			}
		}
		if !page.More {
			break
		}
	}
	if !strings.HasPrefix(after, "shared/") {
		t.Fatalf("no shared object in the bucket (last key %q)", after)
	}
	return mixed
}
