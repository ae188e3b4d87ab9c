package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/objstore"
)

// PhaseRawGet reads objects straight from the storage, after the read
// phase (Config.RawGetStreams).
const PhaseRawGet Phase = "raw-get"

// ReadTarget is a RawTarget whose raw limit of reads can be measured too.
type ReadTarget interface {
	RawTarget
	// PrepareReads stores count objects of size bytes each, named after
	// name (unique within a run), and returns read, which reads object i
	// (0 <= i < count) whole the way the engine's cursors read a range,
	// and cleanup, which removes the objects. read is safe for concurrent
	// use; cleanup is called once, after the last read, even when
	// PrepareReads fails (it removes what was stored).
	PrepareReads(ctx context.Context, name string, size, count int) (
		read func(ctx context.Context, i int) error, cleanup func(context.Context) error, err error)
}

var _ ReadTarget = StoreTarget{}

// PrepareReads implements ReadTarget: create-only PUTs of
// Prefix/name/00000000, ...; read is one ranged GET of the whole object
// (GetRange, as a cursor reads the blocks of a shared object).
func (s StoreTarget) PrepareReads(ctx context.Context, name string, size, count int) (
	func(ctx context.Context, i int) error, func(context.Context) error, error) {
	prefix := s.Prefix
	if prefix == "" {
		prefix = "bench-raw/"
	}
	keys := make([]string, count)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s%s/%08d", prefix, name, i)
	}
	var (
		mu     sync.Mutex
		stored []string
	)
	cleanup := func(ctx context.Context) error {
		st := &objectStream{store: s.Store, keys: stored}
		return st.Close(ctx)
	}
	data := randomBytes(size)
	errs := make([]error, count)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, key := range keys {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := s.Store.Put(ctx, key, data, objstore.PutOptions{IfNotExists: true}); err != nil {
				errs[i] = errors.Wrapf(err, "raw measurement: put %s", key)
				return
			}
			mu.Lock()
			stored = append(stored, key)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, cleanup, err
	}
	read := func(ctx context.Context, i int) error {
		got, err := s.Store.GetRange(ctx, keys[i], 0, int64(size))
		if err != nil {
			return errors.Wrapf(err, "raw measurement: get %s", keys[i])
		}
		if len(got) != size {
			return errors.Newf("raw measurement: get %s: %d bytes, %d were stored", keys[i], len(got), size)
		}
		return nil
	}
	return read, cleanup, nil
}

// rawGetObjects bounds how many objects the raw GET phase stores; it reads
// them round robin.
const rawGetObjects = 256

// rawGets measures GETs of size bytes, cfg.RawGetStreams at once, for as
// many bytes as the read phase read (at least one GET per stream), and for
// no longer than twice the read phase (at least 2 s).
func rawGets(ctx context.Context, cfg Config, t ReadTarget, size int, read *ReadResult) (res RawPhase, err error) {
	total := read.Bytes
	if read.GetMiBps > 0 {
		total = int64(read.GetMiBps * mib * read.Seconds)
	}
	streams := cfg.RawGetStreams
	count := int(min(max(total/int64(size), int64(streams)), rawGetObjects))
	readOne, cleanup, err := t.PrepareReads(ctx, "get-"+randomHex(6), size, count)
	defer func() {
		if cleanup == nil {
			return
		}
		if cerr := cleanup(context.WithoutCancel(ctx)); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err != nil {
		return res, err
	}
	maxOps := max((total+int64(size)-1)/int64(size), int64(streams))
	deadline := time.Now().Add(max(2*time.Duration(read.Seconds*float64(time.Second)), 2*time.Second))
	return timedOps(ctx, cfg, PhaseRawGet, streams, size, maxOps, deadline, int64(streams),
		func(ctx context.Context, _ int, n int64) error { return readOne(ctx, int((n-1)%int64(count))) })
}
