package history

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/cockroachdb/errors"
)

// ViolationKind names a guarantee a history broke. The package doc defines
// each.
type ViolationKind string

// Violation kinds.
const (
	Lost           ViolationKind = "lost"
	Vanished       ViolationKind = "vanished"
	TruncatedAbove ViolationKind = "truncated-above"
	Duplicate      ViolationKind = "duplicate"
	Order          ViolationKind = "order"
	Disagree       ViolationKind = "disagree"
	FailedVisible  ViolationKind = "failed-visible"
	Zombie         ViolationKind = "zombie"
	RealTime       ViolationKind = "real-time"
	BeforeStart    ViolationKind = "before-start"
	Malformed      ViolationKind = "malformed"
)

// MaxViolationsPerKind bounds how many violations of one kind a Report
// lists; Report.ViolationCounts counts them all.
const MaxViolationsPerKind = 100

// Violation is one broken guarantee.
type Violation struct {
	Kind ViolationKind
	Log  string
	// Value, ID and Reader name the entry and the reader involved, when one
	// is.
	Value  string
	ID     *ID
	Reader string
	// Detail says what happened, for a person.
	Detail string
	// Records are the indexes in the history of the records involved.
	Records []int
}

// String returns a one-line description.
func (v Violation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: log %q", v.Kind, v.Log)
	if v.Value != "" {
		fmt.Fprintf(&b, " value %q", v.Value)
	}
	if v.ID != nil {
		fmt.Fprintf(&b, " id %s", v.ID)
	}
	if v.Reader != "" {
		fmt.Fprintf(&b, " reader %q", v.Reader)
	}
	fmt.Fprintf(&b, ": %s (records %v)", v.Detail, v.Records)
	return b.String()
}

// Counts are a history's figures. Values are counted once each however many
// records name them.
type Counts struct {
	// Appends is the number of append records (attempts).
	Appends int
	// Acked: values with an ok append.
	Acked int
	// Failed: values whose every attempt failed definitely (fail, fenced).
	Failed int
	// Unknown: values with no ok attempt and at least one unknown one.
	Unknown int
	// Read: values that at least one reader delivered.
	Read int
	// Deliveries: entries delivered, over all readers.
	Deliveries int
	// Readers: reader sessions.
	Readers int
	// Lost: acked values that some reader had to read and did not (a Lost
	// or TruncatedAbove violation).
	Lost int
	// Vanished: values not acked that a reader delivered and another reader
	// had to read and did not (a Vanished or TruncatedAbove violation).
	Vanished int
	// Duplicated: values delivered more than once by one reader.
	Duplicated int
	// UnknownVisible and UnknownInvisible split Unknown by whether any reader
	// delivered the value. With a final reader from Earliest that reaches
	// the end after every append completed, invisible means not in the log.
	UnknownVisible   int
	UnknownInvisible int
	// Unrecorded: values delivered that no append record names (an append
	// in flight in a killed process). They are checked as unknown outcomes.
	Unrecorded int
	// Opens and Truncations count those records.
	Opens       int
	Truncations int
}

func (c *Counts) add(o Counts) {
	c.Appends += o.Appends
	c.Acked += o.Acked
	c.Failed += o.Failed
	c.Unknown += o.Unknown
	c.Read += o.Read
	c.Deliveries += o.Deliveries
	c.Readers += o.Readers
	c.Lost += o.Lost
	c.Vanished += o.Vanished
	c.Duplicated += o.Duplicated
	c.UnknownVisible += o.UnknownVisible
	c.UnknownInvisible += o.UnknownInvisible
	c.Unrecorded += o.Unrecorded
	c.Opens += o.Opens
	c.Truncations += o.Truncations
}

// Report is what Check found.
type Report struct {
	// Counts are the totals over all logs; PerLog has each log's.
	Counts Counts
	PerLog map[string]Counts
	// Violations lists at most MaxViolationsPerKind violations of each kind,
	// in a deterministic order (by log, then by check).
	Violations []Violation
	// ViolationCounts counts every violation by kind.
	ViolationCounts map[ViolationKind]int
}

// OK reports whether the history broke no guarantee.
func (r *Report) OK() bool { return len(r.ViolationCounts) == 0 }

// Has reports whether the report holds a violation of kind k.
func (r *Report) Has(k ViolationKind) bool { return r.ViolationCounts[k] > 0 }

// Err returns nil when the history broke no guarantee, and otherwise an
// error naming the violations by kind and the first of them.
func (r *Report) Err() error {
	if r.OK() {
		return nil
	}
	return errors.Newf("history check failed: %s; first: %s", r.kindSummary(), r.Violations[0])
}

func (r *Report) kindSummary() string {
	kinds := make([]string, 0, len(r.ViolationCounts))
	for k := range r.ViolationCounts {
		kinds = append(kinds, string(k))
	}
	sort.Strings(kinds)
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%s %d", k, r.ViolationCounts[ViolationKind(k)])
	}
	return strings.Join(parts, ", ")
}

// String returns the counts and the listed violations, one per line.
func (r *Report) String() string {
	var b strings.Builder
	c := r.Counts
	fmt.Fprintf(&b, "appends %d (values: acked %d, failed %d, unknown %d: visible %d, invisible %d), unrecorded %d\n",
		c.Appends, c.Acked, c.Failed, c.Unknown, c.UnknownVisible, c.UnknownInvisible, c.Unrecorded)
	fmt.Fprintf(&b, "readers %d, deliveries %d, values read %d, lost %d, vanished %d, duplicated %d, opens %d, truncations %d\n",
		c.Readers, c.Deliveries, c.Read, c.Lost, c.Vanished, c.Duplicated, c.Opens, c.Truncations)
	if r.OK() {
		b.WriteString("no violations\n")
		return b.String()
	}
	fmt.Fprintf(&b, "violations: %s\n", r.kindSummary())
	for _, v := range r.Violations {
		b.WriteString(v.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Check verifies h against the guarantees defined in the package doc and
// returns what it found. It is a pure function: it neither changes h nor
// keeps it.
func Check(h History) Report {
	c := &checker{
		h:      h,
		report: Report{PerLog: map[string]Counts{}, ViolationCounts: map[ViolationKind]int{}},
		listed: map[ViolationKind]int{},
	}
	logs := map[string]*logCheck{}
	for i := range h {
		r := &h[i]
		if err := r.Validate(); err != nil {
			c.add(Violation{Kind: Malformed, Log: r.Log, Detail: err.Error(), Records: []int{i}})
			continue
		}
		l := logs[r.Log]
		if l == nil {
			l = &logCheck{c: c, name: r.Log}
			logs[r.Log] = l
		}
		switch r.Kind {
		case Append:
			l.appends = append(l.appends, i)
		case Read:
			l.reads = append(l.reads, i)
		case Open:
			l.opens = append(l.opens, i)
		case Truncate:
			l.truncs = append(l.truncs, i)
		}
	}
	names := make([]string, 0, len(logs))
	for n := range logs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		counts := logs[n].check()
		c.report.PerLog[n] = counts
		c.report.Counts.add(counts)
	}
	return c.report
}

type checker struct {
	h      History
	report Report
	listed map[ViolationKind]int
}

func (c *checker) add(v Violation) {
	c.report.ViolationCounts[v.Kind]++
	if c.listed[v.Kind] < MaxViolationsPerKind {
		c.listed[v.Kind]++
		c.report.Violations = append(c.report.Violations, v)
	}
}

// logCheck checks one log.
type logCheck struct {
	c    *checker
	name string

	appends, reads, opens, truncs []int // record indexes

	sessions []*session // sorted by name
	values   map[string]*valueInfo
	entries  []*entry // sorted by id, then value
	fenced   map[string]int64
	// deliveredBy maps a value to the read records that delivered it;
	// built on first use, for violations only.
	deliveredBy map[string][]int
	marks       map[string]bool
	duplicated  map[string]bool // values some reader delivered twice
	counts      Counts
}

type valueInfo struct {
	value    string
	attempts []int
	ok       bool
	unknown  bool
	// zombie: every ok or unknown attempt was invoked after its writer was
	// fenced (false when there is none).
	zombie    bool
	delivered bool
	// bad: the value broke a guarantee by being visible at all (failed or
	// zombie); readers are not required to read it.
	bad bool
}

type entryKey struct {
	id    ID
	value string
}

type entry struct {
	entryKey
	visibleAt int64
	rec       int // the record that made it visible first
}

type session struct {
	name                          string
	chunks                        []int
	from                          StartMode
	fromID                        *ID
	invoke, complete, opened, end int64
	dels                          []delivery
	ids                           map[ID]bool
	vals                          map[string]int // value -> record of its first delivery
	first, max                    ID
}

type delivery struct {
	Delivery
	rec int
	at  int64
}

func (l *logCheck) rec(i int) *Record { return &l.c.h[i] }

func (l *logCheck) add(v Violation) {
	v.Log = l.name
	l.c.add(v)
}

func (l *logCheck) check() Counts {
	l.counts.Appends = len(l.appends)
	l.counts.Opens = len(l.opens)
	l.counts.Truncations = len(l.truncs)
	l.buildSessions()
	l.buildValues()
	l.checkOneOrder()
	l.checkFences()
	l.checkVisibility()
	l.checkRealTime()
	for _, s := range l.sessions {
		l.checkStart(s)
		l.checkRequired(s)
	}
	return l.counts
}

// buildSessions joins each reader's chunks and checks that each reader's
// ids increase and that it delivered no value twice.
func (l *logCheck) buildSessions() {
	byName := map[string]*session{}
	l.duplicated = map[string]bool{}
	for _, i := range l.reads {
		r := l.rec(i)
		s := byName[r.Reader]
		if s == nil {
			s = &session{name: r.Reader}
			byName[r.Reader] = s
			l.sessions = append(l.sessions, s)
		}
		s.chunks = append(s.chunks, i)
	}
	sort.Slice(l.sessions, func(i, j int) bool { return l.sessions[i].name < l.sessions[j].name })
	l.counts.Readers = len(l.sessions)
	for _, s := range l.sessions {
		sort.SliceStable(s.chunks, func(i, j int) bool { return l.rec(s.chunks[i]).Invoke < l.rec(s.chunks[j]).Invoke })
		first := l.rec(s.chunks[0])
		s.from, s.fromID = first.From, first.FromID
		s.invoke = first.Invoke
		n := 0
		for _, ci := range s.chunks {
			n += len(l.rec(ci).Entries)
		}
		s.ids, s.vals = make(map[ID]bool, n), make(map[string]int, n)
		s.dels = make([]delivery, 0, n)
		for _, ci := range s.chunks {
			r := l.rec(ci)
			if r.From != s.from || !sameID(r.FromID, s.fromID) {
				l.add(Violation{Kind: Malformed, Reader: s.name,
					Detail:  fmt.Sprintf("chunk starts from %s %v, the session's first chunk from %s %v", r.From, r.FromID, s.from, s.fromID),
					Records: []int{s.chunks[0], ci}})
				continue
			}
			s.complete = max(s.complete, r.Complete)
			s.end = max(s.end, r.EndAt)
			if s.opened == 0 {
				s.opened = r.Opened
			}
			for _, d := range r.Entries {
				if len(s.dels) > 0 {
					prev := s.dels[len(s.dels)-1]
					if !prev.ID.Less(d.ID) {
						id := d.ID
						l.add(Violation{Kind: Order, Value: d.Value, ID: &id, Reader: s.name,
							Detail:  fmt.Sprintf("delivered %s (%q) after %s (%q)", d.ID, d.Value, prev.ID, prev.Value),
							Records: uniq(prev.rec, ci)})
					}
				}
				if first, ok := s.vals[d.Value]; ok {
					l.duplicated[d.Value] = true
					id := d.ID
					l.add(Violation{Kind: Duplicate, Value: d.Value, ID: &id, Reader: s.name,
						Detail:  fmt.Sprintf("delivered the value again, at %s", d.ID),
						Records: uniq(first, ci)})
				} else {
					s.vals[d.Value] = ci
				}
				if len(s.dels) == 0 {
					s.first, s.max = d.ID, d.ID
				}
				if s.max.Less(d.ID) {
					s.max = d.ID
				}
				if d.ID.Less(s.first) {
					s.first = d.ID
				}
				s.ids[d.ID] = true
				s.dels = append(s.dels, delivery{Delivery: d, rec: ci, at: r.Complete})
			}
		}
		l.counts.Deliveries += len(s.dels)
	}
}

// buildValues gathers the append attempts of each value and the entries:
// the (id, value) pairs that acks and deliveries show.
func (l *logCheck) buildValues() {
	l.values = make(map[string]*valueInfo, len(l.appends))
	entries := make(map[entryKey]*entry, len(l.appends))
	see := func(k entryKey, at int64, rec int) {
		e := entries[k]
		if e == nil {
			entries[k] = &entry{entryKey: k, visibleAt: at, rec: rec}
			return
		}
		if at < e.visibleAt {
			e.visibleAt, e.rec = at, rec
		}
	}
	for _, i := range l.appends {
		r := l.rec(i)
		v := l.value(r.Value)
		v.attempts = append(v.attempts, i)
		switch r.Outcome {
		case OK:
			v.ok = true
			see(entryKey{*r.ID, r.Value}, r.Complete, i)
		case Unknown:
			v.unknown = true
		}
	}
	for _, s := range l.sessions {
		for _, d := range s.dels {
			l.value(d.Value).delivered = true
			see(entryKey{d.ID, d.Value}, d.at, d.rec)
		}
	}
	l.counts.Duplicated = len(l.duplicated)
	for _, v := range l.values {
		switch {
		case v.ok:
			l.counts.Acked++
		case v.unknown:
			l.counts.Unknown++
			if v.delivered {
				l.counts.UnknownVisible++
			} else {
				l.counts.UnknownInvisible++
			}
		case len(v.attempts) > 0:
			l.counts.Failed++
		default:
			l.counts.Unrecorded++
		}
		if v.delivered {
			l.counts.Read++
		}
	}
	l.entries = make([]*entry, 0, len(entries))
	for _, e := range entries {
		l.entries = append(l.entries, e)
	}
	sort.Slice(l.entries, func(i, j int) bool {
		a, b := l.entries[i], l.entries[j]
		if c := a.id.Compare(b.id); c != 0 {
			return c < 0
		}
		return a.value < b.value
	})
}

func (l *logCheck) value(s string) *valueInfo {
	v := l.values[s]
	if v == nil {
		v = &valueInfo{value: s}
		l.values[s] = v
	}
	return v
}

// checkOneOrder: every id holds one value and every value one id, over all
// acks and deliveries. With Order (per reader), this is one total order
// that every reader agrees on.
func (l *logCheck) checkOneOrder() {
	// l.entries is sorted by id: runs of one id are adjacent.
	for i := 0; i < len(l.entries); {
		j := i + 1
		for j < len(l.entries) && l.entries[j].id == l.entries[i].id {
			j++
		}
		if j-i > 1 {
			id := l.entries[i].id
			var vals []string
			var recs []int
			for _, e := range l.entries[i:j] {
				vals = append(vals, fmt.Sprintf("%q", e.value))
				recs = append(recs, e.rec)
			}
			l.add(Violation{Kind: Disagree, ID: &id,
				Detail: "one id holds several values: " + strings.Join(vals, ", "), Records: uniq(recs...)})
		}
		i = j
	}
	byValue := map[string][]*entry{}
	for _, e := range l.entries {
		byValue[e.value] = append(byValue[e.value], e)
	}
	for _, v := range sortedKeys(byValue) {
		es := byValue[v]
		if len(es) < 2 {
			continue
		}
		var ids []string
		var recs []int
		for _, e := range es {
			ids = append(ids, e.id.String())
			recs = append(recs, e.rec)
		}
		l.add(Violation{Kind: Disagree, Value: v,
			Detail: "one value has several ids: " + strings.Join(ids, ", "), Records: uniq(recs...)})
	}
}

// checkFences finds when each writer was fenced and which attempts are
// zombie attempts, and checks writer truncations.
func (l *logCheck) checkFences() {
	l.fenced = map[string]int64{}
	for _, i := range l.opens {
		w1 := l.rec(i)
		if w1.Outcome != OK {
			continue
		}
		for _, j := range l.opens {
			w2 := l.rec(j)
			if w2.Outcome != OK || w2.writerKey() == w1.writerKey() || w2.Invoke <= w1.Complete {
				continue
			}
			if at, ok := l.fenced[w1.writerKey()]; !ok || w2.Complete < at {
				l.fenced[w1.writerKey()] = w2.Complete
			}
		}
	}
	for _, i := range l.truncs {
		r := l.rec(i)
		if r.By == ByWriter && r.Outcome == OK && l.zombieAttempt(r) {
			l.add(Violation{Kind: Zombie, ID: r.ID,
				Detail:  fmt.Sprintf("writer %s truncated ok after it was fenced at %d", r.writerKey(), l.fenced[r.writerKey()]),
				Records: uniq(append([]int{i}, l.fencingOpens(r.writerKey())...)...)})
		}
	}
	for _, v := range l.values {
		candidates := 0
		v.zombie = true
		for _, i := range v.attempts {
			r := l.rec(i)
			if r.Outcome == OK || r.Outcome == Unknown {
				candidates++
				v.zombie = v.zombie && l.zombieAttempt(r)
			}
		}
		v.zombie = v.zombie && candidates > 0
	}
}

func (l *logCheck) zombieAttempt(r *Record) bool {
	at, ok := l.fenced[r.writerKey()]
	return ok && r.Invoke > at
}

// fencingOpens returns the ok opens of the log by writers other than w.
func (l *logCheck) fencingOpens(w string) []int {
	var out []int
	for _, i := range l.opens {
		r := l.rec(i)
		if r.Outcome == OK && r.writerKey() != w && r.Complete == l.fenced[w] {
			out = append(out, i)
		}
	}
	return out
}

// checkVisibility: no definite failure is visible, and no zombie attempt is
// acknowledged or visible.
func (l *logCheck) checkVisibility() {
	for _, name := range sortedKeys(l.values) {
		v := l.values[name]
		var okZombie []int
		for _, i := range v.attempts {
			if r := l.rec(i); r.Outcome == OK && l.zombieAttempt(r) {
				okZombie = append(okZombie, i)
			}
		}
		switch {
		case len(okZombie) > 0 || (v.delivered && v.zombie):
			v.bad = true
			r := l.rec(v.attempts[0])
			if len(okZombie) > 0 {
				r = l.rec(okZombie[0])
			}
			what := "was delivered"
			if len(okZombie) > 0 {
				what = "was acknowledged ok"
			}
			recs := append(append([]int{}, v.attempts...), l.fencingOpens(r.writerKey())...)
			recs = append(recs, l.delivering(name)...)
			l.add(Violation{Kind: Zombie, Value: name,
				Detail: fmt.Sprintf("appended by writer %s at %d, after it was fenced at %d, and %s",
					r.writerKey(), r.Invoke, l.fenced[r.writerKey()], what),
				Records: uniq(recs...)})
		case v.delivered && len(v.attempts) > 0 && !v.ok && !v.unknown:
			v.bad = true
			l.add(Violation{Kind: FailedVisible, Value: name,
				Detail:  "every append of the value failed definitely, yet it was delivered",
				Records: uniq(append(append([]int{}, v.attempts...), l.delivering(name)...)...)})
		}
	}
}

// delivering returns the read records that delivered value.
func (l *logCheck) delivering(value string) []int {
	if l.deliveredBy == nil {
		l.deliveredBy = map[string][]int{}
		for _, s := range l.sessions {
			for _, d := range s.dels {
				l.deliveredBy[d.Value] = append(l.deliveredBy[d.Value], d.rec)
			}
		}
	}
	return l.deliveredBy[value]
}

// checkRealTime: an ok append invoked after an entry was visible gets a
// higher id than that entry.
func (l *logCheck) checkRealTime() {
	byVisible := append([]*entry(nil), l.entries...)
	sort.SliceStable(byVisible, func(i, j int) bool { return byVisible[i].visibleAt < byVisible[j].visibleAt })
	var oks []int
	for _, i := range l.appends {
		if l.rec(i).Outcome == OK {
			oks = append(oks, i)
		}
	}
	sort.SliceStable(oks, func(i, j int) bool { return l.rec(oks[i]).Invoke < l.rec(oks[j]).Invoke })
	// best is the highest entry visible so far; second the highest whose
	// value differs from best's, so that an append is never compared with
	// its own value (an earlier attempt of a retried append).
	var best, second *entry
	k := 0
	for _, i := range oks {
		r := l.rec(i)
		for ; k < len(byVisible) && byVisible[k].visibleAt < r.Invoke; k++ {
			e := byVisible[k]
			switch {
			case best == nil || best.id.Less(e.id):
				if best != nil && best.value != e.value {
					second = best
				}
				best = e
			case e.value != best.value && (second == nil || second.id.Less(e.id)):
				second = e
			}
		}
		prior := best
		if prior != nil && prior.value == r.Value {
			prior = second
		}
		if prior != nil && !prior.id.Less(*r.ID) {
			l.add(Violation{Kind: RealTime, Value: r.Value, ID: r.ID,
				Detail: fmt.Sprintf("acked at %s though invoked at %d, after %q at %s was visible at %d",
					r.ID, r.Invoke, prior.value, prior.id, prior.visibleAt),
				Records: uniq(prior.rec, i)})
		}
	}
}

// checkStart: a reader delivers nothing before its start.
func (l *logCheck) checkStart(s *session) {
	var (
		bound  ID
		strict bool // deliveries must be > bound (else >= bound)
		why    string
		recs   []int
	)
	switch s.from {
	case At:
		bound, why = *s.fromID, "its start At "+s.fromID.String()
	case After:
		bound, strict, why = *s.fromID, true, "its start After "+s.fromID.String()
	case Earliest:
		found := false
		for _, i := range l.truncs {
			r := l.rec(i)
			if r.Outcome == OK && r.Complete < s.invoke && (!found || bound.Less(*r.ID)) {
				found, bound, recs = true, *r.ID, []int{i}
			}
		}
		if !found {
			return
		}
		why = "the truncation point " + bound.String() + " set before the reader opened"
	case Latest:
		found := false
		for _, i := range l.appends {
			r := l.rec(i)
			if r.Outcome == OK && r.Complete < s.invoke && (!found || bound.Less(*r.ID)) {
				found, bound, recs = true, *r.ID, []int{i}
			}
		}
		if !found {
			return
		}
		strict, why = true, fmt.Sprintf("%s, acked before the Latest reader opened", bound)
	}
	for _, d := range s.dels {
		if d.ID.Less(bound) || (strict && d.ID == bound) {
			id := d.ID
			l.add(Violation{Kind: BeforeStart, Value: d.Value, ID: &id, Reader: s.name,
				Detail:  fmt.Sprintf("reader from %s delivered %s, before %s", s.from, d.ID, why),
				Records: uniq(append(recs, d.rec)...)})
			return
		}
	}
}

// checkRequired: the reader read every entry it had to read (see the
// package doc for "range" and "passes").
func (l *logCheck) checkRequired(s *session) {
	var (
		start     ID
		hasStart  bool
		truncated bool // an Earliest reader with a truncation in effect
		point     ID   // the highest point of those truncations
		truncRecs []int
	)
	lower := func(id ID) {
		if !hasStart || id.Less(start) {
			start, hasStart = id, true
		}
	}
	switch s.from {
	case At:
		lower(*s.fromID)
	case After:
		id := *s.fromID
		if id.Entry < math.MaxInt64 {
			id.Entry++
		}
		lower(id)
	case Earliest:
		for _, i := range l.truncs {
			r := l.rec(i)
			if (r.Outcome == OK || r.Outcome == Unknown) && r.Invoke < s.complete {
				if !truncated || point.Less(*r.ID) {
					point = *r.ID
				}
				truncated = true
				truncRecs = append(truncRecs, i)
			}
		}
		lower(point) // ID{} when there is no truncation: every id
	}
	if len(s.dels) > 0 {
		lower(s.first)
	}
	last := s.chunks[len(s.chunks)-1]
	for _, e := range l.entries {
		v := l.values[e.value]
		if v.bad {
			continue
		}
		passes := (len(s.dels) > 0 && !s.max.Less(e.id)) || (s.end > 0 && e.visibleAt < s.end)
		if !passes || s.ids[e.id] {
			continue
		}
		if _, ok := s.vals[e.value]; ok {
			continue
		}
		inRange := hasStart && !e.id.Less(start)
		if !inRange && (s.from == Earliest || s.from == Latest) && s.opened > 0 {
			inRange = l.invokedAfter(v, s.opened)
		}
		if !inRange {
			continue
		}
		id := e.id
		viol := Violation{Value: e.value, ID: &id, Reader: s.name, Records: uniq(e.rec, last)}
		switch {
		case truncated && (len(s.dels) == 0 || e.id.Less(s.first)):
			viol.Kind = TruncatedAbove
			viol.Detail = fmt.Sprintf("reader from earliest started above entry %s, at or above the truncation point %s",
				e.id, point)
			viol.Records = uniq(append(viol.Records, truncRecs...)...)
		case v.ok:
			viol.Kind = Lost
			viol.Detail = fmt.Sprintf("acknowledged entry (visible at %d) not read by a reader that passed it", e.visibleAt)
		default:
			viol.Kind = Vanished
			viol.Detail = fmt.Sprintf("entry delivered by another reader (visible at %d) not read by a reader that passed it", e.visibleAt)
		}
		if v.ok {
			if !l.mark("lost\x00" + e.value) {
				l.counts.Lost++
			}
		} else if !l.mark("vanished\x00" + e.value) {
			l.counts.Vanished++
		}
		l.add(viol)
	}
}

// invokedAfter reports whether every ok or unknown attempt of v was invoked
// after t (false when v has none).
func (l *logCheck) invokedAfter(v *valueInfo, t int64) bool {
	candidates := 0
	for _, i := range v.attempts {
		r := l.rec(i)
		if r.Outcome == OK || r.Outcome == Unknown {
			if r.Invoke <= t {
				return false
			}
			candidates++
		}
	}
	return candidates > 0
}

// mark records key and reports whether it was recorded before.
func (l *logCheck) mark(key string) bool {
	if l.marks == nil {
		l.marks = map[string]bool{}
	}
	seen := l.marks[key]
	l.marks[key] = true
	return seen
}

func sameID(a, b *ID) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// uniq returns the indexes sorted, without repeats.
func uniq(idx ...int) []int {
	out := append([]int(nil), idx...)
	sort.Ints(out)
	n := 0
	for i, x := range out {
		if i == 0 || x != out[n-1] {
			out[n] = x
			n++
		}
	}
	return out[:n]
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
