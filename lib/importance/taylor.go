package importance

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/llmpruner/llmpruner/lib/groups"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/pkg/errors"
)

// fisherScope holds the second-order accumulators A = (1/N) Σ_j g_j² while a TaylorEstimator runs:
// one float32 variable per scored weight, at fisherScope + models.VarPath(name). They are deleted
// before Scores returns, so they never reach a saved checkpoint.
const fisherScope = "/llmpruner_taylor_fisher"

// TaylorEstimator is the Taylor importance of LLM-Pruner (see TaylorMode for the formulas).
//
// Gradients are taken by GoMLX autodiff of models.LMLoss (HF convention: mean next-token
// cross-entropy over all B·(L−1) positions) with respect to the float32 weight nodes the forward
// pass reads (recorded through models.Hooks.Weight), and reduced inside the graph to one salience
// vector per scored (tensor, axis): only those vectors leave the graph.
//
// ParamSecond/ParamMix first run one backward per calibration sample (batch of 1) and accumulate
// A += g_j²/N elementwise (the addition in-graph) into store variables, as the original's acc_grad; ParamMix then takes the batched gradient g. ParamSecond needs no batched gradient.
type TaylorEstimator struct {
	Mode        TaylorMode
	Reduction   Reduction
	Calibration [][]int // [N][L] token ids
}

// Scores implements Estimator.
func (e *TaylorEstimator) Scores(m *models.Model, fams []*groups.Family) (scores [][]float64, err error) {
	if err := checkCalibration(e.Calibration); err != nil {
		return nil, err
	}
	if e.Mode == DefaultTaylor {
		resolved := *e
		resolved.Mode = ParamFirst
		return resolved.Scores(m, fams)
	}
	axes := NeededAxes(fams)
	var names []string
	seen := map[string]bool{}
	for _, ta := range axes {
		if !seen[ta.Tensor] {
			seen[ta.Tensor] = true
			names = append(names, ta.Tensor)
		}
	}
	second := e.Mode == ParamSecond || e.Mode == ParamMix
	if second {
		defer func() {
			if derr := m.Store.DeleteVariablesInScope(fisherScope); derr != nil && err == nil {
				err = errors.Wrap(derr, "taylor importance: removing the second-order accumulators")
			}
		}()
		if err := e.accumulateFisher(m, names); err != nil {
			return nil, errors.WithMessage(err, "taylor importance (per-sample second-order pass)")
		}
	}
	sal, err := e.salience(m, axes, second)
	if err != nil {
		return nil, errors.WithMessagef(err, "taylor importance (%s)", e.Mode)
	}
	return GroupScores(fams, sal, e.Reduction)
}

// recorder is a Hooks.Weight that hands out one float32 node per tensor per graph, so that the
// gradient with respect to it covers every use (e.g. tied embeddings).
type recorder struct {
	store *model.Store
	nodes map[string]*Node
}

func newRecorder(store *model.Store) *recorder {
	return &recorder{store: store, nodes: map[string]*Node{}}
}

func (r *recorder) weight(g *Graph, hfName string) *Node {
	if n, ok := r.nodes[hfName]; ok {
		return n
	}
	n := models.VariableF32(r.store, g, hfName)
	r.nodes[hfName] = n
	return n
}

// dotLinear is x·Wᵀ + b as one DotGeneral contracting x's last axis with W's input axis (W is
// [out, in], x [..., in] → [..., out]). Its backward pass needs much less memory on the Go backend
// than nn.Dense's (measured: about 0.5× instead of 3× the weight, per use, for the input gradient).
func dotLinear(x *Node, _ string, w, b *Node) *Node {
	y := DotGeneral(x, []int{x.Rank() - 1}, nil, w, []int{1}, nil)
	if b != nil {
		y = Add(y, ExpandLeftToRank(b, y.Rank()))
	}
	return y
}

// lossAndGrads builds the LM loss of tokens and its gradients with respect to the named weights.
func lossAndGrads(scope *model.Scope, m *models.Model, tokens *Node, names []string) (loss *Node, w, grads []*Node) {
	rec := newRecorder(scope.Store())
	logits := models.Logits(scope, m.Config, tokens, nil, &models.Hooks{Weight: rec.weight, Linear: dotLinear})
	loss = models.LMLoss(logits, tokens, nil)
	w = make([]*Node, len(names))
	for i, n := range names {
		node, ok := rec.nodes[n]
		if !ok {
			node = rec.weight(tokens.Graph(), n) // unused by the forward pass: zero gradient
		}
		w[i] = node
	}
	return loss, w, Gradient(loss, w...)
}

// accumulateFisher runs one backward per sample and adds g²/N to the accumulator variables.
func (e *TaylorEstimator) accumulateFisher(m *models.Model, names []string) error {
	N := len(e.Calibration)
	accs := make([]*model.Variable, len(names))
	for i, n := range names {
		v := m.Store.GetVariable(models.VarPath(n))
		if v == nil {
			return errors.Errorf("model has no tensor %s", n)
		}
		zeros := tensors.FromShape(shapes.Make(dtypes.Float32, v.Shape().Dimensions...))
		acc, err := m.Store.CreateVariable(fisherScope+models.VarPath(n), zeros)
		if err != nil {
			return errors.Wrapf(err, "creating the accumulator of %s", n)
		}
		acc.SetTrainable(false)
		accs[i] = acc
	}
	// The accumulators go in and out as explicit graph inputs/outputs and are written back with
	// SetValue: in-graph variable write-back (Variable.SetNodeValue) does not accumulate across
	// calls with gomlx v0.28.16 on the Go backend (each call sees the initial value).
	exec, err := model.NewExec(m.Backend, m.Store, func(scope *model.Scope, inputs []*Node) []*Node {
		tokens := inputs[0]
		_, _, grads := lossAndGrads(scope, m, tokens, names)
		outs := make([]*Node, len(names))
		for i := range names {
			outs[i] = Add(inputs[1+i], MulScalar(Square(grads[i]), 1/float64(N)))
		}
		return outs
	})
	if err != nil {
		return err
	}
	defer exec.Finalize()
	for j, sample := range e.Calibration {
		args := make([]any, 1+len(accs))
		args[0] = tokensTensor([][]int{sample})
		for i, acc := range accs {
			v, err := acc.Value()
			if err != nil {
				return err
			}
			// Donated: the backend may write the new sum over it (the accumulator is not held twice).
			if args[1+i], err = DonateTensorBuffer(v, m.Backend, 0); err != nil {
				return errors.Wrapf(err, "donating the accumulator of %s", names[i])
			}
		}
		out, err := exec.Call(args...)
		if err != nil {
			return errors.WithMessagef(err, "calibration sample %d", j)
		}
		for i, acc := range accs {
			if err := acc.SetValue(out[i]); err != nil {
				return errors.Wrapf(err, "updating the accumulator of %s", names[i])
			}
		}
	}
	return nil
}

// salience computes the member salience vectors (see TaylorMode), with the batched gradient unless
// the mode is ParamSecond.
func (e *TaylorEstimator) salience(m *models.Model, axes []groups.TensorAxis, second bool) (Salience, error) {
	needGrad := e.Mode != ParamSecond
	var names []string
	index := map[string]int{}
	for _, ta := range axes {
		if _, ok := index[ta.Tensor]; !ok {
			index[ta.Tensor] = len(names)
			names = append(names, ta.Tensor)
		}
	}
	build := func(scope *model.Scope, g *Graph, tokens *Node) []*Node {
		var w, grads []*Node
		if needGrad {
			_, w, grads = lossAndGrads(scope, m, tokens, names)
		} else {
			w = make([]*Node, len(names))
			for i, n := range names {
				w[i] = models.VariableF32(scope.Store(), g, n)
			}
		}
		sal := make([]*Node, len(names)) // elementwise salience S per tensor
		for i, n := range names {
			var first, fisher *Node
			if needGrad {
				first = Mul(w[i], grads[i])
			}
			if second {
				a := scope.Store().GetVariable(fisherScope + models.VarPath(n)).NodeValue(g)
				fisher = Mul(Mul(w[i], a), w[i])
			}
			switch e.Mode {
			case DefaultTaylor, ParamFirst, Vectorize:
				sal[i] = first
			case ParamSecond:
				sal[i] = fisher
			case ParamMix:
				sal[i] = Sub(first, MulScalar(fisher, 0.5))
			}
		}
		outs := make([]*Node, len(axes))
		for k, ta := range axes {
			s := sal[index[ta.Tensor]]
			switch {
			case s.Rank() == 1:
				outs[k] = Abs(s)
			case e.Mode == Vectorize:
				outs[k] = Abs(reduceToAxis(s, ta.Axis))
			default:
				outs[k] = reduceToAxis(Abs(s), ta.Axis)
			}
		}
		return outs
	}
	var exec *model.Exec
	var err error
	if needGrad {
		exec, err = model.NewExec(m.Backend, m.Store, func(scope *model.Scope, tokens *Node) []*Node {
			return build(scope, tokens.Graph(), tokens)
		})
	} else {
		exec, err = model.NewExec(m.Backend, m.Store, func(scope *model.Scope, g *Graph) []*Node {
			return build(scope, g, nil)
		})
	}
	if err != nil {
		return nil, err
	}
	defer exec.Finalize()
	var res []*tensors.Tensor
	if needGrad {
		res, err = exec.Call(tokensTensor(e.Calibration))
	} else {
		res, err = exec.Call()
	}
	if err != nil {
		return nil, err
	}
	return toSalience(axes, res)
}

// tokensTensor packs rectangular token ids [B][L] into an int32 tensor.
func tokensTensor(rows [][]int) *tensors.Tensor {
	B, L := len(rows), len(rows[0])
	flat := make([]int32, 0, B*L)
	for _, r := range rows {
		for _, t := range r {
			flat = append(flat, int32(t))
		}
	}
	return tensors.FromFlatDataAndDimensions(flat, B, L)
}
