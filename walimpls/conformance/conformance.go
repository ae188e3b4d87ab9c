// Package conformance checks that an implementation of walimpls keeps the
// contract. Any backend runs it from a test:
//
//	func TestConformance(t *testing.T) {
//		conformance.Run(t, myBuilder)
//	}
//
// It covers what Milvus's own walimpls test framework covers (three
// channels in parallel; terms 1 to 3 reopened in turn; concurrent appends
// with two concurrent all-readers; reading everything earlier terms wrote;
// start-from and start-after from the middle; a latest reader stays silent;
// ten scanners opened and closed at once; a read-only reopen panics on
// Append and Truncate; truncate then reopen at the same term), and what it
// misses: payload bytes and properties round-trip; a newer term fences the
// older handle and a lower term's read-write open is refused; reading
// through a read-only WAL; truncate's effect on where an all-reader starts;
// scanner Error and Done; message id marshal, unmarshal and ordering; bad
// ids and options rejected.
//
// Every channel the suite opens gets a fresh random name, so the suite can
// run against a backend that already holds data. Subtests run at once, in
// goroutines, so -test.parallel does not serialise them.
package conformance

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/walimpls"
)

// Option adjusts the suite.
type Option func(*config)

type config struct {
	messages       int
	channels       int
	latestSilence  time.Duration
	timeout        time.Duration
	strictTruncate bool
	invalidIDs     []string
}

// WithMessagesPerTerm sets how many messages each term appends per channel
// in the term test (default 1000, as in Milvus; at least 2).
func WithMessagesPerTerm(n int) Option { return func(c *config) { c.messages = max(n, 2) } }

// WithChannels sets how many channels the term test runs in parallel
// (default 3).
func WithChannels(n int) Option { return func(c *config) { c.channels = max(n, 1) } }

// WithLatestSilence sets how long a scanner opened with DeliverLatest must
// stay silent (default 1s).
func WithLatestSilence(d time.Duration) Option { return func(c *config) { c.latestSilence = d } }

// WithTimeout bounds every single operation and wait of the suite (default
// 2 minutes), so a hung implementation fails instead of blocking the test.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithStrictTruncate makes the suite require that a scanner opened with
// DeliverAll after Truncate(id) starts exactly at id. Without it the suite
// only requires that id and everything after it are still delivered, in
// order, which backends that keep data until a retention period (Kafka,
// Pulsar) also satisfy.
func WithStrictTruncate() Option { return func(c *config) { c.strictTruncate = true } }

// WithInvalidMessageIDs adds strings the builder's message id unmarshaler
// must reject, besides the suite's own garbage strings.
func WithInvalidMessageIDs(ids ...string) Option {
	return func(c *config) { c.invalidIDs = append(c.invalidIDs, ids...) }
}

// defaultInvalidIDs are strings no sane id encoding accepts.
var defaultInvalidIDs = []string{"not an id", "\x00\xff", "%%%", "-", "\n"}

// Run runs the suite against builder. It builds one Opener, runs the
// subtests in parallel on it, and closes it.
func Run(t *testing.T, builder walimpls.OpenerBuilder, opts ...Option) {
	t.Helper()
	cfg := config{messages: 1000, channels: 3, latestSilence: time.Second, timeout: 2 * time.Minute}
	for _, o := range opts {
		o(&cfg)
	}
	cfg.invalidIDs = append(slices.Clone(defaultInvalidIDs), cfg.invalidIDs...)
	opener, err := builder.Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if opener == nil {
		t.Fatal("Build returned a nil Opener")
	}
	s := &suite{cfg: cfg, b: builder, o: opener, run: fmt.Sprintf("%08x", rand.Uint32())}
	t.Run("group", func(t *testing.T) {
		var wg sync.WaitGroup
		for _, tc := range []struct {
			name string
			fn   func(*testing.T)
		}{
			{"Terms", s.testTerms},
			{"PayloadAndProperties", s.testPayloadAndProperties},
			{"Fencing", s.testFencing},
			{"ReadOnly", s.testReadOnly},
			{"Truncate", s.testTruncate},
			{"Scanner", s.testScanner},
			{"MessageID", s.testMessageID},
			{"InvalidInput", s.testInvalidInput},
		} {
			// Goroutines rather than t.Parallel: the subtests must run at
			// once whatever -test.parallel allows.
			wg.Go(func() { t.Run(tc.name, tc.fn) })
		}
		wg.Wait()
	})
	opener.Close()
	opener.Close() // idempotent
}

type suite struct {
	cfg config
	b   walimpls.OpenerBuilder
	o   walimpls.Opener
	run string // random part of channel names

	mu  sync.Mutex
	seq int
}

// channelName returns a fresh channel name: letters, digits, '-' and '_'.
func (s *suite) channelName(what string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return fmt.Sprintf("conf_%s_%s_%d", s.run, what, s.seq)
}

// ctx returns a context bounded by the suite's timeout.
func (s *suite) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.timeout)
	t.Cleanup(cancel)
	return ctx
}

// open opens a channel and closes the WAL at cleanup (Close is idempotent).
func (s *suite) open(t *testing.T, name string, term int64, mode walimpls.AccessMode) walimpls.WAL {
	t.Helper()
	ch := walimpls.Channel{Name: name, Term: term, AccessMode: mode}
	w, err := s.o.Open(s.ctx(t), walimpls.OpenOption{Channel: ch})
	if err != nil {
		t.Fatalf("Open(%v): %v", ch, err)
	}
	if w == nil {
		t.Fatalf("Open(%v) returned a nil WAL", ch)
	}
	t.Cleanup(w.Close)
	if got := w.Channel(); got != ch {
		t.Errorf("Channel() = %v, want %v", got, ch)
	}
	if got := w.WALName(); got != s.b.Name() {
		t.Errorf("WALName() = %v, want the builder's %v", got, s.b.Name())
	}
	return w
}

// record is a message the suite appended and expects to read back.
type record struct {
	id    walimpls.MessageID
	msg   walimpls.Message
	label string // for failure messages
}

// newMessage returns a message with a payload that names it and mixes in
// binary bytes, and the properties Milvus's framework uses.
func newMessage(label string, i int) walimpls.Message {
	payload := append([]byte(label+"/"+strconv.Itoa(i)+"\x00"), byte(i), byte(i>>8), 0xff, 0x00)
	return walimpls.Message{Payload: payload, Properties: map[string]string{"id": strconv.Itoa(i), "const": "t"}}
}

// appendOne appends msg and checks the id.
func (s *suite) appendOne(t *testing.T, w walimpls.WAL, msg walimpls.Message, label string) record {
	t.Helper()
	id, err := w.Append(s.ctx(t), msg)
	if err != nil {
		t.Fatalf("Append(%s): %v", label, err)
	}
	if id == nil {
		t.Fatalf("Append(%s) returned a nil id", label)
	}
	return record{id: id, msg: msg, label: label}
}

// appendMany appends n messages one after the other.
func (s *suite) appendMany(t *testing.T, w walimpls.WAL, label string, n int) []record {
	t.Helper()
	recs := make([]record, n)
	for i := range n {
		recs[i] = s.appendOne(t, w, newMessage(label, i), fmt.Sprintf("%s#%d", label, i))
	}
	checkIncreasing(t, recs)
	return recs
}

// checkIncreasing checks that the ids strictly increase.
func checkIncreasing(t *testing.T, recs []record) {
	t.Helper()
	for i := 1; i < len(recs); i++ {
		if !recs[i-1].id.LT(recs[i].id) {
			t.Fatalf("id of %s (%v) does not sort before id of %s (%v)", recs[i-1].label, recs[i-1].id, recs[i].label, recs[i].id)
		}
	}
}

// scan opens a scanner and closes it at cleanup.
func (s *suite) scan(t *testing.T, w walimpls.ROWAL, name string, p walimpls.DeliverPolicy) walimpls.Scanner {
	t.Helper()
	sc, err := w.Read(s.ctx(t), walimpls.ReadOption{Name: name, DeliverPolicy: p, ReadAheadBufferSize: 128})
	if err != nil {
		t.Fatalf("Read(%s, %v): %v", name, p, err)
	}
	if sc == nil {
		t.Fatalf("Read(%s) returned a nil Scanner", name)
	}
	t.Cleanup(func() { _ = sc.Close() })
	if sc.Name() != name {
		t.Errorf("Scanner.Name() = %q, want %q", sc.Name(), name)
	}
	return sc
}

// receive returns the scanner's next message, or an error when the scanner
// ends or nothing arrives within the timeout.
func (s *suite) receive(sc walimpls.Scanner) (walimpls.ImmutableMessage, error) {
	timer := time.NewTimer(s.cfg.timeout)
	defer timer.Stop()
	select {
	case m, ok := <-sc.Chan():
		if !ok {
			return m, errors.Newf("scanner %s ended early: Error() = %v", sc.Name(), sc.Error())
		}
		if m.ID == nil {
			return m, errors.Newf("scanner %s delivered a message without an id", sc.Name())
		}
		return m, nil
	case <-timer.C:
		return walimpls.ImmutableMessage{}, errors.Newf("scanner %s delivered nothing for %v", sc.Name(), s.cfg.timeout)
	}
}

// expect reads len(want) messages and compares them with want.
func (s *suite) expect(t *testing.T, sc walimpls.Scanner, want []record) {
	t.Helper()
	for i, w := range want {
		got, err := s.receive(sc)
		if err != nil {
			t.Fatalf("message %d of %d (%s): %v", i, len(want), w.label, err)
		}
		if err := sameMessage(w, got); err != nil {
			t.Fatalf("scanner %s, message %d of %d: %v", sc.Name(), i, len(want), err)
		}
	}
}

// sameMessage compares a read message with the record of its append.
func sameMessage(want record, got walimpls.ImmutableMessage) error {
	if !got.ID.EQ(want.id) || !want.id.EQ(got.ID) {
		return errors.Newf("got id %v, want %v (%s)", got.ID, want.id, want.label)
	}
	if !bytes.Equal(got.Payload, want.msg.Payload) {
		return errors.Newf("%s (%v): payload %q, want %q", want.label, want.id, clip(got.Payload), clip(want.msg.Payload))
	}
	if !equalProps(got.Properties, want.msg.Properties) {
		return errors.Newf("%s (%v): properties %v, want %v", want.label, want.id, got.Properties, want.msg.Properties)
	}
	return nil
}

func equalProps(a, b map[string]string) bool {
	return len(a) == len(b) && maps.Equal(a, b)
}

func clip(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// expectSilence checks that the scanner delivers nothing for d.
func expectSilence(t *testing.T, sc walimpls.Scanner, d time.Duration) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case m, ok := <-sc.Chan():
		if ok {
			t.Fatalf("scanner %s delivered %v, want nothing", sc.Name(), m.ID)
		}
		t.Fatalf("scanner %s ended: %v", sc.Name(), sc.Error())
	case <-timer.C:
	}
}

// mustPanic checks that fn panics.
func mustPanic(t *testing.T, what string, fn func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s did not panic", what)
		}
	}()
	fn()
}

// foreignID is an id no implementation under test owns.
type foreignID struct{}

func (foreignID) WALName() walimpls.WALName   { return walimpls.WALName(-7) }
func (foreignID) LT(walimpls.MessageID) bool  { return false }
func (foreignID) LTE(walimpls.MessageID) bool { return false }
func (foreignID) EQ(walimpls.MessageID) bool  { return false }
func (foreignID) Marshal() string             { return "foreign" }
func (foreignID) String() string              { return "foreign" }
