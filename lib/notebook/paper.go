package notebook

import (
	"math"

	"github.com/llmpruner/llmpruner/lib/eval"
	"github.com/pkg/errors"
)

// PaperRow is one line of a table of the LLM-Pruner paper (or of its repository's result pages),
// in percent as printed there. A PPL column or task it does not report is simply absent; Average
// is NaN when not reported.
type PaperRow struct {
	Name    string
	PPL     map[string]float64
	Tasks   map[string]float64 // lm-eval task name → the paper's metric, in percent
	Average float64            // in percent
}

// Row turns the paper's numbers into a Row for ResultTable: each task becomes a TaskResult whose
// paper metric (eval.Task.PaperMetric) holds the printed value, so the row renders with the same
// code and layout as a measured one.
func (p PaperRow) Row() (Row, error) {
	res := &eval.ZeroShotResult{Tasks: map[string]eval.TaskResult{}, Average: p.Average / 100}
	for name, pct := range p.Tasks {
		t, err := eval.LookupTask(name)
		if err != nil {
			return Row{}, errors.WithMessagef(err, "paper row %q", p.Name)
		}
		v := pct / 100
		tr := eval.TaskResult{Metric: t.PaperMetric}
		if t.PaperMetric == eval.MetricAccNorm {
			tr.AccNorm = &v
		} else {
			tr.Acc = v
		}
		res.Tasks[t.Name] = tr
	}
	if len(res.Tasks) == 0 && math.IsNaN(p.Average) {
		res = nil
	}
	return Row{Name: p.Name, PPL: p.PPL, ZeroShot: res}, nil
}

// PaperRows converts several paper rows (see PaperRow.Row).
func PaperRows(rows []PaperRow) ([]Row, error) {
	out := make([]Row, len(rows))
	for i, p := range rows {
		r, err := p.Row()
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	return out, nil
}

// Perplexity column names of the paper's tables.
const (
	WikiText2 = "WikiText2"
	PTB       = "PTB"
)

// paperTasks are the seven tasks in the paper's column order.
var paperTasks = []string{"boolq", "piqa", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "openbookqa"}

// row7 builds a PaperRow from WikiText2, PTB, the seven task values in the paper's order and the
// average.
func row7(name string, wt2, ptb float64, tasks [7]float64, avg float64) PaperRow {
	p := PaperRow{Name: name, PPL: map[string]float64{}, Tasks: map[string]float64{}, Average: avg}
	if !math.IsNaN(wt2) {
		p.PPL[WikiText2] = wt2
	}
	if !math.IsNaN(ptb) {
		p.PPL[PTB] = ptb
	}
	for i, v := range tasks {
		if !math.IsNaN(v) {
			p.Tasks[paperTasks[i]] = v
		}
	}
	return p
}

var nan = math.NaN()

// none is a row without zero-shot task values.
var none = [7]float64{nan, nan, nan, nan, nan, nan, nan}

// PaperLLaMA7B is the paper's LLaMA-7B table at 20% of the parameters pruned (Table 1; block-wise
// for Vector/Element, channel-wise for "Channel"; PPL over 128-token windows).
var PaperLLaMA7B = []PaperRow{
	row7("LLaMA-7B (paper's eval)", 12.62, 22.14, [7]float64{73.18, 78.35, 72.99, 67.01, 67.45, 41.38, 42.40}, 63.25),
	row7("20% L2, w/o tune", 582.41, 1022.17, [7]float64{59.66, 58.00, 37.04, 52.41, 33.12, 28.58, 29.80}, 42.65),
	row7("20% Random, w/o tune", 27.51, 43.19, [7]float64{61.83, 71.33, 56.26, 54.46, 57.07, 32.85, 35.00}, 52.69),
	row7("20% Channel, w/o tune", 74.63, 153.75, [7]float64{62.75, 62.73, 41.40, 51.07, 41.38, 27.90, 30.40}, 45.38),
	row7("20% Vector, w/o tune", 22.28, 41.78, [7]float64{61.44, 71.71, 57.27, 54.22, 55.77, 33.96, 38.40}, 53.25),
	row7("20% Element², w/o tune", 19.77, 36.66, [7]float64{59.39, 75.57, 65.34, 61.33, 59.18, 37.12, 39.80}, 56.82),
	row7("20% Element¹, w/o tune", 19.09, 34.21, [7]float64{57.06, 75.68, 66.80, 59.83, 60.94, 36.52, 40.00}, 56.69),
	row7("20% Channel, w/ LoRA", 22.02, 38.67, [7]float64{59.08, 73.39, 64.02, 60.54, 57.95, 35.58, 38.40}, 55.57),
	row7("20% Vector, w/ LoRA", 18.84, 33.05, [7]float64{65.75, 74.70, 64.52, 59.35, 60.65, 36.26, 39.40}, 57.23),
	row7("20% Element², w/ LoRA", 17.37, 30.39, [7]float64{69.54, 76.44, 68.11, 65.11, 63.43, 37.88, 40.00}, 60.07),
	row7("20% Element¹, w/ LoRA", 17.58, 30.11, [7]float64{64.62, 77.20, 68.80, 63.14, 64.31, 36.77, 39.80}, 59.23),
}

// PublishedBeyondLLaMA7B are later retraining-free methods' published LLaMA-7B rows at 20% of the
// parameters, beside the LLM-Pruner paper's (WikiText2 PPL over 128-token windows and the 7-task
// average, as quoted in llmpruner's issue 11 from the FLAP (An et al., AAAI 2024) and SlimLLM
// papers; their per-task columns are not transcribed here). Lower PPL / higher average is better.
var PublishedBeyondLLaMA7B = []PaperRow{
	row7("20% FLAP, w/o tune (FLAP paper)", 14.62, nan, none, 62.08),
	row7("20% SlimLLM, w/o tune (SlimLLM paper)", 15.95, nan, none, 61.22),
	row7("20% SlimLLM, w/ LoRA (SlimLLM paper)", 15.55, nan, none, 62.41),
}

// PaperVicuna7B is the paper's Vicuna-7B table at 20% (the repository's figure gives WikiText2,
// PTB and the average only).
var PaperVicuna7B = []PaperRow{
	row7("Vicuna-7B (paper's eval)", 16.11, 61.37, none, 62.78),
	row7("20% L2, w/o tune", 3539.98, 5882.21, none, 40.41),
	row7("20% Random, w/o tune", 34.63, 112.44, none, 52.18),
	row7("20% Channel, w/o tune", 71.75, 198.88, none, 45.72),
	row7("20% Vector, w/o tune", 27.03, 92.51, none, 52.81),
	row7("20% Element², w/o tune", 24.70, 94.34, none, 56.83),
	row7("20% Element¹, w/o tune", 25.74, 92.88, none, 56.25),
	row7("20% Vector, w/ LoRA", 19.94, 74.66, none, 56.64),
	row7("20% Element², w/ LoRA", 18.97, 76.78, none, 57.78),
	row7("20% Element¹, w/ LoRA", 19.69, 78.25, none, 57.71),
}

// PaperChatGLM6B is the paper's ChatGLM-6B table at 10% (six tasks, no BoolQ; the repository's
// figure gives the averages only).
var PaperChatGLM6B = []PaperRow{
	row7("ChatGLM-6B (paper's eval)", nan, nan, none, 47.05),
	row7("10% L2, w/o tune", nan, nan, none, 42.43),
	row7("10% Random, w/o tune", nan, nan, none, 45.24),
	row7("10% Weight (Element¹), w/o tune", nan, nan, none, 46.16),
	row7("10% Parameter¹, w/o tune", nan, nan, none, 36.45),
	row7("10% Weight (Element¹), w/ LoRA", nan, nan, none, 47.34),
}

// Perplexity columns of the LLaMA-3 results page (window length in tokens after "@").
const (
	WikiText2At2048 = "WikiText2@2048"
	PTBAt2048       = "PTB@2048"
	WikiText2At128  = "WikiText2@128"
)

// PaperLlama3_8B is the repository's Llama-3-8B result (more_results: block-wise 25% on layers
// 4–30, Element¹, no tuning; perplexity only, at 2048- and 128-token windows).
var PaperLlama3_8B = []PaperRow{
	{Name: "Llama-3-8B (repo's eval)", PPL: map[string]float64{WikiText2At2048: 6.14, PTBAt2048: 10.58, WikiText2At128: 14.13}, Average: nan},
	{Name: "25% L2, w/o tune", PPL: map[string]float64{WikiText2At2048: 34.13, PTBAt2048: 51.53}, Average: nan},
	{Name: "25% Element¹, w/o tune", PPL: map[string]float64{WikiText2At2048: 12.86, PTBAt2048: 20.83, WikiText2At128: 25.60}, Average: nan},
}
