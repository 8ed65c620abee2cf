package eval

import (
	"math"
	"time"
	"unicode/utf8"
)

// DocScore holds the model's answers for one document: per choice, the summed log-probability of
// the continuation and whether every continuation token was the model's greedy choice (lm-eval's
// is_greedy).
type DocScore struct {
	LogLikelihoods []float64
	Greedy         []bool
}

// TaskResult is the outcome of one task, with lm-eval's metric names.
type TaskResult struct {
	// Metric is the metric the paper reports for the task; Score returns its value.
	Metric Metric `json:"metric"`
	// Acc is the fraction of documents whose highest-log-likelihood choice is the gold one.
	Acc float64 `json:"acc"`
	// AccStderr is lm-eval's mean_stderr: sample standard deviation / sqrt(n), which for 0/1 values
	// is sqrt(p(1−p)/(n−1)). It is 0 when n < 2 (undefined).
	AccStderr float64 `json:"acc_stderr"`
	// AccNorm and AccNormStderr are set for multiple-choice tasks only (not BoolQ, WinoGrande).
	AccNorm       *float64 `json:"acc_norm,omitempty"`
	AccNormStderr *float64 `json:"acc_norm_stderr,omitempty"`
	// N is the number of documents.
	N int `json:"n"`
	// ContextCut counts requests whose context lost tokens on the left to fit the model's context
	// length (as lm-eval does). ContinuationCut counts requests whose continuation alone was too
	// long, of which only the last max-length tokens were scored (lm-eval cannot score them at
	// all); when it is non-zero the task's numbers are not comparable with lm-eval's.
	ContextCut      int `json:"context_cut,omitempty"`
	ContinuationCut int `json:"continuation_cut,omitempty"`
	// Docs holds the per-document scores, in file order.
	Docs []DocScore `json:"-"`
}

// Score is the value of the paper's metric for the task (a fraction in [0, 1]).
func (r TaskResult) Score() float64 {
	if r.Metric == MetricAccNorm && r.AccNorm != nil {
		return *r.AccNorm
	}
	return r.Acc
}

// ZeroShotResult is the outcome of a ZeroShot run.
type ZeroShotResult struct {
	// Tasks maps lm-eval task names to their results.
	Tasks map[string]TaskResult `json:"tasks"`
	// Average is the mean of the tasks' paper metrics (TaskResult.Score), as the paper's "Average".
	Average float64 `json:"average"`
	// Order lists the evaluated tasks in the paper's column order.
	Order []string `json:"-"`
	// Requests is the number of (context, continuation) requests; Sequences the number of distinct
	// token sequences actually scored; Tokens their total length.
	Requests  int   `json:"requests"`
	Sequences int   `json:"sequences"`
	Tokens    int64 `json:"tokens"`
	// Elapsed is the wall time of tokenization and scoring.
	Elapsed time.Duration `json:"-"`
}

// RequestsPerSecond is the throughput of the run in lm-eval requests per second.
func (r *ZeroShotResult) RequestsPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

func (r *ZeroShotResult) average() float64 {
	if len(r.Tasks) == 0 {
		return 0
	}
	var sum float64
	for _, t := range r.Tasks {
		sum += t.Score()
	}
	return sum / float64(len(r.Tasks))
}

// scoreTask computes lm-eval's per-document metrics and aggregates them (mean and mean_stderr).
func scoreTask(t *Task, docs []Doc, scores []DocScore) TaskResult {
	acc := make([]float64, len(docs))
	var accNorm []float64
	if t.HasAccNorm {
		accNorm = make([]float64, len(docs))
	}
	for i, d := range docs {
		ll := scores[i].LogLikelihoods
		if argmaxNumpy(ll) == d.Gold {
			acc[i] = 1
		}
		if t.HasAccNorm {
			norm := make([]float64, len(ll))
			for j, c := range d.Choices {
				// float64(len(choice)) in Python: code points, without the " " delimiter.
				norm[j] = ll[j] / float64(utf8.RuneCountInString(c))
			}
			if argmaxNumpy(norm) == d.Gold {
				accNorm[i] = 1
			}
		}
	}
	r := TaskResult{Metric: t.PaperMetric, N: len(docs), Docs: scores}
	r.Acc, r.AccStderr = meanAndStderr(acc)
	if t.HasAccNorm {
		m, s := meanAndStderr(accNorm)
		r.AccNorm, r.AccNormStderr = &m, &s
	}
	return r
}

// argmaxNumpy is numpy.argmax on a 1-D float array: the first maximum, where NaN counts as the
// maximum (0/0 from an empty choice would be NaN; x/0 with x < 0 is −Inf).
func argmaxNumpy(x []float64) int {
	best := 0
	for i, v := range x {
		if math.IsNaN(v) {
			return i
		}
		if v > x[best] {
			best = i
		}
	}
	return best
}

// meanAndStderr is lm-eval's mean and mean_stderr (sample stddev with n−1, divided by sqrt(n)).
func meanAndStderr(x []float64) (mean, stderr float64) {
	n := float64(len(x))
	if len(x) == 0 {
		return 0, 0
	}
	for _, v := range x {
		mean += v
	}
	mean /= n
	if len(x) < 2 {
		return mean, 0
	}
	var ss float64
	for _, v := range x {
		ss += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(ss/(n-1)) / math.Sqrt(n)
}
