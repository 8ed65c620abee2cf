// Package prune removes coupled groups (package groups) from a model, ranked by an importance
// estimator (package importance), and produces a smaller dense model. The selection is a value:
// Score computes the scores a setting needs, Select turns them into a Plan (what each layer keeps,
// sizes before/after; JSON), Apply carries a plan out — Prune is the three in one call: store variables are sliced
// and the per-layer config (heads, kv-heads, MLP width, hidden size, layer list) is updated, so the
// result saves as an ordinary Hugging Face directory.
//
// Strategies (as LLM-Pruner's hf_prune.py):
//   - Block: attention heads in the layers AttnLayers and MLP channels in MLPLayers; the ratio is the
//     fraction of each layer's heads/channels removed (local), or of all of them together (Global);
//   - Channel: hidden (residual) channels, the same in every layer;
//   - Layer: keep KeepLayers decoder layers: the first ones (as the original), or with RankLayers the
//     most important ones by the measured loss increase when a layer is skipped.
//
// Counts follow MetaPruner: a family whose root had init channels at the start keeps
// int(init·(1 − target)) channels after a step with target sparsity target (heads: channel count
// divided by head_dim, rounded down), and the target grows linearly over IterativeSteps
// (step k: Ratio·k/steps), with new calibration samples each step.
//
// Deliberate differences from the original:
//   - each iterative step computes its gradients afresh (the original never zeroes .grad/acc_grad
//     between steps, so unpruned weights carry the sum of all steps' gradients);
//   - global pruning keeps at least one unit per family (the original can empty a layer);
//   - RoundTo rounds the kept count to the nearest multiple (the original rounds the pruned count);
//   - the pruned model is a plain Hugging Face directory with per-layer sizes in config.json
//     (models.Model.Save), not a pickled module.
//
// Typical use (the CLI's `llmpruner prune`):
//
//	opts := prune.Options{Strategy: prune.Block, Ratio: 0.25,
//		AttnLayers: &prune.Range{Start: 4, End: 30}, MLPLayers: &prune.Range{Start: 4, End: 30},
//		Importance: importance.Options{Criterion: importance.Taylor}, Sampler: samples}
//	scores, err := prune.Score(m, opts)
//	plan, err := prune.Select(m.Config, scores, opts) // inspect, plan.Save(path), try other ratios…
//	err = prune.Apply(m, plan)                         // then m.Save(dir, "")
package prune

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/importance"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/llmpruner/llmpruner/lib/option"
	"github.com/pkg/errors"
)

// Strategy is what gets pruned.
type Strategy int

const (
	// Block prunes attention heads and MLP channels inside layer ranges.
	Block Strategy = iota
	// Channel prunes hidden channels.
	Channel
	// Layer removes whole decoder layers.
	Layer
)

var strategyNames = []string{"block", "channel", "layer"}

// String is the CLI name.
func (s Strategy) String() string {
	if s >= 0 && int(s) < len(strategyNames) {
		return strategyNames[s]
	}
	return fmt.Sprintf("Strategy(%d)", int(s))
}

// ParseStrategy reads block | channel | layer.
func ParseStrategy(s string) (Strategy, error) {
	for i, n := range strategyNames {
		if n == s {
			return Strategy(i), nil
		}
	}
	return 0, errors.Errorf("unknown strategy %q (valid: %s)", s, strings.Join(strategyNames, ", "))
}

// Structure is how Block pruning distributes the removals over layers.
type Structure int

const (
	// Uniform removes Ratio of each layer's heads and MLP channels (LLM-Pruner's local pruning;
	// FLAP's UL-UM), or with Global of all of them ranked together.
	Uniform Structure = iota
	// Adaptive is FLAP's AL-AM: heads and MLP channels of all Block layers ranked on one scale,
	// each weighted by its parameter count, removing Ratio of the prunable attention and MLP
	// parameters; layers lose different fractions. Needs scores that compare across layers and
	// module types (criterion flap, standardized per layer).
	Adaptive
)

var structureNames = []string{"uniform", "adaptive"}

// String is the CLI name.
func (s Structure) String() string {
	if s >= 0 && int(s) < len(structureNames) {
		return structureNames[s]
	}
	return fmt.Sprintf("Structure(%d)", int(s))
}

// ParseStructure reads uniform | adaptive.
func ParseStructure(s string) (Structure, error) {
	for i, n := range structureNames {
		if n == s {
			return Structure(i), nil
		}
	}
	return 0, errors.Errorf("unknown structure %q (valid: %s)", s, strings.Join(structureNames, ", "))
}

// LayerCriterion ranks decoder layers for Layer pruning with RankLayers.
type LayerCriterion int

const (
	// LayerLoss is the calibration loss increase when the layer alone is skipped
	// (importance.LayerSkipLoss).
	LayerLoss LayerCriterion = iota
	// LayerBI is ShortGPT's Block Influence, 1 − mean cos(layer input, layer output)
	// (importance.BlockInfluence; one forward pass).
	LayerBI
)

var layerCriterionNames = []string{"loss", "bi"}

// String is the CLI name.
func (c LayerCriterion) String() string {
	if c >= 0 && int(c) < len(layerCriterionNames) {
		return layerCriterionNames[c]
	}
	return fmt.Sprintf("LayerCriterion(%d)", int(c))
}

// ParseLayerCriterion reads loss | bi.
func ParseLayerCriterion(s string) (LayerCriterion, error) {
	for i, n := range layerCriterionNames {
		if n == s {
			return LayerCriterion(i), nil
		}
	}
	return 0, errors.Errorf("unknown layer criterion %q (valid: %s)", s, strings.Join(layerCriterionNames, ", "))
}

// Range is a half-open layer range [Start, End), like the original's
// --block_attention_layer_start/end.
type Range struct{ Start, End int }

// String renders "start:end".
func (r Range) String() string { return fmt.Sprintf("%d:%d", r.Start, r.End) }

// ParseRange reads "A:B" (end exclusive).
func ParseRange(s string) (Range, error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return Range{}, errors.Errorf("layer range %q: want START:END (end exclusive), e.g. 4:30", s)
	}
	start, err1 := strconv.Atoi(strings.TrimSpace(a))
	end, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil {
		return Range{}, errors.Errorf("layer range %q: START and END must be integers", s)
	}
	return Range{start, end}, nil
}

// Sampler returns the calibration token ids [N][L] for iterative step k (1-based); each step should
// draw new samples, as the original.
type Sampler func(step int) ([][]int, error)

// Options configures Prune and Plan.
type Options struct {
	Strategy Strategy
	// Ratio is the fraction of groups removed per family (Block, Channel), in [0, 1).
	Ratio float64
	// AttnLayers and MLPLayers are the Block ranges; nil means every layer.
	AttnLayers, MLPLayers *Range
	// KeepLayers is the number of decoder layers Layer keeps (0: int(L·(1−Ratio))).
	KeepLayers int
	// RankLayers makes Layer keep the KeepLayers most important layers (importance.LayerSkipLoss)
	// instead of the first ones.
	RankLayers bool
	// LayerCriterion is the ranking RankLayers uses (default LayerLoss).
	LayerCriterion LayerCriterion
	// Global ranks all head and MLP groups of all Block families on one scale (one threshold).
	Global bool
	// Structure distributes Block removals: Uniform (default) or Adaptive (FLAP's search; then
	// Ratio is the fraction of the prunable attention and MLP parameters removed).
	Structure Structure
	// IterativeSteps is the number of pruning steps (0 = 1).
	IterativeSteps int
	// RoundTo makes every family keep a multiple of RoundTo channels (root channels: q rows for
	// heads, MLP or hidden channels), rounded to the nearest multiple, at least one multiple
	// (0 or 1 = off).
	RoundTo int
	// Reconstruct re-fits, after a Block selection, the o_proj / down_proj weights (and biases) of
	// every narrowed layer by ridge least squares on the calibration samples (ApplyReconstructed).
	Reconstruct bool
	// ReconstructDamp is the ridge damping relative to the mean diagonal of XᵀX (0 = 0.01).
	ReconstructDamp float64
	// Importance selects the estimator (Block and Channel). Its Calibration is filled from Sampler.
	Importance importance.Options
	// Sampler provides calibration samples (Taylor importance, RankLayers).
	Sampler Sampler
	// SeqLen is the number of tokens Plan counts MACs for (0 = 64, as test_speedup.py).
	SeqLen int
}

func (o *Options) steps() int {
	if o.IterativeSteps <= 0 {
		return 1
	}
	return o.IterativeSteps
}

func (o *Options) roundTo() int { return max(o.RoundTo, 1) }

// layerRange resolves a Block range (nil = all layers).
func layerRange(r *Range, L int) Range {
	if r == nil {
		return Range{0, L}
	}
	return *r
}

// The options as error messages name them (option.Error; the command line says its flags).
const (
	OptStrategy       option.Name = "prune.Options.Strategy"
	OptRatio          option.Name = "prune.Options.Ratio"
	OptIterativeSteps option.Name = "prune.Options.IterativeSteps"
	OptRoundTo        option.Name = "prune.Options.RoundTo"
	OptGlobal         option.Name = "prune.Options.Global"
	OptAttnLayers     option.Name = "prune.Options.AttnLayers"
	OptMLPLayers      option.Name = "prune.Options.MLPLayers"
	OptKeepLayers     option.Name = "prune.Options.KeepLayers"
	OptSampler        option.Name = "prune.Options.Sampler"
	OptCriterion      option.Name = "prune.Options.Importance.Criterion"
	OptTaylor         option.Name = "prune.Options.Importance.Taylor"
)

// Validate checks the options against the model config and returns a clear error for bad input.
func (o *Options) Validate(cfg *config.Config) error {
	L := cfg.NumLayers()
	if o.Strategy < Block || o.Strategy > Layer {
		return errors.Errorf("unknown strategy %d", o.Strategy)
	}
	if !(o.Ratio >= 0 && o.Ratio < 1) {
		return option.Errorf("%s %g must be in [0, 1)", OptRatio, o.Ratio)
	}
	if o.IterativeSteps < 0 {
		return option.Errorf("%s %d must be at least 1 (0 means 1)", OptIterativeSteps, o.IterativeSteps)
	}
	if o.RoundTo < 0 {
		return option.Errorf("%s %d must be positive (0 or 1: off)", OptRoundTo, o.RoundTo)
	}
	imp := o.Importance
	if imp.Taylor != importance.DefaultTaylor && imp.Criterion != importance.Taylor {
		return option.Errorf("%s %s needs %s taylor (it is %s)", OptTaylor, imp.Taylor, OptCriterion, imp.Criterion)
	}
	if o.Structure != Uniform {
		switch {
		case o.Structure != Adaptive:
			return errors.Errorf("unknown structure %d", o.Structure)
		case o.Strategy != Block:
			return errors.Errorf("the adaptive structure applies to block-wise pruning, not %s", o.Strategy)
		case imp.Criterion != importance.FLAP:
			return errors.Errorf("the adaptive structure ranks heads and MLP channels of all layers on one scale: it needs scores standardized per layer (criterion flap), not %s", imp.Criterion)
		case o.Global:
			return errors.New("the adaptive structure and global pruning are two different rankings; choose one")
		case o.steps() > 1:
			return errors.Errorf("the adaptive structure selects in one step (iterative steps %d)", o.IterativeSteps)
		}
	}
	if (imp.Criterion == importance.FLAP || imp.Criterion == importance.WandaSP) && o.Strategy != Layer {
		if o.Strategy != Block {
			return errors.Errorf("criterion %s scores attention heads and MLP channels (block strategy), not %s", imp.Criterion, o.Strategy)
		}
		if o.steps() > 1 {
			return errors.Errorf("criterion %s prunes in one step (iterative steps %d)", imp.Criterion, o.IterativeSteps)
		}
		if imp.Reduction != importance.DefaultReduction {
			return errors.Errorf("criterion %s has its own group reduction (reduction %s is for random, l1, l2 and taylor)", imp.Criterion, imp.Reduction)
		}
	}
	if o.LayerCriterion != LayerLoss && (o.Strategy != Layer || !o.RankLayers) {
		return errors.Errorf("layer criterion %s ranks layers for ranked layer-wise pruning", o.LayerCriterion)
	}
	if o.LayerCriterion < LayerLoss || o.LayerCriterion > LayerBI {
		return errors.Errorf("unknown layer criterion %d", o.LayerCriterion)
	}
	if o.Reconstruct {
		switch {
		case o.Strategy != Block:
			return errors.Errorf("reconstruction re-fits width (block) pruning, not %s", o.Strategy)
		case o.steps() > 1:
			return errors.Errorf("reconstruction follows a one-step selection (iterative steps %d)", o.IterativeSteps)
		}
		if err := models.CheckStaged(cfg); err != nil {
			return errors.WithMessage(err, "reconstruction runs the model one layer at a time")
		}
	}
	if o.ReconstructDamp < 0 || math.IsNaN(o.ReconstructDamp) {
		return errors.Errorf("reconstruction damping %g must be ≥ 0", o.ReconstructDamp)
	}
	if o.Global && o.Strategy != Block {
		return option.Errorf("%s applies to block-wise pruning, not %s %s", OptGlobal, OptStrategy, o.Strategy)
	}
	if o.Strategy != Block && (o.AttnLayers != nil || o.MLPLayers != nil) {
		return option.Errorf("layer ranges (%s, %s) apply to block-wise pruning, not %s %s", OptAttnLayers, OptMLPLayers, OptStrategy, o.Strategy)
	}
	switch o.Strategy {
	case Block:
		for _, r := range []struct {
			flag option.Name
			r    *Range
		}{{OptAttnLayers, o.AttnLayers}, {OptMLPLayers, o.MLPLayers}} {
			if r.r == nil {
				continue
			}
			switch {
			case r.r.Start > r.r.End:
				return option.Errorf("%s %s is reversed (START must be below END, end exclusive)", r.flag, r.r)
			case r.r.Start == r.r.End:
				return option.Errorf("%s %s is empty (END is exclusive)", r.flag, r.r)
			case r.r.Start < 0 || r.r.End > L:
				return option.Errorf("%s %s is beyond the model: it has %d layers (valid 0:%d)", r.flag, r.r, L, L)
			}
		}
	case Layer:
		if o.KeepLayers < 0 || o.KeepLayers > L {
			return option.Errorf("%s %d: the model has %d layers", OptKeepLayers, o.KeepLayers, L)
		}
		if o.keepLayers(L) < 1 {
			return errors.Errorf("layer-wise pruning must keep at least one layer (ratio %g of %d layers)", o.Ratio, L)
		}
	}
	return nil
}

// checkSampler reports a missing Sampler when the options need calibration samples.
func (o *Options) checkSampler() error {
	if o.Sampler != nil {
		return nil
	}
	if o.Strategy == Layer && o.RankLayers {
		return option.Errorf("ranked layer pruning measures the loss: it needs calibration samples (%s)", OptSampler)
	}
	if o.Reconstruct {
		return option.Errorf("reconstruction fits on calibration samples (%s)", OptSampler)
	}
	if c := o.Importance.Criterion; o.Strategy != Layer && (c == importance.Taylor || c == importance.FLAP || c == importance.WandaSP) {
		return option.Errorf("criterion %s needs calibration samples (%s)", c, OptSampler)
	}
	return nil
}

// keepLayers is the number of layers Layer keeps.
func (o *Options) keepLayers(L int) int {
	if o.KeepLayers > 0 {
		return o.KeepLayers
	}
	return int(float64(L) * (1 - o.Ratio))
}
