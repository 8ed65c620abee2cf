package notebook

import (
	"encoding/base64"
	"fmt"
	"html"
	"os"
	"time"

	"github.com/janpfeifer/gonb/gonbui"
)

// InNotebook reports whether the program runs inside a GoNB cell (rich output available).
func InNotebook() bool { return gonbui.IsNotebook }

// ShowTable displays a Markdown table (ResultTable, eval.StatsMarkdown) as an HTML table in a
// notebook — and also prints the Markdown so that the plain-text output of the cell carries it —
// or just prints it elsewhere.
func ShowTable(md string) {
	fmt.Print(md)
	if !InNotebook() {
		return
	}
	if h, err := MarkdownTableToHTML(md); err == nil {
		gonbui.DisplayHTML(h)
	}
}

// ShowSVG displays an SVG image (LinePlot, BarPlot) in a notebook; elsewhere it says where the
// image would be. The image goes out as an HTML <img> with a data: URI (SVGImageHTML), not as
// inline <svg>: the classic Jupyter Notebook strips inline SVG from the outputs of a notebook it does
// not trust (one executed elsewhere, e.g. by nbconvert in CI) and ignores image/svg+xml outputs
// there, but keeps <img> data URIs; JupyterLab, nbconvert's HTML and GitHub show it too.
func ShowSVG(svg string) {
	if InNotebook() {
		gonbui.DisplayHTML(SVGImageHTML(svg))
		return
	}
	fmt.Printf("[SVG image, %d bytes]\n", len(svg))
}

// Progress shows a one-line status that is replaced in place in a notebook (gonbui.UpdateHTML)
// and printed at most every Every (default 2 s) elsewhere, to stderr.
type Progress struct {
	id    string
	Every time.Duration
	last  time.Time
}

// NewProgress starts a progress line with an initial message.
func NewProgress(msg string) *Progress {
	p := &Progress{}
	if InNotebook() {
		p.id = "llmpruner-progress-" + gonbui.UniqueID()
	}
	p.Update(msg)
	return p
}

// Update replaces the progress line (rate-limited outside notebooks).
func (p *Progress) Update(msg string) {
	if p.id != "" {
		gonbui.UpdateHTML(p.id, "<code>"+html.EscapeString(msg)+"</code>")
		return
	}
	every := p.Every
	if every == 0 {
		every = 2 * time.Second
	}
	if time.Since(p.last) >= every {
		p.last = time.Now()
		fmt.Fprintln(os.Stderr, msg)
	}
}

// Done writes the final message (always shown).
func (p *Progress) Done(msg string) {
	if p.id != "" {
		gonbui.UpdateHTML(p.id, "<code>"+html.EscapeString(msg)+"</code>")
		return
	}
	fmt.Fprintln(os.Stderr, msg)
}

// SVGImageHTML returns svg as an HTML <img> element whose src is a base64 data: URI.
func SVGImageHTML(svg string) string {
	return `<img alt="plot" src="data:image/svg+xml;base64,` + base64.StdEncoding.EncodeToString([]byte(svg)) + `">`
}
