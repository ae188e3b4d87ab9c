// Package plot draws simple charts as SVG: line and dot charts over time,
// with linear or logarithmic value axes and dashed reference lines, and
// histograms over a logarithmic axis. It is just enough for the benchmark
// report of the woodpecker command, and writes plain SVG 1.1 that browsers
// and image tools open.
//
// Charts are plain values; WriteSVG only reads them and is safe to call
// from several goroutines at once.
package plot

import (
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"strings"
)

// Point is one value of a series.
type Point struct{ X, Y float64 }

// Series is a set of points drawn as a line, or as dots.
type Series struct {
	Name  string
	Color string // any SVG color, e.g. "#1f77b4"
	// Dots draws each point as a small translucent dot instead of a line.
	Dots   bool
	Points []Point
}

// Ref is a horizontal (in a Chart) or vertical (in a Histogram) dashed
// reference line with a label.
type Ref struct {
	Name  string
	Value float64
	Color string
}

// Panel is one chart of a figure.
type Panel interface {
	draw(b *builder, x, y, w, h float64)
}

// Chart plots series against a linear x axis.
type Chart struct {
	Title, XLabel, YLabel string
	// LogY makes the value axis logarithmic (values <= 0 are dropped).
	LogY bool
	// XFromZero starts the x axis at 0 (for times since a start).
	XFromZero bool
	// XMax, when > 0, ends the x axis there rather than at the last point,
	// so that charts of one run share their time axis.
	XMax   float64
	Series []Series
	Refs   []Ref
}

// Bar is one bar of a histogram: Count values in [Lo, Hi).
type Bar struct {
	Lo, Hi float64
	Count  int64
}

// Histogram plots bars over a logarithmic x axis (Lo > 0 for every bar).
type Histogram struct {
	Title, XLabel, YLabel string
	Color                 string
	Bars                  []Bar
	Refs                  []Ref
}

// Figure is a titled stack of panels.
type Figure struct {
	Title    string
	Subtitle string
	Width    float64 // default 960
	// PanelHeight is the height of each panel (default 300).
	PanelHeight float64
	Panels      []Panel
}

// Layout constants, in SVG user units (pixels).
const (
	marginLeft   = 78
	marginRight  = 24
	marginTop    = 34
	marginBottom = 48
	headerHeight = 64
)

// WriteSVG writes the figure as a standalone SVG document.
func (f Figure) WriteSVG(w io.Writer) error {
	width := f.Width
	if width <= 0 {
		width = 960
	}
	ph := f.PanelHeight
	if ph <= 0 {
		ph = 300
	}
	height := headerHeight + ph*float64(len(f.Panels)) + 10
	b := &builder{}
	b.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %s %s" font-family="Helvetica, Arial, sans-serif">`+"\n",
		num(width), num(height), num(width), num(height))
	b.printf(`<rect x="0" y="0" width="%s" height="%s" fill="#ffffff"/>`+"\n", num(width), num(height))
	b.text(width/2, 28, f.Title, "middle", 20, "#111111", "bold")
	if f.Subtitle != "" {
		b.text(width/2, 50, f.Subtitle, "middle", 13, "#555555", "")
	}
	for i, p := range f.Panels {
		p.draw(b, 0, headerHeight+ph*float64(i), width, ph)
	}
	b.printf("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// builder accumulates SVG text.
type builder struct{ strings.Builder }

func (b *builder) printf(format string, args ...any) { fmt.Fprintf(b, format, args...) }

func (b *builder) text(x, y float64, s, anchor string, size float64, color, weight string) {
	extra := ""
	if weight != "" {
		extra = ` font-weight="` + weight + `"`
	}
	b.printf(`<text x="%s" y="%s" text-anchor="%s" font-size="%s" fill="%s"%s>%s</text>`+"\n",
		num(x), num(y), anchor, num(size), color, extra, html.EscapeString(s))
}

func (b *builder) line(x1, y1, x2, y2 float64, color string, width float64, dash string) {
	d := ""
	if dash != "" {
		d = ` stroke-dasharray="` + dash + `"`
	}
	b.printf(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="%s"%s/>`+"\n",
		num(x1), num(y1), num(x2), num(y2), color, num(width), d)
}

// num formats a coordinate compactly.
func num(v float64) string { return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64) }

// axis maps values to pixels along one dimension.
type axis struct {
	lo, hi float64 // value range (log10 of it when log)
	log    bool
	pixLo  float64 // pixel of lo
	pixHi  float64 // pixel of hi
}

func newAxis(lo, hi float64, log bool, pixLo, pixHi float64) axis {
	if log {
		lo, hi = math.Log10(lo), math.Log10(hi)
	}
	if hi <= lo {
		hi = lo + 1
	}
	return axis{lo: lo, hi: hi, log: log, pixLo: pixLo, pixHi: pixHi}
}

func (a axis) pix(v float64) float64 {
	if a.log {
		v = math.Log10(v)
	}
	return a.pixLo + (v-a.lo)/(a.hi-a.lo)*(a.pixHi-a.pixLo)
}

// ticks returns the values to mark on the axis.
func (a axis) ticks() []float64 {
	if a.log {
		var out []float64
		decades := a.hi - a.lo
		for e := math.Floor(a.lo); e <= math.Ceil(a.hi); e++ {
			for _, m := range []float64{1, 2, 5} {
				if m != 1 && decades > 4 {
					continue
				}
				v := m * math.Pow(10, e)
				if lv := math.Log10(v); lv >= a.lo-1e-9 && lv <= a.hi+1e-9 {
					out = append(out, v)
				}
			}
		}
		return out
	}
	step := niceStep((a.hi - a.lo) / 8)
	var out []float64
	for v := math.Ceil(a.lo/step) * step; v <= a.hi+step*1e-9; v += step {
		out = append(out, v)
	}
	return out
}

// niceStep rounds a raw step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// label formats a tick value.
func label(v float64) string {
	av := math.Abs(v)
	switch {
	case av == 0:
		return "0"
	case av >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 3, 64) + "M"
	case av >= 1e4:
		return strconv.FormatFloat(v/1e3, 'g', 3, 64) + "k"
	case av >= 1:
		return strconv.FormatFloat(v, 'g', 4, 64)
	default:
		return strconv.FormatFloat(v, 'g', 2, 64)
	}
}

// frame draws the panel title, plot area, ticks, grid and axis labels,
// and returns the plot area.
func frame(b *builder, x, y, w, h float64, title, xlabel, ylabel string, xa, ya *axis,
	xlo, xhi, ylo, yhi float64, xlog, ylog bool) (px, py, pw, ph float64) {
	px, py = x+marginLeft, y+marginTop
	pw, ph = w-marginLeft-marginRight, h-marginTop-marginBottom
	*xa = newAxis(xlo, xhi, xlog, px, px+pw)
	*ya = newAxis(ylo, yhi, ylog, py+ph, py)
	b.text(x+marginLeft, y+20, title, "start", 14, "#111111", "bold")
	b.printf(`<rect x="%s" y="%s" width="%s" height="%s" fill="#fafafa" stroke="#999999" stroke-width="1"/>`+"\n",
		num(px), num(py), num(pw), num(ph))
	for _, t := range ya.ticks() {
		ty := ya.pix(t)
		b.line(px, ty, px+pw, ty, "#e2e2e2", 1, "")
		b.text(px-6, ty+4, label(t), "end", 11, "#333333", "")
	}
	for _, t := range xa.ticks() {
		tx := xa.pix(t)
		b.line(tx, py, tx, py+ph, "#eeeeee", 1, "")
		b.line(tx, py+ph, tx, py+ph+4, "#999999", 1, "")
		b.text(tx, py+ph+17, label(t), "middle", 11, "#333333", "")
	}
	b.text(px+pw/2, py+ph+36, xlabel, "middle", 12, "#333333", "")
	b.printf(`<text x="%s" y="%s" text-anchor="middle" font-size="12" fill="#333333" transform="rotate(-90 %s %s)">%s</text>`+"\n",
		num(x+18), num(py+ph/2), num(x+18), num(py+ph/2), html.EscapeString(ylabel))
	return px, py, pw, ph
}

// legendEntry is one line of a legend.
type legendEntry struct {
	name, color string
	style       string // "line", "dash" or "dot"
}

// legendWidth is the width of a legend box.
const legendWidth = 160.0

// legendLeft reports whether the legend should go at the top left of the
// plot area (px..px+pw, from py): where fewer of the marks (pixel
// positions) fall under it.
func legendLeft(px, pw, py float64, n int, marks []Point) bool {
	h := 16*float64(n) + 16
	var left, right int
	for _, m := range marks {
		if m.Y > py+h+8 {
			continue
		}
		switch {
		case m.X <= px+legendWidth+16:
			left++
		case m.X >= px+pw-legendWidth-16:
			right++
		}
	}
	return left < right
}

// legend draws entries in a box at the top right (or top left) of the plot
// area px..px+pw.
func legend(b *builder, px, pw, top float64, left bool, entries []legendEntry) {
	right := px + pw
	if left {
		right = px + legendWidth + 16
	}
	var shown []legendEntry
	for _, e := range entries {
		if e.name != "" {
			shown = append(shown, e)
		}
	}
	if len(shown) == 0 {
		return
	}
	const width, lineH = legendWidth, 16.0
	x, y := right-width-8, top+8
	b.printf(`<rect x="%s" y="%s" width="%s" height="%s" fill="#ffffff" fill-opacity="0.85" stroke="#cccccc" stroke-width="1" rx="3"/>`+"\n",
		num(x), num(y), num(width), num(lineH*float64(len(shown))+8))
	for i, e := range shown {
		ly := y + 4 + lineH*float64(i) + lineH/2
		switch e.style {
		case "dot":
			b.printf(`<circle cx="%s" cy="%s" r="3" fill="%s" fill-opacity="0.6"/>`+"\n", num(x+19), num(ly), e.color)
		case "dash":
			b.line(x+8, ly, x+30, ly, e.color, 2, "5,3")
		default:
			b.line(x+8, ly, x+30, ly, e.color, 2.5, "")
		}
		b.text(x+36, ly+4, e.name, "start", 11, "#222222", "")
	}
}

// keep reports whether a value can be plotted on the value axis.
func (c Chart) keep(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) && (!c.LogY || v > 0) }

// xRange returns the x axis's range.
func (c Chart) xRange() (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		for _, p := range s.Points {
			if c.keep(p.Y) && !math.IsNaN(p.X) {
				lo, hi = min(lo, p.X), max(hi, p.X)
			}
		}
	}
	if math.IsInf(lo, 0) { // nothing to plot
		lo, hi = 0, 1
	}
	if c.XFromZero {
		lo = min(lo, 0)
	}
	if c.XMax > 0 {
		hi = c.XMax
	}
	if hi <= lo {
		hi = lo + 1
	}
	return lo, hi
}

func (c Chart) draw(b *builder, x, y, w, h float64) {
	xlo, xhi := c.xRange()
	ylo, yhi := math.Inf(1), math.Inf(-1)
	keep := c.keep
	for _, s := range c.Series {
		for _, p := range s.Points {
			if !keep(p.Y) || math.IsNaN(p.X) {
				continue
			}
			ylo, yhi = min(ylo, p.Y), max(yhi, p.Y)
		}
	}
	for _, r := range c.Refs {
		if keep(r.Value) {
			ylo, yhi = min(ylo, r.Value), max(yhi, r.Value)
		}
	}
	if math.IsInf(ylo, 0) { // nothing to plot
		ylo, yhi = 1, 10
	}
	if c.LogY {
		ylo = math.Pow(10, math.Floor(math.Log10(ylo)))
		yhi = math.Pow(10, math.Ceil(math.Log10(yhi*1.05)))
	} else {
		ylo = min(0, ylo)
		yhi = yhi * 1.1
		if yhi <= ylo {
			yhi = ylo + 1
		}
	}
	var xa, ya axis
	px, py, pw, ph := frame(b, x, y, w, h, c.Title, c.XLabel, c.YLabel, &xa, &ya, xlo, xhi, ylo, yhi, false, c.LogY)
	b.printf(`<clipPath id="clip%s"><rect x="%s" y="%s" width="%s" height="%s"/></clipPath>`+"\n",
		num(y), num(px), num(py), num(pw), num(ph))
	b.printf(`<g clip-path="url(#clip%s)">`+"\n", num(y))
	var leg []legendEntry
	var marks []Point
	for _, s := range c.Series {
		for _, p := range s.Points {
			if keep(p.Y) {
				marks = append(marks, Point{xa.pix(p.X), ya.pix(p.Y)})
			}
		}
		if s.Dots || len(s.Points) < 2 {
			r, opacity := "1.6", "0.28"
			if !s.Dots {
				r, opacity = "3.5", "1" // a line of one point: show the point
			}
			b.printf(`<g fill="%s" fill-opacity="%s">`+"\n", s.Color, opacity)
			for _, p := range s.Points {
				if keep(p.Y) {
					b.printf(`<circle cx="%s" cy="%s" r="%s"/>`, num(xa.pix(p.X)), num(ya.pix(p.Y)), r)
				}
			}
			b.printf("\n</g>\n")
		} else {
			var pts []string
			for _, p := range s.Points {
				if keep(p.Y) {
					pts = append(pts, num(xa.pix(p.X))+","+num(ya.pix(p.Y)))
				}
			}
			if len(pts) > 0 {
				b.printf(`<polyline fill="none" stroke="%s" stroke-width="2" stroke-linejoin="round" points="%s"/>`+"\n",
					s.Color, strings.Join(pts, " "))
			}
		}
		style := "line"
		if s.Dots {
			style = "dot"
		}
		leg = append(leg, legendEntry{s.Name, s.Color, style})
	}
	for _, r := range c.Refs {
		if !keep(r.Value) {
			continue
		}
		ry := ya.pix(r.Value)
		b.line(px, ry, px+pw, ry, r.Color, 1.5, "6,4")
		leg = append(leg, legendEntry{r.Name, r.Color, "dash"})
		for mx := px; mx <= px+pw; mx += 8 {
			marks = append(marks, Point{mx, ry})
		}
	}
	b.printf("</g>\n")
	legend(b, px, pw, py, legendLeft(px, pw, py, len(leg), marks), leg)
}

func (hg Histogram) draw(b *builder, x, y, w, h float64) {
	xlo, xhi := math.Inf(1), math.Inf(-1)
	var ymax int64
	for _, bar := range hg.Bars {
		if bar.Lo <= 0 || bar.Hi <= bar.Lo {
			continue
		}
		xlo, xhi = min(xlo, bar.Lo), max(xhi, bar.Hi)
		ymax = max(ymax, bar.Count)
	}
	for _, r := range hg.Refs {
		if r.Value > 0 {
			xlo, xhi = min(xlo, r.Value), max(xhi, r.Value)
		}
	}
	if math.IsInf(xlo, 0) {
		xlo, xhi = 0.1, 10
	}
	xlo = math.Pow(10, math.Floor(math.Log10(xlo)))
	xhi = math.Pow(10, math.Ceil(math.Log10(xhi)))
	var xa, ya axis
	px, py, pw, ph := frame(b, x, y, w, h, hg.Title, hg.XLabel, hg.YLabel, &xa, &ya, xlo, xhi, 0, float64(max(ymax, 1))*1.1, true, false)
	color := hg.Color
	if color == "" {
		color = "#4c78a8"
	}
	var marks []Point
	for _, bar := range hg.Bars {
		if bar.Lo <= 0 || bar.Hi <= bar.Lo || bar.Count == 0 {
			continue
		}
		x0, x1 := xa.pix(bar.Lo), xa.pix(bar.Hi)
		top := ya.pix(float64(bar.Count))
		marks = append(marks, Point{x0, top}, Point{x1, top})
		b.printf(`<rect x="%s" y="%s" width="%s" height="%s" fill="%s" stroke="#ffffff" stroke-width="0.5"/>`+"\n",
			num(x0), num(top), num(max(x1-x0, 1)), num(py+ph-top), color)
	}
	var leg []legendEntry
	for _, r := range hg.Refs {
		if r.Value <= 0 {
			continue
		}
		rx := xa.pix(r.Value)
		b.line(rx, py, rx, py+ph, r.Color, 1.5, "6,4")
		leg = append(leg, legendEntry{r.Name, r.Color, "dash"})
		marks = append(marks, Point{rx, py})
	}
	legend(b, px, pw, py, legendLeft(px, pw, py, len(leg), marks), leg)
}
