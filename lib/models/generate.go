package models

// Autoregressive generation with a key/value cache: the prompt is fed in one step, then one token
// per step. Sampling (greedy, temperature, top-k, top-p) happens on the host, seeded.

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/pkg/errors"
)

// StartPrompt is the shortest prompt Generate accepts for the model: the BOS token (id 0 when the
// config names none), or the family's own start (ChatGLM: [gMASK] <sop>).
func (m *Model) StartPrompt() []int {
	if lay, err := layoutOf(m.Config); err == nil && lay.startPrompt != nil {
		return lay.startPrompt(m.Config)
	}
	return []int{max(m.Config.BOS, 0)}
}

// GenerateOptions configure Generate. The zero value is greedy decoding until EOS or the end of
// the context.
type GenerateOptions struct {
	// MaxNewTokens bounds the number of generated tokens (≤ 0: until EOS or the context is full).
	// Generation always stops at the model's context length.
	MaxNewTokens int
	// Temperature divides the logits before sampling; 0 means greedy (argmax).
	Temperature float64
	// TopK keeps only the K most likely tokens when sampling (0 = all).
	TopK int
	// TopP keeps the smallest set of most likely tokens whose probability reaches TopP (nucleus
	// sampling; 0 or ≥ 1 = all).
	TopP float64
	// Seed makes sampling deterministic: the same seed, prompt and options give the same tokens.
	Seed uint64
	// IgnoreEOS keeps generating past end-of-sequence tokens (see Model.EOSTokens).
	IgnoreEOS bool
	// OnToken, if set, is called with each generated token as soon as it is chosen (streaming);
	// returning false stops generation after that token.
	OnToken func(id int) bool
}

// Generate continues prompt (token ids, usually starting with BOS) and returns the generated ids
// (without the prompt; including the EOS token that stopped it, if any).
func (m *Model) Generate(prompt []int, opts GenerateOptions) (out []int, err error) {
	defer recoverError(&err, "generating")
	if len(prompt) == 0 {
		return nil, errors.New("generate: the prompt is empty (start it with the BOS token)")
	}
	if err := m.CheckSequences([][]int{prompt}, 1); err != nil {
		return nil, errors.WithMessage(err, "generate")
	}
	if check := mustLayout(m.Config).checkPrompt; check != nil {
		if err := check(m.Config, prompt); err != nil {
			return nil, errors.WithMessage(err, "generate")
		}
	}
	if opts.Temperature < 0 || opts.TopK < 0 || opts.TopP < 0 {
		return nil, errors.Errorf("generate: temperature (%g), top-k (%d) and top-p (%g) must not be negative", opts.Temperature, opts.TopK, opts.TopP)
	}
	total := len(prompt) + opts.MaxNewTokens
	ctx := m.Config.MaxPositions
	if ctx <= 0 && opts.MaxNewTokens <= 0 {
		return nil, errors.New("generate: the model config has no context length (max_position_embeddings): set MaxNewTokens")
	}
	if opts.MaxNewTokens <= 0 || (ctx > 0 && total > ctx) {
		total = ctx
	}
	if total <= len(prompt) {
		return nil, nil // no room left in the context
	}
	step, err := m.cachedExec("decode-step", func() (*model.Exec, error) {
		return model.NewExec(m.Backend, m.Store, func(scope *model.Scope, in []*Node) []*Node {
			logits, updated := DecodeStep(scope, m.Config, in[0], in[1], in[2], in[3:], m.Hooks)
			return append([]*Node{logits}, updated...)
		})
	})
	if err != nil {
		return nil, err
	}
	maxLen := bucketLen(total)
	if ctx > 0 && maxLen > ctx {
		maxLen = ctx
	}
	var buffers []*tensors.Tensor
	for _, s := range CacheShapes(m.Config, maxLen) {
		buffers = append(buffers, tensors.FromShape(s))
	}
	defer func() {
		for _, b := range buffers {
			_ = b.FinalizeAll()
		}
	}()
	eos := m.EOSTokens()
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))

	// Feed the prompt (padded to a bucket, within the cache), then one token at a time.
	padded := min(bucketLen(len(prompt)), maxLen)
	tok := make([]int32, padded)
	for i, id := range prompt {
		tok[i] = int32(id)
	}
	input := tensors.FromFlatDataAndDimensions(tok, 1, padded)
	pos, last := 0, len(prompt)-1
	for {
		outs, err := step.Call(append([]any{input, int32(pos), int32(last)}, anySlice(buffers)...)...)
		if err != nil {
			return out, errors.WithMessage(err, "generate: running the decoding step")
		}
		for _, b := range buffers {
			_ = b.FinalizeAll()
		}
		buffers = outs[1:]
		logits := tensors.MustCopyFlatData[float32](outs[0])
		_ = outs[0].FinalizeAll()
		next := sample(logits, opts, rng)
		out = append(out, next)
		keepGoing := opts.OnToken == nil || opts.OnToken(next)
		if !keepGoing || (!opts.IgnoreEOS && slices.Contains(eos, next)) || len(prompt)+len(out) >= total {
			return out, nil
		}
		pos, last = len(prompt)+len(out)-1, 0
		input = tensors.FromFlatDataAndDimensions([]int32{int32(next)}, 1, 1)
	}
}

func anySlice(ts []*tensors.Tensor) []any {
	out := make([]any, len(ts))
	for i, t := range ts {
		out[i] = t
	}
	return out
}

// sample picks the next token from logits [V] following opts (greedy when Temperature is 0).
func sample(logits []float32, opts GenerateOptions, rng *rand.Rand) int {
	if opts.Temperature == 0 {
		best := 0
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
		}
		return best
	}
	// Candidates sorted by logit, descending (stable: lower ids first on ties).
	idx := make([]int, len(logits))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return logits[idx[a]] > logits[idx[b]] })
	if opts.TopK > 0 && opts.TopK < len(idx) {
		idx = idx[:opts.TopK]
	}
	probs := make([]float64, len(idx))
	top := float64(logits[idx[0]]) / opts.Temperature
	var sum float64
	for i, id := range idx {
		probs[i] = math.Exp(float64(logits[id])/opts.Temperature - top)
		sum += probs[i]
	}
	for i := range probs {
		probs[i] /= sum
	}
	if opts.TopP > 0 && opts.TopP < 1 {
		var cum float64
		for i, p := range probs {
			cum += p
			if cum >= opts.TopP {
				idx, probs = idx[:i+1], probs[:i+1]
				break
			}
		}
		sum = 0
		for _, p := range probs {
			sum += p
		}
		for i := range probs {
			probs[i] /= sum
		}
	}
	u := rng.Float64()
	for i, p := range probs {
		u -= p
		if u < 0 {
			return idx[i]
		}
	}
	return idx[len(idx)-1]
}
