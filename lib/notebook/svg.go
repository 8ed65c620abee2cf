package notebook

import (
	"fmt"
	"html"
	"math"
	"strings"

	"github.com/pkg/errors"
)

// Series is one line of a LinePlot: Y[i] is plotted at X[i] (X nil: at i+1).
type Series struct {
	Name string
	X, Y []float64
}

// PlotOptions size and label a plot. Zero values take defaults (640×300).
type PlotOptions struct {
	Width, Height  int
	Title          string
	XLabel, YLabel string
	// LogY plots log10 of the values (all must be > 0).
	LogY bool
}

func (o PlotOptions) size() (w, h float64) {
	w, h = 640, 300
	if o.Width > 0 {
		w = float64(o.Width)
	}
	if o.Height > 0 {
		h = float64(o.Height)
	}
	return w, h
}

// palette is the colour cycle of the series and bar groups.
var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}

// plot margins (left, right, top, bottom) in pixels.
const mLeft, mRight, mTop, mBottom = 60.0, 20.0, 30.0, 45.0

// LinePlot draws the series as an inline SVG line chart with axes, ticks and a legend (e.g. a
// training-loss curve). NaN points are skipped.
func LinePlot(series []Series, opts PlotOptions) (string, error) {
	if len(series) == 0 {
		return "", errors.New("line plot: no series")
	}
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range series {
		if s.X != nil && len(s.X) != len(s.Y) {
			return "", errors.Errorf("line plot: series %q has %d x and %d y values", s.Name, len(s.X), len(s.Y))
		}
		for i, y := range s.Y {
			if math.IsNaN(y) {
				continue
			}
			if opts.LogY {
				if y <= 0 {
					return "", errors.Errorf("line plot: series %q has value %g ≤ 0 on a log scale", s.Name, y)
				}
				y = math.Log10(y)
			}
			x := xAt(s, i)
			xmin, xmax = math.Min(xmin, x), math.Max(xmax, x)
			ymin, ymax = math.Min(ymin, y), math.Max(ymax, y)
		}
	}
	if math.IsInf(xmin, 1) {
		return "", errors.New("line plot: no finite points")
	}
	w, h := opts.size()
	fr := newFrame(w, h, xmin, xmax, ymin, ymax)
	var b strings.Builder
	fr.open(&b, opts)
	for k, s := range series {
		var pts []string
		for i, y := range s.Y {
			if math.IsNaN(y) {
				continue
			}
			if opts.LogY {
				y = math.Log10(y)
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", fr.px(xAt(s, i)), fr.py(y)))
		}
		color := palette[k%len(palette)]
		if len(pts) == 1 {
			var x, y float64
			fmt.Sscanf(pts[0], "%f,%f", &x, &y)
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x, y, color)
		} else {
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", color, strings.Join(pts, " "))
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="10" height="10" fill="%s"/><text x="%.1f" y="%.1f" font-size="11">%s</text>`+"\n",
			w-mRight-150, mTop+4+14*float64(k), color, w-mRight-136, mTop+13+14*float64(k), html.EscapeString(s.Name))
	}
	fr.axes(&b, opts.LogY, false, nil)
	b.WriteString("</svg>\n")
	return b.String(), nil
}

func xAt(s Series, i int) float64 {
	if s.X != nil {
		return s.X[i]
	}
	return float64(i + 1)
}

// BarGroup is one set of bars of a BarPlot (e.g. the head scores of one layer), drawn in its own
// colour, after the previous group.
type BarGroup struct {
	Name   string
	Values []float64
	// Marked[i] draws bar i hatched/pale (e.g. pruned units); nil marks none.
	Marked []bool
}

// BarPlot draws the groups' values as bars side by side (e.g. importance scores per head, layer
// after layer), with pale bars where Marked is set and a legend. Values must be finite; with
// LogY they must be > 0.
func BarPlot(groups []BarGroup, opts PlotOptions) (string, error) {
	n := 0
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, g := range groups {
		if g.Marked != nil && len(g.Marked) != len(g.Values) {
			return "", errors.Errorf("bar plot: group %q has %d values and %d marks", g.Name, len(g.Values), len(g.Marked))
		}
		for _, v := range g.Values {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return "", errors.Errorf("bar plot: group %q has a non-finite value", g.Name)
			}
			if opts.LogY {
				if v <= 0 {
					return "", errors.Errorf("bar plot: group %q has value %g ≤ 0 on a log scale", g.Name, v)
				}
				v = math.Log10(v)
			}
			ymin, ymax = math.Min(ymin, v), math.Max(ymax, v)
		}
		n += len(g.Values)
	}
	if n == 0 {
		return "", errors.New("bar plot: no values")
	}
	base := 0.0
	if opts.LogY {
		base = math.Floor(ymin)
	}
	ymin, ymax = math.Min(ymin, base), math.Max(ymax, base)
	w, h := opts.size()
	fr := newFrame(w, h, 0, float64(n), ymin, ymax)
	fr.xmin, fr.xmax = 0, float64(n) // bars fill the width exactly
	var b strings.Builder
	fr.open(&b, opts)
	slot := (w - mLeft - mRight) / float64(n)
	i := 0
	var starts []float64
	for k, g := range groups {
		color := palette[k%len(palette)]
		starts = append(starts, float64(i))
		for j, v := range g.Values {
			if opts.LogY {
				v = math.Log10(v)
			}
			y0, y1 := fr.py(base), fr.py(v)
			top, height := math.Min(y0, y1), math.Abs(y1-y0)
			opacity := "1"
			if g.Marked != nil && g.Marked[j] {
				opacity = "0.3"
			}
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" fill-opacity="%s"/>`+"\n",
				fr.px(float64(i))+0.1*slot, top, 0.8*slot, height, color, opacity)
			i++
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="10" height="10" fill="%s"/><text x="%.1f" y="%.1f" font-size="11">%s</text>`+"\n",
			w-mRight-150, mTop+4+14*float64(k), color, w-mRight-136, mTop+13+14*float64(k), html.EscapeString(g.Name))
	}
	fr.axes(&b, opts.LogY, true, starts)
	b.WriteString("</svg>\n")
	return b.String(), nil
}

// frame maps data coordinates to pixels.
type frame struct {
	w, h                   float64
	xmin, xmax, ymin, ymax float64
}

func newFrame(w, h, xmin, xmax, ymin, ymax float64) *frame {
	if xmax == xmin {
		xmin, xmax = xmin-1, xmax+1
	}
	if ymax == ymin {
		ymin, ymax = ymin-1, ymax+1
	}
	pad := 0.05 * (ymax - ymin)
	return &frame{w: w, h: h, xmin: xmin, xmax: xmax, ymin: ymin - pad, ymax: ymax + pad}
}

func (f *frame) px(x float64) float64 {
	return mLeft + (x-f.xmin)/(f.xmax-f.xmin)*(f.w-mLeft-mRight)
}

func (f *frame) py(y float64) float64 {
	return f.h - mBottom - (y-f.ymin)/(f.ymax-f.ymin)*(f.h-mTop-mBottom)
}

func (f *frame) open(b *strings.Builder, o PlotOptions) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif">`+"\n",
		f.w, f.h, f.w, f.h)
	fmt.Fprintf(b, `<rect width="%.0f" height="%.0f" fill="white"/>`+"\n", f.w, f.h)
	if o.Title != "" {
		fmt.Fprintf(b, `<text x="%.1f" y="18" font-size="13" text-anchor="middle">%s</text>`+"\n", f.w/2, html.EscapeString(o.Title))
	}
	if o.XLabel != "" {
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="middle">%s</text>`+"\n", (mLeft+f.w-mRight)/2, f.h-6, html.EscapeString(o.XLabel))
	}
	if o.YLabel != "" {
		fmt.Fprintf(b, `<text x="14" y="%.1f" font-size="11" text-anchor="middle" transform="rotate(-90 14 %.1f)">%s</text>`+"\n",
			(mTop+f.h-mBottom)/2, (mTop+f.h-mBottom)/2, html.EscapeString(o.YLabel))
	}
}

// axes draws the frame, five y ticks and x ticks (at bar-group starts for bar plots).
func (f *frame) axes(b *strings.Builder, logY, bars bool, starts []float64) {
	x0, x1, y0, y1 := mLeft, f.w-mRight, mTop, f.h-mBottom
	fmt.Fprintf(b, `<path d="M%.1f %.1f V%.1f H%.1f" fill="none" stroke="black"/>`+"\n", x0, y0, y1, x1)
	for i := 0; i <= 4; i++ {
		v := f.ymin + (f.ymax-f.ymin)*float64(i)/4
		label := tickLabel(v)
		if logY {
			label = tickLabel(math.Pow(10, v))
		}
		y := f.py(v)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" font-size="10" text-anchor="end">%s</text>`+"\n",
			x0, y, x1, y, x0-4, y+3, label)
	}
	var xs []float64
	if bars {
		xs = starts
	} else {
		for i := 0; i <= 4; i++ {
			xs = append(xs, f.xmin+(f.xmax-f.xmin)*float64(i)/4)
		}
	}
	for _, v := range xs {
		x := f.px(v)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/><text x="%.1f" y="%.1f" font-size="10" text-anchor="middle">%s</text>`+"\n",
			x, y1, x, y1+4, x, y1+15, tickLabel(v))
	}
}

// tickLabel prints v compactly (3 significant digits).
func tickLabel(v float64) string {
	if v == 0 {
		return "0"
	}
	return fmt.Sprintf("%.3g", v)
}
