//go:build linux

package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// crashChildEnv holds the JSON crashSpec of a child process of TestCrash.
const crashChildEnv = "WOODPECKER_CRASH_CHILD"

// crashReady is the line a child prints once its writer is open.
const crashReady = "CRASH-CHILD-READY"

// crashSpec tells a child process what to do.
type crashSpec struct {
	Site   site   `json:"site"`
	Log    string `json:"log"`
	Epoch  int64  `json:"epoch"`
	Record string `json:"record"` // side file of acknowledged entries
}

// crashTweak is the writer configuration of the children: small blocks and
// segments, so kills land in every phase (uploads in flight, rolls, seals).
func crashTweak(cfg *options.Config) {
	cfg.Writer.MaxBlockBytes = 8 << 10
	cfg.Writer.RollMaxBlocks = 8
}

// TestCrash runs a writer in a child process and kills it with SIGKILL at
// random moments, at least 20 times; each child opens the log at the next
// epoch (so it recovers what the previous one left) and records every
// acknowledged entry (id and payload hash, fsynced, written only after the
// ack) in a side file. Most kills come 50-500 ms after the child's writer
// is open; every fourth comes 50-500 ms after the process starts, which may
// be during recovery. At the end a writer of the next epoch opens and a
// reader from Earliest must return every recorded entry exactly once, with
// its id and bytes, in order. Entries never recorded may appear (they may
// have become durable just before the kill), but each child's visible
// entries must be a prefix of what it appended: an entry after a lost one
// would be an append that outlived an earlier one.
//
// A tail reader in the parent follows the log through all rounds and must
// return exactly what the final reader does: it never saw an entry that
// recovery then dropped.
//
// In QuorumBuffer (kind quorum, 3 `woodpecker logstore` processes) each
// round also kills a random LogStore with SIGKILL half way, and restarts it
// with an empty memory, while the child writes: no acknowledged entry may
// be lost, and writes go on with two of three.
func TestCrash(t *testing.T) {
	rounds := 20
	if soak() {
		rounds = 200
	}
	for _, kind := range []string{kindMinIO, kindLocal, kindQuorum} {
		t.Run(kind, func(t *testing.T) { runCrash(t, kind, rounds, 0) })
	}
}

// TestLogStoreKills runs one QuorumBuffer writer in a child process while
// LogStores die: 20 times a random one of the 3 is killed with SIGKILL and
// restarted on its address with an empty memory, 200-600 ms apart. The
// writer must keep writing with two of three, and after the writer itself
// is killed, the next writer's recovery must keep every acknowledged entry
// (the checks of TestCrash).
func TestLogStoreKills(t *testing.T) {
	kills := 20
	if soak() {
		kills = 200
	}
	runCrash(t, kindQuorum, 1, kills)
}

// TestCrashChild is the child process of TestCrash; it does nothing in a
// normal test run.
func TestCrashChild(t *testing.T) {
	raw := os.Getenv(crashChildEnv)
	if raw == "" {
		t.Skip("runs only as the child process of TestCrash")
	}
	if err := crashChild(raw); err != nil {
		fmt.Fprintf(os.Stderr, "crash child: %+v\n", err)
		os.Exit(3)
	}
}

// crashChild appends until killed. It returns only on failure.
func crashChild(raw string) error {
	var spec crashSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		return errors.Wrap(err, "decode spec")
	}
	ctx := context.Background()
	// The configuration path, as a real process would: the client dials
	// etcd and the object store itself.
	c, err := woodpecker.New(ctx, spec.Site.config(crashTweak))
	if err != nil {
		return err
	}
	l, err := c.OpenLog(ctx, spec.Log)
	if err != nil {
		return err
	}
	w, err := l.OpenWriter(ctx, spec.Epoch)
	if err != nil {
		return errors.Wrapf(err, "open writer at epoch %d", spec.Epoch)
	}
	rec, err := os.OpenFile(spec.Record, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Println(crashReady)

	type pending struct {
		seq int64
		sum uint64
		fut *woodpecker.AppendFuture
	}
	queue := make(chan pending, 64) // appends in flight beyond the one being recorded
	fail := make(chan error, 2)
	tag := "c" + strconv.FormatInt(spec.Epoch, 10)
	go func() {
		for seq := int64(0); ; seq++ {
			p := makePayload(tag, seq)
			f, err := w.AppendAsync(ctx, p)
			if err != nil {
				fail <- errors.Wrapf(err, "append %d", seq)
				return
			}
			queue <- pending{seq: seq, sum: payloadSum(p), fut: f}
		}
	}()
	go func() {
		var buf bytes.Buffer
		for p := range queue {
			// Record p with the appends queued behind it, up to the
			// first that is not acknowledged yet, in one write and
			// fsync; each line is written after its ack.
			batch := []pending{p}
		more:
			for {
				select {
				case q := <-queue:
					batch = append(batch, q)
					select {
					case <-q.fut.Done():
						continue
					default:
						break more
					}
				default:
					break more
				}
			}
			buf.Reset()
			for _, b := range batch {
				id, err := b.fut.Wait(ctx)
				if err != nil {
					fail <- errors.Wrapf(err, "append %d", b.seq)
					return
				}
				fmt.Fprintf(&buf, "%d %d %d %d\n", id.Segment, id.Entry, b.seq, b.sum)
			}
			if _, err := rec.Write(buf.Bytes()); err != nil {
				fail <- err
				return
			}
			if err := rec.Sync(); err != nil {
				fail <- err
				return
			}
		}
	}()
	return <-fail
}

func payloadSum(p []byte) uint64 {
	h := fnv.New64a()
	h.Write(p)
	return h.Sum64()
}

// recorded is one line of a child's side file.
type recorded struct {
	ID  woodpecker.EntryID
	Key appendKey
	Sum uint64
}

// readRecords parses a side file; a last line without its newline was cut
// by the kill and is ignored.
func readRecords(path string, tag string) ([]recorded, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		data = nil
	}
	var out []recorded
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var r recorded
		if _, err := fmt.Sscanf(sc.Text(), "%d %d %d %d", &r.ID.Segment, &r.ID.Entry, &r.Key.Seq, &r.Sum); err != nil {
			return nil, errors.Wrapf(err, "%s: line %q", path, sc.Text())
		}
		r.Key.Tag = tag
		out = append(out, r)
	}
	return out, sc.Err()
}

// runCrash kills rounds writers; within each round (but those timed from
// process start) it also kills and restarts storeKills LogStores.
func runCrash(t *testing.T, kind string, rounds, storeKills int) {
	s := newSite(t, kind)
	c := s.client(t, crashTweak)
	l := createLog(t, c, "crash")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// A tail reader follows the log through every crash and recovery.
	tail := openReader(t, l, woodpecker.Earliest())
	var (
		tailMu  sync.Mutex
		tailGot []seen
		tailErr error
		tailWG  sync.WaitGroup
	)
	tailWG.Add(1)
	go func() {
		defer tailWG.Done()
		for {
			e, err := tail.Next(ctx)
			if err == nil {
				var tag string
				var seq int64
				tag, seq, err = parsePayload(e.Payload)
				if err == nil {
					tailMu.Lock()
					tailGot = append(tailGot, seen{ID: e.ID, Tag: tag, Seq: seq})
					tailMu.Unlock()
					continue
				}
				err = errors.Wrapf(err, "entry %v", e.ID)
			}
			tailMu.Lock()
			tailErr = err
			tailMu.Unlock()
			return
		}
	}()
	defer func() { _ = tail.Close(); tailWG.Wait() }()

	var (
		records       []recorded
		early         int // kills timed from process start
		beforeOpen    int // kills before the child's writer was open
		roundsWithAck int
	)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for round := 1; round <= rounds; round++ {
		epoch := int64(round)
		spec := crashSpec{Site: *s, Log: "crash", Epoch: epoch, Record: filepath.Join(dir, fmt.Sprintf("acked-%03d", round))}
		raw, err := json.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=20m")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+string(raw))
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		ready := make(chan struct{})
		cmd.Stdout = &lineWatch{line: crashReady, seen: ready}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start child: %v", err)
		}
		delay := time.Duration(50+rng.IntN(451)) * time.Millisecond
		if round%4 == 0 && storeKills == 0 {
			early++
		} else {
			select {
			case <-ready:
			case <-time.After(2 * time.Minute):
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("round %d: child never opened its writer; stderr:\n%s", round, tail2k(stderr.String()))
			}
		}
		for k := 0; k < storeKills; k++ {
			// QuorumBuffer: a LogStore dies (kill -9) while the writer
			// writes, and comes back on its address with an empty
			// memory; the writer goes on with the other two. The mode
			// tolerates one lost replica per segment, not two: the next
			// kill waits until every segment open at this one is sealed
			// (the writer rolled away from it).
			time.Sleep(time.Duration(200+rng.IntN(400)) * time.Millisecond)
			open := openSegments(t, l)
			s.stores.restart(rng.IntN(3))
			waitSealed(t, l, open)
		}
		time.Sleep(delay)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		select {
		case <-ready:
		default:
			beforeOpen++
		}
		werr := cmd.Wait()
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended by itself (%v) before the kill; stderr:\n%s", round, werr, tail2k(stderr.String()))
		}
		got, err := readRecords(spec.Record, "c"+strconv.FormatInt(epoch, 10))
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(got); i++ {
			if !got[i-1].ID.Less(got[i].ID) || got[i].Key.Seq != got[i-1].Key.Seq+1 {
				t.Fatalf("round %d: the child acknowledged %v (append %d) after %v (append %d)",
					round, got[i].ID, got[i].Key.Seq, got[i-1].ID, got[i-1].Key.Seq)
			}
		}
		if len(got) > 0 {
			roundsWithAck++
		}
		records = append(records, got...)
	}
	if roundsWithAck < (rounds+1)/2 {
		t.Fatalf("only %d of %d children had an append acknowledged before the kill: the test exercised too little", roundsWithAck, rounds)
	}

	// The last recovery, by a writer in this process.
	w, err := l.OpenWriter(ctx, int64(rounds+1))
	if err != nil {
		t.Fatalf("open writer after the last kill: %v", err)
	}
	if _, err := w.Append(ctx, makePayload("final", 0)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	whole := readWhole(t, l)
	checkOrdered(t, "log after the crashes", whole)

	// Every recorded entry exactly once, with its id and bytes.
	at := make(map[appendKey]int, len(whole))
	for i, e := range whole {
		at[e.key()] = i
	}
	for _, r := range records {
		i, ok := at[r.Key]
		switch {
		case !ok:
			t.Fatalf("acknowledged entry %v (id %v) is missing after recovery", r.Key, r.ID)
		case whole[i].ID != r.ID:
			t.Fatalf("acknowledged entry %v was %v, now read as %v", r.Key, r.ID, whole[i].ID)
		case payloadSum(makePayload(r.Key.Tag, r.Key.Seq)) != r.Sum:
			t.Fatalf("entry %v: recorded hash differs from its payload's", r.Key)
		}
	}
	// Each writer's entries in append order, each a prefix of its appends.
	last := map[string]int64{}
	prevEpoch := int64(0)
	for _, e := range whole[:len(whole)-1] {
		ep, err := strconv.ParseInt(strings.TrimPrefix(e.Tag, "c"), 10, 64)
		if err != nil || !strings.HasPrefix(e.Tag, "c") {
			t.Fatalf("entry %v holds an unexpected tag %q", e.ID, e.Tag)
		}
		if ep < prevEpoch {
			t.Fatalf("entry %v of epoch %d follows an entry of epoch %d", e.ID, ep, prevEpoch)
		}
		prevEpoch = ep
		want, ok := last[e.Tag]
		if !ok {
			want = -1
		}
		if e.Seq != want+1 {
			t.Fatalf("entry %v is append %d of the child at epoch %d, but its append %d is not in the log: "+
				"an append survived while an earlier one of the same writer was lost", e.ID, e.Seq, ep, want+1)
		}
		last[e.Tag] = e.Seq
	}
	if f := whole[len(whole)-1]; f.Tag != "final" {
		t.Fatalf("the last entry is %v, want the final writer's", f)
	}

	// The tail reader saw exactly the same.
	deadline := time.Now().Add(time.Minute)
	for {
		tailMu.Lock()
		n, terr := len(tailGot), tailErr
		tailMu.Unlock()
		if n >= len(whole) || terr != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = tail.Close()
	tailWG.Wait()
	if tailErr != nil && !errors.Is(tailErr, woodpecker.ErrClosed) {
		t.Fatalf("tail reader failed after %d entries: %v", len(tailGot), tailErr)
	}
	sameEntries(t, "tail reader across the crashes", tailGot, whole)

	t.Logf("%s: %d kills (%d timed from process start, %d before the writer was open), %d acknowledged entries recorded, %d entries in the log checked",
		kind, rounds, early, beforeOpen, len(records), len(whole))
	if storeKills > 0 {
		t.Logf("%s: %d LogStores killed with SIGKILL while a writer wrote", kind, s.stores.kills)
	}
}

// lineWatch is a child's stdout: it closes seen once a line equal to line
// was written. exec.Cmd calls Write from one goroutine.
type lineWatch struct {
	line    string
	seen    chan struct{}
	partial []byte
	done    bool
}

func (w *lineWatch) Write(p []byte) (int, error) {
	if w.done {
		return len(p), nil
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		if string(w.partial[:i]) == w.line {
			w.done = true
			close(w.seen)
			w.partial = nil
			break
		}
		w.partial = w.partial[i+1:]
	}
	return len(p), nil
}

func tail2k(s string) string {
	if len(s) > 2048 {
		return "..." + s[len(s)-2048:]
	}
	return s
}

// openSegments returns the ids of the log's open segments.
func openSegments(t *testing.T, l *woodpecker.Log) []int64 {
	t.Helper()
	st, err := l.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var open []int64
	for _, sg := range st.Segments {
		if !sg.Sealed {
			open = append(open, sg.ID)
		}
	}
	return open
}

// waitSealed waits (at most a minute) until none of the segments ids is
// open any more.
func waitSealed(t *testing.T, l *woodpecker.Log, ids []int64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		still := false
		for _, id := range openSegments(t, l) {
			if slices.Contains(ids, id) {
				still = true
			}
		}
		if !still {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("segments %v still open a minute after a LogStore restart: the writer did not roll away", ids)
}
