package prune

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/atomicfile"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/pkg/errors"
)

// Plan is a pruning selection as a value: which layers, heads, key/value heads, MLP channels and
// hidden channels of a model stay, the scores that chose them, and the sizes before and after.
// Select makes it from scores, Apply carries it out, Save/LoadPlan store it as JSON (the `prune
// --save-plan` file, also the pruning report). Indices are 0-based into the unpruned model and sorted.
// Scores are the group importances the selection used, indexed like the unpruned units; with several
// iterative steps a unit's score is the one of the last step that scored it. Unscored structures
// have empty score lists.
type Plan struct {
	// Strategy, Ratio and Criterion record how the plan was made (informational).
	Strategy  string  `json:"strategy"`
	Ratio     float64 `json:"ratio"`
	Criterion string  `json:"criterion,omitempty"`
	// Reconstructed records that the run re-fitted the narrowed layers' output projections on its
	// calibration samples (ApplyReconstructed): replaying the plan with Apply gives the model
	// before that re-fit.
	Reconstructed bool `json:"reconstructed,omitempty"`
	// Base is the shape of the model the plan applies to; Apply refuses any other.
	Base Shape `json:"shape_before"`
	// After is the shape of the pruned model.
	After        Shape `json:"shape_after"`
	ParamsBefore int64 `json:"params_before"`
	ParamsAfter  int64 `json:"params_after"`
	// MACs of one forward pass over SeqLen tokens (see MACs).
	MACsBefore         int64       `json:"macs_before"`
	MACsAfter          int64       `json:"macs_after"`
	SeqLen             int         `json:"seq_len"`
	LayersKept         []int       `json:"layers_kept"`
	HiddenScores       []float64   `json:"hidden_scores"`
	HiddenChannelsKept []int       `json:"hidden_channels_kept"`
	Layers             []LayerPlan `json:"layers"`
}

// Shape is the part of a config a plan depends on.
type Shape struct {
	Arch    string `json:"arch"`
	Hidden  int    `json:"hidden_size"`
	HeadDim int    `json:"head_dim"`
	Vocab   int    `json:"vocab_size"`
	Heads   []int  `json:"heads_per_layer"`
	KVHeads []int  `json:"kv_heads_per_layer"`
	Inter   []int  `json:"intermediate_per_layer"`
}

// shapeOf extracts cfg's Shape.
func shapeOf(cfg *config.Config) Shape {
	return Shape{Arch: string(cfg.Arch), Hidden: cfg.Hidden, HeadDim: cfg.HeadDim, Vocab: cfg.Vocab,
		Heads: slices.Clone(cfg.Heads), KVHeads: slices.Clone(cfg.KVHeads), Inter: slices.Clone(cfg.Inter)}
}

// String is a one-line description, e.g. "llama, 5 layers, hidden 64, heads [8 8 …], …".
func (s Shape) String() string {
	return fmt.Sprintf("%s, %d layers, hidden %d, head_dim %d, vocab %d, heads %v, kv heads %v, MLP %v",
		s.Arch, len(s.Heads), s.Hidden, s.HeadDim, s.Vocab, s.Heads, s.KVHeads, s.Inter)
}

func (s Shape) equal(o Shape) bool {
	return s.Arch == o.Arch && s.Hidden == o.Hidden && s.HeadDim == o.HeadDim && s.Vocab == o.Vocab &&
		slices.Equal(s.Heads, o.Heads) && slices.Equal(s.KVHeads, o.KVHeads) && slices.Equal(s.Inter, o.Inter)
}

// LayerPlan is one kept decoder layer of the plan.
type LayerPlan struct {
	// Layer is the index in the unpruned model.
	Layer int `json:"layer"`
	// HeadScores has one entry per unpruned query head: the score of the group that holds it (for
	// GQA the kv-head group's; for MHA the same as KVHeadScores).
	HeadScores   []float64 `json:"head_scores"`
	HeadsKept    []int     `json:"heads_kept"`
	KVHeadScores []float64 `json:"kv_head_scores"`
	KVHeadsKept  []int     `json:"kv_heads_kept"`
	// MLPScores has one entry per unpruned MLP channel.
	MLPScores       []float64 `json:"mlp_scores"`
	MLPChannelsKept []int     `json:"mlp_channels_kept"`
	// LayerScore is the layer's importance for ranked layer-wise pruning (loss increase when skipped,
	// or Block Influence), absent otherwise.
	LayerScore *float64 `json:"layer_score,omitempty"`
	// OProjBias and DownProjBias, when present ([hidden]), are added to the bias of o_proj /
	// down_proj after the removal (bias compensation: the removed inputs' mean contribution). The
	// pruned model then has attention_bias / mlp_bias set, with zero biases where none were.
	OProjBias    []float64 `json:"o_proj_bias,omitempty"`
	DownProjBias []float64 `json:"down_proj_bias,omitempty"`
}

// Save writes the plan as indented JSON (atomically).
func (p *Plan) Save(path string) error {
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return errors.Wrap(err, "encoding the pruning plan")
	}
	return atomicfile.WriteFile(path, append(data, '\n'), 0o644)
}

// LoadPlan reads a plan saved by Plan.Save and checks that it is self-consistent.
func LoadPlan(path string) (*Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errors.Wrap(err, "reading the pruning plan")
	}
	var p Plan
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, errors.Wrapf(err, "pruning plan %s is not valid JSON", path)
	}
	if err := p.validate(); err != nil {
		return nil, errors.WithMessagef(err, "pruning plan %s", path)
	}
	return &p, nil
}

// validate checks the plan's internal consistency (indices in range, sorted, unique).
func (p *Plan) validate() error {
	b := p.Base
	L := len(b.Heads)
	if L == 0 || len(b.KVHeads) != L || len(b.Inter) != L || b.Hidden < 1 || b.HeadDim < 1 {
		return errors.New("base shape is missing or inconsistent (heads_per_layer, kv_heads_per_layer, intermediate_per_layer, hidden_size, head_dim)")
	}
	// Sizes are bounded before anything is built from them (a hostile plan must not allocate
	// tables of the sizes it claims).
	if L > config.MaxLayers || b.Hidden > config.MaxDim || b.HeadDim > config.MaxDim {
		return errors.Errorf("base shape (%d layers, hidden_size %d, head_dim %d) is implausible", L, b.Hidden, b.HeadDim)
	}
	for l := range L {
		h, kv, in := b.Heads[l], b.KVHeads[l], b.Inter[l]
		if h < 0 || kv < 0 || in < 0 || h > config.MaxDim || in > config.MaxDim || kv > h || (kv > 0 && h%kv != 0) {
			return errors.Errorf("base shape layer %d: %d heads, %d kv heads, intermediate size %d is not a model shape", l, h, kv, in)
		}
	}
	if err := checkIndices("layers_kept", p.LayersKept, L); err != nil {
		return err
	}
	if err := checkIndices("hidden_channels_kept", p.HiddenChannelsKept, b.Hidden); err != nil {
		return err
	}
	if len(p.Layers) != len(p.LayersKept) {
		return errors.Errorf("%d layer entries for %d kept layers", len(p.Layers), len(p.LayersKept))
	}
	for i, lp := range p.Layers {
		l := lp.Layer
		if l != p.LayersKept[i] {
			return errors.Errorf("layer entry %d is layer %d, layers_kept says %d", i, l, p.LayersKept[i])
		}
		if err := checkIndices(fmt.Sprintf("layer %d kv_heads_kept", l), lp.KVHeadsKept, b.KVHeads[l]); err != nil {
			return err
		}
		if err := checkIndices(fmt.Sprintf("layer %d mlp_channels_kept", l), lp.MLPChannelsKept, b.Inter[l]); err != nil {
			return err
		}
		nRep := b.Heads[l] / max(b.KVHeads[l], 1)
		if len(lp.HeadsKept) != len(lp.KVHeadsKept)*nRep || !slices.Equal(lp.HeadsKept, queryHeads(lp.KVHeadsKept, nRep)) {
			return errors.Errorf("layer %d: heads_kept %v are not the query heads of kv_heads_kept %v", l, lp.HeadsKept, lp.KVHeadsKept)
		}
		for _, bias := range []struct {
			name string
			v    []float64
		}{{"o_proj_bias", lp.OProjBias}, {"down_proj_bias", lp.DownProjBias}} {
			if bias.v != nil && len(bias.v) != b.Hidden {
				return errors.Errorf("layer %d %s has %d values, hidden_size is %d", l, bias.name, len(bias.v), b.Hidden)
			}
			if bias.v != nil && len(p.HiddenChannelsKept) != b.Hidden {
				return errors.Errorf("layer %d %s: bias compensation with hidden-channel pruning is not supported", l, bias.name)
			}
		}
	}
	return nil
}

// checkIndices checks that idx is strictly increasing, within [0, n) and not empty.
func checkIndices(what string, idx []int, n int) error {
	if len(idx) == 0 {
		return errors.Errorf("%s is empty (at least one must stay)", what)
	}
	for i, v := range idx {
		if v < 0 || v >= n {
			return errors.Errorf("%s: index %d is outside [0, %d)", what, v, n)
		}
		if i > 0 && v <= idx[i-1] {
			return errors.Errorf("%s must be strictly increasing (%d after %d)", what, v, idx[i-1])
		}
	}
	return nil
}

// queryHeads expands kept kv heads to the query heads that read them.
func queryHeads(kv []int, nRep int) []int {
	out := make([]int, 0, len(kv)*nRep)
	for _, k := range kv {
		for j := range nRep {
			out = append(out, k*nRep+j)
		}
	}
	return out
}

// CheckModel returns an error unless the plan was made for a model of cfg's shape.
func (p *Plan) CheckModel(cfg *config.Config) error {
	if got := shapeOf(cfg); !got.equal(p.Base) {
		return errors.Errorf("the plan is for a model of shape (%s), this model is (%s)", p.Base, got)
	}
	return nil
}

// tracker follows unpruned indices through successive removals and collects scores; it becomes
// the Plan.
type tracker struct {
	orig *config.Config
	// current unit index → unpruned index
	kv     [][]int // [orig layer]
	mlp    [][]int
	hidden []int
	layers []int // current layer → unpruned layer
	// scores over unpruned units (nil = never scored)
	kvScores, mlpScores [][]float64
	hiddenScores        []float64
	layerScores         []float64
	// bias compensation over unpruned layers (nil = none)
	oBias, downBias [][]float64
}

func newTracker(cfg *config.Config) *tracker {
	L := cfg.NumLayers()
	t := &tracker{orig: cfg, kv: make([][]int, L), mlp: make([][]int, L), hidden: identity(cfg.Hidden), layers: identity(L),
		kvScores: make([][]float64, L), mlpScores: make([][]float64, L), oBias: make([][]float64, L), downBias: make([][]float64, L)}
	for l := range L {
		t.kv[l], t.mlp[l] = identity(cfg.KVHeads[l]), identity(cfg.Inter[l])
	}
	return t
}

// trackerOf is the tracker state a plan describes (to compose a further step with it).
func trackerOf(cfg *config.Config, p *Plan) *tracker {
	t := newTracker(cfg)
	t.layers = slices.Clone(p.LayersKept)
	t.hidden = slices.Clone(p.HiddenChannelsKept)
	if len(p.HiddenScores) > 0 {
		t.hiddenScores = slices.Clone(p.HiddenScores)
	}
	for _, lp := range p.Layers {
		l := lp.Layer
		t.kv[l], t.mlp[l] = slices.Clone(lp.KVHeadsKept), slices.Clone(lp.MLPChannelsKept)
		if len(lp.KVHeadScores) > 0 {
			t.kvScores[l] = slices.Clone(lp.KVHeadScores)
		}
		if len(lp.MLPScores) > 0 {
			t.mlpScores[l] = slices.Clone(lp.MLPScores)
		}
		t.oBias[l], t.downBias[l] = slices.Clone(lp.OProjBias), slices.Clone(lp.DownProjBias)
		if lp.LayerScore != nil {
			if t.layerScores == nil {
				t.layerScores = make([]float64, cfg.NumLayers())
			}
			t.layerScores[l] = *lp.LayerScore
		}
	}
	return t
}

func identity(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// record stores scores of current units under their unpruned indices.
func record(dst *[]float64, n int, current []int, scores []float64) {
	if *dst == nil {
		*dst = make([]float64, n)
	}
	for i, s := range scores {
		(*dst)[current[i]] = s
	}
}

// keep filters a current→unpruned index list to the kept current indices (sorted).
func keep(current []int, keptCurrent []int) []int {
	out := make([]int, len(keptCurrent))
	for i, k := range keptCurrent {
		out[i] = current[k]
	}
	return out
}

// shapeAfter is the config of the unpruned model after the tracked removals.
func (t *tracker) shapeAfter() *config.Config {
	c := t.orig.Clone()
	c.Heads, c.KVHeads, c.Inter = nil, nil, nil
	c.Hidden = len(t.hidden)
	for _, l := range t.layers {
		nRep := t.orig.Heads[l] / t.orig.KVHeads[l]
		c.KVHeads = append(c.KVHeads, len(t.kv[l]))
		c.Heads = append(c.Heads, len(t.kv[l])*nRep)
		c.Inter = append(c.Inter, len(t.mlp[l]))
		if t.oBias[l] != nil {
			c.AttnBias = true
		}
		if t.downBias[l] != nil {
			c.MLPBias = true
		}
	}
	return c
}

// plan assembles the Plan; S is the token count for the MAC counts.
func (t *tracker) plan(o *Options) *Plan {
	after := t.shapeAfter()
	S := o.SeqLen
	if S <= 0 {
		S = 64
	}
	r := &Plan{Strategy: o.Strategy.String(), Ratio: o.Ratio,
		Base: shapeOf(t.orig), After: shapeOf(after),
		ParamsBefore: arch.NumParams(t.orig), ParamsAfter: arch.NumParams(after),
		MACsBefore: MACs(t.orig, S), MACsAfter: MACs(after, S), SeqLen: S,
		LayersKept: slices.Clone(t.layers), HiddenScores: orEmpty(t.hiddenScores),
		HiddenChannelsKept: slices.Clone(t.hidden), Layers: []LayerPlan{}}
	r.Reconstructed = o.Reconstruct
	if o.Strategy != Layer {
		r.Criterion = o.Importance.Criterion.String()
	} else if o.RankLayers && o.LayerCriterion == LayerBI {
		r.Criterion = "block-influence"
	} else if o.RankLayers {
		r.Criterion = "layer-skip-loss"
	}
	for _, l := range t.layers {
		nRep := t.orig.Heads[l] / t.orig.KVHeads[l]
		lp := LayerPlan{Layer: l, KVHeadScores: orEmpty(t.kvScores[l]), KVHeadsKept: slices.Clone(t.kv[l]),
			MLPScores: orEmpty(t.mlpScores[l]), MLPChannelsKept: slices.Clone(t.mlp[l]),
			HeadScores: []float64{}, HeadsKept: queryHeads(t.kv[l], nRep),
			OProjBias: slices.Clone(t.oBias[l]), DownProjBias: slices.Clone(t.downBias[l])}
		if t.kvScores[l] != nil {
			for h := range t.orig.Heads[l] {
				lp.HeadScores = append(lp.HeadScores, t.kvScores[l][h/nRep])
			}
		}
		if t.layerScores != nil {
			s := t.layerScores[l]
			lp.LayerScore = &s
		}
		r.Layers = append(r.Layers, lp)
	}
	return r
}

func orEmpty(s []float64) []float64 {
	if s == nil {
		return []float64{}
	}
	return slices.Clone(s)
}
