package experiment

import (
	"fmt"
	"strings"

	"github.com/llmpruner/llmpruner/lib/eval"
	"github.com/llmpruner/llmpruner/lib/notebook"
	"github.com/pkg/errors"
)

// PPLColumns are the perplexity column names of the settings, in order.
func (s *Settings) PPLColumns() []string {
	cols := make([]string, len(s.PPL))
	for i, te := range s.PPL {
		cols[i] = te.Column
	}
	return cols
}

// Rows are the measurements as result-table rows, names prefixed with prefix.
func (res *Results) Rows(prefix string) []notebook.Row {
	rows := make([]notebook.Row, len(res.Measurements))
	for i, m := range res.Measurements {
		rows[i] = notebook.Row{Name: prefix + m.Name, PPL: m.PPL, ZeroShot: m.ZeroShot}
	}
	return rows
}

// Table renders the paper's rows ("paper · …") above ours ("ours · …") in the paper's layout
// (notebook.ResultTable), followed by a caption: model, ratio, documents per task.
func (res *Results) Table(paper []notebook.PaperRow) (string, error) {
	pr, err := notebook.PaperRows(paper)
	if err != nil {
		return "", err
	}
	for i := range pr {
		pr[i].Name = "paper · " + pr[i].Name
	}
	rows := append(pr, res.Rows("ours · ")...)
	md, err := notebook.ResultTable(res.Settings.PPLColumns(), rows)
	if err != nil {
		return "", err
	}
	return md + "\n" + res.Caption() + "\n", nil
}

// Caption describes how "ours" was measured.
func (res *Results) Caption() string {
	s := res.Settings
	var parts []string
	parts = append(parts, fmt.Sprintf("ours: %s, pruning ratio %g", s.Model, s.Ratio))
	if s.AttnLayers != nil {
		parts = append(parts, fmt.Sprintf("block layers attention %s / MLP %s", s.AttnLayers, s.MLPLayers))
	}
	parts = append(parts, fmt.Sprintf("calibration %d × %d tokens", s.CalibN, s.CalibLen))
	for _, te := range s.PPL {
		p := fmt.Sprintf("%s PPL over %d-token windows", te.Column, te.SeqLen)
		if te.MaxChars > 0 {
			p += fmt.Sprintf(" (first %d KB)", te.MaxChars/1000)
		}
		parts = append(parts, p)
	}
	if len(res.Measurements) > 0 && res.Measurements[0].ZeroShot != nil {
		parts = append(parts, eval.MetricNote(res.Measurements[0].ZeroShot))
	}
	return strings.Join(parts, "; ")
}

// StatsTable is the statistics table (eval.StatsMarkdown) of our models.
func (res *Results) StatsTable() (string, error) {
	var rows []eval.StatsRow
	for _, m := range res.Measurements {
		if m.Stats == nil {
			return "", errors.Errorf("%s has no statistics", m.Name)
		}
		rows = append(rows, eval.StatsRow{Name: m.Name, Stats: m.Stats, DType: "float16", Latency: m.Latency})
	}
	return eval.StatsMarkdown(rows)
}

// CurvePlot draws the LoRA training curves (training loss per step, validation loss per
// evaluation) as an inline SVG; "" when there are none.
func (res *Results) CurvePlot() (string, error) {
	var series []notebook.Series
	for _, m := range res.Settings.Methods {
		c, ok := res.Curves[m.Name]
		if !ok {
			continue
		}
		series = append(series, notebook.Series{Name: m.Name + " train", Y: c.Loss})
		if len(c.ValLoss) > 0 {
			series = append(series, notebook.Series{Name: m.Name + " val", X: c.EvalSteps, Y: c.ValLoss})
		}
	}
	if len(series) == 0 {
		return "", nil
	}
	return notebook.LinePlot(series, notebook.PlotOptions{Title: "LoRA recovery", XLabel: "optimizer step", YLabel: "loss (nats/token)"})
}
