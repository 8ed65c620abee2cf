package notebook

import (
	"encoding/base64"
	"encoding/xml"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResultTablePaperRows(t *testing.T) {
	rows, err := PaperRows(PaperLLaMA7B[:2])
	if err != nil {
		t.Fatal(err)
	}
	rows = append(rows, Row{Name: "ours | dense", PPL: map[string]float64{WikiText2: 5.5}})
	got, err := ResultTable([]string{WikiText2, PTB}, rows)
	if err != nil {
		t.Fatal(err)
	}
	// Expected lines written from the paper's Table 1 (LLaMA-7B), not from our output.
	want := "| Model | WikiText2 | PTB | BoolQ | PIQA | HellaSwag | WinoGrande | ARC-e | ARC-c | OBQA | Average |\n" +
		"|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n" +
		"| LLaMA-7B (paper's eval) | 12.62 | 22.14 | 73.18 | 78.35 | 72.99 | 67.01 | 67.45 | 41.38 | 42.40 | 63.25 |\n" +
		"| 20% L2, w/o tune | 582.41 | 1022.17 | 59.66 | 58.00 | 37.04 | 52.41 | 33.12 | 28.58 | 29.80 | 42.65 |\n" +
		"| ours \\| dense | 5.50 | – | – | – | – | – | – | – | – | – |\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestPaperAveragesMatchTasks(t *testing.T) {
	// The paper's Average column is the mean of its seven task columns (to rounding).
	for _, p := range PaperLLaMA7B {
		sum := 0.0
		for _, v := range p.Tasks {
			sum += v
		}
		if len(p.Tasks) != 7 || math.Abs(sum/7-p.Average) > 0.011 {
			t.Errorf("%s: %d tasks, mean %.3f vs printed average %.2f", p.Name, len(p.Tasks), sum/7, p.Average)
		}
	}
}

func TestResultTableAverageOnly(t *testing.T) {
	rows, err := PaperRows(PaperChatGLM6B[:1])
	if err != nil {
		t.Fatal(err)
	}
	got, err := ResultTable(nil, rows)
	if err != nil {
		t.Fatal(err)
	}
	if want := "| Model | Average |\n|---|---:|\n| ChatGLM-6B (paper's eval) | 47.05 |\n"; got != want {
		t.Errorf("got %q want %q", got, want)
	}
	if _, err := ResultTable(nil, nil); err == nil {
		t.Error("no rows: want an error")
	}
	if _, err := (PaperRow{Name: "x", Tasks: map[string]float64{"nosuchtask": 1}}).Row(); err == nil {
		t.Error("unknown task: want an error")
	}
}

func TestMarkdownTableToHTML(t *testing.T) {
	md := "| Model | PPL |\n|---|---:|\n| a \\| b | <1> |\n\ncaption & more\n"
	got, err := MarkdownTableToHTML(md)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<th style="text-align:left">Model</th>`, `<th style="text-align:right">PPL</th>`,
		`<td style="text-align:left">a | b</td>`, `<td style="text-align:right">&lt;1&gt;</td>`, `<p>caption &amp; more</p>`} {
		if !strings.Contains(got, want) {
			t.Errorf("HTML lacks %q:\n%s", want, got)
		}
	}
	if _, err := MarkdownTableToHTML("no table"); err == nil {
		t.Error("want an error without a table")
	}
}

func TestCache(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	calls := 0
	fn := func() ([]float64, error) { calls++; return []float64{1.5, 2}, nil }
	for range 2 {
		v, err := Cache(dir, "scores", fn)
		if err != nil || len(v) != 2 || v[0] != 1.5 {
			t.Fatalf("Cache = %v, %v", v, err)
		}
	}
	if calls != 1 {
		t.Errorf("fn called %d times, want 1", calls)
	}
	boom := errors.New("boom")
	if _, err := Cache(dir, "fails", func() (int, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Errorf("error not passed through: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "fails.json")); !os.IsNotExist(err) {
		t.Error("a failed computation left a cache file")
	}
	if _, err := Cache(dir, "../escape", fn); err == nil {
		t.Error("want an error for a key with a path")
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Cache(dir, "bad", fn); err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Errorf("corrupt entry: got %v", err)
	}
}

func TestCacheDir(t *testing.T) {
	dir := t.TempDir()
	calls := 0
	fill := func(tmp string) error { calls++; return os.WriteFile(filepath.Join(tmp, "f"), []byte("x"), 0o644) }
	p1, cached1, err := CacheDir(dir, "model", fill)
	if err != nil || cached1 {
		t.Fatal(err, cached1)
	}
	p2, cached2, err := CacheDir(dir, "model", fill)
	if err != nil || !cached2 || p1 != p2 || calls != 1 {
		t.Fatalf("second call: %s %v %v calls=%d", p2, cached2, err, calls)
	}
	if b, err := os.ReadFile(filepath.Join(p1, "f")); err != nil || string(b) != "x" {
		t.Errorf("content: %q %v", b, err)
	}
	if _, _, err := CacheDir(dir, "broken", func(string) error { return errors.New("no") }); err == nil {
		t.Error("want the fill error")
	}
	if _, err := os.Stat(filepath.Join(dir, "broken")); !os.IsNotExist(err) {
		t.Error("a failed fill left a directory")
	}
}

// svgDoc parses an SVG and counts its elements by name.
func svgDoc(t *testing.T, svg string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		tok, err := d.Token()
		if err != nil {
			if err.Error() == "EOF" {
				return counts
			}
			t.Fatalf("invalid SVG: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok {
			counts[se.Name.Local]++
		}
	}
}

func TestLinePlot(t *testing.T) {
	svg, err := LinePlot([]Series{{Name: "train <loss>", Y: []float64{3, 2, math.NaN(), 1}}, {Name: "val", X: []float64{2, 4}, Y: []float64{2.5, 1.5}}},
		PlotOptions{Title: "loss", XLabel: "step", YLabel: "nats"})
	if err != nil {
		t.Fatal(err)
	}
	c := svgDoc(t, svg)
	if c["svg"] != 1 || c["polyline"] != 2 {
		t.Errorf("elements %v", c)
	}
	if !strings.Contains(svg, "train &lt;loss&gt;") {
		t.Error("legend not escaped")
	}
	// The first series' points: 3 finite values → 3 coordinate pairs.
	first := svg[strings.Index(svg, `points="`)+8:]
	if n := len(strings.Fields(first[:strings.Index(first, `"`)])); n != 3 {
		t.Errorf("first polyline has %d points, want 3", n)
	}
	if _, err := LinePlot(nil, PlotOptions{}); err == nil {
		t.Error("want an error without series")
	}
	if _, err := LinePlot([]Series{{Y: []float64{0, 1}}}, PlotOptions{LogY: true}); err == nil {
		t.Error("want an error for 0 on a log scale")
	}
	if _, err := LinePlot([]Series{{X: []float64{1}, Y: []float64{0, 1}}}, PlotOptions{}); err == nil {
		t.Error("want an error for mismatched x/y")
	}
}

func TestBarPlot(t *testing.T) {
	svg, err := BarPlot([]BarGroup{{Name: "layer 0", Values: []float64{1, 2, 3}, Marked: []bool{true, false, false}}, {Name: "layer 1", Values: []float64{0.5}}},
		PlotOptions{LogY: true})
	if err != nil {
		t.Fatal(err)
	}
	c := svgDoc(t, svg)
	// background + 4 bars + 2 legend boxes
	if c["rect"] != 7 {
		t.Errorf("rects %v", c)
	}
	if strings.Count(svg, `fill-opacity="0.3"`) != 1 {
		t.Error("want one pale (marked) bar")
	}
	if _, err := BarPlot([]BarGroup{{Values: []float64{math.Inf(1)}}}, PlotOptions{}); err == nil {
		t.Error("want an error for Inf")
	}
	if _, err := BarPlot(nil, PlotOptions{}); err == nil {
		t.Error("want an error without values")
	}
}

// TestSVGImageHTML: the <img> data URI decodes back to the SVG byte for byte.
func TestSVGImageHTML(t *testing.T) {
	svg, err := BarPlot([]BarGroup{{Name: "layer 0", Values: []float64{1, 2}}}, PlotOptions{Title: "a <b> & c"})
	if err != nil {
		t.Fatal(err)
	}
	got := SVGImageHTML(svg)
	const prefix, suffix = `<img alt="plot" src="data:image/svg+xml;base64,`, `">`
	if !strings.HasPrefix(got, prefix) || !strings.HasSuffix(got, suffix) {
		t.Fatalf("SVGImageHTML = %.80q…", got)
	}
	dec, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(strings.TrimPrefix(got, prefix), suffix))
	if err != nil || string(dec) != svg {
		t.Errorf("data URI does not decode to the SVG (err %v)", err)
	}
}
