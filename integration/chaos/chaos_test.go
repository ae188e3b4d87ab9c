package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/woodpecker-wal/woodpecker/integration/chaos/history"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// The short run, part of `go test ./...`: this many cycles per mode (50 in
// all), at least one of every kind. Quorum mode's cycles take longer: a
// LogStore fault costs the writers a recovery.
var shortCycles = map[string]int{modeMemory: 30, modeQuorum: 22, modeLocalFS: 20, modeJournaled: 23, modeQuorumShared: 20}

const shortCyclesText = "30 in memory mode, 22 in quorum mode, 23 in journaled mode, 20 in quorum-shared mode"

// The workload.
const (
	numLogs       = 3
	readerSlots   = 2                      // reader processes, each reading every log
	writeInterval = 100 * time.Millisecond // between bursts of appends of one writer
	writeBurst    = 5                      // appends per burst: 1 to this many (30 a second on average)
	writeWindow   = 8                      // appends in flight per writer
	readerIdle    = 3 * time.Second        // a finishing reader stops after this long without an entry
	// A log must accept writes again within progressLimit of a cycle's
	// faults healing, or it is wedged; after repairAfter the runner
	// starts a new writer, in case only the old one is stuck.
	progressLimit = 60 * time.Second
	repairAfter   = 20 * time.Second
)

// TestChaos starts real servers and client processes, runs a workload of
// several logs, injects faults from a seeded schedule, and at the end
// checks the history of every operation (package history). See the package
// documentation.
func TestChaos(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("child process")
	}
	cycles := *flagCycles
	seed := *flagSeed
	if seed == 0 {
		seed = rand.Uint64() >> 1
	}
	var modes []string
	for _, m := range strings.Split(*flagMode, ",") {
		switch m {
		case "both":
			modes = append(modes, modeMemory, modeQuorum)
		case "all":
			modes = append(modes, modeMemory, modeQuorum, modeJournaled, modeLocalFS, modeQuorumShared)
		case modeMemory, modeQuorum, modeJournaled, modeLocalFS, modeQuorumShared:
			modes = append(modes, m)
		default:
			t.Fatalf("-chaos.mode=%q: want memory, quorum, journaled, quorum-shared, localfs, both or all, or a comma-separated list", *flagMode)
		}
	}
	slices.Sort(modes)
	modes = slices.Compact(modes)
	fmt.Printf("chaos: seed %d, modes %s (rerun: go test ./integration/chaos -run 'TestChaos$' -chaos.seed=%d -chaos.cycles=%d -chaos.mode=%s)\n",
		seed, strings.Join(modes, ","), seed, cycles, *flagMode)
	t.Logf("seed %d", seed)
	if slices.ContainsFunc(modes, quorumMode) {
		woodpeckerBinary(t)
	}
	for _, mode := range modes {
		n := cycles
		if n <= 0 {
			n = shortCycles[mode]
		}
		t.Run(mode, func(t *testing.T) {
			runMode(t, mode, seed, n)
		})
	}
}

// runner drives one mode's run.
type runner struct {
	t    *testing.T
	c    *cluster
	mode string
	seed uint64
	rng  *rand.Rand // runtime choices (reader start positions), seeded too

	logs    []string
	epochs  []int64 // the last epoch handed out, per log
	spares  []*proc // a standby writer per log
	readers []*proc // by slot

	remembered map[string][]woodpecker.EntryID
	// need is, per log, the activation number (proc.active) of the first
	// writer of the current cycle's writer fault: recovery counts the
	// acknowledgements of writers activated since only.
	need map[int]int64
	// spans are the cycles run, for the timeline and the plot.
	spans []cycleSpan

	faults    map[kind]int
	recovery  map[kind][]time.Duration
	overlaps  int
	damageOK  int
	repairs   []string
	wedged    []string
	started   time.Time
	cyclesRun int

	// restarts are the LogStore restarts of the current cycle, which run
	// beside its later steps (plan, killLogStore).
	restarts sync.WaitGroup
}

func runMode(t *testing.T, mode string, seed uint64, cycles int) {
	// Each mode draws from its own stream of the seed, so that a mode
	// rerun alone (-chaos.mode) gets the schedule it had in a run of both.
	stream := map[string]uint64{modeMemory: 0, modeQuorum: 1, modeLocalFS: 2, modeJournaled: 3, modeQuorumShared: 4}[mode]
	dir := *flagHistory
	keep := dir != ""
	if keep {
		dir = filepath.Join(dir, mode)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) > 0 {
			t.Fatalf("-chaos.history: %s is not empty; remove it or give another folder", dir)
		}
	} else {
		d, err := os.MkdirTemp("", "woodpecker-chaos-"+mode+"-")
		if err != nil {
			t.Fatal(err)
		}
		dir = d
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("history files, process logs and report kept in %s", dir)
				return
			}
			_ = os.RemoveAll(dir)
		})
	}
	clock := history.NewClock()
	r := &runner{t: t, mode: mode, seed: seed, rng: rand.New(rand.NewPCG(seed, 1000+stream)),
		remembered: map[string][]woodpecker.EntryID{}, faults: map[kind]int{}, recovery: map[kind][]time.Duration{},
		started: time.Now()}
	r.c = newCluster(t, mode, dir, clock)
	sched := schedule(rand.New(rand.NewPCG(seed, stream)), mode, cycles, numLogs, readerSlots, defaultTiming)
	t.Logf("%s: servers up in %s; %d cycles", mode, time.Since(r.started).Round(time.Millisecond), len(sched))

	ctx := context.Background()
	for i := range numLogs {
		name := fmt.Sprintf("log%d", i)
		if err := r.c.client.CreateLog(ctx, name); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		r.logs = append(r.logs, name)
		r.epochs = append(r.epochs, 0)
		r.spares = append(r.spares, nil)
	}
	for i := range r.logs {
		r.startWriter(i, r.nextEpoch(i))
		r.spares[i] = r.startSpare(i)
	}
	for slot := range readerSlots {
		from := history.Earliest
		if slot == 1 {
			from = history.Latest
		}
		var sessions []sessionSpec
		for _, l := range r.logs {
			sessions = append(sessions, sessionSpec{Log: l, From: from})
		}
		r.readers = append(r.readers, r.c.startChild(childSpec{Role: roleReader, Sessions: sessions, Idle: readerIdle}))
	}
	if _, ok := r.settle(time.Now(), nil); !ok {
		r.fail("the logs never accepted writes before any fault")
	}

	faultsFrom := time.Now()
	for _, cy := range sched {
		if len(r.wedged) > 0 {
			break // a wedged log ends the faults; the history is still checked
		}
		if *flagTime > 0 && time.Since(faultsFrom) >= *flagTime {
			t.Logf("%s: -chaos.duration=%s reached after %d of %d cycles", mode, *flagTime, r.cyclesRun, len(sched))
			break
		}
		r.runCycle(cy)
	}
	r.final()
}

func (r *runner) fail(format string, args ...any) {
	r.t.Helper()
	r.t.Errorf(format, args...)
}

func (r *runner) nextEpoch(log int) int64 {
	r.epochs[log]++
	return r.epochs[log]
}

// startWriter starts a writer of log at epoch: the log's spare, when it is
// ready (a new spare starts then), else a new process.
func (r *runner) startWriter(log int, epoch int64) *proc {
	if sp := r.spares[log]; sp != nil && sp.activate(epoch) {
		r.spares[log] = r.startSpare(log)
		return sp
	}
	return r.c.startChild(childSpec{Role: roleWriter, Log: r.logs[log], Epoch: epoch, Interval: writeInterval,
		Burst: writeBurst, Window: writeWindow})
}

func (r *runner) startSpare(log int) *proc {
	return r.c.startChild(childSpec{Role: roleWriter, Log: r.logs[log], Interval: writeInterval, Burst: writeBurst,
		Window: writeWindow, Standby: true})
}

// liveWriters returns the log's writer processes that run and have not
// learnt they are fenced, oldest first.
func (r *runner) liveWriters(log int) []*proc {
	r.c.mu.Lock()
	var out []*proc
	for _, p := range r.c.procs {
		if p.role == roleWriter && p.log == r.logs[log] && p.alive() {
			out = append(out, p)
		}
	}
	r.c.mu.Unlock()
	out = slices.DeleteFunc(out, func(p *proc) bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.fenced || p.standby
	})
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (r *runner) newestWriter(log int) *proc {
	ws := r.liveWriters(log)
	if len(ws) == 0 {
		return nil
	}
	return ws[len(ws)-1]
}

// newReader starts a reader process for slot, its sessions starting from
// Earliest, Latest, or an id remembered from earlier acks (At, After).
func (r *runner) newReader(slot int) {
	var sessions []sessionSpec
	for _, l := range r.logs {
		s := sessionSpec{Log: l, From: history.Earliest}
		mem := r.remembered[l]
		switch k := r.rng.IntN(4); {
		case k == 1:
			s.From = history.Latest
		case k >= 2 && len(mem) > 0:
			id := mem[r.rng.IntN(len(mem))]
			s.From, s.FromID = history.At, &history.ID{Segment: id.Segment, Entry: id.Entry}
			if k == 3 {
				s.From = history.After
			}
		}
		sessions = append(sessions, s)
	}
	r.readers[slot] = r.c.startChild(childSpec{Role: roleReader, Sessions: sessions, Idle: readerIdle})
}

// step is an action of a cycle, at an offset from the cycle's start.
type step struct {
	at time.Duration
	do func()
}

// plan turns a fault into steps.
func (r *runner) plan(cy cycle, f fault) []step {
	c := r.c
	switch f.Kind {
	case killWriter:
		return []step{{0, func() {
			if w := r.newestWriter(f.Log); w != nil {
				w.kill()
			}
			r.need[f.Log] = r.startWriter(f.Log, r.nextEpoch(f.Log)).activeSince()
		}}}
	case pauseWriter:
		var w *proc
		steps := []step{{0, func() {
			if w = r.newestWriter(f.Log); w != nil {
				w.pause()
			}
		}}}
		if f.Replace {
			steps = append(steps, step{300 * time.Millisecond, func() {
				r.need[f.Log] = r.startWriter(f.Log, r.nextEpoch(f.Log)).activeSince()
			}})
		}
		return append(steps, step{f.Hold, func() {
			if w != nil {
				w.resume()
			}
		}})
	case sameEpoch:
		return []step{{0, func() {
			e := r.nextEpoch(f.Log)
			r.need[f.Log] = r.startWriter(f.Log, e).activeSince()
			r.startWriter(f.Log, e)
		}}}
	case racingEpochs:
		return []step{{0, func() {
			e1 := r.nextEpoch(f.Log)
			e2 := r.nextEpoch(f.Log)
			r.need[f.Log] = r.startWriter(f.Log, e2).activeSince()
			r.startWriter(f.Log, e1)
		}}}
	case killReader:
		return []step{{0, func() {
			r.readers[f.Target].kill()
			r.newReader(f.Target)
		}}}
	case pauseReader:
		var p *proc
		return []step{
			{0, func() { p = r.readers[f.Target]; p.pause() }},
			{f.Hold, func() { p.resume() }},
		}
	case killLogStore:
		ls := c.logstores[f.Target]
		return []step{
			{0, ls.kill},
			{f.Hold, func() {
				// The restart may need a link another fault of the cycle
				// holds down (logstore>etcd: a LogStore registers before
				// it listens). It runs beside the later steps, so that
				// they heal that link on time, and the cycle waits for it
				// before the faults count as healed. (Run in turn, it
				// waited a minute behind the heal, gave up and left the
				// LogStore down: with 2 of 3 registered, no segment could
				// be placed and a log wedged; seed 1206020, quorum mode,
				// cycle 430.)
				r.restarts.Add(1)
				go func() {
					defer r.restarts.Done()
					if err := ls.start(); err != nil {
						r.fail("cycle %d: %v", cy.N, err)
					}
				}()
			}},
		}
	case killLogStores:
		// Every replica down at once: with journals, what they
		// acknowledged comes back with them.
		return []step{
			{0, func() {
				for _, ls := range c.logstores {
					ls.kill()
				}
			}},
			{f.Hold, func() {
				for _, ls := range c.logstores {
					r.restarts.Add(1)
					go func() { // beside the later steps, as for killLogStore
						defer r.restarts.Done()
						if err := ls.start(); err != nil {
							r.fail("cycle %d: %v", cy.N, err)
						}
					}()
				}
			}},
		}
	case pauseLogStore:
		ls := c.logstores[f.Target]
		return []step{{0, ls.pause}, {f.Hold, ls.resume}}
	case killMinIO:
		return []step{{0, c.minio.Kill}, {f.Hold, c.minio.Start}}
	case killEtcd:
		return []step{{0, c.etcd.Kill}, {f.Hold, c.etcd.Start}}
	case pauseMinIO:
		return []step{{0, c.minio.Pause}, {f.Hold, c.minio.Resume}}
	case pauseEtcd:
		return []step{{0, c.etcd.Pause}, {f.Hold, c.etcd.Resume}}
	case s3Errors, s3SlowPuts:
		p := c.s3proxies[linksOf(r.mode)[f.Target]]
		return []step{
			{0, func() { p.Set(s3Fault{ErrorPct: f.ErrorPct, PutDelay: f.PutDelay}) }},
			{f.Hold, p.Heal},
		}
	case netDrop, netOneWay, netLatency, netBandwidth, netReset:
		p := c.proxies[linksOf(r.mode)[f.Target]]
		var nf netFault
		switch f.Kind {
		case netDrop:
			nf.StallUp, nf.StallDown = true, true
		case netOneWay:
			nf.StallUp, nf.StallDown = f.Up, !f.Up
		case netLatency:
			nf.Latency = f.Latency
		case netBandwidth:
			nf.Rate = f.Rate
		case netReset:
			nf.Refuse = true
		}
		return []step{
			{0, func() {
				p.Set(nf)
				if f.Kind == netReset {
					p.Reset()
				}
			}},
			{f.Hold, p.Heal},
		}
	case objCorrupt, objDelete:
		return []step{{0, func() {
			if err := r.damage(cy.N, f); err != nil {
				r.fail("cycle %d %s: %v", cy.N, f.String(r.mode), err)
				return
			}
			r.damageOK++
		}}}
	}
	r.t.Fatalf("no plan for %s", f.Kind)
	return nil
}

// runCycle injects the cycle's faults, heals them after their holds, and
// waits until every log accepts writes again.
func (r *runner) runCycle(cy cycle) {
	var steps []step
	for _, f := range cy.Faults {
		steps = append(steps, r.plan(cy, f)...)
		r.faults[f.Kind]++
	}
	if len(cy.Faults) > 1 {
		r.overlaps++
	}
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].at < steps[j].at })
	r.need = map[int]int64{}
	start := time.Now()
	injected := r.c.clock.Now()
	for _, s := range steps {
		if d := time.Until(start.Add(s.at)); d > 0 {
			time.Sleep(d)
		}
		s.do()
	}
	r.restarts.Wait()
	healed := time.Now()
	healedAt := r.c.clock.Now()
	took, ok := r.settle(healed, r.need)
	r.timeline(cycleSpan{N: cy.N, Faults: cy.String(r.mode), Injected: injected, Healed: healedAt, Settled: r.c.clock.Now()})
	for _, f := range cy.Faults {
		r.recovery[f.Kind] = append(r.recovery[f.Kind], took)
	}
	r.cyclesRun++
	r.t.Logf("cycle %d: %s; writes again after %s", cy.N, cy.String(r.mode), took.Round(time.Millisecond))
	if !ok {
		return
	}
	for _, f := range cy.Faults {
		if f.Kind == killLogStore || f.Kind == killLogStores {
			r.barrier(cy)
			break
		}
	}
}

// cycleSpan is a line of timeline.ndjson: when a cycle's faults were
// injected and healed, and when every log accepted writes again, on the
// history's clock (nanoseconds), to read the history files against.
type cycleSpan struct {
	N        int    `json:"cycle"`
	Faults   string `json:"faults"`
	Injected int64  `json:"injected"`
	Healed   int64  `json:"healed"`
	Settled  int64  `json:"settled"`
}

func (r *runner) timeline(s cycleSpan) {
	r.spans = append(r.spans, s)
	f, err := os.OpenFile(filepath.Join(r.c.dir, "timeline.ndjson"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	line, _ := json.Marshal(s)
	_, _ = f.Write(append(line, '\n'))
}

// settle waits until every log has acknowledged a write after healed, from
// a writer activated as need[log] or later (0: any; the new writer of a
// writer fault, then any repair), and returns how long the slowest took. A log whose writers
// all ended (fenced, killed) gets a new writer at once; one that makes no
// progress for repairAfter gets one too (a repair, reported); one that makes
// none for progressLimit is wedged.
func (r *runner) settle(healed time.Time, need map[int]int64) (time.Duration, bool) {
	repaired := make([]bool, len(r.logs))
	for {
		done := true
		var slowest time.Duration
		for i, l := range r.logs {
			if at, ok := r.ackedSince(i, healed, need[i]); ok {
				slowest = max(slowest, at.Sub(healed))
				continue
			}
			done = false
			if len(r.liveWriters(i)) == 0 {
				r.startWriter(i, r.nextEpoch(i))
				continue
			}
			if since := time.Since(healed); since > repairAfter && !repaired[i] {
				repaired[i] = true
				r.repairs = append(r.repairs, fmt.Sprintf("%s after cycle %d", l, r.cyclesRun+1))
				r.t.Logf("%s: no write acknowledged for %s after the faults healed: starting a new writer", l, since.Round(time.Millisecond))
				r.startWriter(i, r.nextEpoch(i))
			}
			if time.Since(healed) > progressLimit {
				r.wedged = append(r.wedged, l)
				r.fail("%s is wedged: no write acknowledged within %s of the faults healing (live writers %v)",
					l, progressLimit, r.liveWriters(i))
				return time.Since(healed), false
			}
		}
		if done {
			for _, l := range r.logs {
				r.c.mu.Lock()
				id := r.c.acks[l].last
				r.c.mu.Unlock()
				r.remembered[l] = append(r.remembered[l], id)
			}
			return slowest, true
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ackedSince returns when the first writer of log numbered minProc or
// higher that acknowledged a write after t last did so.
func (r *runner) ackedSince(log int, t time.Time, minActive int64) (time.Time, bool) {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	var first time.Time
	for _, p := range r.c.procs {
		if p.role != roleWriter || p.log != r.logs[log] {
			continue
		}
		p.mu.Lock()
		at, active := p.lastAck, p.active
		p.mu.Unlock()
		if active == 0 || active < minActive {
			continue
		}
		if at.After(t) && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first, !first.IsZero()
}

// barrier waits until every segment open when it was called is sealed
// (uploaded to object storage). QuorumBuffer keeps acknowledged blocks on 2
// of 3 LogStores until they are uploaded; a LogStore that restarted has
// lost its copies, so a second LogStore fault before the upload would be two
// faults at once, beyond what the mode tolerates.
func (r *runner) barrier(cy cycle) {
	ctx := context.Background()
	type segKey struct {
		log string
		id  int64
	}
	open := map[segKey]bool{}
	deadline := time.Now().Add(progressLimit)
	for first := true; ; first = false {
		pending := 0
		for _, l := range r.logs {
			lg, err := r.c.client.OpenLog(ctx, l)
			if err != nil {
				pending++
				continue
			}
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			st, err := lg.Stats(sctx)
			cancel()
			if err != nil {
				pending++
				continue
			}
			for _, sg := range st.Segments {
				k := segKey{l, sg.ID}
				if first && !sg.Sealed {
					open[k] = true
				}
				if open[k] && !sg.Sealed {
					pending++
				}
			}
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			r.fail("cycle %d: %d segments open when a LogStore restarted were not sealed within %s", cy.N, pending, progressLimit)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// final heals everything, stops the writers, lets a final writer recover
// every log, lets the readers and final readers read to the end, and checks
// the history.
func (r *runner) final() {
	t, c := r.t, r.c
	for _, p := range c.proxies {
		p.Heal()
	}
	for _, ls := range c.logstores {
		ls.resume()
		if !ls.alive() {
			if err := ls.start(); err != nil {
				r.fail("final: %v", err)
			}
		}
	}
	c.mu.Lock()
	procs := make([]*proc, 0, len(c.procs))
	for _, p := range c.procs {
		procs = append(procs, p)
	}
	c.mu.Unlock()
	sort.Slice(procs, func(i, j int) bool { return procs[i].id < procs[j].id })
	for _, p := range procs {
		p.resume()
	}
	faultsEnd := time.Now()

	// Writers stop appending and wait for what they have in flight.
	var wg sync.WaitGroup
	for _, p := range procs {
		if p.role == roleWriter && p.alive() {
			wg.Add(1)
			go func() { defer wg.Done(); p.finish(appendTimeout + 20*time.Second) }()
		}
	}
	wg.Wait()
	t.Logf("final: writers stopped in %s", time.Since(faultsEnd).Round(time.Millisecond))

	// A final writer recovers every log and appends one entry.
	ctx := context.Background()
	phase := time.Now()
	for i, l := range r.logs {
		r.finalWrite(ctx, i, l)
	}
	t.Logf("final: every log recovered by a final writer in %s", time.Since(phase).Round(time.Millisecond))
	phase = time.Now()

	// The readers read to the end, and so do new ones from the start and
	// from remembered ids.
	for _, p := range procs {
		if p.role == roleReader && p.alive() {
			wg.Add(1)
			go func() { defer wg.Done(); p.finish(readerIdle + 2*time.Minute) }()
		}
	}
	fr := &child{spec: childSpec{Proc: 0, Idle: readerIdle}, clock: c.clock, rec: c.rec, stop: make(chan struct{}),
		out: func(kind string, args ...any) {
			if kind == lineError || kind == lineReadErr {
				c.problem("final reader: %s", fmt.Sprint(args...))
			}
		}}
	close(fr.stop)
	atLog := r.rng.IntN(len(r.logs))
	for li, l := range r.logs {
		starts := []sessionSpec{{Log: l, From: history.Earliest}}
		if mem := r.remembered[l]; len(mem) > 0 && li == atLog {
			id := mem[r.rng.IntN(len(mem))]
			starts = append(starts, sessionSpec{Log: l, From: history.At, FromID: &history.ID{Segment: id.Segment, Entry: id.Entry}})
		}
		for k, s := range starts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				lg, err := c.client.OpenLog(ctx, l)
				if err != nil {
					c.problem("final reader of %s: %v", l, err)
					return
				}
				rs := &readSession{c: fr, name: fmt.Sprintf("p0/final-%s-%d", l, k), spec: s}
				if done, err := rs.run(lg); err != nil || !done {
					c.problem("final reader %s of %s did not reach the end (%v)", rs.name, l, err)
				}
			}()
		}
	}
	wg.Wait()
	t.Logf("final: readers reached the end in %s", time.Since(phase).Round(time.Millisecond))
	_ = c.rec.Close()
	finalTook := time.Since(faultsEnd)

	// Check.
	paths, err := filepath.Glob(filepath.Join(c.dir, "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := history.LoadFiles(paths...)
	if err != nil {
		t.Fatalf("load history: %v", err)
	}
	checkStart := time.Now()
	rep := history.Check(h)
	report := r.report(rep, len(h), finalTook, time.Since(checkStart))
	t.Log("\n" + report)
	_ = os.WriteFile(filepath.Join(c.dir, "report.txt"), []byte(report), 0o644)
	if err := plotSVG(filepath.Join(c.dir, "chaos.svg"), h, r.spans, r.logs); err != nil {
		t.Logf("plot: %v", err)
	}
	for _, p := range r.childRaces() {
		c.problem("%s", p)
	}
	c.mu.Lock()
	problems := slices.Clone(c.problems)
	c.mu.Unlock()
	for _, p := range problems {
		r.fail("%s", p)
	}
	if !rep.OK() {
		r.fail("history check failed (seed %d, mode %s): %v", r.seed, r.mode, rep.Err())
	}
	if rep.Counts.Acked == 0 {
		r.fail("no append was acknowledged: the run tested nothing")
	}
}

// finalWrite opens a writer of the next epoch on log i (recovering what
// the last writers left), appends one entry and closes it, retrying for
// progressLimit.
func (r *runner) finalWrite(ctx context.Context, i int, l string) {
	c := r.c
	lg, err := c.client.OpenLog(ctx, l)
	if err != nil {
		r.fail("final writer of %s: %v", l, err)
		return
	}
	epoch := r.nextEpoch(i)
	deadline := time.Now().Add(progressLimit)
	for n := 0; ; n++ {
		name := fmt.Sprintf("p0/final-%s-%d", l, n)
		inv := c.clock.Now()
		octx, cancel := context.WithTimeout(ctx, 20*time.Second)
		w, err := lg.OpenWriter(octx, epoch)
		cancel()
		o := outcome(err)
		if o == history.Fail {
			o = history.Unknown
		}
		c.record(history.Record{Log: l, Kind: history.Open, Invoke: inv, Complete: c.clock.Now(), Outcome: o,
			Error: errText(err), Writer: name, Epoch: epoch})
		if err == nil {
			value := fmt.Sprintf("p0-final-%s-%d", l, n)
			rec := history.Record{Log: l, Kind: history.Append, Writer: name, Epoch: epoch, Value: value, Invoke: c.clock.Now()}
			actx, cancel := context.WithTimeout(ctx, appendTimeout)
			id, aerr := w.Append(actx, makePayload(value))
			cancel()
			rec.Complete, rec.Outcome, rec.Error = c.clock.Now(), outcome(aerr), errText(aerr)
			if aerr == nil {
				rec.ID = toID(id)
			}
			c.record(rec)
			cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			cerr := w.Close(cctx)
			cancel()
			if aerr == nil && cerr == nil {
				return
			}
			err = aerr
			if err == nil {
				err = cerr
			}
		}
		if time.Now().After(deadline) {
			r.wedged = append(r.wedged, l)
			r.fail("final writer of %s: no successful open, append and close within %s after the faults ended: %v", l, progressLimit, err)
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// childRaces returns the data races children reported in their logs (the
// children run the race-enabled test binary under go test -race).
func (r *runner) childRaces() []string {
	paths, _ := filepath.Glob(filepath.Join(r.c.dir, "p*.log"))
	var out []string
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if i := strings.Index(string(data), "WARNING: DATA RACE"); i >= 0 {
			end := min(len(data), i+3000)
			out = append(out, fmt.Sprintf("data race in child %s:\n%s", filepath.Base(p), data[i:end]))
		}
		if i := strings.Index(string(data), "panic:"); i >= 0 {
			end := min(len(data), i+3000)
			out = append(out, fmt.Sprintf("panic in child %s:\n%s", filepath.Base(p), data[i:end]))
		}
	}
	return out
}

func (r *runner) report(rep history.Report, records int, finalTook, checkTook time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "chaos %s: seed %d, %d cycles (%d with two overlapping faults) in %s; final recovery and reads %s; check of %d records %s\n",
		r.mode, r.seed, r.cyclesRun, r.overlaps, time.Since(r.started).Round(time.Second), finalTook.Round(time.Millisecond),
		records, checkTook.Round(time.Millisecond))
	fmt.Fprintf(&b, "faults (count, time until every log acknowledged a write again after the fault healed: median / max):\n")
	kinds := kindsOf(r.mode)
	for _, k := range kinds {
		d := slices.Clone(r.recovery[k])
		slices.Sort(d)
		med, mx := time.Duration(0), time.Duration(0)
		if len(d) > 0 {
			med, mx = d[len(d)/2], d[len(d)-1]
		}
		fmt.Fprintf(&b, "  %-15s %4d  %8s / %8s\n", k, r.faults[k], med.Round(time.Millisecond), mx.Round(time.Millisecond))
	}
	var missing []string
	for _, k := range kinds {
		if r.faults[k] == 0 {
			missing = append(missing, string(k))
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(&b, "kinds not run: %s\n", strings.Join(missing, ", "))
	}
	cn := rep.Counts
	fmt.Fprintf(&b, "entries: acked %d, failed %d, unknown %d (visible %d, invisible %d), unrecorded %d; read %d, deliveries %d by %d readers\n",
		cn.Acked, cn.Failed, cn.Unknown, cn.UnknownVisible, cn.UnknownInvisible, cn.Unrecorded, cn.Read, cn.Deliveries, cn.Readers)
	fmt.Fprintf(&b, "lost %d, vanished %d, duplicated %d, wedged logs %d, writer repairs %d, damage checks passed %d\n",
		cn.Lost, cn.Vanished, cn.Duplicated, len(r.wedged), len(r.repairs), r.damageOK)
	r.c.mu.Lock()
	if len(r.c.readErrs) > 0 {
		var errs []string
		for e, n := range r.c.readErrs {
			errs = append(errs, fmt.Sprintf("%dx %s", n, e))
		}
		sort.Strings(errs)
		fmt.Fprintf(&b, "reader errors (sessions resumed after them): %s\n", strings.Join(errs, "; "))
	}
	r.c.mu.Unlock()
	if !rep.OK() {
		lines := strings.Split(strings.TrimRight(rep.String(), "\n"), "\n")
		if len(lines) > 40 {
			lines = append(lines[:40], fmt.Sprintf("... (%d more lines)", len(lines)-40))
		}
		b.WriteString(strings.Join(lines, "\n"))
		b.WriteByte('\n')
	} else {
		b.WriteString("history check: no violations\n")
	}
	fmt.Fprintf(&b, "rerun: go test ./integration/chaos -run 'TestChaos$/%s' -chaos.mode=%s -chaos.seed=%d -chaos.cycles=%d\n",
		r.mode, r.mode, r.seed, r.cyclesRun)
	return b.String()
}
