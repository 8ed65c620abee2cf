package importance

import (
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/pkg/errors"
)

// BlockInfluence is ShortGPT's Block Influence (Men et al., 2024) of every decoder layer on the
// calibration samples: BI_l = 1 − mean over all tokens of cos(x_l, x_{l+1}), the cosine similarity
// between the layer's input and output hidden states. A layer that barely turns the residual
// stream scores near 0 and is the first to go. One forward pass (LLaMA family).
func BlockInfluence(m *models.Model, calib [][]int) (bi []float64, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.Errorf("block influence: %v", r)
		}
	}()
	if err := checkCalibration(calib); err != nil {
		return nil, err
	}
	if err := models.CheckStaged(m.Config); err != nil {
		return nil, errors.WithMessage(err, "block influence")
	}
	cfg := m.Config.Clone()
	L := cfg.NumLayers()
	exec, err := model.NewExec(m.Backend, m.Store, func(scope *model.Scope, tokens *Node) *Node {
		hooks := &models.Hooks{Weight: func(g *Graph, name string) *Node { return models.VariableF32(scope.Store(), g, name) }}
		x := models.EmbedStage(cfg, tokens, hooks) // [B, S, D]
		var sums []*Node
		for l := range L {
			y := models.LayerStage(cfg, l, x, hooks)
			dot := ReduceSum(Mul(x, y), -1)                                              // [B, S]
			norms := Mul(Sqrt(ReduceSum(Square(x), -1)), Sqrt(ReduceSum(Square(y), -1))) // [B, S]
			sums = append(sums, ReduceAllSum(Div(dot, norms)))                           // Σ cos
			x = y
		}
		return Stack(sums, 0) // [L]
	})
	if err != nil {
		return nil, errors.WithMessage(err, "block influence")
	}
	defer exec.Finalize()
	bi = make([]float64, L)
	tokens := 0
	for s := 0; s < len(calib); s += statsBatch {
		batch := calib[s:min(s+statsBatch, len(calib))]
		out, err := exec.Call(tokensTensor(batch))
		if err != nil {
			return nil, errors.WithMessagef(err, "block influence, samples %d–%d", s, s+len(batch)-1)
		}
		v, err := tensors.CopyFlatData[float32](out[0])
		out[0].FinalizeAll()
		if err != nil {
			return nil, err
		}
		for l := range L {
			bi[l] += float64(v[l])
		}
		tokens += len(batch) * len(batch[0])
	}
	for l := range bi {
		bi[l] = 1 - bi[l]/float64(tokens)
	}
	return bi, nil
}
