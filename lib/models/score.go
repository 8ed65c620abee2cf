package models

// Host-side scoring: logits, per-token log-probabilities and loss for batches of token sequences.
// Sequences are batched internally (longest first), right-padded to bucketed lengths so that few
// graphs are compiled, and padded rows are masked out.

import (
	"fmt"
	"math"
	"math/bits"
	"sort"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/pkg/errors"
)

// Batching limits: at most maxBatchRows rows, and about logitsBudget logit floats per batch.
const (
	maxBatchRows = 32
	logitsBudget = 1 << 25 // 32 Mi floats = 128 MiB of logits
)

// tokenBatch is one padded batch of sequences.
type tokenBatch struct {
	rows   []int           // index in the caller's list of each real row
	tokens *tensors.Tensor // [B, L] int32 (padding = 0)
	mask   *tensors.Tensor // [B, L] bool (true = real token)
}

// bucketLen rounds a sequence length up to a multiple of 16 up to 128 and to a power of two
// beyond, so that varying lengths share compiled graphs.
func bucketLen(n int) int {
	if n <= 128 {
		return max(16, (n+15)/16*16)
	}
	return 1 << bits.Len(uint(n-1))
}

// CheckSequences validates token sequences for the model: each at least minLen long, at most the
// context length (max_position_embeddings), with ids inside the vocabulary.
func (m *Model) CheckSequences(seqs [][]int, minLen int) error {
	return m.checkSequences(seqs, minLen, 0)
}

// checkSequences is CheckSequences allowing targetOnly tokens beyond the context: tokens that are
// only predicted, never used to predict (TokenLogProbs' last token).
func (m *Model) checkSequences(seqs [][]int, minLen, targetOnly int) error {
	cfg := m.Config
	for i, s := range seqs {
		if len(s) < minLen {
			return errors.Errorf("sequence %d has %d tokens; at least %d needed", i, len(s), minLen)
		}
		if cfg.MaxPositions > 0 && len(s) > cfg.MaxPositions+targetOnly {
			limit := fmt.Sprintf("the model's context of %d (max_position_embeddings)", cfg.MaxPositions)
			if targetOnly > 0 {
				limit += fmt.Sprintf(" + %d target token", targetOnly)
			}
			return errors.Errorf("sequence %d has %d tokens, longer than %s; split or truncate it", i, len(s), limit)
		}
		for t, id := range s {
			if id < 0 || id >= cfg.Vocab {
				return errors.Errorf("sequence %d, position %d: token id %d is outside the vocabulary [0, %d)", i, t, id, cfg.Vocab)
			}
		}
	}
	return nil
}

// longestFirst returns the indices 0…n-1 ordered by decreasing length(i), stably.
func longestFirst(n int, length func(i int) int) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return length(order[a]) > length(order[b]) })
	return order
}

// batchSpan is the batch that starts at index start of n ordered rows padded to length L: it
// ends before end (at most maxBatchRows rows and about logitsBudget logits, a power of two) and
// is padded to B rows (the next power of two, so that few graphs are compiled).
func (m *Model) batchSpan(start, n, L int) (end, B int) {
	rows := max(1, min(maxBatchRows, logitsBudget/(L*m.Config.Vocab)))
	rows = 1 << (bits.Len(uint(rows)) - 1)
	end = min(n, start+rows)
	if end-start == 1 {
		return end, 1
	}
	return end, 1 << bits.Len(uint(end-start-1))
}

// makeBatches groups seqs (longest first) into padded batches. Their length is bucketed without
// the last targetOnly tokens, which are then added back (a sequence of exactly the context length
// plus one target token does not double the padded length).
func (m *Model) makeBatches(seqs [][]int, targetOnly int) []tokenBatch {
	order := longestFirst(len(seqs), func(i int) int { return len(seqs[i]) })
	var out []tokenBatch
	for start := 0; start < len(order); {
		L := bucketLen(max(1, len(seqs[order[start]])-targetOnly)) + targetOnly
		end, B := m.batchSpan(start, len(order), L)
		tok := make([]int32, B*L)
		mask := make([]bool, B*L)
		for r, idx := range order[start:end] {
			for t, id := range seqs[idx] {
				tok[r*L+t] = int32(id)
				mask[r*L+t] = true
			}
		}
		out = append(out, tokenBatch{
			rows:   order[start:end],
			tokens: tensors.FromFlatDataAndDimensions(tok, B, L),
			mask:   tensors.FromFlatDataAndDimensions(mask, B, L),
		})
		start = end
	}
	return out
}

// Logits runs the forward pass on each sequence and returns its logits [len(seq)][V].
func (m *Model) Logits(seqs [][]int) (logits [][][]float32, err error) {
	defer recoverError(&err, "computing logits")
	if err := m.CheckSequences(seqs, 1); err != nil {
		return nil, err
	}
	exec, err := m.cachedExec("logits", func() (*model.Exec, error) {
		return model.NewExec(m.Backend, m.Store, func(scope *model.Scope, tokens, mask *Node) *Node {
			return Logits(scope, m.Config, tokens, mask, m.Hooks)
		})
	})
	if err != nil {
		return nil, err
	}
	V := m.Config.Vocab
	logits = make([][][]float32, len(seqs))
	for _, b := range m.makeBatches(seqs, 0) {
		out, err := exec.Call1(b.tokens, b.mask)
		if err != nil {
			return nil, errors.WithMessage(err, "running the forward pass")
		}
		flat := tensors.MustCopyFlatData[float32](out)
		L := out.Shape().Dim(1)
		for r, idx := range b.rows {
			rowsOut := make([][]float32, len(seqs[idx]))
			for t := range rowsOut {
				rowsOut[t] = flat[(r*L+t)*V : (r*L+t+1)*V : (r*L+t+1)*V]
			}
			logits[idx] = rowsOut
		}
		_ = out.FinalizeAll()
	}
	return logits, nil
}

// TokenLogProbs scores each sequence: logp[i][t-1] = log p(seq[t] | seq[<t]) for t ≥ 1, and
// greedy[i][t-1] tells whether seq[t] was the argmax prediction. A sequence of length n gives
// n-1 scores. Used by perplexity and zero-shot evaluation. The last token is only a target, so a
// sequence may hold max_position_embeddings+1 tokens (lm-eval's max_length+1 window).
func (m *Model) TokenLogProbs(seqs [][]int) (logp [][]float64, greedy [][]bool, err error) {
	defer recoverError(&err, "scoring tokens")
	if err := m.checkSequences(seqs, 1, 1); err != nil {
		return nil, nil, err
	}
	exec, err := m.cachedExec("token-logprobs", func() (*model.Exec, error) {
		return model.NewExec(m.Backend, m.Store, func(scope *model.Scope, tokens, mask *Node) (*Node, *Node) {
			return TokenScores(Logits(scope, m.Config, tokens, mask, m.Hooks), tokens)
		})
	})
	if err != nil {
		return nil, nil, err
	}
	logp = make([][]float64, len(seqs))
	greedy = make([][]bool, len(seqs))
	for _, b := range m.makeBatches(seqs, 1) {
		lp, gr, err := exec.Call2(b.tokens, b.mask)
		if err != nil {
			return nil, nil, errors.WithMessage(err, "running the forward pass")
		}
		scatterLogProbs(lp, gr, b.rows, seqs, logp, greedy)
		_ = lp.FinalizeAll()
		_ = gr.FinalizeAll()
	}
	return logp, greedy, nil
}

// Loss is the mean next-token negative log-likelihood over all predicted positions of all
// sequences (each sequence of length n contributes n-1 positions; token-weighted across
// sequences). For a single sequence it equals HF's loss with labels = input ids.
func (m *Model) Loss(seqs [][]int) (float64, error) {
	if err := m.CheckSequences(seqs, 2); err != nil {
		return 0, err
	}
	logp, _, err := m.TokenLogProbs(seqs)
	if err != nil {
		return 0, err
	}
	var sum float64
	var n int
	for _, row := range logp {
		for _, v := range row {
			sum -= v
			n++
		}
	}
	if n == 0 {
		return math.NaN(), errors.New("no positions to score")
	}
	return sum / float64(n), nil
}

// scatterLogProbs copies a batch's per-position log-probabilities lp [rows, L-1] and greedy flags
// gr [rows, L-1] into logp/greedy of the sequences the batch rows hold (seqs[rows[r]]), dropping
// the padding beyond each sequence.
func scatterLogProbs(lp, gr *tensors.Tensor, rows []int, seqs [][]int, logp [][]float64, greedy [][]bool) {
	lpFlat, grFlat := tensors.MustCopyFlatData[float32](lp), tensors.MustCopyFlatData[bool](gr)
	W := lp.Shape().Dim(1) // L-1
	for r, idx := range rows {
		n := len(seqs[idx]) - 1
		logp[idx] = make([]float64, n)
		greedy[idx] = make([]bool, n)
		for t := range n {
			logp[idx][t] = float64(lpFlat[r*W+t])
			greedy[idx][t] = grFlat[r*W+t]
		}
	}
}
