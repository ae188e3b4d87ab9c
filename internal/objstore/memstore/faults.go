package memstore

import (
	"context"
	"path"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/errors"
)

// Op is a kind of Store operation, for rules and counters.
type Op int

// The operation kinds. OpAny matches every kind in a Rule and sums all
// counters in Count.
const (
	OpAny Op = iota
	OpPut
	OpGet
	OpGetRange
	OpStat
	OpList
	OpDelete
	numOps
)

// String returns the kind's name, as used in error messages.
func (o Op) String() string {
	switch o {
	case OpAny:
		return "any"
	case OpPut:
		return "put"
	case OpGet:
		return "get"
	case OpGetRange:
		return "get-range"
	case OpStat:
		return "stat"
	case OpList:
		return "list"
	case OpDelete:
		return "delete"
	default:
		return "op(?)"
	}
}

// Action is what a firing Rule does to the operation.
type Action int

const (
	// ActionNone: fail with Rule.Err when it is set, else perform the
	// operation normally (after Rule.Delay). The zero value, so
	// Rule{Err: e} fails and Rule{Delay: d} only delays.
	ActionNone Action = iota
	// ActionFail: do not perform the operation; return Rule.Err (default
	// ErrInjected).
	ActionFail
	// ActionFailAfter: perform the operation, then return Rule.Err anyway:
	// a put or delete that took effect but whose caller was never told (a
	// lost acknowledgement, an unknown outcome).
	ActionFailAfter
	// ActionDrop: for puts and deletes, report success but change nothing
	// (a store that loses an acknowledged write; use it to check that
	// verification catches it). For reads it behaves like ActionFail.
	ActionDrop
	// ActionHold: block the operation, not yet performed, until Release
	// lets it proceed, Crash ends it, or its ctx is cancelled. Held
	// operations are requests in flight; see Held, WaitHeld and Crash.
	ActionHold
)

// ErrInjected is the error a failing Rule returns when its Err is nil.
var ErrInjected = errors.New("memstore: injected fault")

// ErrCrashed is what held operations return when Crash ends them.
var ErrCrashed = errors.New("memstore: simulated crash: the request's outcome is unknown")

// Rule selects operations and says what to do to them. A rule matches an
// operation when Op matches (OpAny matches all) and the key matches both
// KeyPattern and KeyRegexp (each when set). List operations are matched by
// their prefix argument.
//
// Each rule counts the operations it matches. It fires on the Nth match
// (1-based) and the Times-1 matches after it; Nth 0 means from the first
// match; Times 0 means once when Nth > 0 and forever when Nth == 0; Times < 0
// means forever. When several rules fire for one operation, the earliest
// injected one decides; the others still count the match.
type Rule struct {
	Op Op
	// KeyPattern is a path.Match glob ("*" does not cross "/"), e.g.
	// "*/b-*". Empty matches every key. A malformed pattern matches nothing.
	KeyPattern string
	// KeyRegexp, when set, must match the key too.
	KeyRegexp *regexp.Regexp
	Nth       int
	Times     int
	// Delay postpones the operation (or its failure) by this long; a
	// cancelled ctx ends the wait with the ctx error.
	Delay  time.Duration
	Action Action
	// Err is returned by failing actions; nil means ErrInjected.
	Err error
}

func (r *Rule) matches(op Op, key string) bool {
	if r.Op != OpAny && r.Op != op {
		return false
	}
	if r.KeyPattern != "" {
		if ok, err := path.Match(r.KeyPattern, key); err != nil || !ok {
			return false
		}
	}
	if r.KeyRegexp != nil && !r.KeyRegexp.MatchString(key) {
		return false
	}
	return true
}

// Injection is an injected Rule: it reports how often the rule fired and
// removes it. Its methods are safe for concurrent use.
type Injection struct {
	s     *Store
	rule  Rule
	seen  int // matches so far; guarded by s.mu
	fired atomic.Int64
}

// fires reports whether the match just counted in seen fires the rule.
// Requires s.mu held.
func (inj *Injection) fires() bool {
	first := inj.rule.Nth
	if first <= 0 {
		first = 1
	}
	if inj.seen < first {
		return false
	}
	times := inj.rule.Times
	switch {
	case times < 0:
		return true
	case times == 0 && inj.rule.Nth <= 0:
		return true
	case times == 0:
		times = 1
	}
	return inj.seen < first+times
}

// Fired returns how many operations the rule has acted on.
func (inj *Injection) Fired() int { return int(inj.fired.Load()) }

// Remove takes the rule out of its store; operations it already acted on
// are not affected. Removing twice is harmless.
func (inj *Injection) Remove() {
	inj.s.mu.Lock()
	defer inj.s.mu.Unlock()
	for i, r := range inj.s.rules {
		if r == inj {
			inj.s.rules = append(inj.s.rules[:i:i], inj.s.rules[i+1:]...)
			return
		}
	}
}

// Inject adds a rule, effective for operations that start afterwards.
func (s *Store) Inject(r Rule) *Injection {
	inj := &Injection{s: s, rule: r}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append(s.rules, inj)
	return inj
}

// ClearRules removes every rule. Held operations stay held.
func (s *Store) ClearRules() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = nil
}

// HeldOp describes an operation blocked by an ActionHold rule.
type HeldOp struct {
	Op  Op
	Key string
}

type heldOp struct {
	HeldOp
	land   func() error  // what a landed crash does; nil for reads
	decide chan decision // receives exactly one decision
}

type decision int

const (
	decideRelease decision = iota
	decideCrashLand
	decideCrashLose
)

// hold blocks an operation a hold rule matched while decided Release and
// Crash calls had been made, until the next one decides it.
func (s *Store) hold(ctx context.Context, op Op, key string, do, land func() error, decided uint64) error {
	h := &heldOp{HeldOp: HeldOp{Op: op, Key: key}, land: land, decide: make(chan decision, 1)}
	s.mu.Lock()
	if s.decided != decided {
		// Released or crashed between the match and now: that decision
		// was meant for it too (a test that clears its rules and then
		// releases must not leave it held for good).
		choose := s.lastDecision
		s.mu.Unlock()
		d := choose(h.HeldOp)
		if d == decideCrashLand && land != nil {
			_ = land()
		}
		return s.finishHeld(d, op, key, do)
	}
	s.held[h] = struct{}{}
	s.notifyHeldLocked()
	s.mu.Unlock()

	select {
	case d := <-h.decide:
		return s.finishHeld(d, op, key, do)
	case <-ctx.Done():
		s.mu.Lock()
		_, stillHeld := s.held[h]
		delete(s.held, h)
		s.notifyHeldLocked()
		s.mu.Unlock()
		if !stillHeld {
			// A decision raced with the cancellation: honour it, so that
			// what Release or Crash decided is what happened.
			return s.finishHeld(<-h.decide, op, key, do)
		}
		return errors.Wrapf(ctx.Err(), "memstore %s %q (held by an injected rule)", op, key)
	}
}

func (s *Store) finishHeld(d decision, op Op, key string, do func() error) error {
	if d == decideRelease {
		return do()
	}
	// Crash already applied a landed operation (see decideAll).
	return errors.Wrapf(ErrCrashed, "memstore %s %q", op, key)
}

// notifyHeldLocked wakes WaitHeld callers. Requires s.mu held.
func (s *Store) notifyHeldLocked() {
	close(s.heldChanged)
	s.heldChanged = make(chan struct{})
}

// Held lists the operations currently held, in no particular order.
func (s *Store) Held() []HeldOp {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]HeldOp, 0, len(s.held))
	for h := range s.held {
		out = append(out, h.HeldOp)
	}
	return out
}

// WaitHeld blocks until at least n operations are held, or ctx ends (then
// it returns the ctx error). Use it instead of sleeping.
func (s *Store) WaitHeld(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		count, ch := len(s.held), s.heldChanged
		s.mu.Unlock()
		if count >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return errors.Wrapf(ctx.Err(), "memstore: waiting for %d held operations (have %d)", n, count)
		}
	}
}

// Release lets every held operation proceed normally, and returns how many
// there were. Rules stay in place; a later operation can be held again.
func (s *Store) Release() int {
	return s.decideAll(func(HeldOp) decision { return decideRelease })
}

// Crash ends every held operation with ErrCrashed, as if the process that
// issued them died. A held put or delete for which landed returns true
// takes effect anyway (the request reached the store before the crash),
// before Crash returns; the others are lost. landed nil means none landed.
// It returns how many operations were held.
func (s *Store) Crash(landed func(op HeldOp) bool) int {
	return s.decideAll(func(h HeldOp) decision {
		if landed != nil && landed(h) {
			return decideCrashLand
		}
		return decideCrashLose
	})
}

func (s *Store) decideAll(choose func(HeldOp) decision) int {
	s.mu.Lock()
	held := s.held
	s.held = make(map[*heldOp]struct{})
	s.decided++
	s.lastDecision = choose
	s.notifyHeldLocked()
	s.mu.Unlock()
	for h := range held {
		d := choose(h.HeldOp)
		if d == decideCrashLand && h.land != nil {
			// Apply it here, so it is visible when Crash returns. Errors
			// (a create-only conflict) mean it did not land.
			_ = h.land()
		}
		h.decide <- d
	}
	return len(held)
}
