package conformance

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/woodpecker-wal/woodpecker/walimpls"
)

// appendWorkers is how many goroutines append at once in the term test, as
// in Milvus's framework.
const appendWorkers = 5

// testTerms runs the term cycle on several channels at once.
func (s *suite) testTerms(t *testing.T) {
	var wg sync.WaitGroup
	for i := range s.cfg.channels {
		wg.Go(func() {
			t.Run(fmt.Sprintf("channel-%d", i), func(t *testing.T) {
				s.termCycle(t, s.channelName(fmt.Sprintf("terms%d", i)))
			})
		})
	}
	wg.Wait()
}

// termCycle opens the channel read-write at terms 1 to 3 in turn; each term
// appends concurrently while two all-readers read everything written so
// far, then checks start-from, start-after and latest readers, ten scanners
// opened and closed at once, and a read-only reopen. Term 4 truncates and
// reopens at the same term.
func (s *suite) termCycle(t *testing.T, name string) {
	var written []record
	for term := int64(1); term <= 3; term++ {
		w := s.open(t, name, term, walimpls.AccessModeRW)
		written = s.readWhileWriting(t, w, written, term)
		s.fastClose(t, w)

		mid := len(written) / 2
		s.expect(t, s.scan(t, w, "start-from", walimpls.DeliverStartFrom(written[mid].id)), written[mid:])
		s.expect(t, s.scan(t, w, "start-after", walimpls.DeliverStartAfter(written[mid].id)), written[mid+1:])

		latest := s.scan(t, w, "latest", walimpls.DeliverLatest())
		expectSilence(t, latest, s.cfg.latestSilence)
		rec := s.appendOne(t, w, newMessage(fmt.Sprintf("latest-term%d", term), 0), fmt.Sprintf("latest-term%d", term))
		s.expect(t, latest, []record{rec})
		written = append(written, rec)
		checkIncreasing(t, written)
		w.Close()

		ro := s.open(t, name, term, walimpls.AccessModeRO)
		mustPanic(t, "Append on a read-only WAL", func() { _, _ = ro.Append(context.Background(), newMessage("ro", 0)) })
		mustPanic(t, "Truncate on a read-only WAL", func() { _ = ro.Truncate(context.Background(), written[0].id) })
		s.expect(t, s.scan(t, ro, "ro-all", walimpls.DeliverAll()), written)
		ro.Close()
		if t.Failed() {
			return
		}
	}

	// Truncate, then reopen at the same term.
	w := s.open(t, name, 4, walimpls.AccessModeRW)
	rec := s.appendOne(t, w, newMessage("term4", 0), "term4")
	if err := w.Truncate(s.ctx(t), rec.id); err != nil {
		t.Fatalf("Truncate: %v", err)
	}
	w.Close()
	w = s.open(t, name, 4, walimpls.AccessModeRW)
	s.checkTruncated(t, w, "after-truncate", append(written, rec), len(written))
	w.Close()
}

// readWhileWriting appends the term's messages from several goroutines
// while two all-readers read; it returns written plus the new messages in
// id order, after checking that both readers saw exactly that.
func (s *suite) readWhileWriting(t *testing.T, w walimpls.WAL, written []record, term int64) []record {
	t.Helper()
	n := s.cfg.messages
	label := fmt.Sprintf("term%d", term)
	fresh := make([]record, n)
	var (
		wg     sync.WaitGroup
		reads  [2][]walimpls.ImmutableMessage
		errs   [3]error
		sem    = make(chan struct{}, appendWorkers)
		errsMu sync.Mutex
	)
	var scanners [2]walimpls.Scanner
	wg.Add(3)
	go func() {
		defer wg.Done()
		var awg sync.WaitGroup
		for i := range n - 1 {
			sem <- struct{}{}
			awg.Add(1)
			go func() {
				defer func() { <-sem; awg.Done() }()
				msg := newMessage(label, i)
				id, err := w.Append(s.ctx(t), msg)
				if err == nil && id == nil {
					err = fmt.Errorf("nil id")
				}
				if err != nil {
					errsMu.Lock()
					errs[0] = fmt.Errorf("append %s#%d: %w", label, i, err)
					errsMu.Unlock()
					return
				}
				fresh[i] = record{id: id, msg: msg, label: fmt.Sprintf("%s#%d", label, i)}
			}()
		}
		awg.Wait()
		// The last message carries the term: readers stop at it.
		msg := newMessage(label, n-1)
		msg.Properties["term"] = strconv.FormatInt(term, 10)
		id, err := w.Append(s.ctx(t), msg)
		if err != nil {
			errs[0] = fmt.Errorf("append %s marker: %w", label, err)
			return
		}
		fresh[n-1] = record{id: id, msg: msg, label: label + "-marker"}
	}()
	for r := range 2 {
		go func() {
			defer wg.Done()
			// Readers open while the appends run, as in Milvus's framework.
			sc, err := w.Read(s.ctx(t), walimpls.ReadOption{
				Name: fmt.Sprintf("%s-reader%d", label, r+1), DeliverPolicy: walimpls.DeliverAll(), ReadAheadBufferSize: 128,
			})
			if err != nil {
				errs[1+r] = fmt.Errorf("reader %d: Read: %w", r+1, err)
				return
			}
			scanners[r] = sc
			want := strconv.FormatInt(term, 10)
			for {
				m, err := s.receive(scanners[r])
				if err != nil {
					errs[1+r] = err
					return
				}
				reads[r] = append(reads[r], m)
				if m.Properties["term"] == want {
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, sc := range scanners {
		if sc != nil {
			t.Cleanup(func() { _ = sc.Close() })
		}
	}
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.SortFunc(fresh, func(a, b record) int {
		switch {
		case a.id.LT(b.id):
			return -1
		case b.id.LT(a.id):
			return 1
		}
		return 0
	})
	all := append(slices.Clone(written), fresh...)
	checkIncreasing(t, all)
	for r := range 2 {
		if len(reads[r]) != len(all) {
			t.Fatalf("reader %d read %d messages, want %d (everything written in terms 1..%d)", r+1, len(reads[r]), len(all), term)
		}
		for i := range all {
			if err := sameMessage(all[i], reads[r][i]); err != nil {
				t.Fatalf("reader %d, message %d: %v", r+1, i, err)
			}
		}
	}
	for r := range 2 {
		if err := scanners[r].Close(); err != nil {
			t.Errorf("Close of reader %d: %v", r+1, err)
		}
	}
	return all
}

// fastClose opens ten all-scanners at once and closes them at once.
func (s *suite) fastClose(t *testing.T, w walimpls.WAL) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc, err := w.Read(s.ctx(t), walimpls.ReadOption{
				Name: fmt.Sprintf("fast-close-%d", i), DeliverPolicy: walimpls.DeliverAll(), ReadAheadBufferSize: 128,
			})
			if err != nil {
				errs[i] = err
				return
			}
			if err := sc.Close(); err != nil {
				errs[i] = fmt.Errorf("scanner close: %w", err)
				return
			}
			select {
			case <-sc.Done():
			default:
				errs[i] = fmt.Errorf("scanner Done not closed after Close returned")
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("fast-close scanner %d: %v", i, err)
		}
	}
}
