// Package memwal is an in-memory implementation of walimpls, for unit tests
// of code that uses a WAL and as the reference the conformance suite is
// checked against. It keeps everything in the Builder: Openers built from
// one Builder share its channels, as processes share a real backend.
// Nothing is durable.
//
// Its ids are registered under walimpls.WALNameTest when the package is
// imported.
package memwal

import (
	"context"
	"maps"
	"strconv"
	"sync"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/walimpls"
)

func init() {
	walimpls.RegisterMessageIDUnmarshaler(walimpls.WALNameTest, UnmarshalMessageID)
}

// MessageID is an id of memwal: the message's offset in its channel.
type MessageID int64

// WALName returns walimpls.WALNameTest.
func (MessageID) WALName() walimpls.WALName { return walimpls.WALNameTest }

// LT reports whether id sorts before other; false for foreign ids.
func (id MessageID) LT(other walimpls.MessageID) bool {
	o, ok := other.(MessageID)
	return ok && id < o
}

// LTE reports whether id sorts before or equals other; false for foreign ids.
func (id MessageID) LTE(other walimpls.MessageID) bool {
	o, ok := other.(MessageID)
	return ok && id <= o
}

// EQ reports whether the ids are equal; false for foreign ids.
func (id MessageID) EQ(other walimpls.MessageID) bool {
	o, ok := other.(MessageID)
	return ok && id == o
}

// Marshal returns the offset in decimal.
func (id MessageID) Marshal() string { return strconv.FormatInt(int64(id), 10) }

// String returns "mem:<offset>".
func (id MessageID) String() string { return "mem:" + id.Marshal() }

// UnmarshalMessageID parses Marshal's form: a non-negative decimal number.
// Anything else matches walimpls.ErrInvalidMessageID.
func UnmarshalMessageID(s string) (walimpls.MessageID, error) {
	for _, c := range s {
		if c < '0' || c > '9' {
			return nil, errors.Wrapf(walimpls.ErrInvalidMessageID, "memwal id %q is not a decimal offset", s)
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil, errors.Wrapf(walimpls.ErrInvalidMessageID, "memwal id %q: %v", s, err)
	}
	return MessageID(v), nil
}

// Builder holds the channels. Create it with NewBuilder. Safe for
// concurrent use.
type Builder struct {
	mu       sync.Mutex
	channels map[string]*channel
}

// NewBuilder returns a Builder with no channels.
func NewBuilder() *Builder { return &Builder{channels: map[string]*channel{}} }

// Name returns walimpls.WALNameTest.
func (b *Builder) Name() walimpls.WALName { return walimpls.WALNameTest }

// Build returns an Opener on the builder's channels.
func (b *Builder) Build() (walimpls.Opener, error) {
	return &opener{b: b, wals: map[*wal]struct{}{}}, nil
}

func (b *Builder) channel(name string) *channel {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.channels[name]
	if c == nil {
		c = &channel{term: -1, changed: make(chan struct{})}
		b.channels[name] = c
	}
	return c
}

// channel is one log.
type channel struct {
	mu      sync.Mutex
	msgs    []walimpls.ImmutableMessage
	trunc   int64
	term    int64 // highest read-write term opened, -1 if none
	gen     int64 // bumped by every read-write open; appends check it
	changed chan struct{}
}

func (c *channel) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

type opener struct {
	b      *Builder
	mu     sync.Mutex
	closed bool
	wals   map[*wal]struct{}
}

func (o *opener) Open(ctx context.Context, opt walimpls.OpenOption) (walimpls.WAL, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil, errors.Wrap(walimpls.ErrClosed, "memwal opener")
	}
	c := o.b.channel(opt.Channel.Name)
	w := &wal{o: o, c: c, ch: opt.Channel}
	if opt.Channel.AccessMode == walimpls.AccessModeRW {
		c.mu.Lock()
		if opt.Channel.Term < c.term {
			c.mu.Unlock()
			return nil, errors.Wrapf(walimpls.ErrFenced, "channel %q: term %d is below term %d", opt.Channel.Name, opt.Channel.Term, c.term)
		}
		c.term = opt.Channel.Term
		c.gen++
		w.gen = c.gen
		c.mu.Unlock()
	}
	o.wals[w] = struct{}{}
	return w, nil
}

func (o *opener) Close() {
	o.mu.Lock()
	o.closed = true
	wals := make([]*wal, 0, len(o.wals))
	for w := range o.wals {
		wals = append(wals, w)
	}
	o.mu.Unlock()
	for _, w := range wals {
		w.Close()
	}
}

type wal struct {
	o   *opener
	c   *channel
	ch  walimpls.Channel
	gen int64

	scanners walimpls.Handles[*walimpls.FeedScanner]
}

func (w *wal) WALName() walimpls.WALName { return walimpls.WALNameTest }

func (w *wal) Channel() walimpls.Channel { return w.ch }

func (w *wal) Append(ctx context.Context, msg walimpls.Message) (walimpls.MessageID, error) {
	if w.ch.AccessMode != walimpls.AccessModeRW {
		panic("memwal: Append on a read-only WAL")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if w.isClosed() {
		return nil, errors.Wrap(walimpls.ErrClosed, "memwal append")
	}
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	if w.c.gen != w.gen {
		return nil, errors.Wrapf(walimpls.ErrFenced, "channel %q term %d", w.ch.Name, w.ch.Term)
	}
	id := MessageID(len(w.c.msgs))
	w.c.msgs = append(w.c.msgs, walimpls.ImmutableMessage{
		ID: id, Payload: append([]byte(nil), msg.Payload...), Properties: maps.Clone(msg.Properties),
	})
	w.c.notifyLocked()
	return id, nil
}

func (w *wal) Truncate(ctx context.Context, id walimpls.MessageID) error {
	if w.ch.AccessMode != walimpls.AccessModeRW {
		panic("memwal: Truncate on a read-only WAL")
	}
	mid, ok := id.(MessageID)
	if !ok {
		return errors.Wrapf(walimpls.ErrInvalidMessageID, "memwal cannot truncate at foreign id %v", id)
	}
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	if w.c.gen != w.gen {
		return errors.Wrapf(walimpls.ErrFenced, "channel %q term %d", w.ch.Name, w.ch.Term)
	}
	if int64(mid) >= int64(len(w.c.msgs)) {
		return errors.Wrapf(walimpls.ErrInvalidMessageID, "memwal cannot truncate channel %q at %d: its last message is %d",
			w.ch.Name, mid, len(w.c.msgs)-1)
	}
	w.c.trunc = max(w.c.trunc, int64(mid))
	return nil
}

func (w *wal) isClosed() bool { return w.scanners.Closed() }

func (w *wal) Read(_ context.Context, opt walimpls.ReadOption) (walimpls.Scanner, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	var next int64
	p := opt.DeliverPolicy
	if p.Kind() == walimpls.DeliverKindStartFrom || p.Kind() == walimpls.DeliverKindStartAfter {
		mid, ok := p.ID().(MessageID)
		if !ok {
			return nil, errors.Wrapf(walimpls.ErrInvalidMessageID, "memwal cannot start at foreign id %v", p.ID())
		}
		next = int64(mid)
		if p.Kind() == walimpls.DeliverKindStartAfter {
			next++
		}
	}
	w.c.mu.Lock()
	switch p.Kind() {
	case walimpls.DeliverKindAll:
		next = w.c.trunc
	case walimpls.DeliverKindLatest:
		next = int64(len(w.c.msgs))
	}
	w.c.mu.Unlock()
	size := opt.ReadAheadBufferSize
	if size == 0 {
		size = 16
	}
	s := walimpls.NewFeedScanner(opt.Name, size, w.scanners.Remove)
	if !w.scanners.Add(s) {
		s.Discard()
		return nil, errors.Wrap(walimpls.ErrClosed, "memwal read")
	}
	s.Start(func(ctx context.Context, send func(walimpls.ImmutableMessage) bool) error {
		w.feed(ctx, next, send)
		return nil
	})
	return s, nil
}

func (w *wal) Close() {
	scanners, ok := w.scanners.Close()
	if !ok {
		return
	}
	for _, s := range scanners {
		s.Stop(errors.Wrap(walimpls.ErrClosed, "memwal scanner: its WAL was closed"))
	}
	w.o.mu.Lock()
	delete(w.o.wals, w)
	w.o.mu.Unlock()
}

// feed delivers the channel's messages from offset next on, following its
// tail, until ctx ends.
func (w *wal) feed(ctx context.Context, next int64, send func(walimpls.ImmutableMessage) bool) {
	for {
		w.c.mu.Lock()
		changed := w.c.changed
		var msg walimpls.ImmutableMessage
		ok := next < int64(len(w.c.msgs))
		if ok {
			m := w.c.msgs[next]
			msg = walimpls.ImmutableMessage{ID: m.ID, Payload: append([]byte(nil), m.Payload...), Properties: maps.Clone(m.Properties)}
		}
		w.c.mu.Unlock()
		if !ok {
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return
			}
		}
		if !send(msg) {
			return
		}
		next++
	}
}
