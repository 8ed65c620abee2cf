package prune

import (
	"slices"
	"strconv"

	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/pkg/errors"
)

// Sizes is what pruning with some options does to the sizes of a model, from its config alone.
type Sizes struct {
	ParamsBefore int64 `json:"params_before"`
	ParamsAfter  int64 `json:"params_after"`
	// MACs of one forward pass over SeqLen tokens (see MACs).
	MACsBefore int64 `json:"macs_before"`
	MACsAfter  int64 `json:"macs_after"`
	SeqLen     int   `json:"seq_len"`
	// Sizes after pruning.
	Hidden  int   `json:"hidden_size"`
	Layers  int   `json:"num_layers"`
	Heads   []int `json:"heads_per_layer"`
	KVHeads []int `json:"kv_heads_per_layer"`
	Inter   []int `json:"intermediate_per_layer"`
	// Config is the pruned config.
	Config *config.Config `json:"-"`
}

// Estimate computes parameter and MAC counts before and after pruning from the config alone (no
// weights): which heads/channels go depends on the weights, how many does not (Select, with
// scores, makes the Plan that says which). Global block
// pruning is the exception (its per-layer counts depend on the scores) and returns an error.
func Estimate(cfg *config.Config, opts Options) (*Sizes, error) {
	if err := opts.Validate(cfg); err != nil {
		return nil, err
	}
	after, err := plannedConfig(cfg, &opts)
	if err != nil {
		return nil, err
	}
	S := opts.SeqLen
	if S <= 0 {
		S = 64
	}
	return &Sizes{
		ParamsBefore: arch.NumParams(cfg), ParamsAfter: arch.NumParams(after),
		MACsBefore: MACs(cfg, S), MACsAfter: MACs(after, S), SeqLen: S,
		Hidden: after.Hidden, Layers: after.NumLayers(),
		Heads: slices.Clone(after.Heads), KVHeads: slices.Clone(after.KVHeads), Inter: slices.Clone(after.Inter),
		Config: after,
	}, nil
}

// plannedConfig applies the count rule to a clone of cfg, step by step.
func plannedConfig(cfg *config.Config, o *Options) (*config.Config, error) {
	c := cfg.Clone()
	L := cfg.NumLayers()
	switch o.Strategy {
	case Layer:
		if o.RankLayers && !cfg.Uniform() {
			return nil, errors.New("estimate: ranked layer pruning of a non-uniform model removes layers of different sizes, chosen by their scores; plan cannot predict it")
		}
		n := o.keepLayers(L)
		c.Heads, c.KVHeads, c.Inter = c.Heads[:n], c.KVHeads[:n], c.Inter[:n]
		return c, nil
	case Channel:
		cnt := counter{initUnits: cfg.Hidden, unit: 1, roundUnit: o.roundTo()}
		for k := 1; k <= o.steps(); k++ {
			keep, err := cnt.kept(c.Hidden, stepTarget(o.Ratio, k, o.steps()), "hidden channels")
			if err != nil {
				return nil, err
			}
			c.Hidden = keep
		}
		return c, nil
	}
	if o.Global {
		return nil, errors.New("estimate: global pruning distributes the removals by importance scores; plan needs local (per-layer) pruning")
	}
	attn, mlp := layerRange(o.AttnLayers, L), layerRange(o.MLPLayers, L)
	for l := range L {
		if l >= attn.Start && l < attn.End {
			cnt := headCounter(cfg, l, o.roundTo())
			for k := 1; k <= o.steps(); k++ {
				keep, err := cnt.kept(c.KVHeads[l], stepTarget(o.Ratio, k, o.steps()), headFamilyName(l))
				if err != nil {
					return nil, err
				}
				nRep := c.Heads[l] / c.KVHeads[l]
				c.KVHeads[l], c.Heads[l] = keep, keep*nRep
			}
		}
		if l >= mlp.Start && l < mlp.End {
			cnt := counter{initUnits: cfg.Inter[l], unit: 1, roundUnit: o.roundTo()}
			for k := 1; k <= o.steps(); k++ {
				keep, err := cnt.kept(c.Inter[l], stepTarget(o.Ratio, k, o.steps()), mlpFamilyName(l))
				if err != nil {
					return nil, err
				}
				c.Inter[l] = keep
			}
		}
	}
	return c, nil
}

// headCounter is the count rule of layer l's head family: the root (q_proj for MHA, k_proj for
// GQA) has kv_heads·head_dim channels, removed in whole heads.
func headCounter(cfg *config.Config, l, roundTo int) counter {
	nRep := cfg.Heads[l] / cfg.KVHeads[l]
	return counter{initUnits: cfg.KVHeads[l], unit: cfg.HeadDim, roundUnit: roundUnitFor(roundTo, nRep*cfg.HeadDim)}
}

func headFamilyName(l int) string { return "layer " + strconv.Itoa(l) + " attention heads" }
func mlpFamilyName(l int) string  { return "layer " + strconv.Itoa(l) + " MLP channels" }

// MACs counts the multiply-accumulates of one forward pass over S tokens: the architecture's count
// (arch.MACs), which follows the original's test_speedup.py (ptflops plus its attention and norm
// hooks) and is eval.Stats' count too, so estimates, plans and `llmpruner stats` agree. LLaMA-7B
// at S = 64 gives the paper's 424.02G.
func MACs(cfg *config.Config, S int) int64 { return arch.MACs(cfg, S).Total() }
