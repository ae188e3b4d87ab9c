package conformance

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/woodpecker-wal/woodpecker/walimpls"
)

// testPayloadAndProperties checks that payload bytes and properties come
// back exactly, through a read-write and a read-only WAL.
func (s *suite) testPayloadAndProperties(t *testing.T) {
	name := s.channelName("payload")
	w := s.open(t, name, 1, walimpls.AccessModeRW)
	every := make([]byte, 256)
	for i := range every {
		every[i] = byte(i)
	}
	big := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	many := map[string]string{}
	for i := range 100 {
		many[fmt.Sprintf("key-%03d", i)] = strings.Repeat("v", i)
	}
	cases := []struct {
		label string
		msg   walimpls.Message
	}{
		{"text", walimpls.Message{Payload: []byte("hello"), Properties: map[string]string{"k": "v"}}},
		{"no-properties", walimpls.Message{Payload: []byte("payload only")}},
		{"empty-properties", walimpls.Message{Payload: []byte("x"), Properties: map[string]string{}}},
		{"no-payload", walimpls.Message{Properties: map[string]string{"only": "properties"}}},
		{"one-zero-byte", walimpls.Message{Payload: []byte{0}}},
		{"every-byte", walimpls.Message{Payload: every, Properties: map[string]string{"": "empty key", "empty value": ""}}},
		{"unicode", walimpls.Message{Payload: []byte("✓ ключ 鍵"), Properties: map[string]string{"ключ": "значение ✓", "tab\tkey": "new\nline"}}},
		{"binary-property", walimpls.Message{Payload: []byte("p"), Properties: map[string]string{"bin": "\x00\x01\xfe"}}},
		{"many-properties", walimpls.Message{Payload: []byte("many"), Properties: many}},
		{"one-mib", walimpls.Message{Payload: big, Properties: map[string]string{"size": "1MiB"}}},
	}
	var recs []record
	for _, c := range cases {
		recs = append(recs, s.appendOne(t, w, c.msg, c.label))
	}
	checkIncreasing(t, recs)
	s.expect(t, s.scan(t, w, "rw-all", walimpls.DeliverAll()), recs)
	ro := s.open(t, name, 1, walimpls.AccessModeRO)
	s.expect(t, s.scan(t, ro, "ro-all", walimpls.DeliverAll()), recs)
}

// testFencing checks that a read-write open at a higher term, or again at
// the same term, fences the older handle, that a lower term is refused,
// and that fenced appends never become visible.
func (s *suite) testFencing(t *testing.T) {
	ctx := s.ctx(t)
	name := s.channelName("fencing")
	w1 := s.open(t, name, 1, walimpls.AccessModeRW)
	var want []record
	want = append(want, s.appendOne(t, w1, newMessage("term1", 0), "term1#0"))

	w2 := s.open(t, name, 2, walimpls.AccessModeRW)
	if id, err := w1.Append(ctx, newMessage("zombie-term1", 1)); !is(err, walimpls.ErrFenced) {
		t.Errorf("Append on the term-1 handle after a term-2 open = %v, %v; want an error matching ErrFenced", id, err)
	}
	want = append(want, s.appendOne(t, w2, newMessage("term2", 0), "term2#0"))
	// A superseded handle must not cut what the new owner has not read.
	if err := w1.Truncate(ctx, want[1].id); !is(err, walimpls.ErrFenced) {
		t.Errorf("Truncate on the term-1 handle after a term-2 open = %v; want an error matching ErrFenced", err)
	}

	ch := walimpls.Channel{Name: name, Term: 1, AccessMode: walimpls.AccessModeRW}
	if w, err := s.o.Open(ctx, walimpls.OpenOption{Channel: ch}); !is(err, walimpls.ErrFenced) {
		if w != nil {
			w.Close()
		}
		t.Errorf("Open(%v) after term 2 = %v; want an error matching ErrFenced", ch, err)
	}
	// The refused open must not have disturbed the term-2 handle.
	want = append(want, s.appendOne(t, w2, newMessage("term2", 1), "term2#1"))

	// A second open at the same term takes over from the first.
	w2b := s.open(t, name, 2, walimpls.AccessModeRW)
	if id, err := w2.Append(ctx, newMessage("zombie-term2", 2)); !is(err, walimpls.ErrFenced) {
		t.Errorf("Append on the first term-2 handle after a second term-2 open = %v, %v; want ErrFenced", id, err)
	}
	want = append(want, s.appendOne(t, w2b, newMessage("term2b", 0), "term2b#0"))
	checkIncreasing(t, want)

	// Read-only opens fence nobody, at any term.
	for _, term := range []int64{0, 1, 5} {
		ro := s.open(t, name, term, walimpls.AccessModeRO)
		s.expect(t, s.scan(t, ro, fmt.Sprintf("ro-term%d", term), walimpls.DeliverAll()), want)
		ro.Close()
	}
	want = append(want, s.appendOne(t, w2b, newMessage("term2b", 1), "term2b#1"))

	// Closing fenced handles returns.
	w1.Close()
	w2.Close()
	sc := s.scan(t, w2b, "all", walimpls.DeliverAll())
	s.expect(t, sc, want)
	expectSilence(t, sc, s.cfg.latestSilence/4)
}

// testReadOnly checks reading through a read-only WAL while a read-write
// WAL of the same channel appends, and a read-only open of a channel that
// holds nothing yet.
func (s *suite) testReadOnly(t *testing.T) {
	name := s.channelName("readonly")
	ro := s.open(t, name, 0, walimpls.AccessModeRO)
	latest := s.scan(t, ro, "ro-latest", walimpls.DeliverLatest())
	all := s.scan(t, ro, "ro-all", walimpls.DeliverAll())
	expectSilence(t, all, s.cfg.latestSilence/4)

	w := s.open(t, name, 1, walimpls.AccessModeRW)
	recs := s.appendMany(t, w, "rw", 20)
	s.expect(t, latest, recs)
	s.expect(t, all, recs)
	s.expect(t, s.scan(t, ro, "ro-from", walimpls.DeliverStartFrom(recs[5].id)), recs[5:])
	s.expect(t, s.scan(t, ro, "ro-after", walimpls.DeliverStartAfter(recs[5].id)), recs[6:])
	s.expect(t, s.scan(t, ro, "ro-after-last", walimpls.DeliverStartAfter(recs[19].id)), nil)

	// Closing the writer leaves the reader working.
	w.Close()
	s.expect(t, s.scan(t, ro, "ro-all-after-close", walimpls.DeliverAll()), recs)
}

// testTruncate checks where an all-reader starts after Truncate, that a
// lower truncation point changes nothing, and that the truncation survives
// a reopen at the same term.
func (s *suite) testTruncate(t *testing.T) {
	ctx := s.ctx(t)
	name := s.channelName("truncate")
	w := s.open(t, name, 1, walimpls.AccessModeRW)
	recs := s.appendMany(t, w, "before", 10)

	if err := w.Truncate(ctx, recs[4].id); err != nil {
		t.Fatalf("Truncate(%v): %v", recs[4].id, err)
	}
	s.checkTruncated(t, w, "after-truncate", recs, 4)
	if err := w.Truncate(ctx, recs[2].id); err != nil {
		t.Fatalf("Truncate at a lower id (%v): %v", recs[2].id, err)
	}
	s.checkTruncated(t, w, "after-lower-truncate", recs, 4)
	if err := w.Truncate(ctx, foreignID{}); !is(err, walimpls.ErrInvalidMessageID) {
		t.Errorf("Truncate(foreign id) = %v, want an error matching ErrInvalidMessageID", err)
	}
	// An id beyond the channel's last message (taken from a longer
	// channel) would hide messages appended later: refused, nothing moves.
	longer := s.open(t, s.channelName("truncate-longer"), 1, walimpls.AccessModeRW)
	far := s.appendMany(t, longer, "longer", 15)[14]
	longer.Close()
	if !recs[9].id.LT(far.id) {
		t.Fatalf("the longer channel's 15th id %v is not beyond the 10th %v of this one", far.id, recs[9].id)
	}
	if err := w.Truncate(ctx, far.id); !is(err, walimpls.ErrInvalidMessageID) {
		t.Errorf("Truncate(%v) beyond the last message %v = %v, want an error matching ErrInvalidMessageID", far.id, recs[9].id, err)
	}
	s.checkTruncated(t, w, "after-beyond-end", recs, 4)
	// Start-from below the truncation point must not fail.
	sc := s.scan(t, w, "from-truncated", walimpls.DeliverStartFrom(recs[0].id))
	if s.cfg.strictTruncate {
		m, err := s.receive(sc)
		if err != nil {
			t.Fatal(err)
		}
		if !m.ID.LTE(recs[4].id) {
			t.Errorf("start-from a truncated id delivered %v first, beyond the truncation point %v", m.ID, recs[4].id)
		}
	}
	w.Close()

	w = s.open(t, name, 1, walimpls.AccessModeRW)
	more := s.appendMany(t, w, "after", 3)
	all := append(recs, more...)
	checkIncreasing(t, all)
	s.checkTruncated(t, w, "after-reopen", all, 4)
	ro := s.open(t, name, 1, walimpls.AccessModeRO)
	s.checkTruncated(t, ro, "read-only", all, 4)
}

// checkTruncated checks an all-reader on a WAL truncated at recs[at].
func (s *suite) checkTruncated(t *testing.T, w walimpls.ROWAL, name string, recs []record, at int) {
	t.Helper()
	sc := s.scan(t, w, name, walimpls.DeliverAll())
	if s.cfg.strictTruncate {
		s.expect(t, sc, recs[at:])
		return
	}
	// Anything before the point may still come; then the point and
	// everything after it, in order.
	first := 0
	for {
		m, err := s.receive(sc)
		if err != nil {
			t.Fatal(err)
		}
		i := first
		for i < len(recs) && !recs[i].id.EQ(m.ID) {
			i++
		}
		if i == len(recs) || i > at {
			t.Fatalf("scanner %s delivered %v, which is no message expected next", name, m.ID)
		}
		if err := sameMessage(recs[i], m); err != nil {
			t.Fatal(err)
		}
		if i == at {
			break
		}
		first = i + 1
	}
	s.expect(t, sc, recs[at+1:])
}

// testScanner checks the scanner's life cycle: a scanner outlives the
// context of Read, follows the tail, and ends through Close (Error nil) or
// its WAL's Close (Error matching ErrClosed), closing Done and Chan.
func (s *suite) testScanner(t *testing.T) {
	name := s.channelName("scanner")
	w := s.open(t, name, 1, walimpls.AccessModeRW)
	recs := s.appendMany(t, w, "first", 3)

	readCtx, cancel := context.WithCancel(context.Background())
	sc, err := w.Read(readCtx, walimpls.ReadOption{Name: "outlives-ctx"})
	cancel()
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	t.Cleanup(func() { _ = sc.Close() })
	s.expect(t, sc, recs)
	select {
	case <-sc.Done():
		t.Fatalf("Done closed before Close: Error() = %v", sc.Error())
	default:
	}
	tail := s.appendMany(t, w, "tail", 2)
	s.expect(t, sc, tail)

	more := s.appendOne(t, w, newMessage("unread", 0), "unread")
	if err := sc.Close(); err != nil {
		t.Errorf("Close = %v, want nil", err)
	}
	s.checkEnded(t, sc, nil, []record{more})
	if err := sc.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}

	// The WAL's Close ends its scanners with ErrClosed.
	open := s.scan(t, w, "open-at-wal-close", walimpls.DeliverLatest())
	w.Close()
	s.checkEnded(t, open, walimpls.ErrClosed, nil)
	if got := open.Close(); !is(got, walimpls.ErrClosed) {
		t.Errorf("Close after the WAL closed = %v, want an error matching ErrClosed", got)
	}
	if sc, err := w.Read(s.ctx(t), walimpls.ReadOption{Name: "on-closed"}); !is(err, walimpls.ErrClosed) {
		if sc != nil {
			_ = sc.Close()
		}
		t.Errorf("Read on a closed WAL = %v, want an error matching ErrClosed", err)
	}
	w.Close() // idempotent
}

// checkEnded checks that an ended scanner has Done closed, Error matching
// want (nil for nil), and a Chan that drains (only messages from
// mayDeliver, in order) and closes.
func (s *suite) checkEnded(t *testing.T, sc walimpls.Scanner, want error, mayDeliver []record) {
	t.Helper()
	select {
	case <-sc.Done():
	case <-contextDone(s.ctx(t)):
		t.Fatalf("scanner %s: Done not closed", sc.Name())
	}
	err := sc.Error()
	switch {
	case want == nil && err != nil:
		t.Errorf("scanner %s: Error() = %v, want nil", sc.Name(), err)
	case want != nil && !is(err, want):
		t.Errorf("scanner %s: Error() = %v, want an error matching %v", sc.Name(), err, want)
	}
	for {
		m, ok := <-sc.Chan()
		if !ok {
			return
		}
		found := false
		for len(mayDeliver) > 0 && !found {
			found = mayDeliver[0].id.EQ(m.ID)
			mayDeliver = mayDeliver[1:]
		}
		if !found {
			t.Fatalf("scanner %s delivered %v after it ended", sc.Name(), m.ID)
		}
	}
}

func contextDone(ctx context.Context) <-chan struct{} { return ctx.Done() }

// testMessageID checks ordering, marshalling through the registry, and
// the milvus-proto form of ids.
func (s *suite) testMessageID(t *testing.T) {
	name := s.channelName("ids")
	w := s.open(t, name, 1, walimpls.AccessModeRW)
	recs := s.appendMany(t, w, "ids", 12)
	w.Close()
	w = s.open(t, name, 2, walimpls.AccessModeRW) // a new term may start a new id range
	recs = append(recs, s.appendMany(t, w, "ids-term2", 4)...)
	checkIncreasing(t, recs)

	strs := map[string]int{}
	for i, a := range recs {
		if a.id.WALName() != s.b.Name() {
			t.Errorf("%v.WALName() = %v, want %v", a.id, a.id.WALName(), s.b.Name())
		}
		for j, b := range recs {
			if a.id.LT(b.id) != (i < j) || a.id.LTE(b.id) != (i <= j) || a.id.EQ(b.id) != (i == j) {
				t.Fatalf("ids %v (#%d) and %v (#%d): LT %t, LTE %t, EQ %t", a.id, i, b.id, j, a.id.LT(b.id), a.id.LTE(b.id), a.id.EQ(b.id))
			}
		}
		if a.id.LT(foreignID{}) || a.id.LTE(foreignID{}) || a.id.EQ(foreignID{}) {
			t.Errorf("id %v compares as related to a foreign id", a.id)
		}
		str := a.id.String()
		if prev, dup := strs[str]; dup || str == "" {
			t.Errorf("id %d String() = %q, same as id %d or empty", i, str, prev)
		}
		strs[str] = i

		data := a.id.Marshal()
		back, err := walimpls.UnmarshalMessageID(s.b.Name(), data)
		if err != nil {
			t.Fatalf("UnmarshalMessageID(%v, %q) of %v: %v", s.b.Name(), data, a.id, err)
		}
		if !back.EQ(a.id) || !a.id.EQ(back) || back.Marshal() != data {
			t.Errorf("id %v marshalled as %q reads back as %v (marshalled %q)", a.id, data, back, back.Marshal())
		}
		pb := walimpls.IntoProto(a.id)
		if pb.GetWALName() != s.b.Name() || pb.GetId() != data {
			t.Errorf("IntoProto(%v) = %v", a.id, pb)
		}
		if back, err := walimpls.FromProto(pb); err != nil || !back.EQ(a.id) {
			t.Errorf("FromProto(IntoProto(%v)) = %v, %v", a.id, back, err)
		}
	}
	// Ids read back from storage equal those Append returned, and a
	// reader started from an unmarshalled id works.
	back, err := walimpls.UnmarshalMessageID(s.b.Name(), recs[7].id.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	s.expect(t, s.scan(t, w, "from-unmarshalled", walimpls.DeliverStartAfter(back)), recs[8:])
}

// testInvalidInput checks that bad ids and options are rejected with typed
// errors, without panics.
func (s *suite) testInvalidInput(t *testing.T) {
	ctx := s.ctx(t)
	for _, data := range s.cfg.invalidIDs {
		id, err := walimpls.UnmarshalMessageID(s.b.Name(), data)
		if !is(err, walimpls.ErrInvalidMessageID) {
			t.Errorf("UnmarshalMessageID(%q) = %v, %v; want an error matching ErrInvalidMessageID", data, id, err)
		}
	}
	for _, ch := range []walimpls.Channel{
		{Name: "", Term: 1},
		{Name: s.channelName("badterm"), Term: -1},
		{Name: s.channelName("badmode"), Term: 1, AccessMode: 9},
	} {
		if w, err := s.o.Open(ctx, walimpls.OpenOption{Channel: ch}); !is(err, walimpls.ErrInvalidOption) {
			if w != nil {
				w.Close()
			}
			t.Errorf("Open(%v) = %v, want an error matching ErrInvalidOption", ch, err)
		}
	}
	w := s.open(t, s.channelName("badread"), 1, walimpls.AccessModeRW)
	for _, opt := range []struct {
		opt  walimpls.ReadOption
		want error
	}{
		{walimpls.ReadOption{Name: "from-foreign", DeliverPolicy: walimpls.DeliverStartFrom(foreignID{})}, walimpls.ErrInvalidMessageID},
		{walimpls.ReadOption{Name: "after-foreign", DeliverPolicy: walimpls.DeliverStartAfter(foreignID{})}, walimpls.ErrInvalidMessageID},
		{walimpls.ReadOption{Name: "from-nil", DeliverPolicy: walimpls.DeliverStartFrom(nil)}, walimpls.ErrInvalidOption},
		{walimpls.ReadOption{Name: "negative-buffer", ReadAheadBufferSize: -1}, walimpls.ErrInvalidOption},
	} {
		if sc, err := w.Read(ctx, opt.opt); !is(err, opt.want) {
			if sc != nil {
				_ = sc.Close()
			}
			t.Errorf("Read(%s) = %v, want an error matching %v", opt.opt.Name, err, opt.want)
		}
	}
	// The WAL still works after the rejected calls.
	rec := s.appendOne(t, w, newMessage("after-bad-input", 0), "after-bad-input")
	s.expect(t, s.scan(t, w, "all", walimpls.DeliverAll()), []record{rec})
}
