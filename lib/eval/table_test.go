package eval

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func fakeResult(scores map[string]float64) *ZeroShotResult {
	r := &ZeroShotResult{Tasks: map[string]TaskResult{}, Elapsed: 2 * time.Second, Requests: 10}
	for name, v := range scores {
		t := tasks[name]
		tr := TaskResult{Metric: t.PaperMetric, Acc: v - 0.1, AccStderr: 0.01, N: 100}
		if t.HasAccNorm {
			v, se := v, 0.02
			tr.AccNorm, tr.AccNormStderr = &v, &se
		} else {
			tr.Acc = v
		}
		r.Tasks[name] = tr
		r.Order = append(r.Order, name)
	}
	r.Order = paperOrder(r.Order)
	r.Average = r.average()
	return r
}

func TestMarkdownTablePaperLayout(t *testing.T) {
	// LLaMA-7B as evaluated in the LLM-Pruner paper (its table's "LLaMA-7B" row).
	dense := fakeResult(map[string]float64{"boolq": 0.7318, "piqa": 0.7835, "hellaswag": 0.7299, "winogrande": 0.6701,
		"arc_easy": 0.6745, "arc_challenge": 0.4138, "openbookqa": 0.4240})
	pruned := fakeResult(map[string]float64{"openbookqa": 0.40, "boolq": 0.5})
	table, err := MarkdownTable([]ModelResult{{"LLaMA-7B", dense}, {"pruned | 20%", pruned}}, false)
	if err != nil {
		t.Fatal(err)
	}
	want := "| Model | BoolQ | PIQA | HellaSwag | WinoGrande | ARC-e | ARC-c | OBQA | Average |\n" +
		"|---|---:|---:|---:|---:|---:|---:|---:|---:|\n" +
		"| LLaMA-7B | 73.18 | 78.35 | 72.99 | 67.01 | 67.45 | 41.38 | 42.40 | 63.25 |\n" +
		"| pruned \\| 20% | 50.00 | – | – | – | – | – | 40.00 | 45.00 |\n"
	if table != want {
		t.Errorf("table:\n%s\nwant:\n%s", table, want)
	}
	withErr, _ := MarkdownTable([]ModelResult{{"m", pruned}}, true)
	if !strings.Contains(withErr, "| 50.00 ± 1.00 | 40.00 ± 2.00 |") {
		t.Errorf("stderr table:\n%s", withErr)
	}
	if _, err := MarkdownTable(nil, false); err == nil {
		t.Error("empty table accepted")
	}
	if note := MetricNote(pruned); note != "Zero-shot accuracy (%), lm-eval 4d21ab6 protocol: BoolQ acc (n=100), OBQA acc_norm (n=100)." {
		t.Errorf("note %q", note)
	}
}

func TestResultJSON(t *testing.T) {
	r := fakeResult(map[string]float64{"boolq": 0.5, "piqa": 0.75})
	data, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Tasks map[string]map[string]any `json:"tasks"`
		Avg   float64                   `json:"average"`
		Secs  float64                   `json:"seconds"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Avg != 0.625 || got.Secs != 2 || got.Tasks["piqa"]["acc_norm"] != 0.75 || got.Tasks["boolq"]["acc"] != 0.5 ||
		got.Tasks["boolq"]["n"] != 100.0 || got.Tasks["boolq"]["metric"] != "acc" {
		t.Errorf("json: %s", data)
	}
	if _, ok := got.Tasks["boolq"]["acc_norm"]; ok {
		t.Errorf("boolq has no acc_norm: %s", data)
	}
	multi, err := ResultsJSON([]ModelResult{{"dense", r}})
	if err != nil || !strings.Contains(string(multi), `"model": "dense"`) {
		t.Errorf("ResultsJSON: %s %v", multi, err)
	}
}
