// Package memstore is an in-memory objstore.Store for unit tests of the
// layers above object storage, with fault injection built in.
//
// Faults are rules (Inject): fail, delay, hold or silently drop the Nth
// operation of a kind whose key matches a pattern. Objects can be corrupted
// in place (Corrupt, Mutate). A store can ignore create-only conditions
// (WithoutConditionalWrites), like an S3 implementation without
// If-None-Match support. Held operations model requests in flight when a
// process dies: Crash fails them all and decides which of the held puts
// landed anyway. Counters (Count) tell how many calls of each kind a test
// made.
package memstore

import (
	"context"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
)

// DefaultListLimit is the page size List uses when called with limit <= 0.
const DefaultListLimit = 1000

// Store is an in-memory objstore.Store with fault injection. It is safe for
// concurrent use. The zero value is not usable; call New.
type Store struct {
	counts [numOps]atomic.Int64

	mu           sync.Mutex
	objects      map[string]object
	noConditions bool
	rules        []*Injection
	held         map[*heldOp]struct{}
	heldChanged  chan struct{} // closed and replaced when held changes
	// decided counts Release and Crash calls, and lastDecision is the
	// latest one's choice: an operation a hold rule matched before a
	// Release or Crash, and that had not registered as held yet, gets
	// that decision rather than waiting for the next (hold).
	decided      uint64
	lastDecision func(HeldOp) decision
}

type object struct {
	data    []byte
	modTime time.Time
}

var _ objstore.Store = (*Store)(nil)

// Option configures a Store made by New.
type Option func(*Store)

// WithoutConditionalWrites makes the store ignore PutOptions.IfNotExists: a
// create-only put of an existing key silently replaces it, as on an S3
// implementation that ignores If-None-Match. objstore.ProbeConditionalWrite
// then reports objstore.ErrConditionalWriteUnsupported.
func WithoutConditionalWrites() Option {
	return func(s *Store) { s.noConditions = true }
}

// New returns an empty store.
func New(opts ...Option) *Store {
	s := &Store{
		objects:     make(map[string]object),
		held:        make(map[*heldOp]struct{}),
		heldChanged: make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// SetConditionalWrites switches create-only support on or off at run time
// (see WithoutConditionalWrites).
func (s *Store) SetConditionalWrites(honour bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noConditions = !honour
}

// Put implements objstore.Store. It copies data.
func (s *Store) Put(ctx context.Context, key string, data []byte, opts objstore.PutOptions) error {
	s.counts[OpPut].Add(1)
	if err := objstore.ValidateKey(key); err != nil {
		return errors.Wrap(err, "memstore put")
	}
	buf := append([]byte(nil), data...)
	store := func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.objects[key]; ok && opts.IfNotExists && !s.noConditions {
			return errors.Wrapf(objstore.ErrAlreadyExists, "memstore put %q", key)
		}
		s.objects[key] = object{data: buf, modTime: time.Now()}
		return nil
	}
	return s.run(ctx, OpPut, key, store, store)
}

// Get implements objstore.Store. The returned slice is a copy.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	var out []byte
	err := s.read(ctx, OpGet, "get", key, func(o object) error {
		out = append([]byte{}, o.data...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetRange implements objstore.Store. The returned slice is a copy.
func (s *Store) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	var out []byte
	err := s.read(ctx, OpGetRange, "get range", key, func(o object) error {
		end, err := objstore.RangeEnd(int64(len(o.data)), offset, length)
		if err != nil {
			return errors.Wrapf(err, "memstore get range %q", key)
		}
		out = append([]byte{}, o.data[offset:end]...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Stat implements objstore.Store.
func (s *Store) Stat(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	var info objstore.ObjectInfo
	err := s.read(ctx, OpStat, "stat", key, func(o object) error {
		info = objstore.ObjectInfo{Key: key, Size: int64(len(o.data)), LastModified: o.modTime}
		return nil
	})
	return info, err
}

// read is the part Get, GetRange and Stat share: it counts op, checks the
// key, and runs use on key's object under the injected rules and the
// store's lock (use must copy what it keeps); a missing object is
// ErrNotFound. what names the operation in errors ("get range").
func (s *Store) read(ctx context.Context, op Op, what, key string, use func(o object) error) error {
	s.counts[op].Add(1)
	if err := objstore.ValidateKey(key); err != nil {
		return errors.Wrapf(err, "memstore %s", what)
	}
	return s.run(ctx, op, key, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		o, ok := s.objects[key]
		if !ok {
			return errors.Wrapf(objstore.ErrNotFound, "memstore %s %q", what, key)
		}
		return use(o)
	}, nil)
}

// List implements objstore.Store. Rules match a List by its prefix.
func (s *Store) List(ctx context.Context, prefix, startAfter string, limit int) (objstore.ListPage, error) {
	s.counts[OpList].Add(1)
	if err := objstore.ValidatePrefix(prefix); err != nil {
		return objstore.ListPage{}, errors.Wrap(err, "memstore list")
	}
	if limit <= 0 || limit > DefaultListLimit {
		limit = DefaultListLimit
	}
	var page objstore.ListPage
	err := s.run(ctx, OpList, prefix, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		var keys []string
		for k := range s.objects {
			if strings.HasPrefix(k, prefix) && k > startAfter {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		if len(keys) > limit {
			keys, page.More = keys[:limit], true
		}
		for _, k := range keys {
			o := s.objects[k]
			page.Objects = append(page.Objects, objstore.ObjectInfo{Key: k, Size: int64(len(o.data)), LastModified: o.modTime})
		}
		return nil
	}, nil)
	if err != nil {
		return objstore.ListPage{}, err
	}
	return page, nil
}

// Delete implements objstore.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	s.counts[OpDelete].Add(1)
	if err := objstore.ValidateKey(key); err != nil {
		return errors.Wrap(err, "memstore delete")
	}
	del := func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.objects, key)
		return nil
	}
	return s.run(ctx, OpDelete, key, del, del)
}

// run performs one operation under the injected rules. do performs it;
// land is what a held operation does when Crash decides it landed (nil for
// operations that change nothing).
func (s *Store) run(ctx context.Context, op Op, key string, do, land func() error) error {
	if err := ctx.Err(); err != nil {
		return errors.Wrapf(err, "memstore %s %q", op, key)
	}
	r, decided := s.match(op, key)
	if r == nil {
		return do()
	}
	if r.Delay > 0 {
		t := time.NewTimer(r.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return errors.Wrapf(ctx.Err(), "memstore %s %q (delayed by an injected rule)", op, key)
		}
	}
	injected := r.Err
	if injected == nil {
		injected = ErrInjected
	}
	wrap := func(err error) error {
		return errors.Wrapf(err, "memstore %s %q (injected)", op, key)
	}
	switch r.Action {
	case ActionNone:
		if r.Err != nil {
			return wrap(r.Err)
		}
		return do()
	case ActionFail:
		return wrap(injected)
	case ActionFailAfter:
		if err := do(); err != nil {
			return err
		}
		return wrap(injected)
	case ActionDrop:
		if op == OpPut || op == OpDelete {
			return nil
		}
		return wrap(injected)
	case ActionHold:
		return s.hold(ctx, op, key, do, land, decided)
	default:
		return errors.AssertionFailedf("memstore: unknown action %d", r.Action)
	}
}

// match advances the counters of the rules matching (op, key) and returns
// the first one that fires, or nil.
func (s *Store) match(op Op, key string) (*Rule, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var fired *Rule
	for _, inj := range s.rules {
		if !inj.rule.matches(op, key) {
			continue
		}
		inj.seen++
		if fired == nil && inj.fires() {
			inj.fired.Add(1)
			r := inj.rule
			fired = &r
		}
	}
	return fired, s.decided
}

// Count returns how many calls of kind op were made (OpAny: of every
// kind), including calls that failed. Calls are counted as they start.
func (s *Store) Count(op Op) int64 {
	if op == OpAny {
		var n int64
		for i := range s.counts {
			n += s.counts[i].Load()
		}
		return n
	}
	if op < 0 || int(op) >= len(s.counts) {
		return 0
	}
	return s.counts[op].Load()
}

// ResetCounts sets every counter to zero.
func (s *Store) ResetCounts() {
	for i := range s.counts {
		s.counts[i].Store(0)
	}
}

// Peek returns a copy of the object stored under key, bypassing rules and
// counters. ok is false when there is none.
func (s *Store) Peek(key string) (data []byte, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[key]
	if !ok {
		return nil, false
	}
	return append([]byte{}, o.data...), true
}

// Keys returns every stored key in ascending order, bypassing rules and
// counters.
func (s *Store) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.objects))
	for k := range s.objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Mutate replaces the object under key with fn(copy of its bytes),
// bypassing rules and counters; use it to truncate, extend or rewrite an
// object behind the back of the code under test. It returns an error
// wrapping objstore.ErrNotFound when there is no such object.
func (s *Store) Mutate(key string, fn func(data []byte) []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[key]
	if !ok {
		return errors.Wrapf(objstore.ErrNotFound, "memstore mutate %q", key)
	}
	o.data = fn(append([]byte{}, o.data...))
	s.objects[key] = o
	return nil
}

// Corrupt flips the bits of mask in the byte at offset of the object under
// key (mask 0 flips all eight). It returns an error wrapping
// objstore.ErrNotFound for a missing object and objstore.ErrInvalidRange
// when offset is outside it.
func (s *Store) Corrupt(key string, offset int64, mask byte) error {
	if mask == 0 {
		mask = 0xff
	}
	var rangeErr error
	err := s.Mutate(key, func(data []byte) []byte {
		if offset < 0 || offset >= int64(len(data)) {
			rangeErr = errors.Wrapf(objstore.ErrInvalidRange,
				"memstore corrupt %q: offset %d outside %d bytes", key, offset, len(data))
			return data
		}
		data[offset] ^= mask
		return data
	})
	if err != nil {
		return err
	}
	return rangeErr
}
