//go:build unix

package gc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/woodpecker-wal/woodpecker/internal/meta"
	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/segment"
	"github.com/woodpecker-wal/woodpecker/shared"
	"github.com/woodpecker-wal/woodpecker/woodpecker/internal/gc"
)

// childSpec tells a child process what to collect and when to die.
type childSpec struct {
	Etcd   []string
	S3     testenv.S3
	Bucket string
	Root   string
	// Die before the first step of kind KillPoint or before step KillAt,
	// whichever comes first.
	KillAt    int
	KillPoint gc.Point
	Offset    time.Duration
	Identity  string
	// Shared: the backend knows shared objects (issue 14).
	Shared bool
}

const childEnv = "WOODPECKER_GC_TEST_CHILD"

// TestGCChild is the garbage-collection process TestGCKilledAtRandomPoints
// kills: it runs passes and SIGKILLs itself before its KillAt-th step.
func TestGCChild(t *testing.T) {
	raw := os.Getenv(childEnv)
	if raw == "" {
		t.Skip("runs only as the child process of TestGCKilledAtRandomPoints")
	}
	var spec childSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: spec.Etcd, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	store := openStore(t, spec.S3, spec.Bucket)
	e := &env{meta: meta.New(cli, spec.Root), backend: segment.NewObjectBackend(store, "", 4)}
	if spec.Shared {
		e.shared = e.sharedBackend()
	}
	e.clock.Set(spec.Offset)
	steps := 0
	col := e.collector(t, func(c *gc.Config) {
		killConfig(c)
		c.Identity = spec.Identity
		c.Hook = func(p gc.Point) error {
			if steps++; steps == spec.KillAt || p == spec.KillPoint {
				fmt.Fprintf(os.Stderr, "killed before %s\n", p)
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {} // die here, mid-pass
			}
			return nil
		}
	})
	// Every pass takes at least one step, so this ends in the kill.
	for range spec.KillAt {
		if _, err := col.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("the child was not killed")
}

// 2. Kill the GC process at random points (at least 10 times) and rerun: it
// converges, with no orphaned object and no metadata pointing at a missing
// object. Real processes are killed with SIGKILL at a random step; then
// passes in this process fail at every step in turn (fault injection),
// then run to the end.
func TestGCKilledAtRandomPoints(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("child process")
	}
	e := newEnv(t, nil)
	w, cut, foreign := killSetup(t, e)
	killAndConverge(t, e, w, cut, foreign, 12)
}

// TestSharedGCKilledAtRandomPoints is the same with logs written together
// into shared objects (issue 14): compaction copies them out, the sweep
// deletes the shared objects; killed at random steps, it converges with no
// orphan, no dangling reference and no lost entry.
func TestSharedGCKilledAtRandomPoints(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("child process")
	}
	e := newEnv(t, func(c *options.Config) { c.Writer.BatchWindow = 2 * time.Millisecond })
	e.shared = e.sharedBackend()
	logs := e.writeTogether(t, []string{"wal", "gone", "kept"}, 60)
	ctx := context.Background()
	if err := e.client.DeleteLog(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	w, cut := logs[0], 30
	if err := w.log.Truncate(ctx, w.ids[cut]); err != nil {
		t.Fatal(err)
	}
	e.put(t, shared.ObjectKey("", "0000000000000000-junk-1"), []byte("never committed"))
	foreign := "elsewhere/notes.txt"
	e.put(t, foreign, []byte("not ours"))
	killAndConverge(t, e, w, cut, foreign, 10)
	readBack(t, logs[2], 0)
	if keys := e.sharedKeys(t); len(keys) > 0 {
		t.Fatalf("shared objects left: %v", keys)
	}
}

// killAndConverge kills collector processes at random steps (rounds
// times), then fails in-process passes at every step in turn, then runs
// passes to the end: no metadata ever points at a missing object, and at
// the end nothing is left that metadata does not need and w reads back
// from cut on, every segment compacted.
func killAndConverge(t *testing.T, e *env, w written, cut int, foreign string, rounds int) {
	t.Helper()
	e.clock.Set(3 * time.Hour) // past the TTL and the orphans' grace period
	spec := childSpec{Etcd: testenv.EtcdEndpoints(t), S3: e.s3, Bucket: e.bucket, Root: e.root,
		Offset: e.clock.Offset(), Identity: "gc-under-test", Shared: e.shared != nil}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 6))
	kills := 0
	points := []gc.Point{gc.PointMark, gc.PointDeleteObject, gc.PointRemoveMeta, gc.PointDeleteOrphan,
		gc.PointDeleteRetired, gc.PointFinishRetire, gc.PointCompactWrite, gc.PointCompactCommit,
		gc.PointDeleteLogData, gc.PointCollectedLog, gc.PointUpdateState,
		gc.PointDeleteShared, gc.PointRemoveSharedRecord}
	for round := 0; round < rounds; round++ {
		// Die at a random step within the next 30, or at the first step of
		// a random kind if it comes first.
		spec.KillAt, spec.KillPoint = 1+rng.IntN(30), points[rng.IntN(len(points))]
		raw, _ := json.Marshal(spec)
		cmd := exec.Command(os.Args[0], "-test.run=^TestGCChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+string(raw))
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		switch {
		case errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL:
			kills++
			_, at, _ := strings.Cut(string(out), "killed before ")
			t.Logf("round %d: killed before %s", round, strings.TrimSpace(at))
		default:
			t.Fatalf("round %d: the child was not killed: %v\n%s", round, err, out)
		}
		e.checkNoDangling(t)
	}
	if kills < 10 {
		t.Fatalf("only %d kills", kills)
	}
	t.Logf("%d kills", kills)

	// In process: fail at step 1 of a pass, then at step 2 of the next,
	// and so on, until a pass completes.
	errInjected := errors.New("injected crash")
	failAt, steps := 0, 0
	col := e.collector(t, func(c *gc.Config) {
		killConfig(c)
		c.Hook = func(gc.Point) error {
			if steps++; steps == failAt {
				return errInjected
			}
			return nil
		}
	})
	for failAt = 1; ; failAt++ {
		steps = 0
		_, err := col.RunOnce(context.Background())
		if err == nil {
			break
		}
		if !errors.Is(err, errInjected) {
			t.Fatalf("pass failing at step %d: %v", failAt, err)
		}
		e.checkNoDangling(t)
	}
	t.Logf("in-process passes failed at steps 1..%d", failAt-1)
	failAt = -1
	e.clock.Advance(time.Hour)
	run(t, col)
	run(t, col)
	e.checkConverged(t, foreign)
	readBack(t, w, cut)
	st, err := w.log.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Segments {
		if s.Generation != 1 || s.Objects != 1 {
			t.Fatalf("segment %d: generation %d with %d objects; want every segment compacted to one object", s.ID, s.Generation, s.Objects)
		}
	}
	if st.FirstAvailable.Segment != w.ids[cut].Segment {
		t.Fatalf("first available %s, want segment %d", st.FirstAvailable, w.ids[cut].Segment)
	}
}
