package models

// Forward-only computation on a model read from its checkpoint one decoder layer at a time, for
// models larger than memory (eval ppl / zero-shot, calibration statistics, layer ranking):
//
//	x_0 = embed(tokens_b)                 for every batch b   (embedding read once, dropped)
//	x_{l+1} = layer_l(x_l)                for every batch b   (layer l read once, dropped)
//	head(x_L)                             for every batch b   (final norm and lm_head read once)
//
// Memory is one layer's weights plus the boundary activations x_l of all batches of the sweep
// ([B, S, D] float32 each), so callers bound the number of tokens per sweep (windows processed in
// chunks). The stages are EmbedStage, LayerStage and HeadStage: chained they compute the same ops
// as Logits, so a sweep gives the loaded model's results.

import (
	"fmt"
	"math/bits"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/pkg/errors"
)

// Streamed is a model whose weights stay in its checkpoint: every computation reads them one
// stage (embedding, decoder layer, head) at a time. It implements eval.Scorer (TokenLogProbs).
type Streamed struct {
	// Model gives the config, backend, tokenizer and Hooks (MatMulDType, Linear); its Store is not
	// used (OpenStreamed leaves it empty).
	Model  *Model
	Reader checkpoint.Reader
	// Progress, when set, is told each stage as it starts ("layer 3 of 32").
	Progress func(stage string)
	// Batch is the number of sequences per graph batch of TokenLogProbs (0: as Model's, at most
	// 32 rows and 128 MiB of logits). It does not change the results.
	Batch int
	// SweepTokens bounds the padded tokens of the graph batches that go through the layers together
	// (0: all of a TokenLogProbs call); a sweep holds at least one batch. It does not change the
	// results; each sweep reads every layer once.
	SweepTokens int64

	alloc checkpoint.Allocator
	execs map[string]*Exec
}

// NewStreamed returns the streamed model of m (from OpenStreamed) and its open checkpoint r.
// LLaMA-layout models only (CheckStaged). Finalize frees its compiled graphs; the caller closes r.
func NewStreamed(m *Model, r checkpoint.Reader) (*Streamed, error) {
	if err := CheckStaged(m.Config); err != nil {
		return nil, err
	}
	if err := CheckTensors(m.Config, r.Tensors()); err != nil {
		return nil, err
	}
	s := &Streamed{Model: m, Reader: r, execs: map[string]*Exec{}}
	if m.Backend.HasSharedBuffers() {
		s.alloc = func(shape shapes.Shape) (*tensors.Tensor, error) {
			return tensors.FromShapeForBackend(m.Backend, 0, shape)
		}
	}
	return s, nil
}

// Finalize frees the compiled graphs.
func (s *Streamed) Finalize() {
	for _, e := range s.execs {
		e.Finalize()
	}
	s.execs = map[string]*Exec{}
}

func (s *Streamed) progress(format string, args ...any) {
	if s.Progress != nil {
		s.Progress(fmt.Sprintf(format, args...))
	}
}

// StageFunc builds the graph of one batch of a stage: x is the stage's input (tokens for the
// embedding, x_l [B, S, D] otherwise), in the batch's extra inputs, hooks read the stage's weights
// (float32) and carry the model's Hooks.Linear / MatMulDType.
type StageFunc func(x *Node, in []*Node, hooks *Hooks) []*Node

// Embed returns x_0 = embed(tokens_b) [B, S, D] float32 for every token batch [B, S] (int32).
func (s *Streamed) Embed(tokens []*tensors.Tensor) ([]*tensors.Tensor, error) {
	s.progress("embedding")
	outs, err := s.Stage("embed", []string{arch.LlamaEmbed}, tokens, nil, func(tok *Node, _ []*Node, hooks *Hooks) []*Node {
		return []*Node{EmbedStage(s.Model.Config, tok, hooks)}
	})
	if err != nil {
		return nil, errors.WithMessage(err, "embedding")
	}
	return firsts(outs), nil
}

// LayerFunc builds decoder layer l's graph of one batch: its output y [B, S, D] and any extra
// outputs (statistics). nil means LayerStage alone.
type LayerFunc func(l int, x *Node, hooks *Hooks) (y *Node, extra []*Node)

// Layer applies decoder layer l to every xs[b] in place (the inputs are freed) and returns the
// extra outputs of fn per batch. key names fn (graphs are shared by layers of the same sizes
// under the same key).
func (s *Streamed) Layer(l int, xs []*tensors.Tensor, key string, fn LayerFunc) ([][]*tensors.Tensor, error) {
	cfg := s.Model.Config
	s.progress("layer %d of %d", l+1, cfg.NumLayers())
	if fn == nil {
		fn = func(l int, x *Node, hooks *Hooks) (*Node, []*Node) { return LayerStage(cfg, l, x, hooks), nil }
	}
	key = fmt.Sprintf("layer %s %d/%d/%d", key, cfg.Heads[l], cfg.KVHeads[l], cfg.Inter[l])
	outs, err := s.Stage(key, specNames(LayerTensors(cfg, l)), xs, nil, func(x *Node, _ []*Node, hooks *Hooks) []*Node {
		y, extra := fn(l, x, hooks)
		return append([]*Node{y}, extra...)
	})
	if err != nil {
		return nil, errors.WithMessagef(err, "decoder layer %d", l)
	}
	extra := make([][]*tensors.Tensor, len(outs))
	for b, o := range outs {
		_ = xs[b].FinalizeAll()
		xs[b], extra[b] = o[0], o[1:]
	}
	return extra, nil
}

// HeadTensors lists the tensors the head reads: the final norm and lm_head (the embedding when
// tied).
func HeadTensors(m *Model) []string {
	if m.Config.TieEmbed {
		return []string{arch.LlamaFinalNorm, arch.LlamaEmbed}
	}
	return []string{arch.LlamaFinalNorm, arch.LlamaLMHead}
}

// Head runs fn on every x_L [B, S, D] with the head's weights (HeadStage gives the logits) and
// the batch's extra inputs in[b], and returns its outputs per batch.
func (s *Streamed) Head(xs []*tensors.Tensor, in [][]*tensors.Tensor, key string, fn StageFunc) ([][]*tensors.Tensor, error) {
	s.progress("head")
	outs, err := s.Stage("head "+key, HeadTensors(s.Model), xs, in, fn)
	if err != nil {
		return nil, errors.WithMessage(err, "head (final norm, lm_head)")
	}
	return outs, nil
}

// Stage reads the named tensors once and runs the graph fn builds on every batch: xs[b] and in[b]
// (in may be nil), returning the outputs per batch. Graphs are compiled once per key and input
// shapes: fn must build the same graph for every stage sharing a key (weights are bound by
// position in names).
func (s *Streamed) Stage(key string, names []string, xs []*tensors.Tensor, in [][]*tensors.Tensor, fn StageFunc) (outs [][]*tensors.Tensor, err error) {
	defer recoverError(&err, "streamed "+key)
	ReleaseMemory()
	w, err := s.read(names)
	if err != nil {
		return nil, err
	}
	defer freeTensors(w)
	nIn := 0
	if len(in) > 0 {
		nIn = len(in[0])
	}
	e, ok := s.execs[key]
	if !ok {
		e, err = NewExec(s.Model.Backend, func(nodes []*Node) []*Node {
			x, extra, params := nodes[0], nodes[1:1+nIn], nodes[1+nIn:]
			return fn(x, extra, s.paramHooks(names, params))
		})
		if err != nil {
			return nil, errors.Wrapf(err, "building the %s graph", key)
		}
		e.SetMaxCache(maxCompiledShapes)
		s.execs[key] = e
	}
	outs = make([][]*tensors.Tensor, len(xs))
	for b, x := range xs {
		args := []any{x}
		if len(in) > 0 {
			for _, t := range in[b] {
				args = append(args, t)
			}
		}
		for _, t := range w {
			args = append(args, t)
		}
		if outs[b], err = e.Call(args...); err != nil {
			for _, o := range outs[:b] {
				freeTensors(o)
			}
			return nil, errors.WithMessagef(err, "batch %d", b)
		}
	}
	return outs, nil
}

// paramHooks returns hooks reading the tensors names from the parameter nodes params (same order),
// converted once to float32, with the model's Linear and MatMulDType.
func (s *Streamed) paramHooks(names []string, params []*Node) *Hooks {
	h := &Hooks{Weight: ParamWeights(names, params, map[string]*Node{})}
	if s.Model.Hooks != nil {
		h.Linear, h.MatMulDType = s.Model.Hooks.Linear, s.Model.Hooks.MatMulDType
	}
	return h
}

// read reads the named tensors from the checkpoint (stored dtype).
func (s *Streamed) read(names []string) ([]*tensors.Tensor, error) {
	out := make([]*tensors.Tensor, len(names))
	for i, n := range names {
		t, err := checkpoint.ReadWith(s.Reader, n, s.alloc)
		if err != nil {
			freeTensors(out[:i])
			return nil, err
		}
		out[i] = t
	}
	return out, nil
}

// TokenLogProbs is Model.TokenLogProbs computed layer by layer: the graph batches go through each
// layer before the next is read, in sweeps of at most SweepTokens padded tokens (the boundary
// activations of a sweep, 4·D bytes per token, are held at once).
func (s *Streamed) TokenLogProbs(seqs [][]int) (logp [][]float64, greedy [][]bool, err error) {
	m := s.Model
	if err := m.checkSequences(seqs, 1, 1); err != nil {
		return nil, nil, err
	}
	batches := s.batches(seqs)
	defer func() {
		for _, b := range batches {
			_ = b.tokens.FinalizeAll()
			_ = b.mask.FinalizeAll()
		}
	}()
	logp = make([][]float64, len(seqs))
	greedy = make([][]bool, len(seqs))
	for start := 0; start < len(batches); {
		end, tokens := start, int64(0)
		for end < len(batches) {
			n := int64(batches[end].tokens.Shape().Size())
			if end > start && s.SweepTokens > 0 && tokens+n > s.SweepTokens {
				break
			}
			tokens += n
			end++
		}
		if err := s.sweepLogProbs(seqs, batches[start:end], logp, greedy); err != nil {
			return nil, nil, err
		}
		start = end
	}
	return logp, greedy, nil
}

// SweepSequences is the number of sequences of n tokens that make one sweep of TokenLogProbs (a
// multiple of Batch, at least one batch): callers pass that many per call, so that each call reads
// every layer once.
func (s *Streamed) SweepSequences(n int) int {
	b := max(s.Batch, 1)
	if s.SweepTokens <= 0 {
		return b
	}
	rows := 1 << bits.Len(uint(min(b, maxBatchRows)-1))
	perBatch := int64(rows) * int64(bucketLen(max(1, n-1))+1) * int64((b+maxBatchRows-1)/maxBatchRows)
	return max(1, int(s.SweepTokens/perBatch)) * b
}

// sweepLogProbs runs batches through every stage (right padding: real positions never attend to
// it, so no mask is needed) and stores their rows' scores in logp and greedy.
func (s *Streamed) sweepLogProbs(seqs [][]int, batches []tokenBatch, logp [][]float64, greedy [][]bool) error {
	m := s.Model
	tokens := make([]*tensors.Tensor, len(batches))
	in := make([][]*tensors.Tensor, len(batches))
	for b, tb := range batches {
		tokens[b], in[b] = tb.tokens, []*tensors.Tensor{tb.tokens}
	}
	xs, err := s.Embed(tokens)
	if err != nil {
		return err
	}
	defer func() { freeTensors(xs) }()
	for l := range m.Config.NumLayers() {
		if _, err := s.Layer(l, xs, "", nil); err != nil {
			return err
		}
	}
	outs, err := s.Head(xs, in, "token-logprobs", func(x *Node, in []*Node, hooks *Hooks) []*Node {
		lp, gr := TokenScores(HeadStage(m.Config, x, hooks), in[0])
		return []*Node{lp, gr}
	})
	if err != nil {
		return err
	}
	for b, tb := range batches {
		scatterLogProbs(outs[b][0], outs[b][1], tb.rows, seqs, logp, greedy)
		freeTensors(outs[b])
	}
	return nil
}

// batches groups seqs into padded graph batches (longest first) of at most s.Batch sequences.
func (s *Streamed) batches(seqs [][]int) []tokenBatch {
	if s.Batch <= 0 || s.Batch >= len(seqs) {
		return s.Model.makeBatches(seqs, 1)
	}
	order := longestFirst(len(seqs), func(i int) int { return len(seqs[i]) })
	var out []tokenBatch
	for start := 0; start < len(order); start += s.Batch {
		group := order[start:min(start+s.Batch, len(order))]
		sub := make([][]int, len(group))
		for i, idx := range group {
			sub[i] = seqs[idx]
		}
		for _, b := range s.Model.makeBatches(sub, 1) {
			for r, i := range b.rows {
				b.rows[r] = group[i]
			}
			out = append(out, b)
		}
	}
	return out
}

func firsts(outs [][]*tensors.Tensor) []*tensors.Tensor {
	out := make([]*tensors.Tensor, len(outs))
	for b, o := range outs {
		out[b] = o[0]
		freeTensors(o[1:])
	}
	return out
}

func freeTensors(ts []*tensors.Tensor) {
	for _, t := range ts {
		if t != nil {
			_ = t.FinalizeAll()
		}
	}
}

func specNames(specs []TensorSpec) []string {
	out := make([]string, len(specs))
	for i, sp := range specs {
		out[i] = sp.Name
	}
	return out
}

// sweepRuntimeBytes is the process's own footprint (Go runtime, binary, graph compilation).
const sweepRuntimeBytes = 300 << 20

// batchActivationBytes bounds the activations of one graph batch of rows × length tokens inside a
// decoder layer (attention scores, MLP intermediates, the residual stream) and at the head (logits,
// log-softmax).
func batchActivationBytes(cfg *config.Config, rows, length int) int64 {
	n, t := int64(rows), int64(length)
	var layer int64
	for l := range cfg.NumLayers() {
		layer = max(layer, 4*n*t*(8*int64(cfg.Hidden)+4*int64(cfg.Inter[l])+2*int64(cfg.Heads[l])*t))
	}
	return max(layer, 3*4*n*t*int64(cfg.Vocab))
}

func dtypeSize(dt dtypes.DType) int64 {
	if dt == dtypes.BFloat16 || dt == dtypes.Float16 {
		return 2
	}
	return 4
}

// LoadedForwardBytes estimates the peak memory of a forward pass of cfg's model loaded whole
// (weights stored as stored) in graph batches of rows × length tokens.
func LoadedForwardBytes(cfg *config.Config, stored dtypes.DType, rows, length int) int64 {
	return arch.NumParams(cfg)*dtypeSize(stored) + batchActivationBytes(cfg, rows, length) + sweepRuntimeBytes
}

// SweepBytes estimates the peak memory of a Streamed forward pass over sweeps of sweepTokens
// padded tokens, in graph batches of rows × length tokens: the largest stage's weights (as stored
// and, for half precision, as float32), one batch's activations, and the boundary activations of
// the sweep plus one batch's output while it replaces its input (float32 [·, D]).
func SweepBytes(cfg *config.Config, stored dtypes.DType, sweepTokens int64, rows, length int) int64 {
	size := dtypeSize(stored)
	copyF32 := int64(0)
	if size != 4 {
		copyF32 = 4
	}
	var stage int64
	for l := range cfg.NumLayers() {
		stage = max(stage, arch.LayerParams(cfg, l)*(size+copyF32))
	}
	stage = max(stage, int64(cfg.Vocab)*int64(cfg.Hidden)*(size+copyF32))
	boundary := 4 * int64(cfg.Hidden) * (sweepTokens + int64(rows)*int64(length))
	return stage + batchActivationBytes(cfg, rows, length) + boundary + sweepRuntimeBytes
}
