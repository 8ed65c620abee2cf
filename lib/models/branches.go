package models

// Scoring alternative continuations of one shared prefix with the prefix computed once.
//
// A request (prefix P, continuations c_1 … c_k) is packed into one row
//
//	tokens    P_0 … P_{n-1}  c_1[0] … c_1[m_1-2]  c_2[0] … c_2[m_2-2]  …
//	positions 0   … n-1      n      … n+m_1-2     n      … n+m_2-2     …
//
// (the last token of each continuation is only a target, so it is not an input) with a tree
// attention mask: prefix tokens attend causally inside the prefix, a continuation token attends to
// the whole prefix and to its own continuation up to itself, never to another continuation. Every
// token then sees exactly what it would see in the plain sequence P ++ c_j, at the same position,
// so its logits are those of that sequence (up to float32 summation order), and c_j[t] is scored
// from the row of c_j[t-1] (t ≥ 1) or of P's last token (t = 0). The row has n + Σ(m_j − 1)
// tokens instead of k·n + Σ m_j, which is what multiple-choice evaluation saves: lm-eval's
// requests of one document share their context.

import (
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/pkg/errors"
)

// CanScoreBranches tells whether BranchLogProbs works for this model and pays off: LLaMA-family
// models (1D positions; ChatGLM derives its 2D positions and prefix mask from the tokens
// themselves) whose projections cost more per token than attention over a 512-token row. Where
// attention dominates (tiny models such as stories260K: d 64, head_dim 8), the tree-masked rows
// measured slower than plain sequences (HellaSwag 2.3×), so callers should score plainly.
func (m *Model) CanScoreBranches() bool {
	if lay, err := layoutOf(m.Config); err != nil || lay.branchScores == nil {
		return false
	}
	c := m.branchCost()
	return c.proj >= 512*c.attn
}

// BranchLogProbs scores alternative continuations of shared prefixes: request i is prefixes[i]
// (at least one token) followed by each of continuations[i] (each at least one token), and
// logp[i][j][t] = log p(c[t] | P, c[<t]) for P = prefixes[i], c = continuations[i][j];
// greedy[i][j][t] tells whether c[t] is the argmax there. It equals TokenLogProbs of P ++ c on the
// continuation positions, computing the prefix once per request (see the comment at the top of
// branches.go). Each P ++ c may hold max_position_embeddings + 1 tokens, as for TokenLogProbs.
func (m *Model) BranchLogProbs(prefixes [][]int, continuations [][][]int) (logp [][][]float64, greedy [][][]bool, err error) {
	defer recoverError(&err, "scoring continuations")
	lay, err := layoutOf(m.Config)
	if err != nil {
		return nil, nil, err
	}
	if lay.branchScores == nil {
		return nil, nil, errors.Errorf("scoring shared-prefix continuations needs a LLaMA-family model, not %s", m.Config.Arch)
	}
	if len(prefixes) != len(continuations) {
		return nil, nil, errors.Errorf("%d prefixes but %d continuation lists", len(prefixes), len(continuations))
	}
	cost := m.branchCost()
	var packed []packedBranches // one row each: a request, or one continuation of it (see branchCost)
	for i, prefix := range prefixes {
		conts := continuations[i]
		if len(prefix) == 0 || len(conts) == 0 {
			return nil, nil, errors.Errorf("request %d: empty prefix or no continuations", i)
		}
		seqs := make([][]int, len(conts))
		for j, c := range conts {
			if len(c) == 0 {
				return nil, nil, errors.Errorf("request %d: continuation %d is empty", i, j)
			}
			seqs[j] = append(prefix[:len(prefix):len(prefix)], c...)
		}
		if err := m.checkSequences(seqs, 2, 1); err != nil {
			return nil, nil, errors.WithMessagef(err, "request %d", i)
		}
		all := make([]int, len(conts))
		for j := range all {
			all[j] = j
		}
		if cost.pack(prefix, conts) <= cost.split(prefix, conts) {
			packed = append(packed, packBranches(i, all, prefix, conts))
			continue
		}
		for _, j := range all {
			packed = append(packed, packBranches(i, []int{j}, prefix, conts))
		}
	}
	exec, err := m.cachedExec("branch-logprobs", func() (*model.Exec, error) {
		return model.NewExec(m.Backend, m.Store, func(scope *model.Scope, in []*Node) []*Node {
			lp, gr := lay.branchScores(scope, m.Config, m.Hooks, in[0], in[1], in[2], in[3], in[4])
			return []*Node{lp, gr}
		})
	})
	if err != nil {
		return nil, nil, err
	}
	logp = make([][][]float64, len(prefixes))
	greedy = make([][][]bool, len(prefixes))
	for i, conts := range continuations {
		logp[i] = make([][]float64, len(conts))
		greedy[i] = make([][]bool, len(conts))
	}
	for _, b := range m.branchBatches(packed) {
		out, err := exec.Call(b.tokens, b.positions, b.allowed, b.rows, b.targets)
		if err != nil {
			return nil, nil, errors.WithMessage(err, "running the forward pass")
		}
		lpFlat, grFlat := tensors.MustCopyFlatData[float32](out[0]), tensors.MustCopyFlatData[bool](out[1])
		T := out[0].Shape().Dim(1)
		for r, idx := range b.reqs {
			p := &packed[idx]
			for k, j := range p.conts {
				start, n := p.targetStart[k], len(continuations[p.req][j])
				lp, gr := make([]float64, n), make([]bool, n)
				for t := range n {
					lp[t] = float64(lpFlat[r*T+start+t])
					gr[t] = grFlat[r*T+start+t]
				}
				logp[p.req][j], greedy[p.req][j] = lp, gr
			}
		}
		for _, o := range out {
			_ = o.FinalizeAll()
		}
	}
	return logp, greedy, nil
}

// branchCost estimates the work of rows of input tokens at their bucketed length L:
// L·proj + L²·attn, with proj the projections' FLOPs per token and attn, per pair of tokens, the
// attention products plus the mask and softmax, which cost about as much as 1000 FLOPs of a matrix
// product per score and head on the pure-Go backend (measured on stories260K: with a smaller
// weight, packed HellaSwag rows that doubled the bucketed length ran 2.3× slower than one row per
// choice).
type branchCost struct{ proj, attn float64 }

func (m *Model) branchCost() branchCost {
	const scoreCost = 1000
	cfg := m.Config
	D, HD := float64(cfg.Hidden), float64(cfg.HeadDim)
	var c branchCost
	for l := range cfg.NumLayers() {
		q, kv, inter := float64(cfg.Heads[l])*HD, float64(cfg.KVHeads[l])*HD, float64(cfg.Inter[l])
		c.proj += 2 * D * (2*q + 2*kv + 3*inter)
		c.attn += float64(cfg.Heads[l]) * (4*HD + scoreCost)
	}
	return c
}

// row is the cost of one row of n input tokens.
func (c branchCost) row(n int) float64 {
	L := float64(bucketLen(n))
	return L*c.proj + L*L*c.attn
}

// pack is the cost of one row holding prefix and every continuation (their last tokens are only
// targets); split that of one row per continuation. Packing saves the prefix's repetitions but
// lengthens the row: where attention dominates (small models, long continuations) one row per
// continuation is cheaper, and BranchLogProbs then uses it.
func (c branchCost) pack(prefix []int, conts [][]int) float64 {
	n := len(prefix)
	for _, cont := range conts {
		n += len(cont) - 1
	}
	return c.row(n)
}

func (c branchCost) split(prefix []int, conts [][]int) float64 {
	var cost float64
	for _, cont := range conts {
		cost += c.row(len(prefix) + len(cont) - 1)
	}
	return cost
}

// packedBranches is a row: the prefix of request req and its continuations conts (indices),
// packed as the file comment describes.
type packedBranches struct {
	req               int
	conts             []int
	tokens, positions []int32
	parent            []int   // per input token: -1 for prefix tokens, else the index of its continuation
	rows, targets     []int32 // per scored token: the input row predicting it, and its id
	targetStart       []int   // per continuation: index of its first scored token in rows/targets
}

func packBranches(req int, which []int, prefix []int, conts [][]int) packedBranches {
	p := packedBranches{req: req, conts: which}
	for i, t := range prefix {
		p.tokens = append(p.tokens, int32(t))
		p.positions = append(p.positions, int32(i))
		p.parent = append(p.parent, -1)
	}
	last := int32(len(prefix) - 1)
	for j, ci := range which {
		c := conts[ci]
		p.targetStart = append(p.targetStart, len(p.rows))
		prev := last
		for t, id := range c {
			p.rows = append(p.rows, prev)
			p.targets = append(p.targets, int32(id))
			if t == len(c)-1 {
				break // only a target
			}
			prev = int32(len(p.tokens))
			p.tokens = append(p.tokens, int32(id))
			p.positions = append(p.positions, int32(len(prefix)+t))
			p.parent = append(p.parent, j)
		}
	}
	return p
}

// allowedRow fills allowed[q·L+k] for this request's tokens (L the padded length): the tree mask.
func (p *packedBranches) allowedRow(allowed []bool, L int) {
	n := len(p.tokens)
	for q := range n {
		for k := 0; k <= q; k++ {
			// Key k is visible to query q when it is in the prefix or in q's own continuation
			// (tokens of one continuation are contiguous, so k ≤ q and the same parent suffice).
			if p.parent[k] == -1 || p.parent[k] == p.parent[q] {
				allowed[q*L+k] = true
			}
		}
	}
}

// branchBatch is one padded batch of packed requests.
type branchBatch struct {
	reqs                                      []int           // index of each real row's request
	tokens, positions, allowed, rows, targets *tensors.Tensor // [B, L], [B, L], [B, L, L], [B, T], [B, T]
}

// branchBatches groups packed requests (longest first) into batches padded to bucketed lengths.
// Padding rows and tokens attend only to themselves (position 0, token 0) and padding targets read
// row 0; their scores are ignored.
func (m *Model) branchBatches(packed []packedBranches) []branchBatch {
	order := longestFirst(len(packed), func(i int) int { return len(packed[i].tokens) })
	var out []branchBatch
	for start := 0; start < len(order); {
		L := bucketLen(len(packed[order[start]].tokens))
		end, B := m.batchSpan(start, len(order), L)
		T := 0
		for _, idx := range order[start:end] {
			T = max(T, len(packed[idx].rows))
		}
		T = bucketLen(T)
		tok, pos := make([]int32, B*L), make([]int32, B*L)
		allowed := make([]bool, B*L*L)
		rowIdx, tgt := make([]int32, B*T), make([]int32, B*T)
		for r := range B {
			for q := range L {
				allowed[r*L*L+q*L+q] = true // padding queries see themselves (no empty softmax)
			}
		}
		for r, idx := range order[start:end] {
			p := &packed[idx]
			copy(tok[r*L:], p.tokens)
			copy(pos[r*L:], p.positions)
			p.allowedRow(allowed[r*L*L:(r+1)*L*L], L)
			copy(rowIdx[r*T:], p.rows)
			copy(tgt[r*T:], p.targets)
		}
		out = append(out, branchBatch{
			reqs:      order[start:end],
			tokens:    tensors.FromFlatDataAndDimensions(tok, B, L),
			positions: tensors.FromFlatDataAndDimensions(pos, B, L),
			allowed:   tensors.FromFlatDataAndDimensions(allowed, B, L, L),
			rows:      tensors.FromFlatDataAndDimensions(rowIdx, B, T),
			targets:   tensors.FromFlatDataAndDimensions(tgt, B, T),
		})
		start = end
	}
	return out
}

// llamaBranchScores is the graph of BranchLogProbs for the LLaMA layout: tokens and positions [B, L] (int32), allowed
// [B, L, L] (bool), rows and targets [B, T] (int32) → logp [B, T] (float32) with
// logp[b, t] = log softmax(logits[b, rows[b, t]])[targets[b, t]], and greedy [B, T] (bool): whether
// targets[b, t] is that row's argmax. Only the T gathered rows go through the LM head.
func llamaBranchScores(scope *model.Scope, cfg *config.Config, hooks *Hooks, tokens, positions, allowed, rows, targets *Node) (logp, greedy *Node) {
	g := tokens.Graph()
	m := &llama{cfg: cfg, w: newWeights(scope, g, hooks)}
	B, L, T := tokens.Shape().Dim(0), tokens.Shape().Dim(1), rows.Shape().Dim(1)
	allowed = slidingWindow(allowed, positions, positions, cfg.SlidingWindow)
	x := m.hidden(tokens, positions, allowed, noCache) // [B, L, D]
	D := x.Shape().Dim(2)
	// Flat row index b·L + rows[b, t] picks the hidden state of each scored position: [B·T, D].
	offsets := MulScalar(Iota(g, rows.Shape(), 0), float64(L))
	flat := Reshape(Add(offsets, ConvertDType(rows, dtypes.Int32)), B*T, 1)
	picked := Gather(Reshape(x, B*L, D), flat)                     // [B·T, D]
	logits := Reshape(m.head(Reshape(picked, 1, B*T, D)), B*T, -1) // [B·T, V]
	tgt := Reshape(ConvertDType(targets, dtypes.Int32), B*T)
	idx := Stack([]*Node{Iota(g, tgt.Shape(), 0), tgt}, -1)
	logp = Reshape(Gather(LogSoftmax(logits, -1), idx), B, T)
	greedy = Reshape(Equal(ArgMax(logits, -1, dtypes.Int32), tgt), B, T)
	return logp, greedy
}
