package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/woodpecker-wal/woodpecker/bench"
	"github.com/woodpecker-wal/woodpecker/cmd/woodpecker/internal/plot"
)

// TestShortBenchPlotsEnoughPointsOnOneTimeAxis: a short bench run (here
// 0.2 s; one of 128MiB on local FS took that long and got a single dot at
// 0.1 s) charts at least 50 points of throughput, and the throughput and
// latency charts span the same time axis, the whole write phase.
func TestShortBenchPlotsEnoughPointsOnOneTimeAxis(t *testing.T) {
	c := newCLI(t)
	c.ok("", "bench", "--backend", "memory", "--total", "0", "--duration", "200ms", "--entry-size", "1KiB",
		"--json", "res.json", "--plot", "chart.svg", "--progress", "none")
	data, err := os.ReadFile(filepath.Join(c.dir, "res.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r bench.Result
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	if r.Write.Seconds < 0.15 {
		t.Fatalf("the write phase took %v s, want about 0.2", r.Write.Seconds)
	}
	fig := benchFigure(&r, bench.Config{}, "")
	tput, lat := fig.Panels[0].(plot.Chart), fig.Panels[1].(plot.Chart)
	if n := len(tput.Series[0].Points); n < 50 {
		t.Errorf("the throughput chart has %d points, want at least 50", n)
	}
	if n := len(lat.Series[0].Points); n < 50 {
		t.Errorf("the latency chart has %d sampled appends, want at least 50", n)
	}
	if tput.XMax != r.Write.Seconds || lat.XMax != r.Write.Seconds || !tput.XFromZero || !lat.XFromZero {
		t.Errorf("time axes: throughput 0..%v, latency 0..%v; want both 0..%v (the write phase)", tput.XMax, lat.XMax, r.Write.Seconds)
	}
	svg, err := os.ReadFile(filepath.Join(c.dir, "chart.svg"))
	if err != nil || !strings.Contains(string(svg), "Append throughput") {
		t.Fatalf("chart: %v", err)
	}
}
