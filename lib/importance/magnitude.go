package importance

import (
	"math/rand/v2"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/llmpruner/llmpruner/lib/groups"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/pkg/errors"
)

// Magnitude scores a member row/column by Σ|W|^P over it (P = 1 for l1, 2 for l2, no root), an
// RMSNorm element by |w|^P and an embedding column by Σ|W|^P over the vocabulary. (The original's
// magnitude importance keeps the embedding as a [V, n] matrix, which its folding then silently
// drops; summing over the vocabulary is the evident intent.)
type Magnitude struct {
	P         int
	Reduction Reduction
}

// Scores implements Estimator.
func (e *Magnitude) Scores(m *models.Model, fams []*groups.Family) ([][]float64, error) {
	axes := NeededAxes(fams)
	sal, err := axisReductions(m, axes, func(g *Graph, ta groups.TensorAxis, w *Node) *Node {
		a := Abs(w)
		if e.P != 1 {
			a = PowScalar(a, float64(e.P))
		}
		return reduceToAxis(a, ta.Axis)
	})
	if err != nil {
		return nil, errors.WithMessage(err, "magnitude importance")
	}
	return GroupScores(fams, sal, e.Reduction)
}

// reduceToAxis sums x over every axis but axis: [..] → [dim(axis)].
func reduceToAxis(x *Node, axis int) *Node {
	if x.Rank() == 1 {
		return x
	}
	var others []int
	for a := range x.Rank() {
		if a != axis {
			others = append(others, a)
		}
	}
	return ReduceSum(x, others...)
}

// axisReductions runs one graph over the store computing fn(weight) for every axis, returning
// float64 vectors.
func axisReductions(m *models.Model, axes []groups.TensorAxis, fn func(g *Graph, ta groups.TensorAxis, w *Node) *Node) (Salience, error) {
	exec, err := model.NewExec(m.Backend, m.Store, func(scope *model.Scope, g *Graph) []*Node {
		outs := make([]*Node, len(axes))
		for i, ta := range axes {
			outs[i] = fn(g, ta, models.VariableF32(scope.Store(), g, ta.Tensor))
		}
		return outs
	})
	if err != nil {
		return nil, err
	}
	defer exec.Finalize()
	res, err := exec.Call()
	if err != nil {
		return nil, err
	}
	return toSalience(axes, res)
}

// toSalience converts output tensors (one float32 vector per axis) and frees them.
func toSalience(axes []groups.TensorAxis, res []*tensors.Tensor) (Salience, error) {
	if len(res) != len(axes) {
		return nil, errors.Errorf("got %d outputs for %d tensor axes", len(res), len(axes))
	}
	sal := make(Salience, len(axes))
	for i, ta := range axes {
		v, err := tensors.CopyFlatData[float32](res[i])
		if err != nil {
			return nil, errors.Wrapf(err, "reading salience of %s", ta.Tensor)
		}
		f := make([]float64, len(v))
		for k, x := range v {
			f[k] = float64(x)
		}
		sal[ta] = f
		res[i].FinalizeAll()
	}
	return sal, nil
}

// RandomEstimator scores every group uniformly in [0, 1), reproducibly from Seed and the family
// order.
type RandomEstimator struct{ Seed int64 }

// Scores implements Estimator.
func (e *RandomEstimator) Scores(_ *models.Model, fams []*groups.Family) ([][]float64, error) {
	r := rand.New(rand.NewPCG(uint64(e.Seed), 0x9e3779b97f4a7c15))
	out := make([][]float64, len(fams))
	for i, f := range fams {
		out[i] = make([]float64, len(f.Groups))
		for j := range out[i] {
			out[i][j] = r.Float64()
		}
	}
	return out, nil
}
