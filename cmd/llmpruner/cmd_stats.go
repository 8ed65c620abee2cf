package main

import (
	"fmt"
	"time"

	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/eval"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/pkg/errors"
)

var statsCmd = &command{
	name:     "stats",
	summary:  "parameters, MACs, weight memory and measured latency / tokens per second",
	synopsis: "stats (--model M [--adapter DIR] | --config config.json) [--seq-len 64] [--batch 1] [--gen-tokens 32] [--warmup 2] [--repeats 5] [--json]",
	details: `MACs are counted for a forward pass over --batch sequences of --seq-len tokens, as the original's
test_speedup.py counts them (projections, attention, RoPE, activation, norms, lm_head). With
--model the forward pass and generation of --gen-tokens tokens are timed (median of --repeats runs
after --warmup untimed ones). With --config only the static figures are computed (no weights).`,
	examples: []string{
		"llmpruner stats --model $LLMPRUNER_DATA/models/stories260K/stories260K.bin",
		"llmpruner stats --config llama-7b/config.json --json",
	},
	run: runStats,
}

func init() { register(statsCmd) }

// statsOutput is the --json output of stats.
type statsOutput struct {
	Params          int64             `json:"params"`
	SeqLen          int               `json:"seq_len"`
	Batch           int               `json:"batch"`
	MACs            int64             `json:"macs"`
	MACsPerSequence int64             `json:"macs_per_sequence"`
	Breakdown       eval.MACBreakdown `json:"macs_breakdown"`
	WeightBytes     int64             `json:"weight_bytes"`
	WeightBytesF16  int64             `json:"weight_bytes_f16"`
	Forward         *latencyOutput    `json:"forward,omitempty"`
	Generate        *latencyOutput    `json:"generate,omitempty"`
}

// latencyOutput is one timed operation.
type latencyOutput struct {
	MedianSeconds float64 `json:"median_seconds"`
	MinSeconds    float64 `json:"min_seconds"`
	MaxSeconds    float64 `json:"max_seconds"`
	Repeats       int     `json:"repeats"`
	Warmup        int     `json:"warmup"`
	TokensPerSec  float64 `json:"tokens_per_second"`
	Tokens        int     `json:"tokens"`
}

func runStats(e *env, args []string) error {
	e.addModel()
	e.addMatMulDType()
	e.addJSON()
	cfgPath := e.fs.String("config", "", "Hugging Face `config.json`: static figures only, no weights loaded")
	seqLen := e.fs.Int("seq-len", 64, "tokens per sequence `S` (the paper uses 64)")
	batch := e.fs.Int("batch", 1, "sequences per forward pass `B`")
	genTokens := e.fs.Int("gen-tokens", 32, "tokens generated per timed generation `N`")
	warmup := e.fs.Int("warmup", 2, "untimed warm-up runs")
	repeats := e.fs.Int("repeats", 5, "timed runs (the median is reported)")
	if err := e.parse(args); err != nil {
		return err
	}
	switch {
	case (e.model == "") == (*cfgPath == ""):
		return usageErrorf("give exactly one of --model M or --config config.json")
	case *seqLen < 1 || *batch < 1:
		return usageErrorf("--seq-len %d and --batch %d must be positive", *seqLen, *batch)
	case *genTokens < 1 || *warmup < 0 || *repeats < 1:
		return usageErrorf("--gen-tokens and --repeats must be positive and --warmup ≥ 0")
	}
	var (
		cfg *config.Config
		m   *models.Model
		err error
	)
	if *cfgPath != "" {
		if cfg, err = arch.LoadConfig(*cfgPath); err != nil {
			return errors.WithMessage(err, "--config")
		}
	} else {
		if m, err = e.loadModel(); err != nil {
			return err
		}
		cfg = m.Config
		if *seqLen > cfg.MaxPositions {
			return usageErrorf("--seq-len %d is longer than the model's context (%d)", *seqLen, cfg.MaxPositions)
		}
	}
	st, err := eval.Stats(cfg, *seqLen, *batch)
	if err != nil {
		return err
	}
	out := statsOutput{Params: st.Params, SeqLen: st.SeqLen, Batch: st.Batch, MACs: st.MACs,
		MACsPerSequence: st.MACsPerSequence, Breakdown: st.Breakdown, WeightBytesF16: st.Params * 2}
	out.WeightBytes, _ = st.WeightBytes("float32")
	if m != nil {
		out.WeightBytes = m.Store.ByteSize()
		if out.Forward, err = e.timeForward(m, *seqLen, *batch, *warmup, *repeats); err != nil {
			return err
		}
		if out.Generate, err = e.timeGenerate(m, *genTokens, *warmup, *repeats); err != nil {
			return err
		}
	}
	if e.json {
		return e.printJSON(out)
	}
	w := e.stdout
	fmt.Fprintf(w, "parameters   %s (%d)\n", eval.FormatParams(out.Params), out.Params)
	fmt.Fprintf(w, "MACs         %s for %d×%d tokens\n", eval.FormatMACs(out.MACs), out.Batch, out.SeqLen)
	loadedAs := "as loaded"
	if m == nil {
		loadedAs = "at float32"
	}
	fmt.Fprintf(w, "memory       %s weights %s, %s at float16\n", humanBytes(out.WeightBytes), loadedAs, humanBytes(out.WeightBytesF16))
	if out.Forward != nil {
		fmt.Fprintf(w, "forward      median %s (min %s, max %s), %.0f tokens/s\n",
			secs(out.Forward.MedianSeconds), secs(out.Forward.MinSeconds), secs(out.Forward.MaxSeconds), out.Forward.TokensPerSec)
		fmt.Fprintf(w, "generation   median %s for %d tokens, %.1f tokens/s\n",
			secs(out.Generate.MedianSeconds), out.Generate.Tokens, out.Generate.TokensPerSec)
	}
	return nil
}

func secs(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Microsecond).String()
}

// timeForward times the forward pass over batch sequences of seqLen tokens.
func (e *env) timeForward(m *models.Model, seqLen, batch, warmup, repeats int) (*latencyOutput, error) {
	seqs := make([][]int, batch)
	for i := range seqs {
		seqs[i] = make([]int, seqLen)
		for t := range seqs[i] {
			seqs[i][t] = 1 + (i+t)%(m.Config.Vocab-1) // any valid ids; the cost does not depend on them
		}
	}
	e.logf("timing the forward pass (%d×%d tokens, %d warm-up + %d runs)", batch, seqLen, warmup, repeats)
	lat, err := eval.MeasureLatency(func() error { _, _, err := m.TokenLogProbs(seqs); return err }, warmup, repeats)
	if err != nil {
		return nil, errors.WithMessage(err, "timing the forward pass")
	}
	return latency(lat, batch*seqLen), nil
}

// timeGenerate times generating n tokens from the model's start prompt (BOS; ChatGLM's [gMASK]
// <sop>), EOS ignored, so every run makes n tokens.
func (e *env) timeGenerate(m *models.Model, n, warmup, repeats int) (*latencyOutput, error) {
	prompt := m.StartPrompt()
	if n > m.Config.MaxPositions-len(prompt) {
		n = m.Config.MaxPositions - len(prompt)
	}
	e.logf("timing generation of %d tokens (%d warm-up + %d runs)", n, warmup, repeats)
	lat, err := eval.MeasureLatency(func() error {
		_, err := m.Generate(prompt, models.GenerateOptions{MaxNewTokens: n, IgnoreEOS: true})
		return err
	}, warmup, repeats)
	if err != nil {
		return nil, errors.WithMessage(err, "timing generation")
	}
	return latency(lat, n), nil
}

func latency(l eval.Latency, tokens int) *latencyOutput {
	return &latencyOutput{
		MedianSeconds: l.Median.Seconds(), MinSeconds: l.Min.Seconds(), MaxSeconds: l.Max.Seconds(),
		Repeats: l.Repeats, Warmup: l.Warmup, Tokens: tokens, TokensPerSec: eval.PerSecond(tokens, l.Median),
	}
}
