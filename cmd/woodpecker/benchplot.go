package main

import (
	"bytes"
	"os"

	"github.com/cockroachdb/errors"

	"github.com/woodpecker-wal/woodpecker/bench"
	"github.com/woodpecker-wal/woodpecker/cmd/woodpecker/internal/plot"
)

// Chart colors.
const (
	colorSamples = "#4c78a8"
	colorP50     = "#2ca02c"
	colorP99     = "#d62728"
	colorRaw     = "#7f7f7f"
	colorRawP99  = "#ff7f0e"
)

// benchFigure charts a benchmark: throughput over time, append latency
// over time (a sample of appends as dots, with the p50 and p99 of each
// interval), and the latency histogram, with the raw limits as dashed
// lines when measured. The two charts over time share one time axis, the
// whole write phase.
func benchFigure(r *bench.Result, cfg bench.Config, setup string) plot.Figure {
	var tput, p50, p99, samples []plot.Point
	for _, iv := range r.Timeline {
		mid := iv.StartS + iv.Seconds/2
		tput = append(tput, plot.Point{X: mid, Y: iv.MiBps})
		if iv.Entries > 0 {
			p50 = append(p50, plot.Point{X: mid, Y: iv.P50Ms})
			p99 = append(p99, plot.Point{X: mid, Y: iv.P99Ms})
		}
	}
	for _, s := range r.Samples {
		samples = append(samples, plot.Point{X: s.AtS, Y: s.LatencyMs})
	}
	throughput := plot.Chart{
		Title: "Append throughput", XLabel: "seconds since the first append", YLabel: "MiB/s", XFromZero: true,
		XMax:   r.Write.Seconds,
		Series: []plot.Series{{Name: "woodpecker", Color: colorSamples, Points: tput}},
	}
	latency := plot.Chart{
		Title: "Append latency over time", XLabel: "seconds since the first append", YLabel: "latency (ms, log scale)",
		LogY: true, XFromZero: true, XMax: r.Write.Seconds,
		Series: []plot.Series{
			{Name: "appends (sample)", Color: colorSamples, Dots: true, Points: samples},
			{Name: "p50 per interval", Color: colorP50, Points: p50},
			{Name: "p99 per interval", Color: colorP99, Points: p99},
		},
	}
	var bars []plot.Bar
	for _, b := range r.Histogram {
		bars = append(bars, plot.Bar{Lo: b.LowMs, Hi: b.HighMs, Count: b.Count})
	}
	hist := plot.Histogram{
		Title: "Append latency histogram", XLabel: "latency (ms, log scale)", YLabel: "appends",
		Bars: bars, Color: colorSamples,
		Refs: []plot.Ref{
			{Name: "p50", Value: r.Write.Latency.P50Ms, Color: colorP50},
			{Name: "p99", Value: r.Write.Latency.P99Ms, Color: colorP99},
		},
	}
	if r.Raw != nil {
		throughput.Refs = append(throughput.Refs, plot.Ref{Name: "raw limit", Value: r.Raw.Throughput.MiBps, Color: colorRaw})
		// The same raw latency as the table's (see rawLatency).
		raw, _ := rawLatency(r, cfg)
		latency.Refs = append(latency.Refs,
			plot.Ref{Name: "raw write p50", Value: raw.P50Ms, Color: colorRaw},
			plot.Ref{Name: "raw write p99", Value: raw.P99Ms, Color: colorRawP99})
		hist.Refs = append(hist.Refs, plot.Ref{Name: "raw write p50", Value: raw.P50Ms, Color: colorRaw})
	}
	return plot.Figure{
		Title:    "Woodpecker benchmark",
		Subtitle: setup,
		Panels:   []plot.Panel{throughput, latency, hist},
	}
}

// writePlot writes the benchmark's chart as SVG to path.
func writePlot(path string, r *bench.Result, cfg bench.Config, setup string) error {
	var buf bytes.Buffer
	if err := benchFigure(r, cfg, setup).WriteSVG(&buf); err != nil {
		return err
	}
	return errors.Wrapf(os.WriteFile(path, buf.Bytes(), 0o644), "write --plot file")
}
