package integration

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/internal/testenv"
	"github.com/woodpecker-wal/woodpecker/options"
	"github.com/woodpecker-wal/woodpecker/woodpecker"
)

// writerHolder is the current writer of a log, replaced at the next epoch
// when it fails. Safe for concurrent use.
type writerHolder struct {
	l        *woodpecker.Log
	mu       sync.Mutex
	w        *woodpecker.Writer
	epoch    int64
	reopened int
}

func (h *writerHolder) get() *woodpecker.Writer {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.w
}

// replace opens a writer at a higher epoch unless failed was replaced
// already, retrying until ctx ends (the store may be down).
func (h *writerHolder) replace(ctx context.Context, failed *woodpecker.Writer) (*woodpecker.Writer, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.w != failed {
		return h.w, nil
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_ = failed.Close(cctx)
	cancel()
	for {
		h.epoch++
		w, err := h.l.OpenWriter(ctx, h.epoch)
		if err == nil {
			h.w = w
			h.reopened++
			return w, nil
		}
		select {
		case <-ctx.Done():
			return nil, errors.Wrapf(err, "reopen writer: gave up at epoch %d", h.epoch)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// appendLoad runs sync and async appenders on a holder until stop is
// closed, recording outcomes. Each append runs under its own timeout; one
// that returns much later than that is reported as a hang.
type appendLoad struct {
	h        *writerHolder
	phase    string
	timeout  time.Duration
	out      *outcomes
	mu       sync.Mutex
	errs     []error
	acked    atomic.Int64
	hangs    []string
	wg       sync.WaitGroup
	ctx      context.Context
	stop     chan struct{}
	fatal    error
	fatalSet sync.Once
}

func (a *appendLoad) record(k appendKey, id woodpecker.EntryID, err error, took time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.out.record(k, id, err)
	if err != nil {
		a.errs = append(a.errs, err)
	} else {
		a.acked.Add(1)
	}
	if took > a.timeout+10*time.Second {
		a.hangs = append(a.hangs, fmt.Sprintf("%v took %v under a %v timeout (%v)", k, took, a.timeout, err))
	}
}

func (a *appendLoad) stopped() bool {
	select {
	case <-a.stop:
		return true
	default:
		return false
	}
}

// afterFailure replaces the writer w that failed; false ends the appender.
func (a *appendLoad) afterFailure(w *woodpecker.Writer) bool {
	if _, err := a.h.replace(a.ctx, w); err != nil {
		a.fatalSet.Do(func() { a.fatal = err })
		return false
	}
	return true
}

func (a *appendLoad) syncAppender(tag string) {
	defer a.wg.Done()
	for seq := int64(0); !a.stopped(); seq++ {
		w := a.h.get()
		ctx, cancel := context.WithTimeout(a.ctx, a.timeout)
		start := time.Now()
		id, err := w.Append(ctx, makePayload(tag, seq))
		cancel()
		a.record(appendKey{tag, seq}, id, err, time.Since(start))
		if err != nil && !a.afterFailure(w) {
			return
		}
	}
}

func (a *appendLoad) asyncAppender(tag string, window int) {
	defer a.wg.Done()
	type pending struct {
		seq   int64
		w     *woodpecker.Writer
		f     *woodpecker.AppendFuture
		start time.Time
	}
	var q []pending
	// await waits for p's outcome and records it.
	await := func(p pending) error {
		ctx, cancel := context.WithTimeout(a.ctx, a.timeout)
		id, err := p.f.Wait(ctx)
		cancel()
		a.record(appendKey{tag, p.seq}, id, err, time.Since(p.start))
		return err
	}
	wait := func() bool {
		p := q[0]
		q = q[1:]
		if err := await(p); err != nil {
			// The rest of the window went to the failed writer too.
			for _, r := range q {
				_ = await(r)
			}
			q = nil
			return a.afterFailure(p.w)
		}
		return true
	}
	for seq := int64(0); !a.stopped(); seq++ {
		w := a.h.get()
		ctx, cancel := context.WithTimeout(a.ctx, a.timeout)
		start := time.Now()
		f, err := w.AppendAsync(ctx, makePayload(tag, seq))
		cancel()
		if err != nil {
			a.record(appendKey{tag, seq}, woodpecker.EntryID{}, err, time.Since(start))
			for len(q) > 0 {
				if !wait() {
					return
				}
			}
			if !a.afterFailure(w) {
				return
			}
			continue
		}
		q = append(q, pending{seq, w, f, start})
		if len(q) >= window && !wait() {
			return
		}
	}
	for len(q) > 0 {
		if !wait() {
			return
		}
	}
}

// waitAcked waits until the load acknowledged n more appends.
func (a *appendLoad) waitAcked(t *testing.T, n int64, what string) {
	t.Helper()
	target := a.acked.Load() + n
	deadline := time.Now().Add(3 * time.Minute)
	for a.acked.Load() < target {
		if time.Now().After(deadline) {
			a.mu.Lock()
			errs := a.errs
			a.mu.Unlock()
			t.Fatalf("%s: %d of %d appends acknowledged; errors so far: %d, last: %v", what, a.acked.Load()-(target-n), n, len(errs), lastErr(errs))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func lastErr(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errs[len(errs)-1]
}

// TestMinIOOutage stops MinIO while appenders (sync, and async with many in
// flight) and a tail reader run, then starts it again on the same port and
// data.
//
//   - "stop, retries ride through": SIGTERM, ~1.5 s down, a retry budget of
//     minutes. Every append must succeed, on the same writer.
//   - "kill, retries give up": SIGKILL, ~4 s down, a retry budget of 1 s.
//     Appends fail with an error naming the log (unknown outcome, or a
//     definite failure), within their timeout; a writer reopened at the
//     next epoch once MinIO is back resumes appending.
//
// No append may outlive its ctx by more than a few seconds. At the end a
// reader from Earliest must find every acknowledged entry once with its
// id, none whose append failed definitely, and the tail reader (reopened
// after the errors the outage causes it) the same log.
func TestMinIOOutage(t *testing.T) {
	mp := testenv.StartMinIO(t)
	s := siteOn(t, mp.S3())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const logName = "outage"
	tweak := func(cfg *options.Config) { cfg.Writer.MaxBlockBytes = 16 << 10 }
	l0 := createLog(t, s.client(t, tweak), logName)

	// The tail reader, on a client of its own, reopens after errors.
	lr := openLog(t, s.client(t, tweak), logName)
	var (
		tailMu            sync.Mutex
		tailGot           []seen
		tailErrs          []error
		tailDone          = make(chan struct{})
		tailCtx, tailStop = context.WithCancel(ctx)
	)
	go func() {
		defer close(tailDone)
		from := woodpecker.Earliest()
		for tailCtx.Err() == nil {
			r, err := lr.OpenReader(tailCtx, from)
			for err == nil {
				var e woodpecker.Entry
				if e, err = r.Next(tailCtx); err == nil {
					tag, seq, perr := parsePayload(e.Payload)
					if perr != nil {
						err = perr
						break
					}
					tailMu.Lock()
					tailGot = append(tailGot, seen{ID: e.ID, Tag: tag, Seq: seq})
					tailMu.Unlock()
					from = woodpecker.After(e.ID)
				}
			}
			if r != nil {
				_ = r.Close()
			}
			if tailCtx.Err() != nil {
				return
			}
			tailMu.Lock()
			tailErrs = append(tailErrs, err)
			tailMu.Unlock()
			select {
			case <-tailCtx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	defer func() { tailStop(); <-tailDone }()

	all := newOutcomes()
	epoch := int64(0)
	for _, ph := range []struct {
		name        string
		down        func()
		outage      time.Duration
		retry       time.Duration // writer.uploadRetry.totalTimeout
		timeout     time.Duration // per append
		rideThrough bool
	}{
		{"stop, retries ride through", mp.Stop, 1500 * time.Millisecond, 5 * time.Minute, 4 * time.Minute, true},
		{"kill, retries give up", mp.Kill, 4 * time.Second, time.Second, 20 * time.Second, false},
	} {
		c := s.client(t, func(cfg *options.Config) {
			tweak(cfg)
			cfg.Writer.UploadRetry.TotalTimeout = ph.retry
		})
		l := openLog(t, c, logName)
		epoch++
		w, err := l.OpenWriter(ctx, epoch)
		if err != nil {
			t.Fatalf("%s: open writer: %v", ph.name, err)
		}
		h := &writerHolder{l: l, w: w, epoch: epoch}
		load := &appendLoad{h: h, phase: ph.name, timeout: ph.timeout, out: newOutcomes(), ctx: ctx, stop: make(chan struct{})}
		for i := range 3 {
			load.wg.Add(1)
			go load.syncAppender(fmt.Sprintf("p%d-s%d", epoch, i))
		}
		load.wg.Add(1)
		go load.asyncAppender(fmt.Sprintf("p%d-a", epoch), 64)

		load.waitAcked(t, 200, ph.name+", before the outage")
		ph.down()
		time.Sleep(ph.outage)
		mp.Start()
		load.waitAcked(t, 200, ph.name+", after the restart")
		close(load.stop)
		load.wg.Wait()
		if load.fatal != nil {
			t.Fatalf("%s: %v", ph.name, load.fatal)
		}
		epoch = h.epoch
		if err := h.get().Close(ctx); err != nil {
			t.Fatalf("%s: close the last writer: %v", ph.name, err)
		}
		all.merge(load.out)

		for _, hang := range load.hangs {
			t.Errorf("%s: append hung beyond its ctx: %s", ph.name, hang)
		}
		for _, err := range load.errs {
			if !strings.Contains(err.Error(), strconv.Quote(logName)) {
				t.Errorf("%s: append error does not say which log: %v", ph.name, err)
			}
		}
		t.Logf("%s: %d acked, %d unknown outcome, %d definitely failed, writer reopened %d times; first error: %v",
			ph.name, len(load.out.acked), len(load.out.unknown), len(load.out.definite), h.reopened, firstErr(load.errs))
		if ph.rideThrough && (len(load.errs) > 0 || h.reopened > 0) {
			t.Errorf("%s: with a retry budget of %v, %d appends failed and the writer was reopened %d times; first error: %v",
				ph.name, ph.retry, len(load.errs), h.reopened, firstErr(load.errs))
		}
		if !ph.rideThrough && (len(load.errs) == 0 || h.reopened == 0) {
			t.Fatalf("%s: test setup: the outage outlasted the retry budget, yet no append failed", ph.name)
		}
	}

	whole := readWhole(t, l0)
	all.check(t, "log after the outages", whole)
	deadline := time.Now().Add(time.Minute)
	for {
		tailMu.Lock()
		n := len(tailGot)
		tailMu.Unlock()
		if n >= len(whole) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	tailStop()
	<-tailDone
	sameEntries(t, "tail reader through the outages", tailGot, whole)
	t.Logf("%d entries checked; the tail reader reopened after %d errors, first: %v", len(whole), len(tailErrs), firstErr(tailErrs))
}

func firstErr(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errs[0]
}
