package importance

import (
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/pkg/errors"
)

// LayerSkipLoss measures the importance of each decoder layer as the increase of the calibration
// loss (models.LMLoss over all samples) when that layer alone is skipped: the tensors that write
// into its residual stream (arch.Family.ResidualOutputs; LLaMA: o_proj and down_proj weights and
// biases) are multiplied by 0, which makes the residual layer the identity.
// It returns the base loss and delta[l] = loss(without layer l) − base. One compiled graph takes the
// per-layer gates as an input, so the L+1 evaluations share it.
func LayerSkipLoss(m *models.Model, calib [][]int) (base float64, delta []float64, err error) {
	if err := checkCalibration(calib); err != nil {
		return 0, nil, err
	}
	L := m.Config.NumLayers()
	outputs := map[string]int{} // residual output tensor → its layer
	for l := range L {
		names, err := arch.Of(m.Config).ResidualOutputs(m.Config, l)
		if err != nil {
			return 0, nil, err
		}
		for _, n := range names {
			outputs[n] = l
		}
	}
	exec, err := model.NewExec(m.Backend, m.Store, func(scope *model.Scope, tokens, gates *Node) *Node {
		store := scope.Store()
		hooks := &models.Hooks{Weight: func(g *Graph, hfName string) *Node {
			w := models.VariableF32(store, g, hfName)
			if l, ok := outputs[hfName]; ok {
				gate := Reshape(Slice(gates, AxisRange(l, l+1))) // scalar
				w = Mul(w, BroadcastToShape(gate, w.Shape()))
			}
			return w
		}}
		logits := models.Logits(scope, m.Config, tokens, nil, hooks)
		return models.LMLoss(logits, tokens, nil)
	})
	if err != nil {
		return 0, nil, errors.WithMessage(err, "layer-skip importance")
	}
	defer exec.Finalize()
	tok := tokensTensor(calib)
	run := func(skip int) (float64, error) {
		g := make([]float32, L)
		for i := range g {
			g[i] = 1
		}
		if skip >= 0 {
			g[skip] = 0
		}
		out, err := exec.Call(tok, tensors.FromFlatDataAndDimensions(g, L))
		if err != nil {
			return 0, err
		}
		defer out[0].FinalizeAll()
		if out[0].DType() != dtypes.Float32 {
			return 0, errors.Errorf("loss has dtype %s", out[0].DType())
		}
		return float64(tensors.ToScalar[float32](out[0])), nil
	}
	if base, err = run(-1); err != nil {
		return 0, nil, errors.WithMessage(err, "layer-skip importance: base loss")
	}
	delta = make([]float64, L)
	for l := range L {
		loss, err := run(l)
		if err != nil {
			return 0, nil, errors.WithMessagef(err, "layer-skip importance: layer %d", l)
		}
		delta[l] = loss - base
	}
	return base, delta, nil
}
