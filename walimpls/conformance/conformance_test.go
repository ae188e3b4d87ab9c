package conformance_test

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"go.uber.org/goleak"

	"github.com/woodpecker-wal/woodpecker/walimpls"
	"github.com/woodpecker-wal/woodpecker/walimpls/conformance"
	"github.com/woodpecker-wal/woodpecker/walimpls/memwal"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var fast = []conformance.Option{conformance.WithLatestSilence(50 * time.Millisecond), conformance.WithTimeout(20 * time.Second)}

// TestMemWAL runs the suite on the reference implementation, which keeps
// the contract, with truncation checked strictly.
func TestMemWAL(t *testing.T) {
	conformance.Run(t, memwal.NewBuilder(), append(fast, conformance.WithStrictTruncate())...)
}

// mutantEnv names the mutant a child test process runs the suite against.
const mutantEnv = "CONFORMANCE_MUTANT"

// TestMutant is the child side of TestSuiteCatchesMutants.
func TestMutant(t *testing.T) {
	name := os.Getenv(mutantEnv)
	if name == "" {
		t.Skip("run by TestSuiteCatchesMutants")
	}
	conformance.Run(t, mutant{Builder: memwal.NewBuilder(), kind: name}, append(fast,
		conformance.WithStrictTruncate(), conformance.WithMessagesPerTerm(50), conformance.WithTimeout(3*time.Second))...)
}

// TestSuiteCatchesMutants runs the suite in a child process against
// implementations with one defect each and checks that the subtest meant
// to catch the defect fails.
func TestSuiteCatchesMutants(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	for _, tc := range []struct {
		kind string
		// failing must match a failing subtest
		failing string
	}{
		{"drop-properties", "group/PayloadAndProperties"},
		{"start-after-inclusive", "group/ReadOnly"},
		{"latest-as-all", "group/Terms/channel-0"},
		{"no-read-only-panic", "group/Terms/channel-0"},
		{"lower-term-accepted", "group/Fencing"},
		{"scanner-error-on-close", "group/Scanner"},
		{"truncate-ignored", "group/Truncate"},
		{"foreign-ids-accepted", "group/InvalidInput"},
		{"fenced-seen-by-cockroach-only", "group/Fencing"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestMutant$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), mutantEnv+"="+tc.kind)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed an implementation that %s:\n%s", tc.kind, out)
			}
			re := regexp.MustCompile(`--- FAIL: TestMutant/` + regexp.QuoteMeta(tc.failing) + `\b`)
			if !re.Match(out) {
				t.Fatalf("subtest %s did not fail for %s:\n%s", tc.failing, tc.kind, out)
			}
		})
	}
}

// mutant wraps memwal with one defect.
type mutant struct {
	*memwal.Builder
	kind string
}

func (m mutant) Build() (walimpls.Opener, error) {
	o, err := m.Builder.Build()
	return mutantOpener{Opener: o, kind: m.kind}, err
}

type mutantOpener struct {
	walimpls.Opener
	kind string
}

func (o mutantOpener) Open(ctx context.Context, opt walimpls.OpenOption) (walimpls.WAL, error) {
	ch := opt.Channel
	if o.kind == "lower-term-accepted" && ch.AccessMode == walimpls.AccessModeRW {
		opt.Channel.Term = 0
	}
	w, err := o.Opener.Open(ctx, opt)
	if err != nil {
		return nil, err
	}
	return mutantWAL{WAL: w, kind: o.kind, ch: ch}, nil
}

type mutantWAL struct {
	walimpls.WAL
	kind string
	ch   walimpls.Channel
}

func (w mutantWAL) Channel() walimpls.Channel { return w.ch }

func (w mutantWAL) Append(ctx context.Context, msg walimpls.Message) (walimpls.MessageID, error) {
	if w.kind == "no-read-only-panic" && w.ch.AccessMode == walimpls.AccessModeRO {
		return nil, walimpls.ErrClosed
	}
	id, err := w.WAL.Append(ctx, msg)
	if w.kind == "fenced-seen-by-cockroach-only" && errors.Is(err, walimpls.ErrFenced) {
		// Only cockroachdb's errors.Is sees this mark.
		err = errors.Mark(errors.New(err.Error()), walimpls.ErrFenced) // cockroach-only on purpose
	}
	return id, err
}

func (w mutantWAL) Truncate(ctx context.Context, id walimpls.MessageID) error {
	switch w.kind {
	case "truncate-ignored":
		if _, ok := id.(memwal.MessageID); ok {
			return nil
		}
	case "foreign-ids-accepted":
		if _, ok := id.(memwal.MessageID); !ok {
			return nil
		}
	}
	return w.WAL.Truncate(ctx, id)
}

func (w mutantWAL) Read(ctx context.Context, opt walimpls.ReadOption) (walimpls.Scanner, error) {
	p := opt.DeliverPolicy
	switch {
	case w.kind == "start-after-inclusive" && p.Kind() == walimpls.DeliverKindStartAfter:
		opt.DeliverPolicy = walimpls.DeliverStartFrom(p.ID())
	case w.kind == "latest-as-all" && p.Kind() == walimpls.DeliverKindLatest:
		opt.DeliverPolicy = walimpls.DeliverAll()
	case w.kind == "foreign-ids-accepted" && p.ID() != nil:
		if _, ok := p.ID().(memwal.MessageID); !ok {
			opt.DeliverPolicy = walimpls.DeliverAll()
		}
	}
	s, err := w.WAL.Read(ctx, opt)
	if err != nil {
		return nil, err
	}
	if w.kind != "drop-properties" && w.kind != "scanner-error-on-close" {
		return s, nil
	}
	ms := &mutantScanner{Scanner: s, kind: w.kind, ch: make(chan walimpls.ImmutableMessage)}
	go ms.forward()
	return ms, nil
}

type mutantScanner struct {
	walimpls.Scanner
	kind string
	ch   chan walimpls.ImmutableMessage
}

func (s *mutantScanner) forward() {
	defer close(s.ch)
	for m := range s.Scanner.Chan() {
		m.Properties = nil
		select {
		case s.ch <- m:
		case <-s.Scanner.Done():
			return
		}
	}
}

func (s *mutantScanner) Chan() <-chan walimpls.ImmutableMessage { return s.ch }

func (s *mutantScanner) Close() error {
	err := s.Scanner.Close()
	if err == nil && s.kind == "scanner-error-on-close" {
		return walimpls.ErrClosed
	}
	return err
}
