package importance

// Forward-only statistics of a model read from its checkpoint one decoder layer at a time
// (models.Streamed): layer ranking (Block Influence, layer-skip loss) and the activation statistics
// of FLAP / Wanda-sp. Each equals its loaded counterpart: the same staged graphs, the same sums.

import (
	"slices"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/pkg/errors"
)

// streamed returns the models.Streamed of src (its Finalize is the caller's).
func (src *StreamSource) streamed() (*models.Streamed, error) {
	s, err := models.NewStreamed(&models.Model{Config: src.Config, Backend: src.Backend}, src.Reader)
	if err != nil {
		return nil, err
	}
	s.Progress = src.Progress
	return s, nil
}

// calibBatches cuts the calibration samples into token batches of statsBatch samples.
func calibBatches(calib [][]int) []*tensors.Tensor {
	var out []*tensors.Tensor
	for s := 0; s < len(calib); s += statsBatch {
		out = append(out, tokensTensor(calib[s:min(s+statsBatch, len(calib))]))
	}
	return out
}

// StreamBlockInfluence is BlockInfluence of the model src reads from its checkpoint, one decoder
// layer at a time (the calibration samples' hidden states held between layers).
func StreamBlockInfluence(src *StreamSource, calib [][]int) (bi []float64, err error) {
	if err := checkCalibration(calib); err != nil {
		return nil, err
	}
	s, err := src.streamed()
	if err != nil {
		return nil, errors.WithMessage(err, "block influence (streamed)")
	}
	defer s.Finalize()
	tokens := calibBatches(calib)
	defer freeAll(tokens)
	xs, err := s.Embed(tokens)
	if err != nil {
		return nil, errors.WithMessage(err, "block influence (streamed)")
	}
	defer func() { freeAll(xs) }()
	L := src.Config.NumLayers()
	bi = make([]float64, L)
	for l := range L {
		sums, err := s.Layer(l, xs, "bi", func(l int, x *Node, hooks *models.Hooks) (*Node, []*Node) {
			y := models.LayerStage(src.Config, l, x, hooks)
			dot := ReduceSum(Mul(x, y), -1)                                              // [B, S]
			norms := Mul(Sqrt(ReduceSum(Square(x), -1)), Sqrt(ReduceSum(Square(y), -1))) // [B, S]
			return y, []*Node{ReduceAllSum(Div(dot, norms))}                             // Σ cos
		})
		if err != nil {
			return nil, errors.WithMessage(err, "block influence (streamed)")
		}
		for _, o := range sums {
			bi[l] += float64(tensors.ToScalar[float32](o[0]))
			freeAll(o)
		}
	}
	tokensN := float64(len(calib) * len(calib[0]))
	for l := range bi {
		bi[l] = 1 - bi[l]/tokensN
	}
	return bi, nil
}

// StreamLayerSkipLoss is LayerSkipLoss of the model src reads from its checkpoint, in one sweep:
// L+1 residual streams of the calibration batch go through the layers together — stream L the full
// model's, stream s the model without layer s (it passes layer s unchanged, as the zeroed output
// projections make it) — and the head gives each stream's loss. Memory: L+1 hidden states of the
// calibration batch plus one layer.
func StreamLayerSkipLoss(src *StreamSource, calib [][]int) (base float64, delta []float64, err error) {
	if err := checkCalibration(calib); err != nil {
		return 0, nil, err
	}
	s, err := src.streamed()
	if err != nil {
		return 0, nil, errors.WithMessage(err, "layer-skip importance (streamed)")
	}
	defer s.Finalize()
	L := src.Config.NumLayers()
	tok := tokensTensor(calib)
	defer tok.FinalizeAll()
	x0, err := s.Embed([]*tensors.Tensor{tok})
	if err != nil {
		return 0, nil, errors.WithMessage(err, "layer-skip importance (streamed)")
	}
	streams := make([]*tensors.Tensor, L+1) // stream s < L skips layer s; stream L is the full model
	streams[L] = x0[0]
	defer func() { freeAll(streams) }()
	for l := range L {
		// Stream l leaves layer l out: it is the full model's input of layer l, copied.
		if streams[l], err = copyTensor(streams[L]); err != nil {
			return 0, nil, err
		}
		var run []*tensors.Tensor
		for k, x := range streams {
			if k != l && x != nil {
				run = append(run, x)
			}
		}
		if _, err := s.Layer(l, run, "", nil); err != nil {
			return 0, nil, errors.WithMessage(err, "layer-skip importance (streamed)")
		}
		i := 0
		for k := range streams {
			if k != l && streams[k] != nil {
				streams[k], i = run[i], i+1
			}
		}
	}
	in := make([][]*tensors.Tensor, L+1)
	for k := range in {
		in[k] = []*tensors.Tensor{tok}
	}
	outs, err := s.Head(streams, in, "loss", func(x *Node, in []*Node, hooks *models.Hooks) []*Node {
		return []*Node{models.LMLoss(models.HeadStage(src.Config, x, hooks), in[0], nil)}
	})
	if err != nil {
		return 0, nil, errors.WithMessage(err, "layer-skip importance (streamed)")
	}
	losses := make([]float64, L+1)
	for k, o := range outs {
		losses[k] = float64(tensors.ToScalar[float32](o[0]))
		freeAll(o)
	}
	delta = make([]float64, L)
	for l := range L {
		delta[l] = losses[l] - losses[L]
	}
	return losses[L], delta, nil
}

// copyTensor returns a copy of t (on the host).
func copyTensor(t *tensors.Tensor) (*tensors.Tensor, error) {
	out := tensors.FromShape(t.Shape())
	var err error
	if e := t.ConstBytes(func(src []byte) {
		err = out.MutableBytes(func(dst []byte) { copy(dst, src) })
	}); e != nil {
		return nil, e
	}
	return out, err
}

// StreamInputStats is CollectInputStats of the model src reads from its checkpoint, one decoder
// layer at a time: each layer's graph returns, besides its output, the per-sample statistics of its
// output projections' inputs, folded in sample by sample as CollectInputStats does.
func StreamInputStats(src *StreamSource, calib [][]int) (st *InputStats, err error) {
	if err := checkCalibration(calib); err != nil {
		return nil, err
	}
	s, err := src.streamed()
	if err != nil {
		return nil, errors.WithMessage(err, "activation statistics (streamed)")
	}
	defer s.Finalize()
	cfg := src.Config
	fam := arch.Of(cfg)
	L := cfg.NumLayers()
	st = &InputStats{Samples: len(calib), Tokens: len(calib[0]), Attn: make([]ChannelStats, L), MLP: make([]ChannelStats, L)}
	tokens := calibBatches(calib)
	defer freeAll(tokens)
	xs, err := s.Embed(tokens)
	if err != nil {
		return nil, errors.WithMessage(err, "activation statistics (streamed)")
	}
	defer func() { freeAll(xs) }()
	for l := range L {
		st.Attn[l] = newChannelStats(cfg.Heads[l] * cfg.HeadDim)
		st.MLP[l] = newChannelStats(cfg.Inter[l])
		attn, mlp := fam.OutputProjections(cfg, l)
		modules := []string{attn, mlp}
		outs, err := s.Layer(l, xs, "input stats", func(l int, x *Node, hooks *models.Hooks) (*Node, []*Node) {
			inputs := map[string]*Node{}
			linear := hooks.Linear
			if linear == nil {
				linear = models.Linear
			}
			hooks.Linear = func(x *Node, module string, w, b *Node) *Node {
				if slices.Contains(modules, module) {
					inputs[module] = x // [B, T, C]
				}
				return linear(x, module, w, b)
			}
			y := models.LayerStage(cfg, l, x, hooks)
			var stats []*Node
			for _, mod := range modules {
				x := inputs[mod]
				if x == nil {
					panic(errors.Errorf("the forward pass did not apply %s", mod))
				}
				mean := ReduceAndKeep(x, ReduceMean, 1)                              // [B, 1, C]
				m2 := ReduceSum(Square(Sub(x, mean)), 1)                             // [B, C]
				stats = append(stats, Squeeze(mean, 1), m2, ReduceSum(Square(x), 1)) // [B, C] each
			}
			return y, stats
		})
		if err != nil {
			return nil, errors.WithMessage(err, "activation statistics (streamed)")
		}
		n := 0 // samples folded in so far
		for b, res := range outs {
			vals := make([][]float32, len(res))
			for i, r := range res {
				if vals[i], err = tensors.CopyFlatData[float32](r); err != nil {
					return nil, err
				}
				r.FinalizeAll()
			}
			rows := min(statsBatch, len(calib)-b*statsBatch)
			for r := range rows {
				for k, cs := range []*ChannelStats{&st.Attn[l], &st.MLP[l]} {
					C := len(cs.Mean)
					row := func(i int) []float32 { return vals[3*k+i][r*C : (r+1)*C] }
					cs.add(n, len(calib[0]), row(0), row(1), row(2))
				}
				n++
			}
		}
	}
	return st, nil
}
