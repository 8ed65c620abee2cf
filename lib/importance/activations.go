package importance

import (
	"slices"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/pkg/errors"
)

// InputStats are statistics of the inputs of every decoder layer's output projections
// (arch.Family.OutputProjections) over the calibration tokens, from one forward pass of the model
// as it is (forward only, no gradients): Attn[l] for the attention output projection (LLaMA's
// o_proj: the concatenated head outputs, H_l·head_dim channels) and MLP[l] for the MLP output
// projection (down_proj: the MLP activations, I_l channels). They drive FLAP, Wanda-sp and FLAP's
// bias compensation.
type InputStats struct {
	Samples, Tokens int // calibration samples, tokens per sample
	Attn, MLP       []ChannelStats
}

// ChannelStats are per-input-channel statistics of one projection's input.
type ChannelStats struct {
	// Mean is the mean over all calibration tokens (FLAP's "baseline": the mean of each sample's
	// token mean, updated sample by sample).
	Mean []float64
	// Fluc is FLAP's fluctuation estimator, updated once per sample s = 1…N of T tokens, with n = s−1
	// samples seen before and m the running Mean including sample s:
	//	Fluc ← 0 for the first sample, else Fluc·(n−1)/n + Σ_tokens (x − m)² / (n+1).
	// (FLAP's code multiplies (x − m)(x − m_old), but its m_old aliases the updated tensor, so both
	// factors use m; this is what it computes.)
	Fluc []float64
	// SumSq is Σ x² over all calibration tokens (‖X_j‖₂², Wanda's input norm).
	SumSq []float64
}

// statsBatch is the number of calibration samples per forward pass of CollectInputStats.
const statsBatch = 8

// CollectInputStats runs the calibration samples (equal lengths) through m and accumulates the
// InputStats of every layer's output-projection inputs. Samples are folded in in order, as FLAP's
// per-sample updates.
func CollectInputStats(m *models.Model, calib [][]int) (st *InputStats, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.Errorf("activation statistics: %v", r)
		}
	}()
	if err := checkCalibration(calib); err != nil {
		return nil, err
	}
	cfg := m.Config.Clone()
	fam := arch.Of(cfg)
	L := cfg.NumLayers()
	st = &InputStats{Samples: len(calib), Tokens: len(calib[0]), Attn: make([]ChannelStats, L), MLP: make([]ChannelStats, L)}
	var modules []string // per layer: attention, MLP output projection
	for l := range L {
		st.Attn[l] = newChannelStats(cfg.Heads[l] * cfg.HeadDim)
		st.MLP[l] = newChannelStats(cfg.Inter[l])
		attn, mlp := fam.OutputProjections(cfg, l)
		modules = append(modules, attn, mlp)
	}
	// Per sample and projection input x [T, C]: token mean [C], M2 = Σ_t (x − mean)² [C] and Σ_t x² [C].
	exec, err := model.NewExec(m.Backend, m.Store, func(scope *model.Scope, tokens *Node) []*Node {
		inputs := map[string]*Node{}
		hooks := &models.Hooks{Linear: func(x *Node, module string, w, b *Node) *Node {
			if slices.Contains(modules, module) {
				inputs[module] = x // [B, T, C]
			}
			return models.Linear(x, module, w, b)
		}}
		models.Logits(scope, cfg, tokens, nil, hooks)
		var outs []*Node
		for _, mod := range modules { // layer l's attention projection at 2l, its MLP projection at 2l+1
			x := inputs[mod]
			if x == nil {
				exceptions.Panicf("the forward pass did not apply %s", mod)
			}
			mean := ReduceAndKeep(x, ReduceMean, 1)                            // [B, 1, C]
			m2 := ReduceSum(Square(Sub(x, mean)), 1)                           // [B, C]
			outs = append(outs, Squeeze(mean, 1), m2, ReduceSum(Square(x), 1)) // [B, C] each
		}
		return outs
	})
	if err != nil {
		return nil, err
	}
	defer exec.Finalize()
	n := 0 // samples folded in so far
	for start := 0; start < len(calib); start += statsBatch {
		batch := calib[start:min(start+statsBatch, len(calib))]
		res, err := exec.Call(tokensTensor(batch))
		if err != nil {
			return nil, errors.WithMessagef(err, "calibration samples %d–%d", start, start+len(batch)-1)
		}
		vals := make([][]float32, len(res))
		for i, r := range res {
			if vals[i], err = tensors.CopyFlatData[float32](r); err != nil {
				return nil, err
			}
			r.FinalizeAll()
		}
		for b := range batch {
			for l := range L {
				for k, cs := range []*ChannelStats{&st.Attn[l], &st.MLP[l]} {
					C := len(cs.Mean)
					o := 3 * (2*l + k)
					row := func(i int) []float32 { return vals[o+i][b*C : (b+1)*C] }
					cs.add(n, len(batch[b]), row(0), row(1), row(2))
				}
			}
			n++
		}
	}
	return st, nil
}

func newChannelStats(C int) ChannelStats {
	return ChannelStats{Mean: make([]float64, C), Fluc: make([]float64, C), SumSq: make([]float64, C)}
}

// add folds in one sample of T tokens (its token mean, M2 = Σ_t (x − mean)², Σ_t x²), n samples
// having been folded in before. Σ_t (x − m)² for the updated mean m is M2 + T·(mean − m)².
func (c *ChannelStats) add(n, T int, mean, m2, sumsq []float32) {
	fn := float64(n)
	for j := range c.Mean {
		c.Mean[j] = c.Mean[j]*fn/(fn+1) + float64(mean[j])/(fn+1)
		if n == 0 {
			c.Fluc[j] = 0
		} else {
			d := float64(mean[j]) - c.Mean[j]
			c.Fluc[j] = c.Fluc[j]*(fn-1)/fn + (float64(m2[j])+float64(T)*d*d)/(fn+1)
		}
		c.SumSq[j] += float64(sumsq[j])
	}
}
