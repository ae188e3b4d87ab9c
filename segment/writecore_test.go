package segment

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/walerr"
)

// The writer's decisions, driven by scripts in testdata/writecore: each
// command is an event, and its output is what the core asks the driver to
// do. Regenerate the expected output with
//
//	go test ./segment -run TestWriteCoreScripts -rewrite
func TestWriteCoreScripts(t *testing.T) {
	paths, err := filepath.Glob("testdata/writecore/*.txt")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			var r *coreRig
			runDataDriven(t, path, func(t *testing.T, d *ddCmd) string {
				if d.cmd == "init" {
					r = newCoreRig(t, coreRigConfig(t, d))
					return ""
				}
				if d.cmd == "explore" {
					return explore(t, d)
				}
				if r == nil {
					t.Fatalf("%s: init first", d.pos)
				}
				return r.exec(d)
			})
		})
	}
}

var coreT0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// coreRigConfig reads init's arguments over these defaults.
func coreRigConfig(t *testing.T, d *ddCmd) coreConfig {
	t.Helper()
	cfg := coreConfig{
		LogID: 7, MaxBlockBytes: 100, FlushDelay: 10 * time.Millisecond, Parallel: 3,
		RollMaxBytes: 1 << 30, RollMaxBlocks: 1000,
		RetryInitialBackoff: 10 * time.Millisecond, RetryMaxBackoff: 40 * time.Millisecond,
		RetryTimeout: 100 * time.Millisecond,
	}
	for _, a := range d.args {
		if len(a.vals) != 1 {
			t.Fatalf("%s: %s needs one value", d.pos, a.key)
		}
		v := a.vals[0]
		num := func() int64 {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("%s: %s=%s: %v", d.pos, a.key, v, err)
			}
			return n
		}
		dur := func() time.Duration {
			x, err := time.ParseDuration(v)
			if err != nil {
				t.Fatalf("%s: %s=%s: %v", d.pos, a.key, v, err)
			}
			return x
		}
		switch a.key {
		case "first-segment":
			cfg.FirstSegment = num()
		case "parallel":
			cfg.Parallel = int(num())
		case "max-block":
			cfg.MaxBlockBytes = num()
		case "flush":
			cfg.FlushDelay = dur()
		case "roll-bytes":
			cfg.RollMaxBytes = num()
		case "roll-blocks":
			cfg.RollMaxBlocks = num()
		case "roll-age":
			cfg.RollMaxAge = dur()
		case "backoff":
			cfg.RetryInitialBackoff = dur()
		case "max-backoff":
			cfg.RetryMaxBackoff = dur()
		case "retry-timeout":
			cfg.RetryTimeout = dur()
		default:
			t.Fatalf("%s: unknown setting %s", d.pos, a.key)
		}
	}
	return cfg
}

// coreRig drives a writeCore the way Writer does, with a clock of its own,
// entries named by strings, and the outstanding operations named for the
// scripts: c<seg> creates a segment, w<seg>.<block> writes a block,
// sw<seg> writes a seal record and sm<seg> seals in metadata.
type coreRig struct {
	t     *testing.T
	c     *writeCore[string]
	now   time.Time
	ops   map[string]coreOp[string] // outstanding
	begun map[string]bool           // outstanding writes that begin accepted
	// issued are the blocks whose write the driver ever issued.
	issued map[string]bool
	wake   time.Time // the wake time printed last

	// For the invariants: every settled entry in order, and the writes
	// that had begun when the writer failed.
	settledLog  []settledRec
	begunAtFail map[string]bool
	acked       map[string]bool // blocks acknowledged, by name
}

type settledRec struct {
	name  string // the entry
	seg   int64
	entry int64
	block string // w<seg>.<no>, "" for a batch entry
	err   error
}

func newCoreRig(t *testing.T, cfg coreConfig) *coreRig {
	return &coreRig{
		t: t, c: newWriteCore[string](cfg, coreT0), now: coreT0,
		ops: map[string]coreOp[string]{}, begun: map[string]bool{}, issued: map[string]bool{}, acked: map[string]bool{},
	}
}

func opName(op coreOp[string]) string {
	switch op.kind {
	case opWrite:
		return fmt.Sprintf("w%d.%d", op.segID, op.block.no)
	case opCreate:
		return fmt.Sprintf("c%d", op.segID)
	case opSealWrite:
		return fmt.Sprintf("sw%d", op.segID)
	default:
		return fmt.Sprintf("sm%d", op.segID)
	}
}

func (r *coreRig) at(t time.Time) string { return "+" + t.Sub(coreT0).String() }

// outcomeClass names what an error tells the caller.
func outcomeClass(err error) string {
	fenced, unknown := errors.Is(err, walerr.ErrFenced), errors.Is(err, walerr.ErrUnknownOutcome)
	switch {
	case err == nil:
		return "ok"
	case fenced && unknown:
		return "fenced+unknown"
	case fenced:
		return "fenced"
	case unknown:
		return "unknown"
	}
	return "definite"
}

// result is the opResult a script's outcome name stands for.
func (r *coreRig) result(op coreOp[string], outcome string) opResult {
	switch outcome {
	case "ok":
		if op.kind == opWrite {
			return opResult{size: op.block.bytes + 50}
		}
		return opResult{}
	case "ok-degraded":
		// Written, but the sink asks for a roll (a replica missed it).
		return opResult{size: op.block.bytes + 50, degraded: true}
	case "transient":
		return opResult{err: errors.New("transient failure")}
	case "ctx":
		return opResult{err: errors.New("context canceled"), ctxDone: true}
	case "fenced":
		return opResult{err: errors.Wrap(walerr.ErrFenced, "slot taken")}
	case "fenced-unknown":
		return opResult{err: walerr.Mark(errors.Wrap(walerr.ErrFenced, "replicas fenced the segment"), walerr.ErrUnknownOutcome)}
	case "unknown":
		return opResult{err: walerr.Mark(errors.New("fsync failed"), walerr.ErrUnknownOutcome)}
	case "final":
		return opResult{err: errors.New("the driver failed before the I/O"), final: true}
	}
	r.t.Fatalf("unknown outcome %q", outcome)
	return opResult{}
}

// takeReady carries out the core's output as a driver would, and
// describes it.
func (r *coreRig) takeReady(b *strings.Builder) {
	rd := r.c.ready()
	for _, s := range rd.settled {
		names := strings.Join(s.entries, ",")
		ids := fmt.Sprintf("%d.%d", s.segID, s.first)
		if len(s.entries) > 1 {
			ids += fmt.Sprintf("-%d", s.last())
		}
		block := ""
		if s.block != nil {
			block = fmt.Sprintf("w%d.%d", s.segID, s.block.no)
		}
		if s.err == nil {
			fmt.Fprintf(b, "ack %s (%s)\n", ids, names)
			r.acked[block] = true
		} else {
			fmt.Fprintf(b, "fail %s (%s) %s: %v\n", ids, names, outcomeClass(s.err), s.err)
		}
		for i, e := range s.entries {
			r.settledLog = append(r.settledLog, settledRec{name: e, seg: s.segID, entry: s.first + int64(i), block: block, err: s.err})
		}
	}
	for _, s := range rd.sealed {
		fmt.Fprintf(b, "sealed %d last=%d blocks=%d bytes=%d\n", s.segID, s.info.LastEntry, s.info.Blocks, s.info.Bytes)
	}
	for _, id := range rd.release {
		fmt.Fprintf(b, "release sink %d\n", id)
	}
	if rd.fenced {
		b.WriteString("fenced\n")
	}
	for _, op := range rd.ops {
		name := opName(op)
		if _, dup := r.ops[name]; dup {
			r.t.Fatalf("op %s started while it is outstanding", name)
		}
		r.ops[name] = op
		fmt.Fprintf(b, "start %s", name)
		if op.attempt > 1 {
			fmt.Fprintf(b, " attempt=%d", op.attempt)
		}
		switch op.kind {
		case opWrite:
			if op.attempt == 1 {
				fmt.Fprintf(b, " (%s)", strings.Join(op.block.entries, ","))
			}
		case opSealWrite, opSealMeta:
			fmt.Fprintf(b, " last=%d blocks=%d bytes=%d", op.info.LastEntry, op.info.Blocks, op.info.Bytes)
		}
		if !op.deadline.IsZero() {
			fmt.Fprintf(b, " deadline=%s", r.at(op.deadline))
		}
		b.WriteString("\n")
	}
	r.c.advance()
	if r.c.failed != nil && r.begunAtFail == nil {
		r.begunAtFail = map[string]bool{}
		for k := range r.issued {
			r.begunAtFail[k] = true
		}
	}
	if w := r.c.wake(); !w.Equal(r.wake) {
		if w.IsZero() {
			b.WriteString("wake none\n")
		} else {
			fmt.Fprintf(b, "wake %s\n", r.at(w))
		}
		r.wake = w
	}
}

// report reports outcome for the outstanding op name, beginning a write
// first as the driver does (unless the driver failed before its I/O).
func (r *coreRig) report(b *strings.Builder, name, outcome string) {
	op, ok := r.ops[name]
	if !ok {
		r.t.Fatalf("no outstanding op %s (outstanding: %v)", name, r.outstanding())
	}
	delete(r.ops, name)
	if op.kind == opWrite && outcome != "final" && !r.begun[name] {
		if !r.c.begin(op) {
			fmt.Fprintf(b, "begin %s refused\n", name)
			return
		}
		r.begun[name], r.issued[name] = true, true
	}
	delete(r.begun, name)
	r.c.done(r.now, op, r.result(op, outcome))
	r.takeReady(b)
}

func (r *coreRig) outstanding() []string {
	var names []string
	for n := range r.ops {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (r *coreRig) exec(d *ddCmd) string {
	var b strings.Builder
	switch d.cmd {
	case "append":
		for _, a := range d.args {
			name, size := a.key, int64(10)
			if len(a.vals) == 1 {
				n, err := strconv.ParseInt(a.vals[0], 10, 64)
				if err != nil {
					r.t.Fatalf("%s: %v", d.pos, err)
				}
				size = n
			}
			seg, entry, err := r.c.append(r.now, name, size)
			if err != nil {
				fmt.Fprintf(&b, "append %s refused, %s: %v\n", name, outcomeClass(err), err)
			} else {
				fmt.Fprintf(&b, "append %s -> %d.%d\n", name, seg, entry)
			}
			r.takeReady(&b)
		}
	case "done":
		many := len(d.args) > 1
		for _, a := range d.args {
			if len(a.vals) != 1 {
				r.t.Fatalf("%s: done op=outcome", d.pos)
			}
			if many {
				fmt.Fprintf(&b, "> %s %s\n", a.key, a.vals[0])
			}
			r.report(&b, a.key, a.vals[0])
		}
	case "begin":
		for _, a := range d.args {
			op, ok := r.ops[a.key]
			if !ok {
				r.t.Fatalf("%s: no outstanding op %s", d.pos, a.key)
			}
			ok = r.c.begin(op)
			fmt.Fprintf(&b, "begin %s: %v\n", a.key, ok)
			if ok {
				r.begun[a.key], r.issued[a.key] = true, true
			} else {
				delete(r.ops, a.key) // the driver reports it no further
			}
		}
	case "tick", "advance":
		if len(d.args) > 0 {
			dur, err := time.ParseDuration(d.args[0].key)
			if err != nil {
				r.t.Fatalf("%s: %v", d.pos, err)
			}
			r.now = r.now.Add(dur)
		}
		if d.cmd == "advance" {
			fmt.Fprintf(&b, "now %s\n", r.at(r.now))
			break
		}
		r.c.tick(r.now)
		r.takeReady(&b)
	case "close":
		r.c.close(r.now)
		r.takeReady(&b)
	case "stop":
		r.c.stop(r.now, errors.New("stopped"))
		r.takeReady(&b)
	case "abort":
		r.c.abort(r.now, walerr.Mark(errors.Wrap(walerr.ErrClosed, "writer aborted"), walerr.ErrUnknownOutcome))
		r.takeReady(&b)
	case "state":
		r.state(&b)
	default:
		r.t.Fatalf("%s: unknown command %s", d.pos, d.cmd)
	}
	return b.String()
}

// state describes what the core holds.
func (r *coreRig) state(b *strings.Builder) {
	c := r.c
	fmt.Fprintf(b, "now %s\n", r.at(r.now))
	fmt.Fprintf(b, "segment %d: next entry %d, next block %d, %dB cut\n", c.cur.id, c.cur.nextEntry, c.cur.nextBlock, c.cur.bytes)
	if len(c.batch) > 0 {
		fmt.Fprintf(b, "batch (%s) %dB since %s", strings.Join(c.batch, ","), c.batchBytes, r.at(c.batchStart))
		if !c.flushAt.IsZero() {
			fmt.Fprintf(b, ", flush at %s", r.at(c.flushAt))
		}
		b.WriteString("\n")
	}
	for _, blk := range c.queue {
		var flags []string
		for _, f := range []struct {
			on   bool
			name string
		}{{blk.started, "started"}, {blk.attempted, "attempted"}, {blk.done, "done"}} {
			if f.on {
				flags = append(flags, f.name)
			}
		}
		if !blk.tries.retryAt.IsZero() {
			flags = append(flags, "retry at "+r.at(blk.tries.retryAt))
		}
		fmt.Fprintf(b, "block %d.%d (%s) %s\n", blk.segID, blk.no, strings.Join(blk.entries, ","), strings.Join(flags, ", "))
	}
	fmt.Fprintf(b, "inflight %d, unstarted %d, creating %d, sealing %d\n", c.inflight, c.unstarted, c.creating, c.sealing)
	if ops := r.outstanding(); len(ops) > 0 {
		fmt.Fprintf(b, "outstanding %s\n", strings.Join(ops, " "))
	}
	if c.failed != nil {
		fmt.Fprintf(b, "failed %s: %v\n", outcomeClass(c.failed), c.failed)
	}
	if c.closing {
		fmt.Fprintf(b, "closing, drained %v, finished %v", c.drainedNow(), c.finished())
		if c.finished() {
			if err := c.closeResult(); err != nil {
				fmt.Fprintf(b, ", Close returns %s: %v", outcomeClass(err), err)
			} else {
				b.WriteString(", Close returns nil")
			}
		}
		b.WriteString("\n")
	}
}

// explore runs every order in which the outstanding operations can
// complete, for every assignment of outcomes to the blocks' writes, and
// checks the invariants on each run. It prints, per assignment, the
// outcomes the entries got and in how many orders.
//
//	explore blocks=3 parallel=3 roll-blocks=1000 outcomes=(ok,fenced)
//
// Each block holds one entry (named a, b, c, ...). Creations and seals
// succeed. A block's write outcome applies to its first attempt; after
// "transient" the retry succeeds, in any order with the other operations.
func explore(t *testing.T, d *ddCmd) string {
	t.Helper()
	intArg := func(key string, def int) int {
		if v, ok := d.arg(key); ok {
			n, err := strconv.Atoi(v[0])
			if err != nil {
				t.Fatalf("%s: %v", d.pos, err)
			}
			return n
		}
		return def
	}
	blocks, parallel, rollBlocks := intArg("blocks", 3), intArg("parallel", 3), intArg("roll-blocks", 1000)
	outcomes, ok := d.arg("outcomes")
	if !ok {
		outcomes = []string{"ok", "transient", "ctx", "fenced", "unknown", "final"}
	}
	cfg := coreConfig{
		LogID: 7, MaxBlockBytes: 10, FlushDelay: 10 * time.Millisecond, Parallel: parallel,
		RollMaxBytes: 1 << 30, RollMaxBlocks: int64(rollBlocks),
		RetryInitialBackoff: 10 * time.Millisecond, RetryMaxBackoff: 40 * time.Millisecond, RetryTimeout: time.Hour,
	}
	var out strings.Builder
	runs := 0
	assign := make([]string, blocks)
	var each func(i int)
	each = func(i int) {
		if i < blocks {
			for _, o := range outcomes {
				assign[i] = o
				each(i + 1)
			}
			return
		}
		results := map[string]int{}
		var order []string
		var walk func(path []string)
		walk = func(path []string) {
			r, next := replayExplore(t, cfg, blocks, assign, path)
			if len(next) == 0 {
				runs++
				checkExploreRun(t, r, blocks, assign, path)
				results[exploreSummary(r, blocks)]++
				return
			}
			for _, n := range next {
				walk(append(path[:len(path):len(path)], n))
			}
		}
		walk(nil)
		for s := range results {
			order = append(order, s)
		}
		sort.Strings(order)
		fmt.Fprintf(&out, "%s:", strings.Join(assign, ","))
		for i, s := range order {
			if i > 0 {
				out.WriteString(" |")
			}
			fmt.Fprintf(&out, " %s [%d]", s, results[s])
		}
		out.WriteString("\n")
	}
	each(0)
	fmt.Fprintf(&out, "%d runs\n", runs)
	return out.String()
}

// replayExplore builds a core with one single-entry block per entry, then
// completes the operations named in path, in order, and returns the rig
// and the operations outstanding at the end.
func replayExplore(t *testing.T, cfg coreConfig, blocks int, assign, path []string) (*coreRig, []string) {
	r := newCoreRig(t, cfg)
	var b strings.Builder
	for i := range blocks {
		if _, _, err := r.c.append(r.now, string(rune('a'+i)), 10); err != nil {
			t.Fatal(err)
		}
		r.takeReady(&b)
	}
	ackedBefore := func(n int64) bool { // entries 0..n-1 are acknowledged
		for i := range n {
			if !slices.ContainsFunc(r.settledLog, func(s settledRec) bool { return s.err == nil && exploreIndex(s) == i }) {
				return false
			}
		}
		return true
	}
	check := func() {
		for name, op := range r.ops {
			switch op.kind {
			case opWrite:
				// A segment's writes start only after every block of the
				// segments before it is acknowledged.
				if !ackedBefore(op.segID * cfg.RollMaxBlocks) {
					t.Fatalf("path %v: %s started before the segments before it were acknowledged", path, name)
				}
			case opSealWrite:
				if !ackedBefore(min((op.segID+1)*cfg.RollMaxBlocks, int64(blocks))) {
					t.Fatalf("path %v: %s started before its segment was acknowledged", path, name)
				}
			}
		}
	}
	for _, name := range path {
		op := r.ops[name]
		outcome := "ok"
		if op.kind == opWrite && op.attempt == 1 {
			outcome = assign[op.block.first+op.segID*cfg.RollMaxBlocks]
		}
		r.report(&b, name, outcome)
		if outcome == "transient" {
			// The retry is due after the backoff.
			r.now = r.now.Add(cfg.RetryInitialBackoff)
			r.c.tick(r.now)
			r.takeReady(&b)
		}
		check()
	}
	return r, r.outstanding()
}

// exploreSegOf is the segment of single-entry block i.
func exploreSegOf(cfg coreConfig, i int64) int64 { return i / cfg.RollMaxBlocks }

// exploreIndex is the position in the log of an explored run's entry.
func exploreIndex(s settledRec) int64 { return int64(s.name[0] - 'a') }

func exploreSummary(r *coreRig, blocks int) string {
	got := make([]string, blocks)
	for i := range got {
		got[i] = "?"
	}
	for _, s := range r.settledLog {
		got[exploreIndex(s)] = s.name + "=" + outcomeClass(s.err)
	}
	return strings.Join(got, " ")
}

// checkExploreRun checks one completed run against what the invariants
// require, computed here without the core.
func checkExploreRun(t *testing.T, r *coreRig, blocks int, assign, path []string) {
	t.Helper()
	fatal := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("outcomes %v, order %v: %s", assign, path, fmt.Sprintf(format, args...))
	}
	// Every entry is settled once, in log order, and no entry is
	// acknowledged after one failed.
	if len(r.settledLog) != blocks {
		fatal("%d entries settled, want %d: %+v", len(r.settledLog), blocks, r.settledLog)
	}
	failed := false
	for i, s := range r.settledLog {
		if exploreIndex(s) != int64(i) {
			fatal("entry %s settled at position %d", s.name, i)
		}
		if failed && s.err == nil {
			fatal("entry %s acknowledged after an earlier entry failed", s.name)
		}
		failed = failed || s.err != nil
	}
	// The first block whose write failed decides every later outcome.
	f := slices.IndexFunc(assign, func(o string) bool { return o != "ok" && o != "transient" })
	for i, s := range r.settledLog {
		var want string
		switch {
		case f < 0 || i < f:
			want = "ok"
		case i == f:
			want = map[string]string{"ctx": "unknown", "fenced": "fenced", "fenced-unknown": "fenced+unknown",
				"unknown": "unknown", "final": "definite"}[assign[f]]
		case assign[f] == "fenced" && exploreSegOf(r.c.cfg, int64(i)) == exploreSegOf(r.c.cfg, int64(f)):
			// Above the fence in the fenced segment: never visible.
			want = "fenced"
		case assign[f] == "fenced" || assign[f] == "final":
			// A definite cause: unknown exactly when its write was issued.
			want = "fenced"
			if assign[f] == "final" {
				want = "definite"
			}
			if r.begunAtFail[s.block] {
				want = "unknown"
			}
		case assign[f] == "fenced-unknown":
			want = "fenced+unknown" // the cause's outcome is unknown
		default:
			want = "unknown" // the cause's outcome is unknown
		}
		if got := outcomeClass(s.err); got != want {
			fatal("entry %s: %s (%v), want %s", s.name, got, s.err, want)
		}
	}
	if f < 0 && len(r.ops) > 0 {
		fatal("operations outstanding after every write succeeded: %v", r.outstanding())
	}
}

// The cut decision, state by state: cut at once, schedule a flush, or wait
// for a write to finish.
func TestWriteCoreCutDecision(t *testing.T) {
	for _, tc := range []struct {
		name                string
		inflight, unstarted int
		batchBytes          int64
		waited              time.Duration
		want                string // "cut", "flush at <delay>", "wait"
	}{
		{name: "nothing in flight: a lone writer cuts at once", want: "cut"},
		{name: "a full batch is cut whatever is in flight", inflight: 3, unstarted: 2, batchBytes: 100, want: "cut"},
		{name: "in flight, free slot, young batch: flush when it has waited", inflight: 1, batchBytes: 10, waited: 4 * time.Millisecond, want: "flush at 10ms"},
		{name: "in flight, free slot, batch waited long enough", inflight: 1, batchBytes: 10, waited: 10 * time.Millisecond, want: "cut"},
		{name: "no free slot: the next finished write decides", inflight: 3, batchBytes: 10, waited: time.Second, want: "wait"},
		{name: "blocks waiting for slots count as busy", inflight: 2, unstarted: 1, batchBytes: 10, waited: time.Second, want: "wait"},
		{name: "a queued block alone keeps the batch", unstarted: 1, batchBytes: 10, waited: time.Millisecond, want: "flush at 10ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newWriteCore[string](coreConfig{MaxBlockBytes: 100, FlushDelay: 10 * time.Millisecond, Parallel: 3,
				RollMaxBytes: 1 << 30, RollMaxBlocks: 1000}, coreT0)
			c.inflight, c.unstarted = tc.inflight, tc.unstarted
			c.batch, c.batchBytes, c.batchStart = []string{"x"}, tc.batchBytes, coreT0
			c.maybeCut(coreT0.Add(tc.waited))
			got := "wait"
			switch {
			case len(c.batch) == 0:
				got = "cut"
			case !c.flushAt.IsZero():
				got = "flush at " + c.flushAt.Sub(coreT0).String()
			}
			if got != tc.want {
				t.Fatalf("%s, want %s", got, tc.want)
			}
		})
	}
}

// Retries back off exponentially up to the maximum, and give up (outcome
// unknown) when the next attempt would start after the retry timeout, or
// at once when the attempt's context ended or the core was stopped.
func TestWriteCoreRetries(t *testing.T) {
	transient := opResult{err: errors.New("transient")}
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		results []opResult // one per attempt, the last ends it
		message bool       // want gives the error's message too
		want    string
	}{
		{name: "success after retries", timeout: time.Second,
			results: []opResult{transient, transient, transient, {}},
			want:    "retry at +10ms, retry at +30ms, retry at +70ms, ok"},
		{name: "the backoff stops growing at its maximum", timeout: time.Second,
			results: []opResult{transient, transient, transient, transient, transient, {}},
			want:    "retry at +10ms, retry at +30ms, retry at +70ms, retry at +110ms, retry at +150ms, ok"},
		{name: "gives up when the next attempt would start after the timeout", timeout: 75 * time.Millisecond,
			results: []opResult{transient, transient, transient, transient},
			want:    "retry at +10ms, retry at +30ms, retry at +70ms, unknown after 4 attempts"},
		{name: "the attempt's context ended", timeout: time.Second,
			results: []opResult{transient, {err: errors.New("canceled"), ctxDone: true}},
			want:    "retry at +10ms, unknown after 2 attempts"},
		{name: "an attempt that runs out of time gives up with the failure before it", timeout: time.Second,
			results: []opResult{{err: errors.New("no space left on device")}, {err: errors.New("deadline exceeded"), ctxDone: true}},
			message: true,
			want:    "retry at +10ms, unknown after 2 attempts: write block 0 of segment 0 of log 7: gave up after 2 attempts: the last attempt ended with \"deadline exceeded\"; an earlier one: no space left on device"},
		{name: "fenced is final and definite", timeout: time.Second,
			results: []opResult{transient, {err: errors.Wrap(walerr.ErrFenced, "slot taken")}},
			want:    "retry at +10ms, fenced after 2 attempts"},
		{name: "an unknown-outcome error is never retried (a failed fsync)", timeout: time.Second,
			results: []opResult{{err: walerr.Mark(errors.New("fsync"), walerr.ErrUnknownOutcome)}},
			want:    "unknown after 1 attempts"},
		{name: "a final error is never retried", timeout: time.Second,
			results: []opResult{{err: errors.New("encode"), final: true}},
			want:    "definite after 1 attempts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newCoreRig(t, coreConfig{LogID: 7, MaxBlockBytes: 100, FlushDelay: time.Millisecond, Parallel: 1,
				RollMaxBytes: 1 << 30, RollMaxBlocks: 1000, RetryInitialBackoff: 10 * time.Millisecond,
				RetryMaxBackoff: 40 * time.Millisecond, RetryTimeout: tc.timeout})
			var b strings.Builder
			r.c.append(r.now, "a", 10)
			r.takeReady(&b)
			r.report(&b, "c0", "ok")
			var got []string
			for i, res := range tc.results {
				op, ok := r.ops["w0.0"]
				if !ok {
					t.Fatalf("attempt %d was not started", i+1)
				}
				delete(r.ops, "w0.0")
				if !res.final && !r.c.begin(op) {
					t.Fatal("begin refused")
				}
				r.c.done(r.now, op, res)
				r.takeReady(&b)
				if len(r.settledLog) > 0 {
					err := r.settledLog[0].err
					if err == nil {
						got = append(got, "ok")
					} else {
						got = append(got, fmt.Sprintf("%s after %d attempts", outcomeClass(err), op.attempt))
						if tc.message {
							got[len(got)-1] += ": " + err.Error()
						}
					}
					break
				}
				at := r.c.wake()
				got = append(got, "retry at "+r.at(at))
				r.now = at
				r.c.tick(r.now)
				r.takeReady(&b)
			}
			if s := strings.Join(got, ", "); s != tc.want {
				t.Fatalf("%s\nwant %s", s, tc.want)
			}
		})
	}
}
