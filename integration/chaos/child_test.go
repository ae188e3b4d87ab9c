package chaos

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/integration/chaos/history"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// childEnv holds the JSON childSpec of a child process of TestChaos.
const childEnv = "WOODPECKER_CHAOS_CHILD"

// Roles of child processes.
const (
	roleWriter = "writer"
	roleReader = "reader"
)

// childSpec tells a child process what to do.
type childSpec struct {
	Role string `json:"role"`
	// Proc is the process number in the history; values appended are
	// "p<Proc>-<seq>", unique in the run.
	Proc int `json:"proc"`
	// Config is the path of the client's YAML configuration.
	Config string `json:"config"`
	// Origin is the origin of the run's history.Clock.
	Origin int64 `json:"origin"`
	// History is the path of the history file to create.
	History string `json:"history"`

	// Writer: the log, the epoch, the pace of appends (every Interval, a
	// burst of 1 to Burst) and how many may be in flight. A Standby writer
	// connects, opens the log, prints READY and waits for a line
	// "GO <epoch>" on stdin before it opens its writer at that epoch: a warm
	// spare, so that a writer fault measures the engine's takeover rather
	// than a process start.
	Log      string        `json:"log,omitempty"`
	Epoch    int64         `json:"epoch,omitempty"`
	Interval time.Duration `json:"interval,omitempty"`
	Burst    int           `json:"burst,omitempty"`
	Window   int           `json:"window,omitempty"`
	Standby  bool          `json:"standby,omitempty"`

	// Reader: the sessions to run, and how long a session must have
	// delivered nothing before it stops once told to finish.
	Sessions []sessionSpec `json:"sessions,omitempty"`
	Idle     time.Duration `json:"idle,omitempty"`
}

// sessionSpec is where a reader session starts.
type sessionSpec struct {
	Log    string            `json:"log"`
	From   history.StartMode `json:"from"`
	FromID *history.ID       `json:"from_id,omitempty"`
}

// Lines a child prints on stdout for the runner.
const (
	lineReady   = "READY"   // READY: a standby writer waits for GO
	lineAck     = "ACK"     // ACK <log> <id>: the newest id acknowledged (at most every 50ms)
	lineOpen    = "OPEN"    // OPEN <log> <epoch>: a writer opened
	lineFenced  = "FENCED"  // FENCED <log>: the writer learnt it is fenced and stops
	lineReadErr = "READERR" // READERR <log> <error>: a reader session failed
	lineError   = "ERROR"   // ERROR <text>: something the runner must fail on
)

// TestChaosChild is a child process of TestChaos; it does nothing in a
// normal test run.
func TestChaosChild(t *testing.T) {
	raw := os.Getenv(childEnv)
	if raw == "" {
		t.Skip("runs only as a child process of TestChaos")
	}
	var spec childSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintf(os.Stderr, "chaos child: decode spec: %v\n", err)
		os.Exit(3)
	}
	if err := runChild(spec); err != nil {
		fmt.Fprintf(os.Stderr, "chaos child %d (%s): %+v\n", spec.Proc, spec.Role, err)
		emit(lineError, fmt.Sprintf("child %d (%s): %v", spec.Proc, spec.Role, err))
		os.Exit(3)
	}
	// Exit at once: no test framework epilogue (leak checks) for a
	// process whose clients were closed on purpose or abandoned.
	os.Exit(0)
}

var stdoutMu sync.Mutex

// emit prints one line for the runner.
func emit(kind string, args ...any) {
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	fmt.Fprintln(os.Stdout, append([]any{kind}, args...)...)
}

// child is the state shared by a child process's goroutines.
type child struct {
	spec  childSpec
	clock history.Clock
	rec   *history.Recorder
	// stop is closed when the runner closes the child's stdin: writers
	// stop appending, readers finish.
	stop chan struct{}
	// goEpoch receives the epoch of a "GO <epoch>" line on stdin.
	goEpoch chan int64
	// out, when set, replaces emit (the runner's own final readers).
	out func(kind string, args ...any)
}

func (c *child) emit(kind string, args ...any) {
	if c.out != nil {
		c.out(kind, args...)
		return
	}
	emit(kind, args...)
}

func runChild(spec childSpec) error {
	cfg, err := options.Load(spec.Config)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	rec, err := history.Create(spec.History)
	if err != nil {
		return err
	}
	defer rec.Close()
	c := &child{spec: spec, clock: history.ClockAt(spec.Origin), rec: rec, stop: make(chan struct{}),
		goEpoch: make(chan int64, 1)}
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			var e int64
			if _, err := fmt.Sscanf(sc.Text(), "GO %d", &e); err == nil {
				select {
				case c.goEpoch <- e:
				default:
				}
			}
		}
		close(c.stop)
	}()
	cli, err := c.newClient(cfg)
	if err != nil || cli == nil {
		return err
	}
	defer cli.Close()
	switch spec.Role {
	case roleWriter:
		return c.runWriter(cli)
	case roleReader:
		return c.runReader(cli)
	}
	return errors.Newf("unknown role %q", spec.Role)
}

func (c *child) stopped() bool {
	select {
	case <-c.stop:
		return true
	default:
		return false
	}
}

// sleep waits d or until the child is told to stop; false if it was.
func (c *child) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.stop:
		return false
	}
}

// newClient connects, retrying while etcd or the object store is down. It
// returns nil, nil when told to stop first.
func (c *child) newClient(cfg options.Config) (*woodpecker.Client, error) {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cli, err := woodpecker.New(ctx, cfg)
		cancel()
		if err == nil {
			return cli, nil
		}
		if !c.sleep(300 * time.Millisecond) {
			return nil, nil
		}
	}
}

// openLog opens name, retrying while servers are down; nil when told to
// stop first.
func (c *child) openLog(cli *woodpecker.Client, name string) (*woodpecker.Log, error) {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		l, err := cli.OpenLog(ctx, name)
		cancel()
		switch {
		case err == nil:
			return l, nil
		case errors.Is(err, woodpecker.ErrLogNotFound):
			return nil, err
		}
		if !c.sleep(300 * time.Millisecond) {
			return nil, nil
		}
	}
}

func (c *child) record(r history.Record) {
	r.Process = c.spec.Proc
	if err := c.rec.Record(r); err != nil {
		// The history is the test's evidence: a record that cannot be
		// written must fail the run, not vanish.
		c.emit(lineError, fmt.Sprintf("child %d: record: %v", c.spec.Proc, err))
	}
}

// outcome classifies an operation's error as the history does: an unknown
// outcome (or a timeout) first, then fencing, then a definite failure.
func outcome(err error) history.Outcome {
	switch {
	case err == nil:
		return history.OK
	case errors.Is(err, woodpecker.ErrUnknownOutcome),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return history.Unknown
	case errors.Is(err, woodpecker.ErrFenced):
		return history.Fenced
	}
	return history.Fail
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) > 1000 {
		s = s[:1000] + "..."
	}
	return s
}

// makePayload returns the entry of value: the value, '|', then 40 to 160
// bytes derived from it, so a reader checks every byte it gets.
func makePayload(value string) []byte {
	h := fnv.New64a()
	h.Write([]byte(value))
	x := h.Sum64() | 1
	n := 40 + int(x%121)
	p := make([]byte, 0, len(value)+1+n)
	p = append(p, value...)
	p = append(p, '|')
	for range n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		p = append(p, 'a'+byte(x%26))
	}
	return p
}

// parsePayload returns the value of an entry made by makePayload.
func parsePayload(p []byte) (string, error) {
	i := bytes.IndexByte(p, '|')
	if i <= 0 {
		return "", errors.Newf("payload %.40q holds no value", p)
	}
	v := string(p[:i])
	if !bytes.Equal(makePayload(v), p) {
		return "", errors.Newf("payload of %q (%d bytes) differs from what was written", v, len(p))
	}
	return v, nil
}

func toID(id woodpecker.EntryID) *history.ID {
	return &history.ID{Segment: id.Segment, Entry: id.Entry}
}

// Writer

// appendTimeout bounds how long a writer waits for one append's outcome;
// then the outcome is unknown.
const appendTimeout = 20 * time.Second

// runWriter opens the log's writer at the spec's epoch and appends unique
// values at the spec's pace until told to stop or fenced. After a failure
// that is not fencing it opens the writer again at the same epoch, as a
// database would with its term. A writer that learns it is fenced makes a
// few more appends (a zombie that keeps writing: they must all fail), then
// the process exits.
func (c *child) runWriter(cli *woodpecker.Client) error {
	l, err := c.openLog(cli, c.spec.Log)
	if err != nil || l == nil {
		return err
	}
	if c.spec.Standby {
		c.emit(lineReady)
		select {
		case c.spec.Epoch = <-c.goEpoch:
		case <-c.stop:
			return nil
		}
	}
	acks := &ackFeed{log: c.spec.Log}
	go acks.run(c.stop)
	var seq int64
	for opens := 0; !c.stopped(); opens++ {
		name := fmt.Sprintf("p%d/w%d", c.spec.Proc, opens)
		inv := c.clock.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		w, err := l.OpenWriter(ctx, c.spec.Epoch)
		cancel()
		o := outcome(err)
		if o == history.Fail {
			o = history.Unknown // a failed open may have bumped the epoch
		}
		c.record(history.Record{Log: c.spec.Log, Kind: history.Open, Invoke: inv, Complete: c.clock.Now(),
			Outcome: o, Error: errText(err), Writer: name, Epoch: c.spec.Epoch})
		if err != nil {
			if o == history.Fenced {
				c.emit(lineFenced, c.spec.Log)
				return nil
			}
			if !c.sleep(200 * time.Millisecond) {
				return nil
			}
			continue
		}
		c.emit(lineOpen, c.spec.Log, c.spec.Epoch)
		fenced := c.appendLoop(w, name, &seq, acks)
		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
		_ = w.Close(ctx)
		cancel()
		if fenced {
			c.emit(lineFenced, c.spec.Log)
			return nil
		}
	}
	return nil
}

// appendLoop appends until the writer fails or the child is told to stop,
// and reports whether the writer was fenced.
func (c *child) appendLoop(w *woodpecker.Writer, name string, seq *int64, acks *ackFeed) (fenced bool) {
	var (
		mu       sync.Mutex
		failed   bool
		isFenced bool
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		failed = true
		if outcome(err) == history.Fenced {
			isFenced = true
		}
	}
	state := func() (bool, bool) {
		mu.Lock()
		defer mu.Unlock()
		return failed, isFenced
	}
	window := make(chan struct{}, max(c.spec.Window, 1))
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(c.spec.Interval)
	defer tick.Stop()
	zombie := 0
	for {
		select {
		case <-c.stop:
			wg.Wait()
			_, f := state()
			return f
		case <-tick.C:
		}
		for range 1 + rand.IntN(max(c.spec.Burst, 1)) {
			if failed, f := state(); failed {
				// A fenced writer keeps writing a little: every append
				// must fail, and none may become visible.
				if !f || zombie >= 3 {
					wg.Wait()
					_, f = state()
					return f
				}
				zombie++
			}
			select {
			case window <- struct{}{}:
			default:
				continue // as many appends in flight as allowed
			}
			c.append(w, name, seq, acks, window, &wg, fail)
		}
	}
}

// append appends the next value and records its outcome when known; it
// releases its slot of window then.
func (c *child) append(w *woodpecker.Writer, name string, seq *int64, acks *ackFeed, window chan struct{},
	wg *sync.WaitGroup, fail func(error)) {
	*seq++
	value := fmt.Sprintf("p%d-%d", c.spec.Proc, *seq)
	r := history.Record{Log: c.spec.Log, Kind: history.Append, Writer: name, Epoch: c.spec.Epoch, Value: value}
	r.Invoke = c.clock.Now()
	ctx, cancel := context.WithTimeout(context.Background(), appendTimeout)
	fut, err := w.AppendAsync(ctx, makePayload(value))
	if err != nil {
		cancel()
		r.Complete, r.Outcome, r.Error = c.clock.Now(), outcome(err), errText(err)
		c.record(r)
		<-window
		fail(err)
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer cancel()
		id, err := fut.Wait(ctx)
		r.Complete, r.Outcome, r.Error = c.clock.Now(), outcome(err), errText(err)
		if err == nil {
			r.ID = toID(id)
		}
		c.record(r)
		<-window
		if err != nil {
			fail(err)
			return
		}
		acks.note(id)
	}()
}

// ackFeed tells the runner the newest acknowledged id, at most every 50ms.
type ackFeed struct {
	log     string
	mu      sync.Mutex
	last    woodpecker.EntryID
	pending bool
}

func (a *ackFeed) note(id woodpecker.EntryID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.pending || a.last.Less(id) {
		a.last, a.pending = id, true
	}
}

func (a *ackFeed) run(stop <-chan struct{}) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		a.mu.Lock()
		id, ok := a.last, a.pending
		a.pending = false
		a.mu.Unlock()
		if ok {
			emit(lineAck, a.log, id.String())
		}
	}
}

// Reader

// runReader runs the spec's sessions until told to finish; then each reads
// until it has delivered nothing for spec.Idle and records that it reached
// the end (EndAt).
func (c *child) runReader(cli *woodpecker.Client) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(c.spec.Sessions))
	for k, s := range c.spec.Sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.runSessions(cli, k, s); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// runSessions runs reader sessions on one log: the first from s; after a
// reader fails, the next from after the last entry delivered (a remembered
// id), or from s again when nothing was delivered.
func (c *child) runSessions(cli *woodpecker.Client, k int, s sessionSpec) error {
	l, err := c.openLog(cli, s.Log)
	if err != nil || l == nil {
		return err
	}
	var last *history.ID
	for attempt := 0; !c.stopped(); attempt++ {
		if last != nil {
			s = sessionSpec{Log: s.Log, From: history.After, FromID: last}
		}
		rs := &readSession{c: c, name: fmt.Sprintf("p%d/r%d.%d", c.spec.Proc, k, attempt), spec: s}
		done, err := rs.run(l)
		if err != nil {
			return err
		}
		if rs.last != nil {
			last = rs.last
		}
		if done {
			return nil
		}
		if !c.sleep(200 * time.Millisecond) {
			return nil
		}
	}
	return nil
}

// readSession is one reader (one OpenReader), recorded in chunks.
type readSession struct {
	c    *child
	name string
	spec sessionSpec

	mu      sync.Mutex
	invoke  int64 // of the chunk being gathered
	entries []history.Delivery
	lastAt  int64 // when the last entry was delivered (or the reader opened)
	last    *history.ID
}

func startPosition(s sessionSpec) woodpecker.StartPosition {
	switch s.From {
	case history.Latest:
		return woodpecker.Latest()
	case history.At:
		return woodpecker.At(woodpecker.EntryID{Segment: s.FromID.Segment, Entry: s.FromID.Entry})
	case history.After:
		return woodpecker.After(woodpecker.EntryID{Segment: s.FromID.Segment, Entry: s.FromID.Entry})
	}
	return woodpecker.Earliest()
}

func (rs *readSession) base() history.Record {
	return history.Record{Log: rs.spec.Log, Kind: history.Read, Reader: rs.name, From: rs.spec.From, FromID: rs.spec.FromID}
}

// run opens the reader and reads until it fails (done false) or the child
// is told to finish and the reader went idle (done true). A non-nil error
// is one the runner must fail on.
func (rs *readSession) run(l *woodpecker.Log) (done bool, err error) {
	c := rs.c
	inv := c.clock.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	r, err := l.OpenReader(ctx, startPosition(rs.spec))
	cancel()
	if err != nil {
		rec := rs.base()
		rec.Invoke, rec.Complete, rec.Outcome, rec.Error = inv, c.clock.Now(), outcome(err), errText(err)
		c.record(rec)
		c.emit(lineReadErr, rs.spec.Log, strings.ReplaceAll(errText(err), "\n", " "))
		return false, nil
	}
	defer r.Close()
	opened := c.clock.Now()
	first := rs.base()
	first.Invoke, first.Complete, first.Opened, first.Outcome = inv, opened, opened, history.OK
	c.record(first)
	rs.invoke, rs.lastAt = opened, opened

	readErr := make(chan error, 1)
	go func() {
		for {
			e, err := r.Next(context.Background())
			if err != nil {
				readErr <- err
				return
			}
			v, perr := parsePayload(e.Payload)
			if perr != nil {
				readErr <- errors.Wrapf(perr, "entry %s", e.ID)
				return
			}
			at := c.clock.Now()
			rs.mu.Lock()
			rs.entries = append(rs.entries, history.Delivery{ID: *toID(e.ID), Value: v})
			rs.lastAt, rs.last = at, toID(e.ID)
			rs.mu.Unlock()
		}
	}()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	finishing := false
	for {
		select {
		case err := <-readErr:
			rs.flush(history.Unknown, err, 0)
			if errors.Is(err, woodpecker.ErrCorrupt) || strings.Contains(err.Error(), "differs from what was written") {
				c.emit(lineError, fmt.Sprintf("reader %s of %s: %v", rs.name, rs.spec.Log, strings.ReplaceAll(err.Error(), "\n", " ")))
			} else {
				c.emit(lineReadErr, rs.spec.Log, strings.ReplaceAll(errText(err), "\n", " "))
			}
			return false, nil
		case <-c.stop:
			finishing = true
		case <-tick.C:
		}
		if !finishing {
			rs.flush(history.OK, nil, 0)
			continue
		}
		rs.mu.Lock()
		idle := time.Duration(c.clock.Now() - rs.lastAt)
		rs.mu.Unlock()
		if idle < c.spec.Idle {
			rs.flush(history.OK, nil, 0)
			select {
			case err := <-readErr:
				readErr <- err
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		_ = r.Close()
		err := <-readErr
		if !errors.Is(err, woodpecker.ErrClosed) {
			rs.flush(history.Unknown, err, 0)
			c.emit(lineReadErr, rs.spec.Log, strings.ReplaceAll(errText(err), "\n", " "))
			return true, nil
		}
		rs.mu.Lock()
		end := rs.lastAt
		rs.mu.Unlock()
		rs.flush(history.OK, nil, end)
		return true, nil
	}
}

// flush records the entries gathered since the last chunk (a chunk with
// none only when it ends the session with an error or with EndAt).
func (rs *readSession) flush(o history.Outcome, err error, endAt int64) {
	rs.mu.Lock()
	entries := rs.entries
	rs.entries = nil
	inv := rs.invoke
	rs.mu.Unlock()
	if len(entries) == 0 && o == history.OK && endAt == 0 {
		return
	}
	now := rs.c.clock.Now()
	r := rs.base()
	r.Invoke, r.Complete, r.Outcome, r.Error, r.EndAt, r.Entries = inv, now, o, errText(err), endAt, entries
	rs.c.record(r)
	rs.mu.Lock()
	rs.invoke = now
	rs.mu.Unlock()
}
