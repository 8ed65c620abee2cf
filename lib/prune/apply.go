package prune

import (
	"slices"
	"sort"

	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/groups"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/pkg/errors"
)

// RemoveGroups deletes the given head, MLP-channel and hidden-channel groups from the store and
// returns the config of the smaller model (cfg is not modified). Every slice is computed before the
// first variable is replaced (SetValue frees the old tensor), so an error leaves the store as it was.
// Layer groups are removed with RemoveLayers.
func RemoveGroups(store *model.Store, cfg *config.Config, remove []groups.Group) (*config.Config, error) {
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
	cut, _ := groups.Removal(remove)
	perTensor := map[string]map[int][]int{} // tensor → axis → removed indices
	for ta, idx := range cut {
		if perTensor[ta.Tensor] == nil {
			perTensor[ta.Tensor] = map[int][]int{}
		}
		perTensor[ta.Tensor][ta.Axis] = idx
	}
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
	next := cfg.Clone()
	next.Heads, next.KVHeads, next.Inter = nil, nil, nil
	var kept []int
	for l := range L {
		if !drop[l] {
			kept = append(kept, l)
			next.Heads = append(next.Heads, cfg.Heads[l])
			next.KVHeads = append(next.KVHeads, cfg.KVHeads[l])
			next.Inter = append(next.Inter, cfg.Inter[l])
		}
	}
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
