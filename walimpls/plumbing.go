package walimpls

import (
	"context"
	"sync"
)

// Handles is the set of handles (WALs, scanners) an owner opened and
// closes with itself, and the owner's closed flag. Implementations of this
// package share it. The zero value is an open, empty set. It is safe for
// concurrent use.
type Handles[T comparable] struct {
	mu     sync.Mutex
	closed bool
	m      map[T]struct{}
}

// Add adds h and reports true, or reports false when the set was closed.
func (s *Handles[T]) Add(h T) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.m == nil {
		s.m = map[T]struct{}{}
	}
	s.m[h] = struct{}{}
	return true
}

// Remove forgets h.
func (s *Handles[T]) Remove(h T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, h)
}

// Closed reports whether Close was called.
func (s *Handles[T]) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close marks the set closed and returns the handles in it, for the owner
// to close; it reports false, with no handles, when the set was already
// closed.
func (s *Handles[T]) Close() ([]T, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false
	}
	s.closed = true
	hs := make([]T, 0, len(s.m))
	for h := range s.m {
		hs = append(hs, h)
	}
	return hs, true
}

// FeedScanner is a Scanner fed by a function running in its own goroutine:
// the plumbing (channel, stop, outcome) implementations share. Create it
// with NewFeedScanner, register it with its WAL, then Start it.
type FeedScanner struct {
	name   string
	ch     chan ImmutableMessage
	done   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	forget func(*FeedScanner)

	mu      sync.Mutex
	stopped bool  // stop was called
	reason  error // the error Stop was first called with
	err     error // the scanner's outcome; set before done closes
}

var _ Scanner = (*FeedScanner)(nil)

// NewFeedScanner returns a scanner named name that buffers size messages.
// Its Close calls forget, for the WAL to drop it. A scanner that is never
// started must be discarded with Discard.
func NewFeedScanner(name string, size int, forget func(*FeedScanner)) *FeedScanner {
	ctx, cancel := context.WithCancel(context.Background())
	return &FeedScanner{
		name: name, ch: make(chan ImmutableMessage, size), done: make(chan struct{}),
		ctx: ctx, cancel: cancel, forget: forget,
	}
}

// Start runs feed in a goroutine. feed delivers messages with send, which
// reports false once the scanner is stopping (ctx is then done); feed must
// then return. What feed returns is the scanner's error unless Stop or
// Close ended it.
func (s *FeedScanner) Start(feed func(ctx context.Context, send func(ImmutableMessage) bool) error) {
	go s.run(feed)
}

// Discard releases a scanner that was never started.
func (s *FeedScanner) Discard() { s.cancel() }

func (s *FeedScanner) run(feed func(ctx context.Context, send func(ImmutableMessage) bool) error) {
	var failure error
	defer func() {
		s.mu.Lock()
		if s.stopped {
			s.err = s.reason
		} else {
			s.err = failure
		}
		s.mu.Unlock()
		close(s.ch)
		close(s.done)
	}()
	failure = feed(s.ctx, func(m ImmutableMessage) bool {
		select {
		case s.ch <- m:
			return true
		case <-s.ctx.Done():
			return false
		}
	})
}

// Name returns the scanner's name.
func (s *FeedScanner) Name() string { return s.name }

// Chan returns the channel of messages.
func (s *FeedScanner) Chan() <-chan ImmutableMessage { return s.ch }

// Done is closed once the scanner has ended.
func (s *FeedScanner) Done() <-chan struct{} { return s.done }

// Error waits for the scanner to end and returns its outcome.
func (s *FeedScanner) Error() error {
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close stops the scanner with no error, has its WAL forget it, and returns
// its outcome.
func (s *FeedScanner) Close() error {
	s.Stop(nil)
	s.forget(s)
	return s.Error()
}

// Stop ends the scanner with reason (nil: closed by its user) unless it
// already ended, and waits for it. A started scanner only.
func (s *FeedScanner) Stop(reason error) {
	s.mu.Lock()
	if !s.stopped {
		s.stopped, s.reason = true, reason
	}
	s.mu.Unlock()
	s.cancel()
	<-s.done
}

// AsMessageID returns id as a T when it is a T or a non-nil *T, so that
// ids compare whether passed by value or by pointer; false otherwise.
func AsMessageID[T any](id any) (T, bool) {
	switch o := id.(type) {
	case T:
		return o, true
	case *T:
		if o != nil {
			return *o, true
		}
	}
	var zero T
	return zero, false
}
