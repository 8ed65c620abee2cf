package eval

import (
	"fmt"
	"strings"

	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/pkg/errors"
)

// Statistics are the static size and cost figures of a model, as in the statistics table of the
// LLM-Pruner paper (#Params, #MACs, Memory).
type Statistics struct {
	// Params is the number of parameters (tied embeddings counted once).
	Params int64
	// SeqLen and Batch are the input shape the MACs are counted for.
	SeqLen, Batch int
	// MACsPerSequence are the multiply-accumulates of one forward pass over SeqLen tokens, counted
	// like LLM-Pruner's test_speedup.py (see MACBreakdown); MACs = Batch × MACsPerSequence.
	MACsPerSequence int64
	MACs            int64
	// Breakdown splits MACsPerSequence by kind.
	Breakdown MACBreakdown
}

// MACBreakdown splits a forward pass's MACs the way LLM-Pruner's test_speedup.py counts them with
// ptflops and its custom hooks (for a sequence of S tokens, per decoder layer with H query heads,
// KV key/value heads of size hd, hidden size D, MLP width F, vocabulary V):
//
//	AttentionLinear  S·D·hd·(2H + 2KV)          q, k, v, o projections (the hook's 4·S·D·H·hd for MHA)
//	Attention        H·(S·S·hd + S·S + S·S·hd)  QKᵀ, softmax, attention·V
//	Rotary           2·S·hd·(H + KV)            RoPE on q and k (the hook's 2·(S·H·hd)·2 for MHA)
//	MLPLinear        3·S·D·F                    gate, up, down projections
//	Activation       S·F                        SiLU (ptflops' pool hook: one per input element)
//	Norm             2·S·D per RMSNorm          two per layer plus the final norm
//	LMHead           S·D·V                      the output projection (also when tied)
//
// Embedding lookups, the SwiGLU product and residual additions count zero, as in ptflops.
// test_speedup.py's attention hook assumes multi-head attention (k and v as wide as q); for GQA
// the k/v projections and the rotary of k are counted at their real width, which gives the same
// numbers for MHA. Bias additions, when a config has biases, count S per output feature.
// LLaMA-7B at S=64 gives 424.02 G (the paper's dense #MACs), its block-pruned 20% model
// 339.60 G.
type MACBreakdown struct {
	AttentionLinear, Attention, Rotary, MLPLinear, Activation, Norm, LMHead int64
}

// Total sums the breakdown.
func (b MACBreakdown) Total() int64 {
	return b.AttentionLinear + b.Attention + b.Rotary + b.MLPLinear + b.Activation + b.Norm + b.LMHead
}

// Stats computes the parameters and MACs of the model described by cfg for a batch of sequences
// of seqLen tokens (the paper uses seqLen 64, batch 1).
func Stats(cfg *config.Config, seqLen, batch int) (*Statistics, error) {
	if cfg == nil {
		return nil, errors.New("stats: no model config")
	}
	if seqLen <= 0 || batch <= 0 {
		return nil, errors.Errorf("stats: sequence length (%d) and batch size (%d) must be positive", seqLen, batch)
	}
	if err := cfg.Validate(); err != nil {
		return nil, errors.WithMessage(err, "stats")
	}
	S, D, HD := int64(seqLen), int64(cfg.Hidden), int64(cfg.HeadDim)
	var b MACBreakdown
	for i := range cfg.NumLayers() {
		H, KV, F := int64(cfg.Heads[i]), int64(cfg.KVHeads[i]), int64(cfg.Inter[i])
		b.AttentionLinear += S * D * HD * (2*H + 2*KV)
		if cfg.AttnBias {
			b.AttentionLinear += S * (H*HD + 2*KV*HD + D)
		}
		b.Attention += H * (S*S*HD + S*S + S*S*HD)
		b.Rotary += 2 * S * HD * (H + KV)
		b.MLPLinear += 3 * S * D * F
		if cfg.MLPBias {
			b.MLPLinear += S * (2*F + D)
		}
		b.Activation += S * F
		b.Norm += 2 * (2 * S * D)
	}
	b.Norm += 2 * S * D
	b.LMHead = S * D * int64(cfg.Vocab)
	per := b.Total()
	return &Statistics{
		Params: cfg.NumParams(), SeqLen: seqLen, Batch: batch,
		MACsPerSequence: per, MACs: per * int64(batch), Breakdown: b,
	}, nil
}

// BytesPerParam is the storage size of one weight in dtype ("float32", "float16", "bfloat16";
// also "f32", "fp16", "f16", "bf16").
func BytesPerParam(dtype string) (int, error) {
	switch strings.ToLower(dtype) {
	case "float32", "f32", "fp32":
		return 4, nil
	case "float16", "f16", "fp16", "half", "bfloat16", "bf16":
		return 2, nil
	}
	return 0, errors.Errorf("unknown weight dtype %q (known: float32, float16, bfloat16)", dtype)
}

// WeightBytes is the memory the weights take in dtype (parameters × bytes per parameter). The
// paper's Memory column (torch.cuda.memory_allocated after model.half()) is this at float16 plus
// a few MiB of buffers.
func (s *Statistics) WeightBytes(dtype string) (int64, error) {
	n, err := BytesPerParam(dtype)
	if err != nil {
		return 0, err
	}
	return s.Params * int64(n), nil
}

// FormatParams formats a parameter count as the paper does ("6.74B", "5.42B", "260.61K").
func FormatParams(n int64) string { return formatSI(n, "B") }

// FormatMACs formats a MAC count as the paper does ("424.02G").
func FormatMACs(n int64) string { return formatSI(n, "G") }

// formatSI prints n with two decimals and the largest of K, M, giga (B or G), T that keeps it ≥ 1.
func formatSI(n int64, giga string) string {
	v := float64(n)
	for _, u := range []string{"", "K", "M", giga, "T"} {
		if v < 1000 || u == "T" {
			if u == "" {
				return fmt.Sprintf("%d", n)
			}
			return fmt.Sprintf("%.2f%s", v, u)
		}
		v /= 1000
	}
	return ""
}
