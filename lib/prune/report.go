package prune

import (
	"encoding/json"

	"github.com/llmpruner/llmpruner/lib/atomicfile"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/pkg/errors"
)

// Report describes a pruning run (the `--report` JSON). Indices are 0-based into the unpruned
// model (layer, head, channel) and sorted. Scores are the group importances the selection used,
// indexed like the unpruned units; with several iterative steps a unit's score is the one of the
// last step that scored it. Unscored structures have empty score lists.
type Report struct {
	ParamsBefore       int64         `json:"params_before"`
	ParamsAfter        int64         `json:"params_after"`
	LayersKept         []int         `json:"layers_kept"`
	HiddenScores       []float64     `json:"hidden_scores"`
	HiddenChannelsKept []int         `json:"hidden_channels_kept"`
	Layers             []LayerReport `json:"layers"`
}

// LayerReport is one kept decoder layer of the report.
type LayerReport struct {
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
	// LayerScore is the layer's importance for ranked layer-wise pruning (loss increase when
	// skipped), absent otherwise.
	LayerScore *float64 `json:"layer_score,omitempty"`
}

// Save writes the report as indented JSON (atomically).
func (r *Report) Save(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return errors.Wrap(err, "encoding the pruning report")
	}
	return atomicfile.WriteFile(path, append(data, '\n'), 0o644)
}

// tracker follows unpruned indices through successive removals and collects scores.
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
}

func newTracker(cfg *config.Config) *tracker {
	L := cfg.NumLayers()
	t := &tracker{orig: cfg, kv: make([][]int, L), mlp: make([][]int, L), hidden: identity(cfg.Hidden), layers: identity(L),
		kvScores: make([][]float64, L), mlpScores: make([][]float64, L)}
	for l := range L {
		t.kv[l], t.mlp[l] = identity(cfg.KVHeads[l]), identity(cfg.Inter[l])
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

// report assembles the Report for the final config.
func (t *tracker) report(final *config.Config) *Report {
	r := &Report{ParamsBefore: t.orig.NumParams(), ParamsAfter: final.NumParams(),
		LayersKept: append([]int{}, t.layers...), HiddenScores: orEmpty(t.hiddenScores),
		HiddenChannelsKept: append([]int{}, t.hidden...), Layers: []LayerReport{}}
	for _, l := range t.layers {
		nRep := t.orig.Heads[l] / t.orig.KVHeads[l]
		lr := LayerReport{Layer: l, KVHeadScores: orEmpty(t.kvScores[l]), KVHeadsKept: append([]int{}, t.kv[l]...),
			MLPScores: orEmpty(t.mlpScores[l]), MLPChannelsKept: append([]int{}, t.mlp[l]...),
			HeadScores: []float64{}, HeadsKept: []int{}}
		for _, kv := range t.kv[l] {
			for j := range nRep {
				lr.HeadsKept = append(lr.HeadsKept, kv*nRep+j)
			}
		}
		if t.kvScores[l] != nil {
			for h := range t.orig.Heads[l] {
				lr.HeadScores = append(lr.HeadScores, t.kvScores[l][h/nRep])
			}
		}
		if t.layerScores != nil {
			s := t.layerScores[l]
			lr.LayerScore = &s
		}
		r.Layers = append(r.Layers, lr)
	}
	return r
}

func orEmpty(s []float64) []float64 {
	if s == nil {
		return []float64{}
	}
	return append([]float64{}, s...)
}
