package main

import "github.com/llmpruner/llmpruner/lib/prune"

// shapeFlags are the flags that decide how much of a model is pruned; "plan" and "prune" share
// them so that a plan describes exactly what the same prune command line does.
type shapeFlags struct {
	strategy       string
	ratio          float64
	attnLayers     string
	mlpLayers      string
	keepLayers     int
	rankLayers     bool
	global         bool
	iterativeSteps int
	roundTo        int
}

func (e *env) addShapeFlags(s *shapeFlags) {
	fs := e.fs
	fs.StringVar(&s.strategy, "strategy", "", "what to prune (`strategy`): block (heads and MLP channels), channel (hidden size) or layer (whole decoder layers)")
	fs.Float64Var(&s.ratio, "ratio", 0, "fraction `R` of groups removed, in [0, 1) (block/channel: per layer unless --global; layer: of the layers when --keep-layers is not given)")
	fs.StringVar(&s.attnLayers, "attn-layers", "", "block: prune attention heads in layers `A:B` (END exclusive; default all)")
	fs.StringVar(&s.mlpLayers, "mlp-layers", "", "block: prune MLP channels in layers `A:B` (END exclusive; default all)")
	fs.IntVar(&s.keepLayers, "keep-layers", 0, "layer: keep `N` decoder layers (default int(L·(1−ratio)))")
	fs.BoolVar(&s.rankLayers, "rank-layers", false, "layer: keep the most important layers (measured loss increase when skipped) instead of the first ones")
	fs.BoolVar(&s.global, "global", false, "block: rank all heads / MLP channels of all pruned layers on one scale")
	fs.IntVar(&s.iterativeSteps, "iterative-steps", 1, "prune in `K` steps with the linear schedule (ratio·k/K at step k)")
	fs.IntVar(&s.roundTo, "round-to", 0, "keep counts that are multiples of `K` (hardware-friendly shapes; 0 = off)")
}

// options turns the flags into prune.Options (the importance part is filled by prune);
// ratioGiven tells whether --ratio was on the command line.
func (s *shapeFlags) options(ratioGiven bool) (prune.Options, error) {
	var o prune.Options
	if s.strategy == "" {
		return o, usageErrorf("--strategy is required (block, channel or layer)")
	}
	st, err := prune.ParseStrategy(s.strategy)
	if err != nil {
		return o, usageErrorf("--strategy: %v", err)
	}
	if !ratioGiven && !(st == prune.Layer && s.keepLayers > 0) {
		return o, usageErrorf("--ratio is required (the fraction of groups removed, in [0, 1))")
	}
	if !(s.ratio >= 0 && s.ratio < 1) {
		return o, usageErrorf("--ratio %g must be in [0, 1)", s.ratio)
	}
	if s.iterativeSteps < 1 {
		return o, usageErrorf("--iterative-steps %d must be at least 1", s.iterativeSteps)
	}
	if s.roundTo < 0 {
		return o, usageErrorf("--round-to %d must be ≥ 0", s.roundTo)
	}
	if s.keepLayers < 0 {
		return o, usageErrorf("--keep-layers %d must be ≥ 0", s.keepLayers)
	}
	o = prune.Options{
		Strategy: st, Ratio: s.ratio, KeepLayers: s.keepLayers, RankLayers: s.rankLayers,
		Global: s.global, IterativeSteps: s.iterativeSteps, RoundTo: s.roundTo,
	}
	for _, r := range []struct {
		flag, val string
		dst       **prune.Range
	}{{"--attn-layers", s.attnLayers, &o.AttnLayers}, {"--mlp-layers", s.mlpLayers, &o.MLPLayers}} {
		if r.val == "" {
			continue
		}
		rng, err := prune.ParseRange(r.val)
		if err != nil {
			return o, usageErrorf("%s: %v", r.flag, err)
		}
		switch {
		case rng.Start > rng.End:
			return o, usageErrorf("%s %s is reversed (START must be below END, END exclusive)", r.flag, r.val)
		case rng.Start == rng.End:
			return o, usageErrorf("%s %s is empty (END is exclusive)", r.flag, r.val)
		case rng.Start < 0:
			return o, usageErrorf("%s %s starts below layer 0", r.flag, r.val)
		}
		*r.dst = &rng
	}
	return o, nil
}
