package prune

import (
	"slices"
	"sort"
	"strings"

	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/groups"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/pkg/errors"
)

// Apply carries out plan on m in place: the heads, MLP channels and hidden channels the plan does
// not keep are removed, bias compensation is added, then the layers it does not keep are removed
// (m.Store's variables are sliced, m.Config replaced, compiled graphs dropped). The plan must have
// been made for a model of m's shape (Plan.CheckModel). On error the model may be partly pruned.
func Apply(m *models.Model, plan *Plan) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.Errorf("apply plan: %v", r)
		}
	}()
	if err := plan.validate(); err != nil {
		return errors.WithMessage(err, "apply plan")
	}
	if err := plan.CheckModel(m.Config); err != nil {
		return errors.WithMessage(err, "apply plan")
	}
	return applyRemoval(m, removalOf(m.Config, plan))
}

// removalOf is what plan removes from a model of config cfg.
func removalOf(cfg *config.Config, plan *Plan) *removal {
	r := newRemoval()
	r.hidden = complement(cfg.Hidden, plan.HiddenChannelsKept)
	r.layers = complement(cfg.NumLayers(), plan.LayersKept)
	r.addLayerPlans(cfg, plan.Layers)
	return r
}

// addLayerPlans adds the per-layer part of a plan (removed kv-head groups and MLP channels, bias
// compensation) to r.
func (r *removal) addLayerPlans(cfg *config.Config, layers []LayerPlan) {
	for _, lp := range layers {
		l := lp.Layer
		if rm := complement(cfg.KVHeads[l], lp.KVHeadsKept); len(rm) > 0 {
			r.heads[l] = rm
		}
		if rm := complement(cfg.Inter[l], lp.MLPChannelsKept); len(rm) > 0 {
			r.mlp[l] = rm
		}
		if lp.OProjBias != nil {
			r.oBias[l] = lp.OProjBias
		}
		if lp.DownProjBias != nil {
			r.downBias[l] = lp.DownProjBias
		}
	}
}

// complement returns the indices in [0, n) not in kept (sorted).
func complement(n int, kept []int) []int {
	in := make([]bool, n)
	for _, k := range kept {
		in[k] = true
	}
	var out []int
	for i := range n {
		if !in[i] {
			out = append(out, i)
		}
	}
	return out
}

// applyRemoval removes r's groups, adds its biases, then removes its layers.
func applyRemoval(m *models.Model, r *removal) error {
	defer m.ResetExecs()
	cfg := m.Config
	remove, err := r.groups(cfg)
	if err != nil {
		return err
	}
	if len(remove) > 0 {
		next, err := RemoveGroups(m.Store, cfg, remove)
		if err != nil {
			return err
		}
		m.Config, cfg = next, next
	}
	if len(r.oBias) > 0 || len(r.downBias) > 0 {
		next, err := AddBiases(m.Store, cfg, r.oBias, r.downBias)
		if err != nil {
			return err
		}
		m.Config, cfg = next, next
	}
	if len(r.layers) > 0 {
		next, _, err := RemoveLayers(m.Store, cfg, r.layers)
		if err != nil {
			return err
		}
		m.Config = next
	}
	return nil
}

// groups lists the head, MLP-channel and hidden-channel groups r removes from a model of config cfg.
func (r *removal) groups(cfg *config.Config) ([]groups.Group, error) {
	var remove []groups.Group
	for _, l := range sortedKeys(r.heads) {
		f, err := groups.AttentionHeads(cfg, l)
		if err != nil {
			return nil, err
		}
		remove = append(remove, pick(f, r.heads[l])...)
	}
	for _, l := range sortedKeys(r.mlp) {
		f, err := groups.MLPChannels(cfg, l)
		if err != nil {
			return nil, err
		}
		remove = append(remove, pick(f, r.mlp[l])...)
	}
	if len(r.hidden) > 0 {
		f, err := groups.HiddenChannels(cfg)
		if err != nil {
			return nil, err
		}
		remove = append(remove, pick(f, r.hidden)...)
	}
	return remove, nil
}

func sortedKeys[V any](m map[int]V) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}

// pick returns the groups of fam with the given unit indices.
func pick(fam *groups.Family, units []int) []groups.Group {
	out := make([]groups.Group, len(units))
	for i, u := range units {
		out[i] = fam.Groups[u]
	}
	return out
}

// AddBiases adds oBias[l] to layer l's o_proj bias and downBias[l] to its down_proj bias (each
// [hidden]) and returns the new config. A LLaMA model without attention (MLP) biases gets them:
// Hugging Face's attention_bias (mlp_bias) puts a bias on all of q, k, v, o (gate, up, down), so
// the others are created as zeros, in the weights' dtype (arch.Family.EnableBiases: a Qwen2 model
// becomes a LLaMA model with attention_bias, ChatGLM has every bias already).
func AddBiases(store *model.Store, cfg *config.Config, oBias, downBias map[int][]float64) (*config.Config, error) {
	next := cfg.Clone()
	if err := arch.Of(cfg).EnableBiases(next, len(oBias) > 0, len(downBias) > 0); err != nil {
		return nil, errors.WithMessage(err, "bias compensation")
	}
	fam := arch.Of(next) // Qwen2 with an o_proj bias is LLaMA
	old := arch.Of(cfg)
	type add struct {
		module string
		size   int
		vec    []float64
	}
	var adds []add
	for _, l := range sortedKeys(oBias) {
		if len(oBias[l]) != cfg.Hidden {
			return nil, errors.Errorf("layer %d o_proj bias has %d values, hidden size is %d", l, len(oBias[l]), cfg.Hidden)
		}
	}
	for _, l := range sortedKeys(downBias) {
		if len(downBias[l]) != cfg.Hidden {
			return nil, errors.Errorf("layer %d down_proj bias has %d values, hidden size is %d", l, len(downBias[l]), cfg.Hidden)
		}
	}
	had := map[string]bool{}
	for _, t := range old.Tensors(cfg) {
		had[t.Name] = true
	}
	for _, t := range fam.Tensors(next) { // biases the new config implies, created as zeros
		if !had[t.Name] {
			adds = append(adds, add{strings.TrimSuffix(t.Name, ".bias"), t.Shape[0], nil})
		}
	}
	for _, l := range sortedKeys(oBias) {
		attn, _ := fam.OutputBiases(next, l)
		adds = append(adds, add{strings.TrimSuffix(attn, ".bias"), cfg.Hidden, oBias[l]})
	}
	for _, l := range sortedKeys(downBias) {
		_, mlp := fam.OutputBiases(next, l)
		adds = append(adds, add{strings.TrimSuffix(mlp, ".bias"), cfg.Hidden, downBias[l]})
	}
	for _, a := range adds {
		wv := store.GetVariable(models.VarPath(a.module + ".weight"))
		if wv == nil {
			return nil, errors.Errorf("model has no tensor %s.weight", a.module)
		}
		dt := wv.Shape().DType
		bv := store.GetVariable(models.VarPath(a.module + ".bias"))
		cur := make([]float64, a.size)
		if bv != nil {
			t, err := bv.Value()
			if err != nil {
				return nil, errors.Wrapf(err, "reading %s.bias", a.module)
			}
			if cur, err = models.ToFloat64(t); err != nil {
				return nil, errors.WithMessagef(err, "%s.bias", a.module)
			}
			dt = t.DType()
		}
		for i, x := range a.vec {
			cur[i] += x
		}
		t, err := models.FromFloat64(cur, dt, a.size)
		if err != nil {
			return nil, errors.WithMessagef(err, "%s.bias", a.module)
		}
		if bv != nil {
			if err := bv.SetValue(t); err != nil {
				return nil, errors.Wrapf(err, "replacing %s.bias", a.module)
			}
			continue
		}
		if _, err := store.CreateVariable(models.VarPath(a.module+".bias"), t); err != nil {
			return nil, errors.Wrapf(err, "creating %s.bias", a.module)
		}
	}
	if err := checkShapes(store, next); err != nil {
		return nil, err
	}
	return next, nil
}

// RemoveGroups deletes the given head, MLP-channel and hidden-channel groups from the store and
// returns the config of the smaller model (cfg is not modified). Every slice is computed before the
// first variable is replaced (SetValue frees the old tensor), so an error leaves the store as it was.
// Layer groups are removed with RemoveLayers.
func RemoveGroups(store *model.Store, cfg *config.Config, remove []groups.Group) (*config.Config, error) {
	next, err := groupsRemovedConfig(cfg, remove)
	if err != nil {
		return nil, err
	}
	perTensor := tensorCuts(remove)
	names := make([]string, 0, len(perTensor))
	for n := range perTensor {
		names = append(names, n)
	}
	sort.Strings(names)
	vars := make([]*model.Variable, len(names))
	sliced := make([]*tensors.Tensor, len(names))
	for i, n := range names {
		v := store.GetVariable(models.VarPath(n))
		if v == nil {
			return nil, errors.Errorf("RemoveGroups: model has no tensor %s", n)
		}
		t, err := v.Value()
		if err != nil {
			return nil, errors.Wrapf(err, "reading %s", n)
		}
		s, err := sliceTensor(t, perTensor[n])
		if err != nil {
			for _, done := range sliced[:i] {
				done.FinalizeAll()
			}
			return nil, errors.WithMessagef(err, "slicing %s", n)
		}
		vars[i], sliced[i] = v, s
	}
	for i, v := range vars {
		if err := v.SetValue(sliced[i]); err != nil {
			return nil, errors.Wrapf(err, "replacing %s", names[i])
		}
	}
	if err := checkShapes(store, next); err != nil {
		return nil, err
	}
	return next, nil
}

// groupsRemovedConfig is the config of cfg's model without the given head, MLP-channel and
// hidden-channel groups.
func groupsRemovedConfig(cfg *config.Config, remove []groups.Group) (*config.Config, error) {
	next := cfg.Clone()
	for _, g := range remove {
		switch g.Kind {
		case groups.Head:
			nRep := cfg.Heads[g.Layer] / cfg.KVHeads[g.Layer]
			next.KVHeads[g.Layer]--
			next.Heads[g.Layer] -= nRep
		case groups.MLPChannel:
			next.Inter[g.Layer]--
		case groups.HiddenChannel:
			next.Hidden--
		default:
			return nil, errors.Errorf("RemoveGroups: %s groups are removed with RemoveLayers", g.Kind)
		}
	}
	if err := next.Validate(); err != nil {
		return nil, errors.WithMessage(err, "pruned config")
	}
	return next, nil
}

// tensorCuts maps each tensor the groups cut to its removed indices per axis.
func tensorCuts(remove []groups.Group) map[string]map[int][]int {
	cut, _ := groups.Removal(remove)
	perTensor := map[string]map[int][]int{} // tensor → axis → removed indices
	for ta, idx := range cut {
		if perTensor[ta.Tensor] == nil {
			perTensor[ta.Tensor] = map[int][]int{}
		}
		perTensor[ta.Tensor][ta.Axis] = idx
	}
	return perTensor
}

// sliceTensor returns a new host tensor holding t without the removed indices along each axis
// (any dtype; rank 1 or 2).
func sliceTensor(t *tensors.Tensor, removed map[int][]int) (*tensors.Tensor, error) {
	dims := t.Shape().Dimensions
	if len(dims) < 1 || len(dims) > 2 {
		return nil, errors.Errorf("cannot slice a rank-%d tensor", len(dims))
	}
	kept := make([][]int, len(dims))
	newDims := slices.Clone(dims)
	for a := range dims {
		r := removed[a]
		for _, i := range r {
			if i < 0 || i >= dims[a] {
				return nil, errors.Errorf("index %d out of range [0,%d) on axis %d", i, dims[a], a)
			}
		}
		kept[a] = groups.Kept(dims[a], r)
		newDims[a] = len(kept[a])
	}
	for a, n := range newDims {
		if n == 0 {
			return nil, errors.Errorf("removing every index of axis %d (size %d)", a, dims[a])
		}
	}
	esz := t.DType().Size()
	out := tensors.FromShape(shapes.Make(t.DType(), newDims...))
	var err error
	cerr := t.ConstBytes(func(src []byte) {
		err = out.MutableBytes(func(dst []byte) {
			if len(dims) == 1 {
				for j, i := range kept[0] {
					copy(dst[j*esz:(j+1)*esz], src[i*esz:(i+1)*esz])
				}
				return
			}
			cols, newCols := dims[1], newDims[1]
			contiguous := newCols == cols
			for j, r := range kept[0] {
				srcRow := src[r*cols*esz : (r+1)*cols*esz]
				dstRow := dst[j*newCols*esz : (j+1)*newCols*esz]
				if contiguous {
					copy(dstRow, srcRow)
					continue
				}
				for k, c := range kept[1] {
					copy(dstRow[k*esz:(k+1)*esz], srcRow[c*esz:(c+1)*esz])
				}
			}
		})
	})
	if cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RemoveLayers deletes the given decoder layers from the store, renumbers the remaining ones
// (layer i becomes its rank among the kept layers) and returns the new config and the kept
// original layer indices.
func RemoveLayers(store *model.Store, cfg *config.Config, remove []int) (*config.Config, []int, error) {
	L := cfg.NumLayers()
	drop := map[int]bool{}
	for _, l := range remove {
		if l < 0 || l >= L {
			return nil, nil, errors.Errorf("RemoveLayers: layer %d out of range [0,%d)", l, L)
		}
		drop[l] = true
	}
	if len(drop) >= L {
		return nil, nil, errors.New("RemoveLayers: cannot remove every layer")
	}
	next, kept := layersRemovedConfig(cfg, drop)
	for l := range L {
		if !drop[l] {
			continue
		}
		for _, n := range groups.LayerTensors(cfg, l) {
			if err := store.DeleteVariable(models.VarPath(n)); err != nil {
				return nil, nil, errors.Wrapf(err, "deleting %s", n)
			}
		}
	}
	for newIdx, l := range kept { // ascending: the target path is always free
		if newIdx == l {
			continue
		}
		from, to := groups.LayerTensors(cfg, l), groups.LayerTensors(cfg, newIdx)
		for i := range from {
			if err := store.MoveVariable(models.VarPath(from[i]), models.VarPath(to[i])); err != nil {
				return nil, nil, errors.Wrapf(err, "renumbering layer %d to %d", l, newIdx)
			}
		}
	}
	if err := checkShapes(store, next); err != nil {
		return nil, nil, err
	}
	return next, kept, nil
}

// layersRemovedConfig is the config of cfg's model without the dropped layers, and the kept
// original layer indices.
func layersRemovedConfig(cfg *config.Config, drop map[int]bool) (*config.Config, []int) {
	next := cfg.Clone()
	next.Heads, next.KVHeads, next.Inter = nil, nil, nil
	var kept []int
	for l := range cfg.NumLayers() {
		if !drop[l] {
			kept = append(kept, l)
			next.Heads = append(next.Heads, cfg.Heads[l])
			next.KVHeads = append(next.KVHeads, cfg.KVHeads[l])
			next.Inter = append(next.Inter, cfg.Inter[l])
		}
	}
	return next, kept
}

// checkShapes verifies that the store holds exactly the tensors cfg implies, with their shapes.
func checkShapes(store *model.Store, cfg *config.Config) error {
	specs, err := models.ExpectedTensors(cfg)
	if err != nil {
		return err
	}
	for _, s := range specs {
		v := store.GetVariable(models.VarPath(s.Name))
		if v == nil {
			return errors.Errorf("after pruning: tensor %s is missing", s.Name)
		}
		if !slices.Equal(v.Shape().Dimensions, s.Shape) {
			return errors.Errorf("after pruning: tensor %s has shape %v, the config implies %v", s.Name, v.Shape().Dimensions, s.Shape)
		}
	}
	return nil
}
