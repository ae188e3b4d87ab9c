package plot

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"
)

// wellFormed parses the SVG as XML and counts its elements by name.
func wellFormed(t *testing.T, svg []byte) map[string]int {
	t.Helper()
	counts := map[string]int{}
	dec := xml.NewDecoder(bytes.NewReader(svg))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return counts
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok {
			counts[se.Name.Local]++
		}
	}
}

func TestFigure(t *testing.T) {
	fig := Figure{
		Title:    "Bench <1 & 2>",
		Subtitle: "4KiB entries",
		Panels: []Panel{
			Chart{Title: "Throughput", XLabel: "s", YLabel: "MiB/s", XFromZero: true,
				Series: []Series{{Name: "ours", Color: "#123456", Points: []Point{{0.5, 10}, {1.5, 20}, {2.5, 15}}}},
				Refs:   []Ref{{Name: "raw", Value: 25, Color: "#777777"}}},
			Chart{Title: "Latency", LogY: true,
				Series: []Series{
					{Name: "samples", Color: "#abcdef", Dots: true, Points: []Point{{0.1, 0.5}, {0.2, 3}, {0.3, 0}, {0.4, math.NaN()}}},
					{Name: "single", Color: "#fedcba", Points: []Point{{1, 2}}},
				}},
			Histogram{Title: "Histogram", Bars: []Bar{{0.1, 0.2, 5}, {0.2, 0.4, 9}, {0, 1, 3}}, Refs: []Ref{{Name: "p50", Value: 0.25, Color: "#00ff00"}}},
		},
	}
	var buf bytes.Buffer
	if err := fig.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	svg := buf.Bytes()
	counts := wellFormed(t, svg)
	// 1 polyline (the three-point series); 2 dots kept of 4 (zero and NaN
	// dropped on a log axis) + 1 point of the one-point line + legend dots;
	// 2 histogram bars (the one starting at 0 cannot be drawn on a log axis).
	if counts["polyline"] != 1 {
		t.Errorf("%d polylines, want 1", counts["polyline"])
	}
	if got := strings.Count(buf.String(), `r="1.6"`); got != 2 {
		t.Errorf("%d sample dots, want 2", got)
	}
	if got := strings.Count(buf.String(), `r="3.5"`); got != 1 {
		t.Errorf("%d single-point markers, want 1", got)
	}
	for _, want := range []string{"Bench &lt;1 &amp; 2&gt;", "Throughput", "Latency", "Histogram", "raw", "p50", "stroke-dasharray"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if strings.Contains(buf.String(), "NaN") || strings.Contains(buf.String(), "Inf") {
		t.Error("SVG holds NaN or Inf coordinates")
	}
}

func TestEmptyPanels(t *testing.T) {
	var buf bytes.Buffer
	fig := Figure{Title: "empty", Panels: []Panel{Chart{Title: "none", LogY: true}, Histogram{Title: "none"}}}
	if err := fig.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	wellFormed(t, buf.Bytes())
	if strings.Contains(buf.String(), "NaN") || strings.Contains(buf.String(), "Inf") {
		t.Errorf("empty panels draw NaN or Inf:\n%s", buf.String())
	}
}

func TestTicks(t *testing.T) {
	tests := []struct {
		name string
		a    axis
		want []float64
	}{
		{"linear", newAxis(0, 10, false, 0, 100), []float64{0, 2, 4, 6, 8, 10}},
		{"log two decades", newAxis(0.1, 10, true, 0, 100), []float64{0.1, 0.2, 0.5, 1, 2, 5, 10}},
		{"log many decades", newAxis(0.001, 1000, true, 0, 100), []float64{0.001, 0.01, 0.1, 1, 10, 100, 1000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.a.ticks()
			if len(got) != len(tt.want) {
				t.Fatalf("ticks = %v, want %v", got, tt.want)
			}
			for i := range got {
				if math.Abs(got[i]-tt.want[i]) > 1e-9*math.Max(1, tt.want[i]) {
					t.Fatalf("ticks = %v, want %v", got, tt.want)
				}
			}
		})
	}
	a := newAxis(1, 100, true, 0, 200)
	if p := a.pix(10); math.Abs(p-100) > 1e-9 {
		t.Errorf("log axis puts 10 at %v, want 100 (the middle)", p)
	}
}

func TestLabel(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.5: "0.5", 2: "2", 250: "250", 15000: "15k", 2e6: "2M", 0.001: "0.001"} {
		if got := label(v); got != want {
			t.Errorf("label(%v) = %q, want %q", v, got, want)
		}
	}
}

// TestXMaxSharesTheTimeAxis: charts of one run whose points end at
// different times (interval midpoints, appends) get the same x axis when
// given the run's length as XMax.
func TestXMaxSharesTheTimeAxis(t *testing.T) {
	a := Chart{XFromZero: true, XMax: 0.2, Series: []Series{{Points: []Point{{0.05, 1}, {0.1, 2}}}}}
	b := Chart{XFromZero: true, XMax: 0.2, LogY: true, Series: []Series{{Points: []Point{{0.01, 1}, {0.199, 3}}}}}
	alo, ahi := a.xRange()
	blo, bhi := b.xRange()
	if alo != 0 || ahi != 0.2 || blo != alo || bhi != ahi {
		t.Fatalf("x ranges %v..%v and %v..%v, want both 0..0.2", alo, ahi, blo, bhi)
	}
	if lo, hi := (Chart{XFromZero: true, Series: a.Series}).xRange(); lo != 0 || hi != 0.1 {
		t.Errorf("without XMax: %v..%v, want 0..0.1 (the last point)", lo, hi)
	}
}
