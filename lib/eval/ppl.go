package eval

import (
	"math"

	"github.com/llmpruner/llmpruner/lib/data"
	"github.com/llmpruner/llmpruner/lib/option"
	"github.com/llmpruner/llmpruner/lib/tokenizer"
	"github.com/pkg/errors"
)

// Scorer gives next-token log-probabilities of token sequences; *models.Model implements it.
type Scorer interface {
	// TokenLogProbs returns, for each sequence s of seqs, logp with logp[t-1] = log p(s[t] | s[<t])
	// for t = 1..len(s)-1 (the first token is not predicted), and greedy[t-1] reporting whether
	// s[t] is the model's argmax at that position.
	TokenLogProbs(seqs [][]int) (logp [][]float64, greedy [][]bool, err error)
}

// BranchScorer is an optional capability of a Scorer: scoring alternative continuations of a
// shared prefix with the prefix computed once (*models.Model for LLaMA-family models). ZeroShot
// uses it to run each document's context once for all its choices.
type BranchScorer interface {
	Scorer
	// CanScoreBranches tells whether BranchLogProbs works for this model.
	CanScoreBranches() bool
	// BranchLogProbs returns logp[i][j][t] = log p(c[t] | P, c[<t]) for P = prefixes[i] and
	// c = continuations[i][j], and greedy[i][j][t] whether c[t] is the argmax there: what
	// TokenLogProbs gives for P ++ c on the continuation positions.
	BranchLogProbs(prefixes [][]int, continuations [][][]int) (logp [][][]float64, greedy [][][]bool, err error)
}

// DefaultPPLSeqLen is LLM-Pruner's perplexity window (its --max_seq_len default, 128 tokens).
const DefaultPPLSeqLen = 128

// DefaultPPLBatch is the number of windows scored per call (LLM-Pruner's batch size, 4).
const DefaultPPLBatch = 4

// PPLOptions configure Perplexity. Zero values take the defaults.
type PPLOptions struct {
	SeqLen   int                   // window length in tokens (DefaultPPLSeqLen)
	Batch    int                   // windows per Scorer call (DefaultPPLBatch); does not change the result
	Progress func(done, total int) // called after each batch with windows done / total; may be nil
}

// PPLResult is a perplexity measurement.
type PPLResult struct {
	PPL     float64 `json:"ppl"`     // exp(NLL)
	NLL     float64 `json:"nll"`     // mean next-token negative log-likelihood, nats per predicted token
	Tokens  int     `json:"tokens"`  // predicted tokens: Windows × (SeqLen − 1)
	Windows int     `json:"windows"` // windows scored
}

// Perplexity measures the perplexity of text exactly as LLM-Pruner does (ppl_dataset.py and
// evaluator/ppl.py): the text is tokenized once with one BOS at the start of the whole stream,
// cut into non-overlapping windows of SeqLen tokens with the last partial window dropped; in each
// window the tokens at positions 1..SeqLen-1 are predicted (the first token of a window is not),
// and PPL = exp(mean NLL over all predicted tokens). Sums are accumulated in float64.
//
// Evaluation texts joined the way LLM-Pruner joins them come from data.ReadWikiText2 and
// data.ReadPTB. Empty text and text shorter than one window are errors.
func Perplexity(scorer Scorer, tok tokenizer.Tokenizer, text string, opts PPLOptions) (PPLResult, error) {
	if _, _, err := opts.resolve(); err != nil {
		return PPLResult{}, err
	}
	if text == "" {
		return PPLResult{}, errors.New("perplexity: the text is empty")
	}
	ids, err := tokenizer.ModelInputs(tok, text)
	if err != nil {
		return PPLResult{}, errors.Wrap(err, "perplexity: tokenizing the text")
	}
	return PerplexityOfIDs(scorer, ids, opts)
}

// OptSeqLen is PPLOptions.SeqLen as error messages name it (option.Error).
const OptSeqLen option.Name = "eval.PPLOptions.SeqLen"

// PerplexityOfIDs is Perplexity on an already tokenized stream (ids should start with BOS, as
// tokenizer.ModelInputs gives): for evaluating the same text repeatedly, e.g. during training.
func PerplexityOfIDs(scorer Scorer, ids []int, opts PPLOptions) (PPLResult, error) {
	seqLen, batch, err := opts.resolve()
	if err != nil {
		return PPLResult{}, err
	}
	windows := data.TokenWindows(ids, seqLen)
	if len(windows) == 0 {
		return PPLResult{}, option.Errorf("perplexity: the text is %d tokens long, shorter than one window (%s %d)",
			len(ids), OptSeqLen, seqLen)
	}
	return windowsPerplexity(scorer, windows, batch, opts.Progress)
}

// resolve applies the defaults and checks the options.
func (o PPLOptions) resolve() (seqLen, batch int, err error) {
	seqLen, batch = o.SeqLen, o.Batch
	if seqLen == 0 {
		seqLen = DefaultPPLSeqLen
	}
	if batch == 0 {
		batch = DefaultPPLBatch
	}
	if seqLen < 2 {
		return 0, 0, errors.Errorf("perplexity: window length %d must be at least 2 tokens", seqLen)
	}
	if batch < 0 {
		return 0, 0, errors.Errorf("perplexity: batch size %d must be positive", batch)
	}
	return seqLen, batch, nil
}

// windowsPerplexity scores equal-length windows batch by batch and averages their next-token NLL.
func windowsPerplexity(scorer Scorer, windows [][]int, batch int, progress func(done, total int)) (PPLResult, error) {
	var (
		sum    float64
		tokens int
	)
	for start := 0; start < len(windows); start += batch {
		chunk := windows[start:min(start+batch, len(windows))]
		logp, _, err := scorer.TokenLogProbs(chunk)
		if err != nil {
			return PPLResult{}, errors.Wrapf(err, "perplexity: scoring windows %d..%d", start, start+len(chunk)-1)
		}
		if len(logp) != len(chunk) {
			return PPLResult{}, errors.Errorf("perplexity: scorer returned %d rows for %d windows", len(logp), len(chunk))
		}
		for i, row := range logp {
			if len(row) != len(chunk[i])-1 {
				return PPLResult{}, errors.Errorf("perplexity: scorer returned %d log-probs for a window of %d tokens, want %d",
					len(row), len(chunk[i]), len(chunk[i])-1)
			}
			for _, lp := range row {
				sum -= lp
			}
			tokens += len(row)
		}
		if progress != nil {
			progress(start+len(chunk), len(windows))
		}
	}
	nll := sum / float64(tokens)
	if math.IsNaN(nll) {
		return PPLResult{}, errors.New("perplexity: the model produced NaN log-probabilities")
	}
	return PPLResult{PPL: math.Exp(nll), NLL: nll, Tokens: tokens, Windows: len(windows)}, nil
}
