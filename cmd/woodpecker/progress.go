package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/cwriter"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/woodpecker-wal/woodpecker/bench"
)

// phaseNames are the progress labels of the benchmark's phases.
var phaseNames = map[bench.Phase]string{
	bench.PhaseRawThroughput: "raw writes",
	bench.PhaseRawOp:         "raw single writes",
	bench.PhaseWrite:         "appends",
	bench.PhaseRead:          "reads",
	bench.PhaseRawGet:        "raw reads",
}

// progress shows the benchmark's progress on stderr: a live bar per phase
// on a terminal, or a line per phase (and every few seconds) otherwise.
// report is called by the runner from one goroutine at a time, so the
// fields need no lock; the bar decorators read only their atomic rate.
type progress struct {
	mode string // bar, lines or none
	w    io.Writer

	bars  *mpb.Progress
	bar   *mpb.Bar
	rate  *atomic.Value // string: the current MiB/s of the bar's phase
	phase bench.Phase
	seen  map[bench.Phase]int

	lastLine time.Time
}

func newProgress(ctx context.Context, w io.Writer, mode string) *progress {
	if mode == "auto" {
		mode = "lines"
		// A terminal of unknown or tiny width (a pty without a size)
		// would show an empty bar: use lines there too.
		if f, ok := w.(*os.File); ok && cwriter.IsTerminal(int(f.Fd())) {
			if width, _, err := cwriter.GetSize(int(f.Fd())); err == nil && width >= 60 {
				mode = "bar"
			}
		}
	}
	p := &progress{mode: mode, w: w, seen: map[bench.Phase]int{}}
	if mode == "bar" {
		p.bars = mpb.NewWithContext(ctx, mpb.WithOutput(w), mpb.WithWidth(36), mpb.WithRefreshRate(120*time.Millisecond))
	}
	p.rate = new(atomic.Value)
	p.rate.Store("")
	return p
}

func (p *progress) label(ph bench.Phase) string {
	name := phaseNames[ph]
	if name == "" {
		name = string(ph)
	}
	if ph == bench.PhaseRawThroughput && p.seen[ph] > 1 {
		name += " (again)"
	}
	return name
}

// report receives the runner's progress.
func (p *progress) report(pr bench.Progress) {
	if p.mode == "none" {
		return
	}
	if pr.Phase != p.phase || p.bar == nil && p.mode == "bar" {
		p.phase = pr.Phase
		p.seen[pr.Phase]++
		p.startPhase(pr)
	}
	rate := fmt.Sprintf("%7.1f MiB/s", pr.MiBps)
	if pr.Done {
		rate = fmt.Sprintf("%7.1f MiB/s avg", pr.AvgMiBps)
	}
	p.rate.Store(rate)
	switch p.mode {
	case "bar":
		total, cur := barPosition(pr)
		if total > 0 {
			p.bar.SetTotal(total, false)
		}
		p.bar.SetCurrent(cur)
		if pr.Done {
			p.bar.SetTotal(-1, true)
			p.bar.Wait()
			p.phase = "" // the same phase may come again (raw writes)
			p.bar = nil
		}
	case "lines":
		if pr.Done {
			fmt.Fprintf(p.w, "%-18s done: %s in %.1fs, %.1f MiB/s\n", p.label(pr.Phase), fmtMiB(pr.Bytes),
				pr.Elapsed.Seconds(), pr.AvgMiBps)
			p.phase = ""
			return
		}
		if time.Since(p.lastLine) >= 5*time.Second {
			p.lastLine = time.Now()
			fmt.Fprintf(p.w, "%-18s %s, %.1f MiB/s\n", p.label(pr.Phase), fmtMiB(pr.Bytes), pr.MiBps)
		}
	}
}

func fmtMiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// barPosition gives the bar's total and position: bytes when the phase has
// a byte total, else milliseconds of its time budget.
func barPosition(pr bench.Progress) (total, cur int64) {
	if pr.TotalBytes > 0 {
		return pr.TotalBytes, min(pr.Bytes, pr.TotalBytes)
	}
	if !pr.Deadline.IsZero() {
		budget := pr.Elapsed + time.Until(pr.Deadline)
		return max(int64(budget/time.Millisecond), 1), int64(pr.Elapsed / time.Millisecond)
	}
	return 0, pr.Bytes
}

func (p *progress) startPhase(pr bench.Progress) {
	p.lastLine = time.Now()
	if p.mode != "bar" {
		return
	}
	total, _ := barPosition(pr)
	byBytes := pr.TotalBytes > 0
	rate := new(atomic.Value) // this bar's own: finished bars keep their figure
	rate.Store("")
	p.rate = rate
	p.bar = p.bars.AddBar(max(total, 1),
		mpb.PrependDecorators(
			decor.Name(fmt.Sprintf("%-18s", p.label(pr.Phase))),
		),
		mpb.AppendDecorators(
			decor.Any(func(decor.Statistics) string { return rate.Load().(string) }),
			decor.Any(func(s decor.Statistics) string {
				if byBytes {
					return fmt.Sprintf("  %8.1f / %.1f MiB", float64(s.Current)/(1<<20), float64(s.Total)/(1<<20))
				}
				return fmt.Sprintf("  %5.1fs / %.1fs", float64(s.Current)/1000, float64(s.Total)/1000)
			}),
		),
	)
}

// finish ends the display, after the run (complete or failed).
func (p *progress) finish() {
	if p.bars == nil {
		return
	}
	if p.bar != nil {
		p.bar.Abort(false)
	}
	p.bars.Wait()
}
