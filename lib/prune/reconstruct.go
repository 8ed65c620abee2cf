package prune

import (
	"math"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/pkg/errors"
)

// ReconstructOptions configures ApplyReconstructed.
type ReconstructOptions struct {
	// Calibration holds the token ids [N][T] (all rows the same length) the layers are fitted on.
	Calibration [][]int
	// Damp is the ridge damping relative to the mean diagonal of XᵀX: λ = Damp·mean(diag) (0 = 0.01).
	Damp float64
	// Batch is the number of samples per forward pass (0 = 8).
	Batch int
}

// ApplyReconstructed carries out a width plan (heads / MLP channels; no hidden-channel or layer
// removal) layer by layer and re-fits, in every layer the plan narrows, the output projections of
// what it narrowed by ridge least squares, so that the pruned model's residual stream follows the
// dense model's on the calibration tokens:
//
//   - layer l runs densely on the dense model's input X_l (targets: the residual after attention
//     H_l and the layer output X_{l+1}), then the plan's removal (and bias compensation) for layer l
//     is applied;
//   - the pruned layer runs on the pruned model's input X'_l (produced by the already-pruned layers
//     0…l−1); o_proj (+ its bias, if the model has one) is re-fitted so that X'_l + o_proj(a') ≈ H_l,
//     with a' the kept heads' outputs; then down_proj (+ bias) so that the residual after attention
//     plus down_proj(act') ≈ X_{l+1}, with act' the kept MLP activations computed with the new o_proj;
//   - the fit W = argmin ‖A·Wᵀ + 1·bᵀ − T‖² + λ‖W‖² accumulates AᵀA and AᵀT in float64 over all
//     calibration tokens (memory O(width²) per projection) and solves (AᵀA + λI)·Wᵀ = AᵀT by
//     Cholesky; λ = Damp·mean(diag(AᵀA)); the bias is not damped.
//
// Families whose layers run one at a time (models.CheckStaged: the LLaMA layout). On error the
// model may be partly pruned.
func ApplyReconstructed(m *models.Model, plan *Plan, o ReconstructOptions) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.Errorf("reconstruct: %v", r)
		}
	}()
	defer m.ResetExecs()
	if err := plan.validate(); err != nil {
		return errors.WithMessage(err, "reconstruct")
	}
	if err := plan.CheckModel(m.Config); err != nil {
		return errors.WithMessage(err, "reconstruct")
	}
	cfg := m.Config
	if err := models.CheckStaged(cfg); err != nil {
		return errors.WithMessage(err, "reconstruct: runs the model one layer at a time")
	}
	if len(plan.LayersKept) != cfg.NumLayers() || len(plan.HiddenChannelsKept) != cfg.Hidden {
		return errors.New("reconstruct: the plan removes layers or hidden channels; reconstruction re-fits width (head / MLP-channel) pruning only")
	}
	if len(o.Calibration) == 0 {
		return errors.New("reconstruct: needs calibration samples (none given)")
	}
	for i, r := range o.Calibration {
		if len(r) != len(o.Calibration[0]) || len(r) < 1 {
			return errors.Errorf("reconstruct: calibration sample %d has %d tokens, sample 0 has %d (all must be equal)", i, len(r), len(o.Calibration[0]))
		}
	}
	if o.Damp < 0 || math.IsNaN(o.Damp) {
		return errors.Errorf("reconstruct: damping %g must be ≥ 0", o.Damp)
	}
	if o.Damp == 0 {
		o.Damp = 0.01
	}
	if o.Batch <= 0 {
		o.Batch = 8
	}
	full := newRemoval()
	full.addLayerPlans(cfg, plan.Layers)
	var batches [][][]int
	for s := 0; s < len(o.Calibration); s += o.Batch {
		batches = append(batches, o.Calibration[s:min(s+o.Batch, len(o.Calibration))])
	}
	xd, err := embedBatches(m, batches) // dense model's layer inputs, one [B·T·D] slice per batch
	if err != nil {
		return err
	}
	xp := cloneBatches(xd) // pruned model's
	T, D := len(o.Calibration[0]), cfg.Hidden
	for l := range cfg.NumLayers() {
		// Dense layer l on the dense inputs: targets.
		dense, err := runLayer(m, l, batches, xd, T)
		if err != nil {
			return errors.WithMessagef(err, "reconstruct: dense layer %d", l)
		}
		step := newRemoval()
		if rm, ok := full.heads[l]; ok {
			step.heads[l] = rm
		}
		if rm, ok := full.mlp[l]; ok {
			step.mlp[l] = rm
		}
		if b, ok := full.oBias[l]; ok {
			step.oBias[l] = b
		}
		if b, ok := full.downBias[l]; ok {
			step.downBias[l] = b
		}
		if err := applyRemoval(m, step); err != nil {
			return err
		}
		_, fitO := step.heads[l]
		_, fitD := step.mlp[l]
		if fitO {
			p, err := runLayer(m, l, batches, xp, T)
			if err != nil {
				return errors.WithMessagef(err, "reconstruct: pruned layer %d", l)
			}
			targets := make([][]float32, len(batches)) // H_l − X'_l
			for b := range batches {
				targets[b] = sub(dense[b].hAttn, xp[b])
			}
			if err := refit(m, attnProj(m.Config, l), p.inO(), targets, D, o.Damp); err != nil {
				return errors.WithMessagef(err, "reconstruct: layer %d o_proj", l)
			}
			m.ResetExecs()
		}
		if fitD {
			p, err := runLayer(m, l, batches, xp, T) // with the new o_proj
			if err != nil {
				return errors.WithMessagef(err, "reconstruct: pruned layer %d", l)
			}
			targets := make([][]float32, len(batches)) // X_{l+1} − (residual after attention)
			for b := range batches {
				targets[b] = sub(dense[b].out, p[b].hAttn)
			}
			if err := refit(m, mlpProj(m.Config, l), p.inD(), targets, D, o.Damp); err != nil {
				return errors.WithMessagef(err, "reconstruct: layer %d down_proj", l)
			}
			m.ResetExecs()
		}
		p, err := runLayer(m, l, batches, xp, T)
		if err != nil {
			return errors.WithMessagef(err, "reconstruct: pruned layer %d", l)
		}
		for b := range batches {
			xd[b], xp[b] = dense[b].out, p[b].out
		}
	}
	return nil
}

// layerRun holds one batch's activations of a layer, flattened row-major over [B·T, ·].
type layerRun struct {
	hAttn, out []float32 // residual after attention, layer output: [B·T·D]
	inO, inD   []float32 // inputs of o_proj [B·T·C] and down_proj [B·T·I]
}

type layerRuns []layerRun

func (r layerRuns) inO() [][]float32 {
	out := make([][]float32, len(r))
	for i := range r {
		out[i] = r[i].inO
	}
	return out
}

func (r layerRuns) inD() [][]float32 {
	out := make([][]float32, len(r))
	for i := range r {
		out[i] = r[i].inD
	}
	return out
}

// runLayer runs decoder layer l of m (as it is now) on the inputs x (one [B·T·D] slice per batch).
func runLayer(m *models.Model, l int, batches [][][]int, x [][]float32, T int) (layerRuns, error) {
	cfg := m.Config.Clone()
	attn, mlp := arch.Of(cfg).OutputProjections(cfg, l)
	exec, err := model.NewExec(m.Backend, m.Store, func(scope *model.Scope, in *Node) []*Node {
		var oIn, oOut, dIn *Node
		hooks := &models.Hooks{
			Weight: func(g *Graph, name string) *Node { return models.VariableF32(scope.Store(), g, name) },
			Linear: func(x *Node, module string, w, b *Node) *Node {
				y := models.Linear(x, module, w, b)
				switch module {
				case attn:
					oIn, oOut = x, y
				case mlp:
					dIn = x
				}
				return y
			},
		}
		out := models.LayerStage(cfg, l, in, hooks) // [B, T, D]
		return []*Node{Add(in, oOut), out, oIn, dIn}
	})
	if err != nil {
		return nil, err
	}
	defer exec.Finalize()
	runs := make(layerRuns, len(batches))
	for b, rows := range batches {
		in := tensors.FromFlatDataAndDimensions(x[b], len(rows), T, cfg.Hidden)
		res, err := exec.Call(in)
		if err != nil {
			return nil, err
		}
		vals := make([][]float32, len(res))
		for i, r := range res {
			if vals[i], err = tensors.CopyFlatData[float32](r); err != nil {
				return nil, err
			}
			r.FinalizeAll()
		}
		runs[b] = layerRun{hAttn: vals[0], out: vals[1], inO: vals[2], inD: vals[3]}
	}
	return runs, nil
}

// embedBatches looks the calibration tokens up in the embedding: one [B·T·D] slice per batch.
func embedBatches(m *models.Model, batches [][][]int) ([][]float32, error) {
	cfg := m.Config.Clone()
	exec, err := model.NewExec(m.Backend, m.Store, func(scope *model.Scope, tokens *Node) *Node {
		return models.EmbedStage(cfg, tokens, &models.Hooks{Weight: func(g *Graph, name string) *Node { return models.VariableF32(scope.Store(), g, name) }})
	})
	if err != nil {
		return nil, err
	}
	defer exec.Finalize()
	out := make([][]float32, len(batches))
	for b, rows := range batches {
		flat := make([]int32, 0, len(rows)*len(rows[0]))
		for _, r := range rows {
			for _, t := range r {
				flat = append(flat, int32(t))
			}
		}
		res, err := exec.Call(tensors.FromFlatDataAndDimensions(flat, len(rows), len(rows[0])))
		if err != nil {
			return nil, err
		}
		if out[b], err = tensors.CopyFlatData[float32](res[0]); err != nil {
			return nil, err
		}
		res[0].FinalizeAll()
	}
	return out, nil
}

func cloneBatches(x [][]float32) [][]float32 {
	out := make([][]float32, len(x))
	for i := range x {
		out[i] = append([]float32{}, x[i]...)
	}
	return out
}

func sub(a, b []float32) []float32 {
	out := make([]float32, len(a))
	for i := range a {
		out[i] = a[i] - b[i]
	}
	return out
}

// attnProj and mlpProj name layer l's output projections (arch.Family.OutputProjections).
func attnProj(cfg *config.Config, l int) string {
	a, _ := arch.Of(cfg).OutputProjections(cfg, l)
	return a
}
func mlpProj(cfg *config.Config, l int) string {
	_, p := arch.Of(cfg).OutputProjections(cfg, l)
	return p
}

// refit solves the ridge problem for module's weight [D, C] (and bias [D] when the model has one)
// from the inputs a (per batch [rows·C]) and targets t (per batch [rows·D]) and writes them into
// the store.
func refit(m *models.Model, module string, a, t [][]float32, D int, damp float64) error {
	v := m.Store.GetVariable(models.VarPath(module + ".weight"))
	if v == nil {
		return errors.Errorf("model has no tensor %s.weight", module)
	}
	hasBias := m.Store.GetVariable(models.VarPath(module+".bias")) != nil
	C := v.Shape().Dimensions[1]
	W, b, err := RidgeFit(a, t, C, D, hasBias, damp)
	if err != nil {
		return err
	}
	wt, err := models.FromFloat64(W, v.Shape().DType, D, C)
	if err != nil {
		return err
	}
	if err := v.SetValue(wt); err != nil {
		return errors.Wrapf(err, "replacing %s.weight", module)
	}
	if hasBias {
		bv := m.Store.GetVariable(models.VarPath(module + ".bias"))
		bt, err := models.FromFloat64(b, bv.Shape().DType, D)
		if err != nil {
			return err
		}
		if err := bv.SetValue(bt); err != nil {
			return errors.Wrapf(err, "replacing %s.bias", module)
		}
	}
	return nil
}

// RidgeFit returns W [D·C] (row-major [D, C]) and, with bias, b [D] minimizing
// Σ_rows ‖W·a_r + b − t_r‖² + λ‖W‖², λ = damp·mean(diag(AᵀA)), from the rows of a (each batch
// [rows·C]) and t ([rows·D]). AᵀA and Aᵀt are accumulated in float64; the normal equations are
// solved by Cholesky.
func RidgeFit(a, t [][]float32, C, D int, bias bool, damp float64) (W, b []float64, err error) {
	K := C
	if bias {
		K++
	}
	G := make([]float64, K*K) // AᵀA (augmented with a column of ones)
	R := make([]float64, K*D) // Aᵀt
	row := make([]float64, K)
	for bi := range a {
		n := len(a[bi]) / C
		if len(t[bi]) != n*D {
			return nil, nil, errors.Errorf("batch %d: %d input rows, %d target values for width %d", bi, n, len(t[bi]), D)
		}
		for r := range n {
			for j := range C {
				row[j] = float64(a[bi][r*C+j])
			}
			if bias {
				row[C] = 1
			}
			for i := range K {
				ri := row[i]
				if ri == 0 {
					continue
				}
				gi := G[i*K : (i+1)*K]
				for j := i; j < K; j++ {
					gi[j] += ri * row[j]
				}
				ti := t[bi][r*D : (r+1)*D]
				Ri := R[i*D : (i+1)*D]
				for d := range D {
					Ri[d] += ri * float64(ti[d])
				}
			}
		}
	}
	for i := range K { // mirror the upper triangle
		for j := i + 1; j < K; j++ {
			G[j*K+i] = G[i*K+j]
		}
	}
	diag := 0.0
	for i := range C {
		diag += G[i*K+i]
	}
	lambda := damp * diag / float64(C)
	if lambda == 0 {
		lambda = damp
	}
	for i := range C {
		G[i*K+i] += lambda
	}
	if err := cholesky(G, K); err != nil {
		return nil, nil, err
	}
	X := choleskySolve(G, K, R, D) // [K, D] = Wᵀ (and bᵀ as the last row)
	W = make([]float64, D*C)
	for d := range D {
		for j := range C {
			W[d*C+j] = X[j*D+d]
		}
	}
	if bias {
		b = append([]float64{}, X[C*D:(C+1)*D]...)
	}
	return W, b, nil
}

// cholesky factors the symmetric positive-definite G [K, K] in place into L (lower triangle).
func cholesky(G []float64, K int) error {
	for j := range K {
		s := G[j*K+j]
		for k := range j {
			s -= G[j*K+k] * G[j*K+k]
		}
		if !(s > 0) {
			return errors.Errorf("the damped normal equations are not positive definite (pivot %d = %g); raise the damping", j, s)
		}
		d := math.Sqrt(s)
		G[j*K+j] = d
		for i := j + 1; i < K; i++ {
			s := G[i*K+j]
			for k := range j {
				s -= G[i*K+k] * G[j*K+k]
			}
			G[i*K+j] = s / d
		}
	}
	return nil
}

// choleskySolve solves L·Lᵀ·X = R for X [K, D] (R [K, D], row-major).
func choleskySolve(L []float64, K int, R []float64, D int) []float64 {
	Y := append([]float64{}, R...)
	for i := range K { // forward: L·Y = R
		for k := range i {
			l := L[i*K+k]
			for d := range D {
				Y[i*D+d] -= l * Y[k*D+d]
			}
		}
		for d := range D {
			Y[i*D+d] /= L[i*K+i]
		}
	}
	for i := K - 1; i >= 0; i-- { // backward: Lᵀ·X = Y
		for k := i + 1; k < K; k++ {
			l := L[k*K+i]
			for d := range D {
				Y[i*D+d] -= l * Y[k*D+d]
			}
		}
		for d := range D {
			Y[i*D+d] /= L[i*K+i]
		}
	}
	return Y
}
