package notebook

import (
	"fmt"
	"html"
	"math"
	"strings"

	"github.com/llmpruner/llmpruner/lib/eval"
	"github.com/pkg/errors"
)

// Row is one line of a result table: a model (or setting) with its perplexities and zero-shot
// result.
type Row struct {
	// Name is the first cell, e.g. "Ratio 20%, Element¹, w/o tune".
	Name string
	// PPL maps a perplexity column (e.g. "WikiText2") to its value; a missing or NaN entry shows "–".
	PPL map[string]float64
	// ZeroShot is the zero-shot result (nil: every task and the average show "–").
	ZeroShot *eval.ZeroShotResult
}

// ResultTable renders rows in the layout of the LLM-Pruner paper's tables: Model, the perplexity
// columns pplColumns in that order, then the zero-shot tasks in the paper's order and Average.
// The zero-shot part is eval.MarkdownTable's (same task titles, metrics and formatting); the
// perplexity columns are inserted after the first column. Perplexities print with two decimals.
func ResultTable(pplColumns []string, rows []Row) (string, error) {
	if len(rows) == 0 {
		return "", errors.New("no rows to tabulate")
	}
	mr := make([]eval.ModelResult, len(rows))
	for i, r := range rows {
		res := r.ZeroShot
		if res == nil {
			res = &eval.ZeroShotResult{Average: math.NaN()}
		}
		mr[i] = eval.ModelResult{Name: r.Name, Result: res}
	}
	zs, err := eval.MarkdownTable(mr, false)
	if err != nil {
		return "", errors.WithMessage(err, "zero-shot part of the result table")
	}
	lines := strings.Split(strings.TrimRight(zs, "\n"), "\n")
	if len(lines) != len(rows)+2 {
		return "", errors.Errorf("unexpected zero-shot table: %d lines for %d rows", len(lines), len(rows))
	}
	var b strings.Builder
	for i, line := range lines {
		first, rest, err := splitFirstCell(line)
		if err != nil {
			return "", err
		}
		b.WriteString(first)
		for _, col := range pplColumns {
			switch i {
			case 0:
				fmt.Fprintf(&b, " %s |", escapeCell(col))
			case 1:
				b.WriteString("---:|")
			default:
				b.WriteString(" " + formatPPL(rows[i-2].PPL, col) + " |")
			}
		}
		b.WriteString(strings.ReplaceAll(rest, "NaN", "–"))
		b.WriteString("\n")
	}
	return b.String(), nil
}

// formatPPL is the cell of perplexity column col.
func formatPPL(ppl map[string]float64, col string) string {
	v, ok := ppl[col]
	if !ok || math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.2f", v)
}

// splitFirstCell splits a Markdown table line "| a | b |" after the first cell's closing pipe:
// "| a |" and " b |". Escaped pipes ("\|") inside the cell are skipped.
func splitFirstCell(line string) (first, rest string, err error) {
	if !strings.HasPrefix(line, "|") {
		return "", "", errors.Errorf("not a table line: %q", line)
	}
	for i := 1; i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++
		case '|':
			return line[:i+1], line[i+1:], nil
		}
	}
	return "", "", errors.Errorf("table line has a single cell: %q", line)
}

func escapeCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// MarkdownTableToHTML converts a Markdown pipe table (as ResultTable and eval.StatsMarkdown write
// it: header line, alignment line, body lines) into an HTML <table>; right-aligned columns
// ("---:") keep their alignment, cell text is HTML-escaped and "\|" becomes "|". Lines before and
// after the table (e.g. a caption) become paragraphs.
func MarkdownTableToHTML(md string) (string, error) {
	lines := strings.Split(strings.TrimSpace(md), "\n")
	start := -1
	for i := 0; i+1 < len(lines); i++ {
		if strings.HasPrefix(lines[i], "|") && strings.HasPrefix(lines[i+1], "|") && strings.Contains(lines[i+1], "---") {
			start = i
			break
		}
	}
	if start < 0 {
		return "", errors.New("no Markdown table found")
	}
	end := start + 2
	for end < len(lines) && strings.HasPrefix(lines[end], "|") {
		end++
	}
	var b strings.Builder
	for _, l := range lines[:start] {
		if strings.TrimSpace(l) != "" {
			fmt.Fprintf(&b, "<p>%s</p>\n", html.EscapeString(l))
		}
	}
	header := tableCells(lines[start])
	aligns := tableCells(lines[start+1])
	b.WriteString(`<table class="llmpruner-results">` + "\n<thead><tr>")
	for i, h := range header {
		fmt.Fprintf(&b, "<th%s>%s</th>", alignAttr(aligns, i), html.EscapeString(h))
	}
	b.WriteString("</tr></thead>\n<tbody>\n")
	for _, l := range lines[start+2 : end] {
		b.WriteString("<tr>")
		for i, c := range tableCells(l) {
			fmt.Fprintf(&b, "<td%s>%s</td>", alignAttr(aligns, i), html.EscapeString(c))
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</tbody></table>\n")
	for _, l := range lines[end:] {
		if strings.TrimSpace(l) != "" {
			fmt.Fprintf(&b, "<p>%s</p>\n", html.EscapeString(l))
		}
	}
	return b.String(), nil
}

// tableCells splits "| a | b\|c |" into ["a", "b|c"].
func tableCells(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(line, "|")
	var cells []string
	var cur strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			cur.WriteByte('|')
			i++
		case line[i] == '|':
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(line[i])
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		cells = append(cells, s)
	}
	return cells
}

func alignAttr(aligns []string, i int) string {
	if i < len(aligns) && strings.HasSuffix(aligns[i], ":") {
		return ` style="text-align:right"`
	}
	return ` style="text-align:left"`
}
