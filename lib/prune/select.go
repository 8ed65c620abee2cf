package prune

import (
	"math"
	"sort"

	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/groups"
	"github.com/pkg/errors"
)

// Scores are the importances Select ranks, indexed like the model they were computed on (higher =
// more important). Only what the strategy needs must be set: Heads and MLP for Block (rows of
// layers outside the ranges may be nil), Hidden for Channel, Layers for Layer with RankLayers.
type Scores struct {
	Heads  [][]float64 `json:"heads"`  // [layer][kv head] (MHA: [layer][head])
	MLP    [][]float64 `json:"mlp"`    // [layer][MLP channel]
	Hidden []float64   `json:"hidden"` // [hidden channel]
	Layers []float64   `json:"layers"` // [layer]
	// Compensate, when set, gives the bias compensation Select puts in the plan for each pruned
	// layer, as a function of the units removed there (FLAP); see BiasFunc.
	Compensate BiasFunc `json:"-"`
}

// BiasFunc returns the bias to add to layer l's o_proj (heads removed) and down_proj (MLP channels
// removed), given the removed kv heads and MLP channels of that layer (indices of the scored
// model); nil slices mean no change.
type BiasFunc func(l int, removedKV, removedMLP []int) (oBias, downBias []float64, err error)

// Select chooses what to remove from a model of config cfg, by scores, as opts says, and returns the
// Plan (nothing is modified). One step only: IterativeSteps > 1 rescoring between steps is Prune's.
func Select(cfg *config.Config, scores *Scores, opts Options) (*Plan, error) {
	if err := opts.Validate(cfg); err != nil {
		return nil, err
	}
	if opts.steps() > 1 {
		return nil, errors.Errorf("Select makes one step; IterativeSteps %d rescores the model between steps (use Prune)", opts.IterativeSteps)
	}
	if scores == nil {
		scores = &Scores{}
	}
	t := newTracker(cfg.Clone())
	if _, err := selectStep(t, cfg, scores, &opts, 1); err != nil {
		return nil, err
	}
	return t.plan(&opts), nil
}

// removal is what one step removes, in indices of the model it applies to.
type removal struct {
	heads, mlp      map[int][]int // layer → removed kv heads / MLP channels
	hidden          []int
	layers          []int
	oBias, downBias map[int][]float64 // layer → bias to add
}

func newRemoval() *removal {
	return &removal{heads: map[int][]int{}, mlp: map[int][]int{}, oBias: map[int][]float64{}, downBias: map[int][]float64{}}
}

// unitSet is one family of units a step selects from.
type unitSet struct {
	kind   groups.Kind
	layer  int // current layer
	name   string
	scores []float64
	count  counter
}

// selectStep selects step k's removal from the model cur (whose units t maps to the unpruned model)
// and records it in t.
func selectStep(t *tracker, cur *config.Config, s *Scores, o *Options, k int) (*removal, error) {
	r := newRemoval()
	L := cur.NumLayers()
	switch o.Strategy {
	case Layer:
		n := o.keepLayers(L)
		if o.RankLayers {
			if len(s.Layers) != L {
				return nil, errors.Errorf("ranked layer pruning needs one score per layer (%d), got %d", L, len(s.Layers))
			}
			t.layerScores = make([]float64, t.orig.NumLayers())
			for i, l := range t.layers {
				t.layerScores[l] = s.Layers[i]
			}
			r.layers = lowest(s.Layers, L-n)
		} else {
			for l := n; l < L; l++ {
				r.layers = append(r.layers, l)
			}
		}
		t.layers = keep(t.layers, groups.Kept(L, r.layers))
		return r, nil
	case Channel:
		if len(s.Hidden) != cur.Hidden {
			return nil, errors.Errorf("channel pruning needs one score per hidden channel (%d), got %d", cur.Hidden, len(s.Hidden))
		}
		cnt := counter{initUnits: t.orig.Hidden, unit: 1, roundUnit: o.roundTo()}
		keepN, err := cnt.kept(cur.Hidden, stepTarget(o.Ratio, k, o.steps()), "hidden channels")
		if err != nil {
			return nil, err
		}
		record(&t.hiddenScores, t.orig.Hidden, t.hidden, s.Hidden)
		r.hidden = lowest(s.Hidden, cur.Hidden-keepN)
		t.hidden = keep(t.hidden, groups.Kept(cur.Hidden, r.hidden))
		return r, nil
	}
	sets, err := blockSets(t, cur, s, o)
	if err != nil {
		return nil, err
	}
	target := stepTarget(o.Ratio, k, o.steps())
	removeUnits := make([][]int, len(sets))
	switch {
	case o.Structure == Adaptive:
		removeUnits = adaptiveThreshold(cur, sets, o.Ratio)
	case o.Global:
		initTotal := 0
		all := make([][]float64, len(sets))
		for i, u := range sets {
			initTotal += u.count.initUnits
			all[i] = u.scores
		}
		removeUnits = globalThreshold(all, initTotal, target)
		for i, u := range sets {
			cur := len(u.scores)
			keepN := roundKept(cur-len(removeUnits[i]), cur, u.count.roundUnit)
			removeUnits[i] = lowest(u.scores, cur-keepN)
		}
	default:
		for i, u := range sets {
			keepN, err := u.count.kept(len(u.scores), target, u.name)
			if err != nil {
				return nil, err
			}
			removeUnits[i] = lowest(u.scores, len(u.scores)-keepN)
		}
	}
	for i, u := range sets {
		l := t.layers[u.layer]
		switch u.kind {
		case groups.Head:
			record(&t.kvScores[l], t.orig.KVHeads[l], t.kv[l], u.scores)
			r.heads[u.layer] = removeUnits[i]
		case groups.MLPChannel:
			record(&t.mlpScores[l], t.orig.Inter[l], t.mlp[l], u.scores)
			r.mlp[u.layer] = removeUnits[i]
		}
	}
	if s.Compensate != nil {
		for l := range L {
			if len(r.heads[l]) == 0 && len(r.mlp[l]) == 0 {
				continue
			}
			ob, db, err := s.Compensate(l, r.heads[l], r.mlp[l])
			if err != nil {
				return nil, errors.WithMessagef(err, "bias compensation of layer %d", l)
			}
			if ob != nil {
				r.oBias[l] = ob
			}
			if db != nil {
				r.downBias[l] = db
			}
			t.oBias[t.layers[l]] = addVec(t.oBias[t.layers[l]], ob)
			t.downBias[t.layers[l]] = addVec(t.downBias[t.layers[l]], db)
		}
	}
	for l, rm := range r.heads {
		t.kv[t.layers[l]] = keep(t.kv[t.layers[l]], groups.Kept(cur.KVHeads[l], rm))
	}
	for l, rm := range r.mlp {
		t.mlp[t.layers[l]] = keep(t.mlp[t.layers[l]], groups.Kept(cur.Inter[l], rm))
	}
	return r, nil
}

// blockSets lists the head and MLP unit sets of the Block ranges, with their scores.
func blockSets(t *tracker, cur *config.Config, s *Scores, o *Options) ([]unitSet, error) {
	L := cur.NumLayers()
	attn, mlp := layerRange(o.AttnLayers, L), layerRange(o.MLPLayers, L)
	var sets []unitSet
	for l := range L {
		if l >= attn.Start && l < attn.End {
			if l >= len(s.Heads) || len(s.Heads[l]) != cur.KVHeads[l] {
				return nil, errors.Errorf("%s: need %d scores (one per kv head), got %d", headFamilyName(l), cur.KVHeads[l], lenAt(s.Heads, l))
			}
			sets = append(sets, unitSet{kind: groups.Head, layer: l, name: headFamilyName(l), scores: s.Heads[l], count: headCounter(t.orig, t.layers[l], o.roundTo())})
		}
		if l >= mlp.Start && l < mlp.End {
			if l >= len(s.MLP) || len(s.MLP[l]) != cur.Inter[l] {
				return nil, errors.Errorf("%s: need %d scores, got %d", mlpFamilyName(l), cur.Inter[l], lenAt(s.MLP, l))
			}
			sets = append(sets, unitSet{kind: groups.MLPChannel, layer: l, name: mlpFamilyName(l), scores: s.MLP[l],
				count: counter{initUnits: t.orig.Inter[t.layers[l]], unit: 1, roundUnit: o.roundTo()}})
		}
	}
	return sets, nil
}

// adaptiveThreshold is FLAP's adaptive structure search (AL-AM) over the unit sets: all head groups
// and MLP channels ranked together by score (descending), each weighted by its parameters relative
// to one MLP channel's; the threshold is the score where the running weight is closest to
// total·(1 − ratio), and a unit stays when its score is strictly greater. FLAP may empty a layer;
// here each set keeps its best unit (an attention-free or MLP-free layer is not representable).
func adaptiveThreshold(cfg *config.Config, sets []unitSet, ratio float64) [][]int {
	type unit struct {
		score, weight float64
	}
	var all []unit
	for _, u := range sets {
		w := 1.0
		if u.kind == groups.Head {
			fam := arch.Of(cfg)
			w = float64(unitParams(cfg, fam.HeadBlocks(cfg, u.layer))) / float64(unitParams(cfg, fam.MLPBlocks(cfg, u.layer)))
		}
		for _, x := range u.scores {
			all = append(all, unit{x, w})
		}
	}
	remove := make([][]int, len(sets))
	if len(all) == 0 {
		return remove
	}
	sort.SliceStable(all, func(a, b int) bool { return all[a].score > all[b].score })
	total := 0.0
	for _, x := range all {
		total += x.weight
	}
	goal := total * (1 - ratio)
	best, bestDiff, cum := 0, math.Inf(1), 0.0
	for i, x := range all {
		cum += x.weight
		if d := math.Abs(cum - goal); d < bestDiff {
			best, bestDiff = i, d
		}
	}
	thr := all[best].score
	for i, u := range sets {
		for j, x := range u.scores {
			if !(x > thr) {
				remove[i] = append(remove[i], j)
			}
		}
		if len(remove[i]) >= len(u.scores) {
			remove[i] = lowest(u.scores, len(u.scores)-1)
		}
	}
	return remove
}

// unitParams is the parameter count of one unit of a coupled group described by blocks
// (arch.Family.HeadBlocks: a kv head with its query heads, e.g. LLaMA's q, k, v rows and o columns
// with their biases; MLPBlocks: one MLP channel): each block's Width rows (or columns) of its
// tensor, or Width elements of a bias.
func unitParams(cfg *config.Config, blocks []arch.Block) int64 {
	shapes := map[string][]int{}
	for _, t := range arch.Of(cfg).Tensors(cfg) {
		shapes[t.Name] = t.Shape
	}
	var n int64
	for _, b := range blocks {
		per := int64(1) // elements of one index along the block's axis
		for i, d := range shapes[b.Tensor] {
			if i != b.Axis {
				per *= int64(d)
			}
		}
		n += int64(b.Width) * per
	}
	return n
}

func lenAt(v [][]float64, i int) int {
	if i < len(v) {
		return len(v[i])
	}
	return 0
}

// addVec returns a + b (nil counts as zeros; both nil gives nil).
func addVec(a, b []float64) []float64 {
	if b == nil {
		return a
	}
	if a == nil {
		return append([]float64{}, b...)
	}
	out := append([]float64{}, a...)
	for i := range out {
		out[i] += b[i]
	}
	return out
}

// lowest returns the indices of the n lowest scores (ties: lower index first).
func lowest(scores []float64, n int) []int {
	order := make([]int, len(scores))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return scores[order[a]] < scores[order[b]] })
	out := append([]int{}, order[:n]...)
	sort.Ints(out)
	return out
}

// globalThreshold is MetaPruner's global selection: over all families' unit scores, n_pruned =
// current − int(initTotal·(1 − target)); the n_pruned-th smallest score is the threshold and every
// unit scoring ≤ it is removed. Unlike the original, each family keeps at least one unit (and
// RoundTo is applied per family afterwards by the caller).
func globalThreshold(scores [][]float64, initTotal int, target float64) (remove [][]int) {
	var all []float64
	for _, s := range scores {
		all = append(all, s...)
	}
	remove = make([][]int, len(scores))
	n := len(all) - int(float64(initTotal)*(1-target))
	if n <= 0 {
		return remove
	}
	sorted := append([]float64{}, all...)
	sort.Float64s(sorted)
	thr := sorted[n-1]
	for f, s := range scores {
		for i, x := range s {
			if x <= thr {
				remove[f] = append(remove[f], i)
			}
		}
		if len(remove[f]) >= len(s) { // keep the best unit
			remove[f] = lowest(s, len(s)-1)
		}
	}
	return remove
}
