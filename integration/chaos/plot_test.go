package chaos

import (
	"fmt"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/woodpecker-wal/woodpecker/integration/chaos/history"
)

// plotSVG writes an SVG of the run to path: acknowledged appends a second
// and the slowest acknowledged append, per half second and log, with each
// cycle's faults shaded (dark from injection to healing, light until every
// log accepted writes again) and numbered.
func plotSVG(path string, h history.History, spans []cycleSpan, logs []string) error {
	const bin = int64(500e6) // ns
	var end int64
	for _, r := range h {
		end = max(end, r.Complete)
	}
	for _, s := range spans {
		end = max(end, s.Settled)
	}
	nb := int(end/bin) + 1
	rate := map[string][]float64{}
	slow := map[string][]float64{}
	for _, l := range logs {
		rate[l], slow[l] = make([]float64, nb), make([]float64, nb)
	}
	for _, r := range h {
		if r.Kind != history.Append || r.Outcome != history.OK || rate[r.Log] == nil {
			continue
		}
		b := int(r.Complete / bin)
		rate[r.Log][b] += float64(time1s) / float64(bin)
		slow[r.Log][b] = max(slow[r.Log][b], float64(r.Complete-r.Invoke)/1e6)
	}
	const (
		w, left, right = 1400.0, 60.0, 20.0
		panelH, gap    = 220.0, 40.0
		top            = 30.0
	)
	x := func(t int64) float64 { return left + (w-left-right)*float64(t)/float64(max(end, 1)) }
	var b strings.Builder
	height := top + 2*panelH + gap + 40
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="11">`+"\n", w, height)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	colors := []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"}
	panel := func(y0 float64, title string, series map[string][]float64, logScale bool) {
		var ymax float64
		for _, s := range series {
			for _, v := range s {
				ymax = max(ymax, v)
			}
		}
		if ymax == 0 {
			ymax = 1
		}
		scale := func(v float64) float64 {
			if logScale {
				return math.Log10(1+v) / math.Log10(1+ymax)
			}
			return v / ymax
		}
		for _, s := range spans {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.0f" fill="#f4a582" opacity="0.5"/>`+"\n",
				x(s.Injected), y0, max(x(s.Healed)-x(s.Injected), 1), panelH)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.0f" fill="#fddbc7" opacity="0.5"/>`+"\n",
				x(s.Healed), y0, max(x(s.Settled)-x(s.Healed), 0), panelH)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#777" font-size="9"><title>%s</title>%d</text>`+"\n",
				x(s.Injected), y0+10, escape(s.Faults), s.N)
		}
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`+"\n", left, y0, w-left-right, panelH)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%s (max %.0f)</text>`+"\n", left, y0-6, escape(title), ymax)
		names := make([]string, 0, len(series))
		for n := range series {
			names = append(names, n)
		}
		sort.Strings(names)
		for i, n := range names {
			var pts []string
			for k, v := range series[n] {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(int64(k)*bin+bin/2), y0+panelH-panelH*scale(v)))
			}
			c := colors[i%len(colors)]
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1" points="%s"/>`+"\n", c, strings.Join(pts, " "))
			fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="%s">%s</text>`+"\n", w-right-60*float64(len(names)-i), y0-6, c, n)
		}
	}
	panel(top, "acknowledged appends a second, per log", rate, false)
	panel(top+panelH+gap, "slowest acknowledged append in ms, per log (log scale)", slow, true)
	for s := int64(0); s <= end/1e9; s += 10 {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" fill="#555">%ds</text>`+"\n", x(s*1e9), top+2*panelH+gap+16, s)
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="#555">shaded: a cycle's faults (dark: injected to healed; light: until every log accepted writes again); hover a number for the faults</text>`+"\n",
		left, height-6)
	b.WriteString("</svg>\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

const time1s = int64(1e9)

func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
