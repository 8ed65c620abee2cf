package eval

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/pkg/errors"
)

// ModelResult names a model's zero-shot result for side-by-side tables (dense / pruned / tuned).
type ModelResult struct {
	Name   string
	Result *ZeroShotResult
}

// MarkdownTable renders results in the layout of the LLM-Pruner paper: one row per model, the
// tasks as columns in the paper's order (BoolQ PIQA HellaSwag WinoGrande ARC-e ARC-c OBQA) and
// Average last. Values are the paper's metric per task (acc_norm for PIQA, HellaSwag, ARC-e,
// ARC-c, OBQA; acc for BoolQ, WinoGrande) in percent with two decimals; withStderr appends
// "± stderr". A task a model was not evaluated on shows "–", and its Average is then over the
// tasks it has.
func MarkdownTable(rows []ModelResult, withStderr bool) (string, error) {
	if len(rows) == 0 {
		return "", errors.New("no results to tabulate")
	}
	var names []string
	for _, r := range rows {
		if r.Result == nil {
			return "", errors.Errorf("model %q has no result", r.Name)
		}
		for name := range r.Result.Tasks {
			if !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
	}
	names = paperOrder(names)
	var b strings.Builder
	b.WriteString("| Model |")
	for _, n := range names {
		fmt.Fprintf(&b, " %s |", taskTitle(n))
	}
	b.WriteString(" Average |\n|---|")
	b.WriteString(strings.Repeat("---:|", len(names)+1))
	b.WriteString("\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s |", escapeCell(r.Name))
		for _, n := range names {
			t, ok := r.Result.Tasks[n]
			switch {
			case !ok:
				b.WriteString(" – |")
			case withStderr:
				fmt.Fprintf(&b, " %.2f ± %.2f |", 100*t.Score(), 100*t.scoreStderr())
			default:
				fmt.Fprintf(&b, " %.2f |", 100*t.Score())
			}
		}
		fmt.Fprintf(&b, " %.2f |\n", 100*r.Result.Average)
	}
	return b.String(), nil
}

// MetricNote is a one-line caption for MarkdownTable: which metric each column shows and how many
// documents each task had (from the first row).
func MetricNote(r *ZeroShotResult) string {
	var parts []string
	for _, n := range r.Order {
		t := r.Tasks[n]
		parts = append(parts, fmt.Sprintf("%s %s (n=%d)", taskTitle(n), t.Metric, t.N))
	}
	return "Zero-shot accuracy (%), lm-eval 4d21ab6 protocol: " + strings.Join(parts, ", ") + "."
}

// JSON renders one result as {"tasks":{"boolq":{"metric":…,"acc":…,"acc_stderr":…,"n":…},…},
// "average":…, "requests":…, "sequences":…, "tokens":…, "seconds":…}; fractions, not percent.
func (r *ZeroShotResult) JSON() ([]byte, error) {
	type out struct {
		*ZeroShotResult
		Seconds float64 `json:"seconds"`
	}
	return json.MarshalIndent(out{r, r.Elapsed.Seconds()}, "", "  ")
}

// ResultsJSON renders several models' results as {"models":[{"model":name, "tasks":…,
// "average":…}, …]}.
func ResultsJSON(rows []ModelResult) ([]byte, error) {
	type entry struct {
		Model string `json:"model"`
		*ZeroShotResult
		Seconds float64 `json:"seconds"`
	}
	var all struct {
		Models []entry `json:"models"`
	}
	for _, r := range rows {
		if r.Result == nil {
			return nil, errors.Errorf("model %q has no result", r.Name)
		}
		all.Models = append(all.Models, entry{r.Name, r.Result, r.Result.Elapsed.Seconds()})
	}
	return json.MarshalIndent(all, "", "  ")
}

func (r TaskResult) scoreStderr() float64 {
	if r.Metric == MetricAccNorm && r.AccNormStderr != nil {
		return *r.AccNormStderr
	}
	return r.AccStderr
}

func taskTitle(name string) string {
	if t, ok := tasks[name]; ok {
		return t.Title
	}
	return name
}

func escapeCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
