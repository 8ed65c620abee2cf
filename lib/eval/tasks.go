package eval

import (
	"slices"
	"strings"

	"github.com/pkg/errors"
)

// Metric names a per-document accuracy metric of lm-evaluation-harness.
type Metric string

const (
	// MetricAcc is "acc": the choice with the highest total log-likelihood is the prediction.
	MetricAcc Metric = "acc"
	// MetricAccNorm is "acc_norm": the log-likelihood of each choice is divided by the length of the
	// choice text in characters (Unicode code points, without the leading space) before the argmax.
	MetricAccNorm Metric = "acc_norm"
)

// Task is one zero-shot task: how its documents are read and which metric the LLM-Pruner paper
// reports for it.
type Task struct {
	// Name is lm-eval's task name ("boolq", "arc_easy", …) and the file stem in the data dir.
	Name string
	// Title is the column header the paper uses ("BoolQ", "ARC-e", …).
	Title string
	// Split is the dataset split lm-eval evaluates (for documentation; the file holds only it).
	Split string
	// HasAccNorm is true for lm-eval's MultipleChoiceTask tasks, which also report acc_norm.
	HasAccNorm bool
	// PaperMetric is the metric whose value the paper's tables show for this task.
	PaperMetric Metric
	// parse turns one jsonl record into a document.
	parse func(rec record) (Doc, error)
}

// Request is one log-likelihood query as lm-eval builds it: the log-probability of Continuation
// given Context.
type Request struct {
	Context      string
	Continuation string
}

// Doc is one evaluation document turned into requests, one per answer choice.
type Doc struct {
	// Index is the 0-based position of the document in its file.
	Index int
	// Requests holds one request per choice, in choice order.
	Requests []Request
	// Choices are the choice texts whose character length acc_norm divides by (nil when the task
	// has no acc_norm).
	Choices []string
	// Gold is the index of the correct choice.
	Gold int
}

// PaperTasks are the seven tasks of the LLM-Pruner paper in the order of its tables.
var PaperTasks = []string{"boolq", "piqa", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "openbookqa"}

var tasks = map[string]*Task{
	"boolq":         {Name: "boolq", Title: "BoolQ", Split: "validation", PaperMetric: MetricAcc, parse: parseBoolQ},
	"piqa":          {Name: "piqa", Title: "PIQA", Split: "validation", HasAccNorm: true, PaperMetric: MetricAccNorm, parse: parsePIQA},
	"hellaswag":     {Name: "hellaswag", Title: "HellaSwag", Split: "validation", HasAccNorm: true, PaperMetric: MetricAccNorm, parse: parseHellaSwag},
	"winogrande":    {Name: "winogrande", Title: "WinoGrande", Split: "validation (winogrande_xl)", PaperMetric: MetricAcc, parse: parseWinoGrande},
	"arc_easy":      {Name: "arc_easy", Title: "ARC-e", Split: "test", HasAccNorm: true, PaperMetric: MetricAccNorm, parse: parseARC},
	"arc_challenge": {Name: "arc_challenge", Title: "ARC-c", Split: "test", HasAccNorm: true, PaperMetric: MetricAccNorm, parse: parseARC},
	"openbookqa":    {Name: "openbookqa", Title: "OBQA", Split: "test (main)", HasAccNorm: true, PaperMetric: MetricAccNorm, parse: parseOpenBookQA},
}

// LookupTask returns the task called name (case-insensitive), or an error listing the known tasks.
func LookupTask(name string) (*Task, error) {
	t, ok := tasks[strings.ToLower(strings.TrimSpace(name))]
	if !ok {
		return nil, errors.Errorf("unknown task %q (known tasks: %s)", name, strings.Join(PaperTasks, ", "))
	}
	return t, nil
}

// ParseTaskList splits a comma-separated list such as "boolq,piqa" into task names, checking each
// one and rejecting duplicates. An empty list gives PaperTasks.
func ParseTaskList(list string) ([]string, error) {
	if strings.TrimSpace(list) == "" {
		return slices.Clone(PaperTasks), nil
	}
	var names []string
	for _, part := range strings.Split(list, ",") {
		t, err := LookupTask(part)
		if err != nil {
			return nil, err
		}
		if slices.Contains(names, t.Name) {
			return nil, errors.Errorf("task %q is listed twice", t.Name)
		}
		names = append(names, t.Name)
	}
	return names, nil
}

// paperOrder sorts task names in the order of PaperTasks (unknown names last, alphabetically).
func paperOrder(names []string) []string {
	out := slices.Clone(names)
	rank := func(n string) int {
		if i := slices.Index(PaperTasks, n); i >= 0 {
			return i
		}
		return len(PaperTasks)
	}
	slices.SortStableFunc(out, func(a, b string) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return out
}
