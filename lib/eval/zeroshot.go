// Package eval measures language models the way the LLM-Pruner paper does: perplexity
// (Perplexity), zero-shot accuracy on BoolQ, PIQA, HellaSwag, WinoGrande, ARC-e, ARC-c and
// OpenBookQA with lm-evaluation-harness's protocol (ZeroShot, MarkdownTable), and model statistics
// (Stats for parameters and MACs, MeasureLatency for timings).
//
// A zero-shot run on a loaded model:
//
//	res, err := eval.ZeroShot(m, m.Tokenizer, eval.ZeroShotOptions{
//		DataDir: "data/zeroshot/lm-eval-docs", Limit: eval.NoLimit, MaxLength: m.Config.MaxPositions})
//	table, err := eval.MarkdownTable([]eval.ModelResult{{Name: "dense", Result: res}}, false)
package eval

import (
	"time"

	"github.com/pkg/errors"
)

// Encoder is the part of tokenizer.Tokenizer the harness uses; every tokenizer.Tokenizer is one.
type Encoder interface {
	// Encode returns the ids of text without BOS/EOS, with SentencePiece's dummy-prefix space.
	Encode(text string) ([]int, error)
	// EOS is the end-of-text id (-1 if none), used as the context of an empty-context request.
	EOS() int
}

// DefaultBatchSize is the number of sequences per TokenLogProbs call when ZeroShotOptions leaves
// it 0. (lm-eval's results do not depend on the batch size: every sequence is scored on its own
// positions only.)
const DefaultBatchSize = 16

// DefaultMaxLength is lm-eval's fallback context length (HuggingFaceAutoLM._DEFAULT_MAX_LENGTH),
// used when ZeroShotOptions.MaxLength is 0.
const DefaultMaxLength = 2048

// ZeroShotOptions configures ZeroShot.
type ZeroShotOptions struct {
	// DataDir holds <task>.jsonl for every task (see LoadDocs for the fields).
	DataDir string
	// Tasks to evaluate (lm-eval names); nil or empty means PaperTasks.
	Tasks []string
	// Limit is the number of documents per task, the first ones in file order; NoLimit (-1) means
	// all of them, 0 is rejected. (lm-eval's own --limit shuffles with random.Random(42) first and
	// so picks different documents.)
	Limit int
	// BatchSize is the number of sequences per scorer call (0: DefaultBatchSize).
	BatchSize int
	// MaxLength is the model's context length, lm-eval's max_length (LLaMA: max_position_embeddings):
	// a context+continuation longer than MaxLength+1 tokens loses tokens on the left, so the scorer
	// gets sequences of up to MaxLength+1 tokens (the last one is only a target). 0 means
	// DefaultMaxLength. lib/models' TokenLogProbs takes such max_position_embeddings+1 windows (the
	// last token is only a target), so pass m.Config.MaxPositions.
	MaxLength int
	// Progress, when set, is called after every scorer call.
	Progress func(Progress)
}

// Progress reports how far a ZeroShot run is.
type Progress struct {
	// Done and Total count the distinct token sequences scored (identical requests are scored once).
	Done, Total int
	// DoneTokens and TotalTokens count their tokens; the ETA is extrapolated from them because
	// sequences are scored longest first.
	DoneTokens, TotalTokens int64
	Elapsed, ETA            time.Duration
}

// ZeroShot evaluates the tasks of opts with lm-evaluation-harness's zero-shot protocol (commit
// 4d21ab6, as LLM-Pruner's paper): every document becomes one (context, continuation) request per
// choice, context and continuation are tokenized separately without BOS, and each request is scored
// by the summed log-probability of its continuation tokens. See TokenizeRequest for the token
// details and LoadDocs for the data layout. scorer is the model (*models.Model is a Scorer).
func ZeroShot(scorer Scorer, tok Encoder, opts ZeroShotOptions) (*ZeroShotResult, error) {
	if scorer == nil || tok == nil {
		return nil, errors.New("zero-shot evaluation needs a model (scorer) and its tokenizer")
	}
	names := opts.Tasks
	if len(names) == 0 {
		names = PaperTasks
	}
	var all []*Task
	docsByTask := make(map[string][]Doc, len(names))
	for _, n := range names {
		t, err := LookupTask(n)
		if err != nil {
			return nil, err
		}
		if _, dup := docsByTask[t.Name]; dup {
			return nil, errors.Errorf("task %q is listed twice", t.Name)
		}
		docs, err := LoadDocs(opts.DataDir, t.Name, opts.Limit)
		if err != nil {
			return nil, err
		}
		all = append(all, t)
		docsByTask[t.Name] = docs
	}
	start := time.Now()
	plan, err := planRequests(tok, all, docsByTask, opts.maxLength())
	if err != nil {
		return nil, err
	}
	if err := plan.score(scorer, opts.batchSize(), opts.Progress); err != nil {
		return nil, err
	}
	res := &ZeroShotResult{Tasks: make(map[string]TaskResult, len(all))}
	for _, t := range all {
		tr := scoreTask(t, docsByTask[t.Name], plan.docLogLikelihoods(t.Name))
		tr.ContextCut, tr.ContinuationCut = plan.contextCut[t.Name], plan.contCut[t.Name]
		res.Tasks[t.Name] = tr
		res.Order = append(res.Order, t.Name)
	}
	res.Order = paperOrder(res.Order)
	res.Average = res.average()
	res.Requests = plan.numRequests
	res.Sequences = len(plan.seqs)
	res.Tokens = plan.totalTokens
	res.Elapsed = time.Since(start)
	return res, nil
}

func (o ZeroShotOptions) batchSize() int {
	if o.BatchSize <= 0 {
		return DefaultBatchSize
	}
	return o.BatchSize
}

func (o ZeroShotOptions) maxLength() int {
	if o.MaxLength <= 0 {
		return DefaultMaxLength
	}
	return o.MaxLength
}
