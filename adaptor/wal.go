// Package adaptor binds the Woodpecker engine to the streaming interface of
// package walimpls, and picks a WAL implementation by the mq.type of a
// database's YAML configuration.
//
// Each channel is one Woodpecker log of the same name, created on first
// open. A channel's term is the log's writer epoch: a read-write open at
// term T opens a writer at epoch T, which fences every writer of a lower
// epoch and any earlier writer of epoch T. Each message is one log entry,
// framed with its properties (see AppendFrame). Message ids are entry ids
// (see MessageID).
package adaptor

import (
	"context"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/walerr"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/walimpls"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// defaultReadAhead is the scanner buffer when ReadOption leaves it 0.
const defaultReadAhead = 64

// Builder builds Openers that each hold one Woodpecker client. It is safe
// for concurrent use.
type Builder struct {
	cfg  options.Config
	opts []woodpecker.Option
}

var _ walimpls.OpenerBuilder = (*Builder)(nil)

// NewBuilder returns a builder whose Openers connect with cfg and opts (for
// instance woodpecker.WithEtcdClient to share an etcd client). cfg is
// validated by Build.
func NewBuilder(cfg options.Config, opts ...woodpecker.Option) *Builder {
	return &Builder{cfg: cfg.Clone(), opts: opts}
}

// Name returns walimpls.WALNameWoodpecker.
func (b *Builder) Name() walimpls.WALName { return walimpls.WALNameWoodpecker }

// Config returns the configuration Openers are built with.
func (b *Builder) Config() options.Config { return b.cfg.Clone() }

// Build validates the configuration, connects to etcd and the storage, and
// returns an Opener the caller must Close. It waits at most
// etcd.dialTimeout plus storage.requestTimeout.
func (b *Builder) Build() (walimpls.Opener, error) {
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.Etcd.DialTimeout+b.cfg.Storage.RequestTimeout)
	defer cancel()
	c, err := woodpecker.New(ctx, b.cfg, b.opts...)
	if err != nil {
		return nil, errors.Wrap(err, "build woodpecker wal opener")
	}
	return &Opener{c: c, closeTimeout: b.cfg.Writer.UploadRetry.TotalTimeout}, nil
}

// Opener opens WALs on one Woodpecker client. It is safe for concurrent
// use.
type Opener struct {
	c            *woodpecker.Client
	closeTimeout time.Duration
	wals         walimpls.Handles[*WAL]
}

var _ walimpls.Opener = (*Opener)(nil)

// Client returns the Woodpecker client the opener uses; it stays the
// opener's.
func (o *Opener) Client() *woodpecker.Client { return o.c }

// Open opens the channel's log, creating it when it does not exist. A
// read-write open opens a writer at the channel's term; a lower term than
// the log's current one fails with an error matching walimpls.ErrFenced.
func (o *Opener) Open(ctx context.Context, opt walimpls.OpenOption) (walimpls.WAL, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	if err := o.usable(); err != nil {
		return nil, err
	}
	ch := opt.Channel
	l, err := o.openLog(ctx, ch.Name)
	if err != nil {
		return nil, mapError(errors.Wrapf(err, "open wal %s", ch))
	}
	w := &WAL{o: o, ch: ch, log: l}
	if ch.AccessMode == walimpls.AccessModeRW {
		if w.w, err = l.OpenWriter(ctx, ch.Term); err != nil {
			return nil, mapError(errors.Wrapf(err, "open wal %s", ch))
		}
	}
	if !o.wals.Add(w) {
		w.closeWriter()
		return nil, errors.Wrap(walimpls.ErrClosed, "woodpecker wal opener")
	}
	return w, nil
}

// openLog opens the log named name, creating it if needed. Concurrent
// creators race harmlessly.
func (o *Opener) openLog(ctx context.Context, name string) (*woodpecker.Log, error) {
	l, err := o.c.OpenLog(ctx, name)
	if !errors.Is(err, woodpecker.ErrLogNotFound) {
		return l, err
	}
	if err := o.c.CreateLog(ctx, name); err != nil && !errors.Is(err, woodpecker.ErrLogExists) {
		return nil, err
	}
	return o.c.OpenLog(ctx, name)
}

func (o *Opener) usable() error {
	if o.wals.Closed() {
		return errors.Wrap(walimpls.ErrClosed, "woodpecker wal opener")
	}
	return nil
}

// Close closes the WALs still open, then the client. It is idempotent.
func (o *Opener) Close() {
	wals, ok := o.wals.Close()
	if !ok {
		return
	}
	for _, w := range wals {
		w.Close()
	}
	_ = o.c.Close()
}

// mapError marks engine errors with the walimpls sentinels callers test.
func mapError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, woodpecker.ErrFenced):
		return walerr.Mark(err, walimpls.ErrFenced)
	case errors.Is(err, woodpecker.ErrClosed):
		return walerr.Mark(err, walimpls.ErrClosed)
	case errors.Is(err, woodpecker.ErrInvalidName), errors.Is(err, woodpecker.ErrInvalidEpoch):
		return walerr.Mark(err, walimpls.ErrInvalidOption)
	case errors.Is(err, woodpecker.ErrInvalidID), errors.Is(err, woodpecker.ErrBeyondEnd):
		return walerr.Mark(err, walimpls.ErrInvalidMessageID)
	}
	return err
}

// WAL is one channel opened through an Opener. It is safe for concurrent
// use.
type WAL struct {
	o   *Opener
	ch  walimpls.Channel
	log *woodpecker.Log
	w   *woodpecker.Writer // nil when read-only

	scanners walimpls.Handles[*walimpls.FeedScanner]
}

var _ walimpls.WAL = (*WAL)(nil)

// WALName returns walimpls.WALNameWoodpecker.
func (w *WAL) WALName() walimpls.WALName { return walimpls.WALNameWoodpecker }

// Channel returns the channel as given to Open.
func (w *WAL) Channel() walimpls.Channel { return w.ch }

// Log returns the engine's handle on the channel's log.
func (w *WAL) Log() *woodpecker.Log { return w.log }

// Append frames msg and appends it; see walimpls.WAL. Errors keep the
// engine's meaning: woodpecker.ErrUnknownOutcome means the message may be
// in the log, any other error means it is not. Fencing errors also match
// walimpls.ErrFenced. It panics on a read-only WAL.
func (w *WAL) Append(ctx context.Context, msg walimpls.Message) (walimpls.MessageID, error) {
	if w.w == nil {
		panic("adaptor: Append on read-only wal " + w.ch.String())
	}
	if w.isClosed() {
		return nil, errors.Wrapf(walimpls.ErrClosed, "append to wal %s", w.ch)
	}
	id, err := w.w.Append(ctx, AppendFrame(nil, msg))
	if err != nil {
		return nil, mapError(errors.Wrapf(err, "append to wal %s", w.ch))
	}
	return MessageID{id: id}, nil
}

// Truncate moves the log's truncation point to id: scanners opened later
// with DeliverAll start at id. A lower id than the current point changes
// nothing. It panics on a read-only WAL.
func (w *WAL) Truncate(ctx context.Context, id walimpls.MessageID) error {
	if w.w == nil {
		panic("adaptor: Truncate on read-only wal " + w.ch.String())
	}
	eid, ok := asEntryID(id)
	if !ok {
		return errors.Wrapf(walimpls.ErrInvalidMessageID, "truncate wal %s at %v: not a woodpecker message id", w.ch, id)
	}
	if w.isClosed() {
		return errors.Wrapf(walimpls.ErrClosed, "truncate wal %s", w.ch)
	}
	// The writer's truncation: a handle that a newer term superseded fails
	// with ErrFenced instead of cutting entries the new owner still needs.
	return mapError(errors.Wrapf(w.w.Truncate(ctx, eid), "truncate wal %s at %s", w.ch, eid))
}

func (w *WAL) isClosed() bool { return w.scanners.Closed() }

// Read opens a scanner; see walimpls.ROWAL. The scanner ends with an error
// when the engine's reader fails or an entry is not a valid frame (matching
// ErrMalformedFrame).
func (w *WAL) Read(ctx context.Context, opt walimpls.ReadOption) (walimpls.Scanner, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	var from woodpecker.StartPosition
	p := opt.DeliverPolicy
	switch p.Kind() {
	case walimpls.DeliverKindAll:
		from = woodpecker.Earliest()
	case walimpls.DeliverKindLatest:
		from = woodpecker.Latest()
	case walimpls.DeliverKindStartFrom, walimpls.DeliverKindStartAfter:
		eid, ok := asEntryID(p.ID())
		if !ok {
			return nil, errors.Wrapf(walimpls.ErrInvalidMessageID, "scanner %q on wal %s: %v is not a woodpecker message id", opt.Name, w.ch, p.ID())
		}
		from = woodpecker.At(eid)
		if p.Kind() == walimpls.DeliverKindStartAfter {
			from = woodpecker.After(eid)
		}
	}
	if w.isClosed() {
		return nil, errors.Wrapf(walimpls.ErrClosed, "read wal %s", w.ch)
	}
	r, err := w.log.OpenReader(ctx, from)
	if err != nil {
		return nil, mapError(errors.Wrapf(err, "open scanner %q on wal %s at %s", opt.Name, w.ch, p))
	}
	size := opt.ReadAheadBufferSize
	if size == 0 {
		size = defaultReadAhead
	}
	s := walimpls.NewFeedScanner(opt.Name, size, w.scanners.Remove)
	if !w.scanners.Add(s) {
		s.Discard()
		_ = r.Close()
		return nil, errors.Wrapf(walimpls.ErrClosed, "read wal %s", w.ch)
	}
	s.Start(func(ctx context.Context, send func(walimpls.ImmutableMessage) bool) error {
		return w.feed(ctx, opt.Name, r, send)
	})
	return s, nil
}

// Close ends the WAL's scanners with walimpls.ErrClosed, waits (up to
// writer.uploadRetry.totalTimeout) for pending appends, and closes the
// writer. It is idempotent.
func (w *WAL) Close() {
	scanners, ok := w.scanners.Close()
	if !ok {
		return
	}
	for _, s := range scanners {
		s.Stop(errors.Wrapf(walimpls.ErrClosed, "scanner %q: wal %s was closed", s.Name(), w.ch))
	}
	w.closeWriter()
	w.o.wals.Remove(w)
}

// closeWriter closes the writer. A fenced writer's close fails; nothing is
// left to do about it.
func (w *WAL) closeWriter() {
	if w.w == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.o.closeTimeout)
	defer cancel()
	_ = w.w.Close(ctx)
}

// feed delivers the frames r reads, for scanner name, until the reader
// fails, a frame is malformed, or ctx ends. It closes r.
func (w *WAL) feed(ctx context.Context, name string, r *woodpecker.Reader, send func(walimpls.ImmutableMessage) bool) error {
	defer func() { _ = r.Close() }()
	for {
		e, err := r.Next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				return mapError(errors.Wrapf(err, "scanner %q on wal %s", name, w.ch))
			}
			return nil
		}
		msg, err := DecodeFrame(e.Payload)
		if err != nil {
			return errors.Wrapf(err, "scanner %q on wal %s: entry %s", name, w.ch, e.ID)
		}
		if !send(walimpls.ImmutableMessage{ID: MessageID{id: e.ID}, Payload: msg.Payload, Properties: msg.Properties}) {
			return nil
		}
	}
}
