package main

import (
	"fmt"

	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/eval"
	"github.com/llmpruner/llmpruner/lib/prune"
	"github.com/pkg/errors"
)

var planCmd = &command{
	name:     "plan",
	summary:  "parameters and MACs before/after pruning, from a config.json alone (no weights)",
	synopsis: "plan --config config.json --strategy block|channel|layer --ratio R [--attn-layers A:B] [--mlp-layers A:B] [--keep-layers N] [--round-to K] [--seq-len 64] [--json]",
	details: `Sizes a pruning run before downloading anything: which heads/channels go depends on the weights,
how many does not. The flags mean what they mean for "prune". MACs are for one forward pass over
--seq-len tokens (projections, lm_head, attention scores and values). --global block pruning
depends on the scores and cannot be planned.
With --json: {"params_before":N,"params_after":N,"macs_before":N,"macs_after":N,...}.`,
	examples: []string{
		"llmpruner plan --config llama-7b/config.json --strategy block --ratio 0.25 --attn-layers 4:30 --mlp-layers 4:30",
		"llmpruner plan --config llama-7b/config.json --strategy layer --keep-layers 24 --json",
	},
	run: runPlan,
}

func init() { register(planCmd) }

func runPlan(e *env, args []string) error {
	e.addJSON()
	cfgPath := e.fs.String("config", "", "Hugging Face `config.json` of the model")
	seqLen := e.fs.Int("seq-len", 64, "count MACs for a forward pass over `S` tokens (64, as the original's test_speedup.py)")
	var sf shapeFlags
	e.addShapeFlags(&sf)
	if err := e.parse(args); err != nil {
		return err
	}
	if *cfgPath == "" {
		return usageErrorf("--config is required (a Hugging Face config.json)")
	}
	if *seqLen < 1 {
		return usageErrorf("--seq-len %d must be at least 1", *seqLen)
	}
	opts, err := sf.options(e.flagSet("ratio"))
	if err != nil {
		return err
	}
	opts.SeqLen = *seqLen
	cfg, err := arch.LoadConfig(*cfgPath)
	if err != nil {
		return errors.WithMessage(err, "--config")
	}
	if err := opts.Validate(cfg); err != nil {
		return errors.WithMessage(err, *cfgPath)
	}
	res, err := prune.Estimate(cfg, opts)
	if err != nil {
		return errors.WithMessage(err, *cfgPath)
	}
	if e.json {
		return e.printJSON(res)
	}
	w := e.stdout
	pct := func(after, before int64) float64 { return 100 * float64(after) / float64(before) }
	fmt.Fprintf(w, "strategy     %s, ratio %g\n", opts.Strategy, opts.Ratio)
	fmt.Fprintf(w, "parameters   %s → %s (%d → %d, %.2f%% kept)\n",
		eval.FormatParams(res.ParamsBefore), eval.FormatParams(res.ParamsAfter), res.ParamsBefore, res.ParamsAfter, pct(res.ParamsAfter, res.ParamsBefore))
	fmt.Fprintf(w, "MACs         %s → %s for %d tokens (%.2f%% kept)\n",
		eval.FormatMACs(res.MACsBefore), eval.FormatMACs(res.MACsAfter), res.SeqLen, pct(res.MACsAfter, res.MACsBefore))
	fmt.Fprintf(w, "after        %d layers, hidden %d\n", res.Layers, res.Hidden)
	layers := make([]layerInfo, res.Layers)
	for l := range layers {
		layers[l] = layerInfo{Layer: l, Heads: res.Heads[l], KVHeads: res.KVHeads[l], Intermediate: res.Inter[l]}
		if res.Config != nil {
			layers[l].Params = arch.LayerParams(res.Config, l)
		}
	}
	printLayerTable(w, layers)
	return nil
}
