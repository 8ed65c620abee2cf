package eval

import (
	"fmt"
	"strings"

	"github.com/llmpruner/llmpruner/lib/arch"
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
	// like LLM-Pruner's test_speedup.py (see arch.MACBreakdown); MACs = Batch × MACsPerSequence.
	MACsPerSequence int64
	MACs            int64
	// Breakdown splits MACsPerSequence by kind.
	Breakdown MACBreakdown
}

// MACBreakdown splits a forward pass's MACs by kind; each architecture counts its own parts
// (arch.MACBreakdown), like LLM-Pruner's test_speedup.py. LLaMA-7B at S=64 gives 424.02 G (the
// paper's dense #MACs), its block-pruned 20% model 339.60 G.
type MACBreakdown = arch.MACBreakdown

// Stats computes the parameters and MACs of the model described by cfg for a batch of sequences
// of seqLen tokens (the paper uses seqLen 64, batch 1).
func Stats(cfg *config.Config, seqLen, batch int) (*Statistics, error) {
	if cfg == nil {
		return nil, errors.New("stats: no model config")
	}
	if seqLen <= 0 || batch <= 0 {
		return nil, errors.Errorf("stats: sequence length (%d) and batch size (%d) must be positive", seqLen, batch)
	}
	if err := arch.Validate(cfg); err != nil {
		return nil, errors.WithMessage(err, "stats")
	}
	b := arch.MACs(cfg, seqLen)
	per := b.Total()
	return &Statistics{
		Params: arch.NumParams(cfg), SeqLen: seqLen, Batch: batch,
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
