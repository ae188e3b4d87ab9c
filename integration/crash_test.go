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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// crashChildEnv holds the JSON crashSpec of a child process of TestCrash.
const crashChildEnv = "WOODPECKER_CRASH_CHILD"

// crashReady is the line a child prints once its writers are open, after
// a line crashOpened for each.
const (
	crashReady  = "CRASH-CHILD-READY"
	crashOpened = "CRASH-CHILD-OPENED"
)

// crashSpec tells a child process what to do.
type crashSpec struct {
	Site    site     `json:"site"`
	Logs    []string `json:"logs"`
	Epoch   int64    `json:"epoch"`
	Records []string `json:"records"` // side files of acknowledged entries, one per log
	Depth   int      `json:"depth"`   // appends in flight per log beyond the one being recorded
	// Tags, when set, are the payload tags of each log (else crashTag).
	Tags []string `json:"tags,omitempty"`
	// RollMaxBlocks, when > 0, replaces crashTweak's.
	RollMaxBlocks int `json:"rollMaxBlocks,omitempty"`
	// Fails, when set, are side files, one per log, where a failed append
	// is recorded (see recordFailure) instead of ending the child; the
	// log's appends stop after its first failure and the others go on.
	Fails []string `json:"fails,omitempty"`
}

// crashTag is the payload tag of the appends of the child at epoch to its
// i-th log: a reader can tell which writer, and which log, an entry came
// from.
func crashTag(epoch int64, i int) string { return fmt.Sprintf("c%d.%d", epoch, i) }

// parseCrashTag inverts crashTag.
func parseCrashTag(tag string) (epoch int64, i int, ok bool) {
	e, l, found := strings.Cut(strings.TrimPrefix(tag, "c"), ".")
	if !found || !strings.HasPrefix(tag, "c") {
		return 0, 0, false
	}
	epoch, err1 := strconv.ParseInt(e, 10, 64)
	n, err2 := strconv.Atoi(l)
	return epoch, n, err1 == nil && err2 == nil
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
//
// With shared objects (kind shared, writer.batchWindow 5 ms) each child
// writes 16 logs at once, so the blocks of all of them share objects and
// commits: a kill lands between an object's PUT and its etcd transaction,
// among the recoveries of the 16 logs (each child opens its writers
// concurrently and appends on a log as soon as its writer is open), or
// among seals and rolls. Kills come 200-1500 ms after every writer is
// open, every fourth 200-5000 ms after the process starts (the child takes
// seconds to open 16 writers under -race). Every log gets the checks
// above, and each entry must carry its own log's tag: a block committed
// into another log's extents would show. Kind quorum-shared does the same
// in QuorumBuffer, whose LogStores pack the 16 logs' blocks into shared
// objects: a kill leaves blocks on the LogStores that no object holds yet,
// which the next writer's recovery copies.
func TestCrash(t *testing.T) {
	rounds := 20
	if soak() {
		rounds = 200
	}
	for _, kind := range []string{kindMinIO, kindLocal, kindQuorum, kindShared, kindQuorumShared} {
		t.Run(kind, func(t *testing.T) {
			logs := 1
			if kind == kindShared || kind == kindQuorumShared {
				logs = sharedCrashLogs
			}
			runCrash(t, kind, logs, rounds, 0)
		})
	}
}

// sharedCrashLogs is how many logs each child of TestCrash/shared writes.
const sharedCrashLogs = 16

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
	runCrash(t, kindQuorum, 1, 1, kills)
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

// crashChild opens a writer on each log of its spec, each in its own
// goroutine, and appends to each as soon as its writer is open, until
// killed. It prints crashReady once every writer is open. It returns only
// on failure.
func crashChild(raw string) error {
	var spec crashSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		return errors.Wrap(err, "decode spec")
	}
	if len(spec.Records) != len(spec.Logs) {
		return errors.Newf("%d logs but %d record files", len(spec.Logs), len(spec.Records))
	}
	ctx := context.Background()
	// The configuration path, as a real process would: the client dials
	// etcd and the object store itself.
	c, err := woodpecker.New(ctx, spec.Site.config(func(cfg *options.Config) {
		crashTweak(cfg)
		if spec.RollMaxBlocks > 0 {
			cfg.Writer.RollMaxBlocks = spec.RollMaxBlocks
		}
	}))
	if err != nil {
		return err
	}
	fail := make(chan error, 3*len(spec.Logs))
	var opened sync.WaitGroup
	opened.Add(len(spec.Logs))
	var out sync.Mutex // one line at a time on stdout
	for i, name := range spec.Logs {
		go func() {
			w, rec, err := openCrashWriter(ctx, c, name, spec.Epoch, spec.Records[i])
			if err != nil {
				fail <- err
				return
			}
			out.Lock()
			fmt.Println(crashOpened)
			out.Unlock()
			opened.Done()
			tag := crashTag(spec.Epoch, i)
			if spec.Tags != nil {
				tag = spec.Tags[i]
			}
			var fails *os.File
			if spec.Fails != nil {
				if fails, err = os.OpenFile(spec.Fails[i], os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
					fail <- err
					return
				}
			}
			if err := appendAndRecord(ctx, w, rec, tag, spec.Depth, fails); err != nil {
				fail <- err
			}
		}()
	}
	go func() {
		opened.Wait()
		out.Lock()
		fmt.Println(crashReady)
		out.Unlock()
	}()
	return <-fail
}

// openCrashWriter opens the child's writer on log name and its side file.
func openCrashWriter(ctx context.Context, c *woodpecker.Client, name string, epoch int64, record string) (*woodpecker.Writer, *os.File, error) {
	l, err := c.OpenLog(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	w, err := l.OpenWriter(ctx, epoch)
	if err != nil {
		return nil, nil, errors.Wrapf(err, "open writer of %s at epoch %d", name, epoch)
	}
	rec, err := os.OpenFile(record, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	return w, rec, nil
}

// appendAndRecord appends payloads tagged tag to w as fast as it takes them,
// with up to depth appends in flight beyond the one being recorded, and
// records each acknowledged one in rec. Without fails it returns only on
// failure. With fails, it records each failed append there instead, and
// after the first failure appends no more; it returns nil once every
// append it made has its outcome recorded, and a last line failsEnd.
func appendAndRecord(ctx context.Context, w *woodpecker.Writer, rec *os.File, tag string, depth int, fails *os.File) error {
	type pending struct {
		seq int64
		sum uint64
		fut *woodpecker.AppendFuture
		err error // AppendAsync failed
	}
	queue := make(chan pending, depth)
	fail := make(chan error, 2)
	var failed atomic.Bool // with fails: an append failed, append no more
	go func() {
		for seq := int64(0); ; seq++ {
			if failed.Load() {
				close(queue)
				return
			}
			p := makePayload(tag, seq)
			f, err := w.AppendAsync(ctx, p)
			switch {
			case err != nil && fails != nil:
				queue <- pending{seq: seq, err: err}
				close(queue)
				return
			case err != nil:
				fail <- errors.Wrapf(err, "%s: append %d", tag, seq)
				return
			}
			queue <- pending{seq: seq, sum: payloadSum(p), fut: f}
		}
	}()
	writeSync := func(f *os.File, b []byte) error {
		if _, err := f.Write(b); err != nil {
			return err
		}
		return f.Sync()
	}
	go func() {
		var acked, lost bytes.Buffer
		for p := range queue {
			// Record p with the appends queued behind it, up to the
			// first that is not acknowledged yet, in one write and
			// fsync; each line is written after its ack.
			batch := []pending{p}
		more:
			for p.fut != nil {
				select {
				case q, ok := <-queue:
					if !ok {
						break more
					}
					batch = append(batch, q)
					if q.fut == nil {
						break more
					}
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
			acked.Reset()
			lost.Reset()
			for _, b := range batch {
				err := b.err
				if b.fut != nil {
					var id woodpecker.EntryID
					if id, err = b.fut.Wait(ctx); err == nil {
						fmt.Fprintf(&acked, "%d %d %d %d\n", id.Segment, id.Entry, b.seq, b.sum)
						continue
					}
				}
				if fails == nil {
					fail <- errors.Wrapf(err, "%s: append %d", tag, b.seq)
					return
				}
				failed.Store(true)
				fmt.Fprintf(&lost, "%d %s %s\n", b.seq, failureClass(err), strings.ReplaceAll(err.Error(), "\n", " "))
			}
			if err := writeSync(rec, acked.Bytes()); err != nil {
				fail <- err
				return
			}
			if lost.Len() > 0 {
				if err := writeSync(fails, lost.Bytes()); err != nil {
					fail <- err
					return
				}
			}
		}
		// Only with fails: every append has its outcome recorded.
		fail <- writeSync(fails, []byte(failsEnd+"\n"))
	}()
	return <-fail
}

// failsEnd is the last line of a fails side file: every append of the
// writer has its outcome recorded.
const failsEnd = "end"

// failureClass names how an append failed, for a fails side file: f for
// ErrFenced, u for ErrUnknownOutcome (it may be in the log), uf for both,
// x for anything else.
func failureClass(err error) string {
	unknown, fenced := errors.Is(err, woodpecker.ErrUnknownOutcome), errors.Is(err, woodpecker.ErrFenced)
	switch {
	case unknown && fenced:
		return "uf"
	case unknown:
		return "u"
	case fenced:
		return "f"
	}
	return "x"
}

// failure is one line of a fails side file.
type failure struct {
	Seq   int64
	Class string
	Err   string
}

// readFailures parses a fails side file; complete reports whether it
// ends with failsEnd.
func readFailures(path string) (out []failure, complete bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" {
			continue
		}
		if line == failsEnd {
			return out, true, nil
		}
		var f failure
		parts := strings.SplitN(line, " ", 3)
		if len(parts) < 2 {
			return nil, false, errors.Newf("%s: line %q", path, line)
		}
		if f.Seq, err = strconv.ParseInt(parts[0], 10, 64); err != nil {
			return nil, false, errors.Wrapf(err, "%s: line %q", path, line)
		}
		f.Class = parts[1]
		if len(parts) == 3 {
			f.Err = parts[2]
		}
		out = append(out, f)
	}
	return out, false, nil
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

// crashLog is the parent's view of one log of runCrash.
type crashLog struct {
	name          string
	l             *woodpecker.Log
	tail          *follower
	records       []recorded
	roundsWithAck int
}

// runCrash kills rounds writers of logs logs; within each round (but those
// timed from process start) it also kills and restarts storeKills
// LogStores.
func runCrash(t *testing.T, kind string, logs, rounds, storeKills int) {
	start := time.Now()
	s := newSite(t, kind)
	c := s.client(t, crashTweak)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// A tail reader on each log follows it through every crash and
	// recovery.
	cls := make([]*crashLog, logs)
	names := make([]string, logs)
	for i := range cls {
		names[i] = "crash"
		if logs > 1 {
			names[i] = fmt.Sprintf("crash-%02d", i)
		}
		cl := &crashLog{name: names[i], l: createLog(t, c, names[i])}
		cl.tail = follow(ctx, t, cl.l)
		cls[i] = cl
	}

	var (
		early         int // kills timed from process start
		beforeOpen    int // kills before every writer of the child was open
		midOpen       int // kills when some writers of the child were open, not all
		roundsWithAck int // rounds in which some log had an append acknowledged
	)
	// A child writing many logs keeps several blocks of each in flight
	// (so blocks of one log commit in different objects, out of order),
	// and lives longer, so that most logs have acknowledged appends.
	// Kills timed from process start come within the time the child
	// takes to open its writers.
	depth, minDelay, maxDelay, maxEarly := 64, 50, 500, 500
	if logs > 1 {
		depth, minDelay, maxDelay, maxEarly = 192, 200, 1500, 5000
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("%s: seed %d (kill times)", kind, seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	for round := 1; round <= rounds; round++ {
		epoch := int64(round)
		spec := crashSpec{Site: *s, Logs: names, Epoch: epoch, Depth: depth}
		for i := range names {
			spec.Records = append(spec.Records, filepath.Join(dir, fmt.Sprintf("acked-%03d-%02d", round, i)))
		}
		child := startCrashChild(t, spec)
		delay := time.Duration(minDelay+rng.IntN(maxDelay-minDelay+1)) * time.Millisecond
		if round%4 == 0 && storeKills == 0 {
			early++
			delay = time.Duration(minDelay+rng.IntN(maxEarly-minDelay+1)) * time.Millisecond
		} else {
			child.waitReady(t, fmt.Sprintf("round %d", round))
		}
		for k := 0; k < storeKills; k++ {
			// QuorumBuffer: a LogStore dies (kill -9) while the writer
			// writes, and comes back on its address with an empty
			// memory; the writer goes on with the other two. The mode
			// tolerates one lost replica per segment, not two: the next
			// kill waits until every segment open at this one is sealed
			// (the writer rolled away from it).
			time.Sleep(time.Duration(200+rng.IntN(400)) * time.Millisecond)
			open := openSegments(t, cls[0].l)
			s.stores.restart(rng.IntN(3))
			waitSealed(t, cls[0].l, open)
		}
		time.Sleep(delay)
		ready := child.kill(t, fmt.Sprintf("round %d", round))
		if !ready {
			beforeOpen++
		}
		if n := child.watch.counted.Load(); n > 0 && n < int64(logs) {
			midOpen++
		}
		some := false
		for i, cl := range cls {
			got, err := readRecords(spec.Records[i], crashTag(epoch, i))
			if err != nil {
				t.Fatal(err)
			}
			for j := 1; j < len(got); j++ {
				if !got[j-1].ID.Less(got[j].ID) || got[j].Key.Seq != got[j-1].Key.Seq+1 {
					t.Fatalf("round %d: log %s: the child acknowledged %v (append %d) after %v (append %d)",
						round, cl.name, got[j].ID, got[j].Key.Seq, got[j-1].ID, got[j-1].Key.Seq)
				}
			}
			if len(got) > 0 {
				cl.roundsWithAck++
				some = true
			}
			cl.records = append(cl.records, got...)
		}
		if some {
			roundsWithAck++
		}
	}
	// A child writing many logs opens them all, under load, before it
	// is killed: each log needs acknowledged entries in a fifth of the
	// rounds, and half the rounds an acknowledged entry on some log.
	if roundsWithAck < (rounds+1)/2 {
		t.Fatalf("only %d of %d children had an append acknowledged before the kill: the test exercised too little",
			roundsWithAck, rounds)
	}
	for _, cl := range cls {
		if logs > 1 && cl.roundsWithAck < rounds/5 {
			t.Fatalf("log %s had appends acknowledged in only %d of %d rounds: the test exercised too little",
				cl.name, cl.roundsWithAck, rounds)
		}
	}

	// The last recovery, by a writer in this process.
	var records, checked int
	wholes := make([][]seen, len(cls))
	for i, cl := range cls {
		w, err := cl.l.OpenWriter(ctx, int64(rounds+1))
		if err != nil {
			t.Fatalf("log %s: open writer after the last kill: %v", cl.name, err)
		}
		if _, err := w.Append(ctx, makePayload("final", 0)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		whole := readWhole(t, cl.l)
		checkCrashLog(t, cl, i, whole)
		wholes[i] = whole
		records += len(cl.records)
		checked += len(whole)
	}

	// The tail readers saw exactly the same.
	for i, cl := range cls {
		got, err := cl.tail.stop(ctx, len(wholes[i]))
		if err != nil && !errors.Is(err, woodpecker.ErrClosed) {
			t.Fatalf("log %s: tail reader failed after %d entries: %v", cl.name, len(got), err)
		}
		sameEntries(t, "tail reader of "+cl.name+" across the crashes", got, wholes[i])
	}
	if kind == kindQuorumShared {
		checkSharedLayout(t, s)
	}

	t.Logf("%s: %d logs, %d kills (%d timed from process start, %d before the writers were open, %d of them with some open), "+
		"%d acknowledged entries recorded, %d entries in the logs checked, %s",
		kind, logs, rounds, early, beforeOpen, midOpen, records, checked, time.Since(start).Round(time.Second))
	if logs > 1 {
		per := make([]string, len(cls))
		for i, cl := range cls {
			per[i] = fmt.Sprintf("%d/%d", len(cl.records), cl.roundsWithAck)
		}
		t.Logf("%s: acknowledged entries / rounds with an ack, per log: %s", kind, strings.Join(per, " "))
	}
	if storeKills > 0 {
		t.Logf("%s: %d LogStores killed with SIGKILL while a writer wrote", kind, s.stores.kills)
	}
}

// checkCrashLog checks the whole log i of runCrash, read after the final
// writer's entry: every recorded entry exactly once, with its id and
// bytes; every entry from a child of this log; each child's entries a
// prefix of its appends, children in epoch order.
func checkCrashLog(t *testing.T, cl *crashLog, i int, whole []seen) {
	t.Helper()
	what := "log " + cl.name + " after the crashes"
	checkOrdered(t, what, whole)
	at := make(map[appendKey]int, len(whole))
	for j, e := range whole {
		at[e.key()] = j
	}
	for _, r := range cl.records {
		j, ok := at[r.Key]
		switch {
		case !ok:
			t.Fatalf("%s: acknowledged entry %v (id %v) is missing after recovery", what, r.Key, r.ID)
		case whole[j].ID != r.ID:
			t.Fatalf("%s: acknowledged entry %v was %v, now read as %v", what, r.Key, r.ID, whole[j].ID)
		case payloadSum(makePayload(r.Key.Tag, r.Key.Seq)) != r.Sum:
			t.Fatalf("%s: entry %v: recorded hash differs from its payload's", what, r.Key)
		}
	}
	last := map[string]int64{}
	prevEpoch := int64(0)
	for _, e := range whole[:len(whole)-1] {
		ep, li, ok := parseCrashTag(e.Tag)
		switch {
		case !ok:
			t.Fatalf("%s: entry %v holds an unexpected tag %q", what, e.ID, e.Tag)
		case li != i:
			t.Fatalf("%s: entry %v is append %d to log %d of the child at epoch %d", what, e.ID, e.Seq, li, ep)
		case ep < prevEpoch:
			t.Fatalf("%s: entry %v of epoch %d follows an entry of epoch %d", what, e.ID, ep, prevEpoch)
		}
		prevEpoch = ep
		want, ok := last[e.Tag]
		if !ok {
			want = -1
		}
		if e.Seq != want+1 {
			t.Fatalf("%s: entry %v is append %d of the child at epoch %d, but its append %d is not in the log: "+
				"an append survived while an earlier one of the same writer was lost", what, e.ID, e.Seq, ep, want+1)
		}
		last[e.Tag] = e.Seq
	}
	if f := whole[len(whole)-1]; f.Tag != "final" {
		t.Fatalf("%s: the last entry is %v, want the final writer's", what, f)
	}
}

// follower is a tail reader that reads a log in a goroutine, checking
// every payload, until it fails or stop closes it.
type follower struct {
	r    *woodpecker.Reader
	mu   sync.Mutex
	got  []seen
	err  error
	done chan struct{}
}

// follow opens a reader on l from Earliest and follows it.
func follow(ctx context.Context, t *testing.T, l *woodpecker.Log) *follower {
	t.Helper()
	f := &follower{r: openReader(t, l, woodpecker.Earliest()), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		for {
			e, err := f.r.Next(ctx)
			if err == nil {
				var tag string
				var seq int64
				tag, seq, err = parsePayload(e.Payload)
				if err == nil {
					f.mu.Lock()
					f.got = append(f.got, seen{ID: e.ID, Tag: tag, Seq: seq})
					f.mu.Unlock()
					continue
				}
				err = errors.Wrapf(err, "entry %v", e.ID)
			}
			f.mu.Lock()
			f.err = err
			f.mu.Unlock()
			return
		}
	}()
	t.Cleanup(func() { _ = f.r.Close(); <-f.done })
	return f
}

// stop waits (at most a minute) until the follower has n entries or
// failed, closes it, and returns what it read and its error.
func (f *follower) stop(ctx context.Context, n int) ([]seen, error) {
	deadline := time.Now().Add(time.Minute)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		f.mu.Lock()
		got, err := len(f.got), f.err
		f.mu.Unlock()
		if got >= n || err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = f.r.Close()
	<-f.done
	return f.got, f.err
}

// crashChildProc is a running child process of TestCrashChild. The test's
// cleanup kills it if the test ends first.
type crashChildProc struct {
	cmd    *exec.Cmd
	ready  chan struct{}
	watch  *lineWatch
	stderr bytes.Buffer // read only after the child ended
	ended  bool
}

// startCrashChild starts a child process that follows spec.
func startCrashChild(t *testing.T, spec crashSpec) *crashChildProc {
	t.Helper()
	raw, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	p := &crashChildProc{ready: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=20m")
	p.cmd.Env = append(os.Environ(), crashChildEnv+"="+string(raw))
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.cmd.Stderr = &p.stderr
	p.watch = &lineWatch{line: crashReady, seen: p.ready, count: crashOpened}
	p.cmd.Stdout = p.watch
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	t.Cleanup(func() {
		if !p.ended {
			_ = p.cmd.Process.Signal(syscall.SIGCONT) // in case it was stopped
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	return p
}

// waitReady waits (at most two minutes) until the child's writers are
// open; the test fails if they are not.
func (p *crashChildProc) waitReady(t *testing.T, what string) {
	t.Helper()
	select {
	case <-p.ready:
	case <-time.After(2 * time.Minute):
		p.fail(t, what+": child never opened its writers")
	}
}

// fail kills the child and fails the test with msg and the child's stderr.
func (p *crashChildProc) fail(t *testing.T, msg string) {
	t.Helper()
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	p.ended = true
	t.Fatalf("%s; child's stderr:\n%s", msg, tail2k(p.stderr.String()))
}

// kill kills the child with SIGKILL and waits for it; the test fails
// unless the kill is what ended it. It reports whether the child's writers
// were all open.
func (p *crashChildProc) kill(t *testing.T, what string) (ready bool) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	werr := p.cmd.Wait()
	p.ended = true
	ws, _ := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("%s: child ended by itself (%v) before the kill; stderr:\n%s", what, werr, tail2k(p.stderr.String()))
	}
	select {
	case <-p.ready:
		return true
	default:
		return false
	}
}

// lineWatch is a child's stdout: it closes seen once a line equal to line
// was written, and counts the lines equal to count before it. exec.Cmd
// calls Write from one goroutine.
type lineWatch struct {
	line    string
	seen    chan struct{}
	count   string
	counted atomic.Int64
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
		switch string(w.partial[:i]) {
		case w.line:
			w.done = true
			close(w.seen)
			w.partial = nil
			return len(p), nil
		case w.count:
			w.counted.Add(1)
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

// checkSharedLayout checks that the site's blocks are in shared objects:
// the bucket holds some, and no per-log block object.
func checkSharedLayout(t *testing.T, s *site) {
	t.Helper()
	objs, err := objstore.ListAll(context.Background(), s.store(t), "", "")
	if err != nil {
		t.Fatal(err)
	}
	sharedObjs, perLog := 0, 0
	for _, o := range objs {
		switch {
		case strings.HasPrefix(o.Key, "shared/"):
			sharedObjs++
		case strings.Contains(o.Key, "/b-"):
			perLog++
		}
	}
	if sharedObjs == 0 || perLog > 0 {
		t.Fatalf("%d shared objects and %d per-log block objects: the blocks are not in shared objects", sharedObjs, perLog)
	}
	t.Logf("%d shared objects", sharedObjs)
}
