package importance

import (
	"math"

	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/groups"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/pkg/errors"
)

// FLAPEstimator is FLAP's fluctuation criterion (An et al., AAAI 2024; CASIA-IVA-Lab/FLAP's
// default metric "WIFV"), forward only: for input channel j of an output projection W ([D, C];
// arch.Family.OutputProjections: LLaMA's o_proj for heads, down_proj for MLP channels; ChatGLM's
// attention.dense and mlp.dense_4h_to_h), with Fluc_j the fluctuation of its input over the
// calibration tokens (ChannelStats.Fluc),
//
//	c_j = Fluc_j · Σ_i W[i, j]²       (attention: c_j², squared again as FLAP does)
//
// standardized per layer and module — (c − mean(c)) / std(c) over all of the layer's o_proj (or
// down_proj) input channels, unbiased std as torch.std — so that heads and MLP channels of all
// layers compare on one scale (FLAP's adaptive structure search, prune.Adaptive). A head group's
// score is the mean of the standardized scores of its channels (GQA: the channels of all query
// heads that read the kv head); an MLP channel's is its own. Where FLAP hard-codes head_dim 128
// and LLaMA-1's MHA, the model's values are used.
//
// Scores keeps the statistics it computed (Stats) for Compensation.
type FLAPEstimator struct {
	Calibration [][]int
	// Stats, when set, are used instead of a calibration pass.
	Stats *InputStats
}

// Scores implements Estimator (head and MLP-channel families).
func (e *FLAPEstimator) Scores(m *models.Model, fams []*groups.Family) ([][]float64, error) {
	if err := e.collect(m.Config, func() (*InputStats, error) { return CollectInputStats(m, e.Calibration) }); err != nil {
		return nil, errors.WithMessage(err, "flap importance")
	}
	return channelScores(m.Config, m.WeightFloat64, fams, "flap", e.channel, mean)
}

// StreamScores implements StreamEstimator: the statistics are collected layer by layer
// (StreamInputStats) and the output projections read from the checkpoint one at a time.
func (e *FLAPEstimator) StreamScores(src *StreamSource, fams []*groups.Family) ([][]float64, error) {
	if err := e.collect(src.Config, func() (*InputStats, error) { return StreamInputStats(src, e.Calibration) }); err != nil {
		return nil, errors.WithMessage(err, "flap importance")
	}
	return channelScores(src.Config, readerWeights(src), fams, "flap", e.channel, mean)
}

// channel is FLAP's standardized channel score of layer l's output projection W [D, C].
func (e *FLAPEstimator) channel(l int, attn bool, w []float64, D int) ([]float64, error) {
	st := e.Stats.MLP[l]
	if attn {
		st = e.Stats.Attn[l]
	}
	C := len(st.Fluc)
	c := make([]float64, C)
	for j := range C {
		ss := 0.0
		for i := range D {
			x := w[i*C+j]
			ss += x * x
		}
		c[j] = st.Fluc[j] * ss
		if attn {
			c[j] *= c[j]
		}
	}
	return standardize(c)
}

// weightFunc reads a weight as float64 (row-major) with its dimensions.
type weightFunc func(name string) ([]float64, []int, error)

// readerWeights reads weights from src's checkpoint, one tensor at a time.
func readerWeights(src *StreamSource) weightFunc {
	return func(name string) ([]float64, []int, error) {
		t, err := src.Reader.Read(name)
		if err != nil {
			return nil, nil, err
		}
		defer t.FinalizeAll()
		data, err := models.ToFloat64(t)
		if err != nil {
			return nil, nil, errors.WithMessage(err, name)
		}
		return data, t.Shape().Dimensions, nil
	}
}

// collect computes the statistics (with stats) unless they are given.
func (e *FLAPEstimator) collect(cfg *config.Config, stats func() (*InputStats, error)) error {
	if e.Stats != nil {
		return checkStats(cfg, e.Stats)
	}
	if len(e.Calibration) < 2 {
		return errors.Errorf("FLAP's fluctuation needs at least 2 calibration samples (got %d)", len(e.Calibration))
	}
	st, err := stats()
	if err != nil {
		return err
	}
	e.Stats = st
	return nil
}

// Compensation returns FLAP's bias compensation for the model the scores were computed on: for
// layer l, removing kv-head groups removedKV and MLP channels removedMLP adds
//
//	o_proj bias    += Σ_{j ∈ removed heads' channels} W_o[:, j] · Mean_j
//	down_proj bias += Σ_{j ∈ removed channels}        W_down[:, j] · Mean_j
//
// (the removed inputs' mean contribution, so the layer's expected output is kept). FLAP computes
// this in float16; here it is float64 over float32 statistics. Call after Scores.
func (e *FLAPEstimator) Compensation(m *models.Model) func(l int, removedKV, removedMLP []int) ([]float64, []float64, error) {
	return e.compensation(m.Config, m.WeightFloat64)
}

// StreamCompensation is Compensation for the model src reads from its checkpoint (the output
// projections read when needed). Call after StreamScores.
func (e *FLAPEstimator) StreamCompensation(src *StreamSource) func(l int, removedKV, removedMLP []int) ([]float64, []float64, error) {
	return e.compensation(src.Config, readerWeights(src))
}

func (e *FLAPEstimator) compensation(cfg *config.Config, weight weightFunc) func(l int, removedKV, removedMLP []int) ([]float64, []float64, error) {
	cfg = cfg.Clone()
	fam := arch.Of(cfg)
	return func(l int, removedKV, removedMLP []int) ([]float64, []float64, error) {
		attn, mlp := fam.OutputProjections(cfg, l)
		if e.Stats == nil {
			return nil, nil, errors.New("flap compensation: no statistics (Scores was not run)")
		}
		var ob, db []float64
		var err error
		if len(removedKV) > 0 {
			var cols []int
			for _, kv := range removedKV {
				for _, h := range groups.QueryHeadsOf(cfg, l, kv) {
					for d := range cfg.HeadDim {
						cols = append(cols, h*cfg.HeadDim+d)
					}
				}
			}
			if ob, err = meanContribution(weight, attn+".weight", e.Stats.Attn[l].Mean, cols); err != nil {
				return nil, nil, err
			}
		}
		if len(removedMLP) > 0 {
			if db, err = meanContribution(weight, mlp+".weight", e.Stats.MLP[l].Mean, removedMLP); err != nil {
				return nil, nil, err
			}
		}
		return ob, db, nil
	}
}

// meanContribution is Σ_{j ∈ cols} W[:, j]·mean_j for the weight W [D, C] named name.
func meanContribution(weight weightFunc, name string, mean []float64, cols []int) ([]float64, error) {
	w, dims, err := weight(name)
	if err != nil {
		return nil, err
	}
	D, C := dims[0], dims[1]
	if C != len(mean) {
		return nil, errors.Errorf("%s has %d input channels, the statistics %d (model changed since scoring?)", name, C, len(mean))
	}
	out := make([]float64, D)
	for i := range D {
		row := w[i*C : (i+1)*C]
		for _, j := range cols {
			out[i] += row[j] * mean[j]
		}
	}
	return out, nil
}

// WandaSPEstimator is Wanda's structured variant as FLAP's baseline (prune_wanda_sp): for input
// channel j of o_proj / down_proj ([D, C]), with ‖X_j‖₂² the mean over calibration samples of
// Σ_tokens x_j² (ChannelStats.SumSq / N),
//
//	s_j = (1/D) Σ_i |W[i, j]| · ‖X_j‖₂
//
// summed over a head group's channels (GQA: all query heads that read the kv head); an MLP
// channel scores s_j. The statistics come from one pass over the model as it is (FLAP's baseline
// re-collects them after each pruned layer).
type WandaSPEstimator struct {
	Calibration [][]int
	Stats       *InputStats
}

// Scores implements Estimator (head and MLP-channel families).
func (e *WandaSPEstimator) Scores(m *models.Model, fams []*groups.Family) ([][]float64, error) {
	if err := e.collect(m.Config, func() (*InputStats, error) { return CollectInputStats(m, e.Calibration) }); err != nil {
		return nil, errors.WithMessage(err, "wanda-sp importance")
	}
	return channelScores(m.Config, m.WeightFloat64, fams, "wanda-sp", e.channel, sum)
}

// StreamScores implements StreamEstimator: the statistics are collected layer by layer
// (StreamInputStats) and the output projections read from the checkpoint one at a time.
func (e *WandaSPEstimator) StreamScores(src *StreamSource, fams []*groups.Family) ([][]float64, error) {
	if err := e.collect(src.Config, func() (*InputStats, error) { return StreamInputStats(src, e.Calibration) }); err != nil {
		return nil, errors.WithMessage(err, "wanda-sp importance")
	}
	return channelScores(src.Config, readerWeights(src), fams, "wanda-sp", e.channel, sum)
}

// collect computes the statistics (with stats) unless they are given.
func (e *WandaSPEstimator) collect(cfg *config.Config, stats func() (*InputStats, error)) error {
	if e.Stats != nil {
		return checkStats(cfg, e.Stats)
	}
	st, err := stats()
	if err != nil {
		return err
	}
	e.Stats = st
	return nil
}

// channel is Wanda-sp's channel score of layer l's output projection W [D, C].
func (e *WandaSPEstimator) channel(l int, attn bool, w []float64, D int) ([]float64, error) {
	N := float64(e.Stats.Samples)
	st := e.Stats.MLP[l]
	if attn {
		st = e.Stats.Attn[l]
	}
	C := len(st.SumSq)
	s := make([]float64, C)
	for j := range C {
		a := 0.0
		for i := range D {
			a += math.Abs(w[i*C+j])
		}
		s[j] = a / float64(D) * math.Sqrt(st.SumSq[j]/N)
	}
	return s, nil
}

// channelScores scores head and MLP-channel families from per-input-channel scores of the
// layer's output projections (o_proj / down_proj): channel(l, attn, W, D) gives the layer's channel scores from the projection's weight
// W [D, C] (row-major float64), and head reduces a head group's channel scores.
func channelScores(cfg *config.Config, weight weightFunc, fams []*groups.Family, name string,
	channel func(l int, attn bool, w []float64, D int) ([]float64, error), head func([]float64) float64) ([][]float64, error) {
	fam := arch.Of(cfg)
	out := make([][]float64, len(fams))
	for fi, f := range fams {
		attn, mlp := fam.OutputProjections(cfg, f.Layer)
		var tensor string
		switch f.Kind {
		case groups.Head:
			tensor = attn + ".weight"
		case groups.MLPChannel:
			tensor = mlp + ".weight"
		default:
			return nil, errors.Errorf("%s importance scores attention heads and MLP channels (block pruning), not %ss", name, f.Kind)
		}
		w, dims, err := weight(tensor)
		if err != nil {
			return nil, err
		}
		c, err := channel(f.Layer, f.Kind == groups.Head, w, dims[0])
		if err != nil {
			return nil, errors.WithMessagef(err, "%s importance, %s", name, f.Name())
		}
		out[fi] = make([]float64, len(f.Groups))
		for gi := range f.Groups {
			if f.Kind == groups.MLPChannel {
				out[fi][gi] = c[gi]
				continue
			}
			var ch []float64
			for _, h := range groups.QueryHeadsOf(cfg, f.Layer, gi) {
				ch = append(ch, c[h*cfg.HeadDim:(h+1)*cfg.HeadDim]...)
			}
			out[fi][gi] = head(ch)
		}
	}
	return out, nil
}

// standardize returns (c − mean) / std with the unbiased standard deviation (torch.std).
func standardize(c []float64) ([]float64, error) {
	if len(c) < 2 {
		return nil, errors.Errorf("cannot standardize %d score(s)", len(c))
	}
	mu := mean(c)
	v := 0.0
	for _, x := range c {
		v += (x - mu) * (x - mu)
	}
	sd := math.Sqrt(v / float64(len(c)-1))
	if sd == 0 || math.IsNaN(sd) {
		return nil, errors.New("all channel scores are equal (no fluctuation over the calibration samples); use more or longer samples")
	}
	out := make([]float64, len(c))
	for i, x := range c {
		out[i] = (x - mu) / sd
	}
	return out, nil
}

func sum(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s
}

func mean(v []float64) float64 { return sum(v) / float64(len(v)) }

// checkStats verifies that st fits cfg's current widths.
func checkStats(cfg *config.Config, st *InputStats) error {
	if len(st.Attn) != cfg.NumLayers() || len(st.MLP) != cfg.NumLayers() {
		return errors.Errorf("statistics for %d layers, the model has %d", len(st.Attn), cfg.NumLayers())
	}
	for l := range cfg.NumLayers() {
		if len(st.Attn[l].Mean) != cfg.Heads[l]*cfg.HeadDim || len(st.MLP[l].Mean) != cfg.Inter[l] {
			return errors.Errorf("layer %d: statistics of %d/%d channels, the model has %d/%d", l,
				len(st.Attn[l].Mean), len(st.MLP[l].Mean), cfg.Heads[l]*cfg.HeadDim, cfg.Inter[l])
		}
	}
	return nil
}
