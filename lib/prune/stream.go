package prune

// Pruning a model that is not loaded: StreamScore computes the scores from the checkpoint one
// decoder layer (or one tensor) at a time, Select makes the Plan as usual, and WriteStreamed
// writes the pruned model by reading, slicing and writing one tensor at a time. Memory is one
// layer's working set (importance.StreamSource) or one tensor, never the whole model.

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/groups"
	"github.com/llmpruner/llmpruner/lib/importance"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/pkg/errors"
)

// CheckStreamable returns an error when opts cannot be carried out on a streamed model: one step
// (IterativeSteps 1, rescoring would need the pruned model), no reconstruction after FLAP's bias
// compensation, LLaMA layout.
func CheckStreamable(cfg *config.Config, opts Options) error {
	if err := models.CheckStaged(cfg); err != nil {
		return err
	}
	switch {
	case opts.steps() > 1:
		return errors.Errorf("streamed pruning makes one step (IterativeSteps %d rescores the pruned model between steps)", opts.IterativeSteps)
	case opts.Reconstruct && opts.Importance.Criterion == importance.FLAP:
		return errors.New("streamed pruning cannot reconstruct after FLAP's bias compensation (Reconstruct with criterion flap): load the model")
	}
	return nil
}

// StreamScore is Score for the model src reads from its checkpoint (see CheckStreamable for what
// is supported): Taylor importance layer by layer (TaylorEstimator.StreamScores), FLAP and Wanda-sp
// from activation statistics collected layer by layer (with FLAP's bias compensation), l1/l2 one
// tensor at a time, random without weights; ranked layer pruning by Block Influence or layer-skip
// loss in one sweep.
func StreamScore(src *importance.StreamSource, opts Options) (s *Scores, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.Errorf("score: %v", r)
		}
	}()
	cfg := src.Config
	if err := opts.Validate(cfg); err != nil {
		return nil, err
	}
	if err := CheckStreamable(cfg, opts); err != nil {
		return nil, err
	}
	if err := opts.checkSampler(); err != nil {
		return nil, err
	}
	if opts.Strategy == Layer {
		return streamRankLayers(src, opts)
	}
	fams, err := familiesOf(cfg, &opts)
	if err != nil {
		return nil, err
	}
	impOpts := opts.Importance
	if c := impOpts.Criterion; c == importance.Taylor || c == importance.FLAP || c == importance.WandaSP {
		if impOpts.Calibration, err = opts.Sampler(1); err != nil {
			return nil, errors.WithMessage(err, "calibration samples")
		}
	}
	est, err := importance.New(impOpts)
	if err != nil {
		return nil, err
	}
	se, ok := est.(importance.StreamEstimator)
	if !ok {
		return nil, errors.Errorf("criterion %s cannot be computed on a streamed model", impOpts.Criterion)
	}
	raw, err := se.StreamScores(src, fams)
	if err != nil {
		return nil, err
	}
	s = scoresOf(cfg.NumLayers(), fams, raw)
	if f, ok := est.(*importance.FLAPEstimator); ok {
		s.Compensate = f.StreamCompensation(src)
	}
	return s, nil
}

// streamRankLayers is score's layer ranking (RankLayers) for a streamed model.
func streamRankLayers(src *importance.StreamSource, opts Options) (*Scores, error) {
	if !opts.RankLayers {
		return &Scores{}, nil
	}
	calib, err := opts.Sampler(1)
	if err != nil {
		return nil, errors.WithMessage(err, "calibration samples for layer ranking")
	}
	if opts.LayerCriterion == LayerBI {
		bi, err := importance.StreamBlockInfluence(src, calib)
		if err != nil {
			return nil, err
		}
		return &Scores{Layers: bi}, nil
	}
	_, delta, err := importance.StreamLayerSkipLoss(src, calib)
	if err != nil {
		return nil, err
	}
	return &Scores{Layers: delta}, nil
}

// WriteStreamed writes the model that Apply(plan) makes of the checkpoint r (a model of config
// cfg) into the Hugging Face directory dir, reading, slicing and writing one tensor at a time
// (checkpoint.SaveHFFromReader: atomic, save.DType converts). Bias compensation is added as
// AddBiases adds it (biases the family then implies are created as zeros). It returns the pruned
// config.
func WriteStreamed(cfg *config.Config, r checkpoint.Reader, plan *Plan, dir string, save checkpoint.SaveOptions) (*config.Config, error) {
	if err := plan.validate(); err != nil {
		return nil, errors.WithMessage(err, "apply plan")
	}
	if err := plan.CheckModel(cfg); err != nil {
		return nil, errors.WithMessage(err, "apply plan")
	}
	rem := removalOf(cfg, plan)
	remove, err := rem.groups(cfg)
	if err != nil {
		return nil, err
	}
	mid, err := groupsRemovedConfig(cfg, remove)
	if err != nil {
		return nil, err
	}
	var adds map[string][]float64
	if len(rem.oBias) > 0 || len(rem.downBias) > 0 {
		if mid, adds, err = biasAdds(mid, rem.oBias, rem.downBias); err != nil {
			return nil, err
		}
	}
	drop := map[int]bool{}
	for _, l := range rem.layers {
		drop[l] = true
	}
	final, kept := layersRemovedConfig(mid, drop)
	if err := final.Validate(); err != nil {
		return nil, errors.WithMessage(err, "pruned config")
	}
	pr, err := newPrunedReader(cfg, final, r, tensorCuts(remove), kept, adds)
	if err != nil {
		return nil, err
	}
	if err := checkpoint.SaveHFFromReader(dir, final, pr, save); err != nil {
		return nil, err
	}
	return final, nil
}

// biasAdds is AddBiases for a streamed write: the config with the biases turned on, and per bias
// (unpruned layer numbering) the values to add — nil for a bias created as zeros.
func biasAdds(cfg *config.Config, oBias, downBias map[int][]float64) (*config.Config, map[string][]float64, error) {
	next := cfg.Clone()
	if err := arch.Of(cfg).EnableBiases(next, len(oBias) > 0, len(downBias) > 0); err != nil {
		return nil, nil, errors.WithMessage(err, "bias compensation")
	}
	adds := map[string][]float64{}
	had := map[string]bool{}
	for _, t := range arch.Of(cfg).Tensors(cfg) {
		had[t.Name] = true
	}
	for _, t := range arch.Of(next).Tensors(next) {
		if !had[t.Name] {
			adds[t.Name] = nil
		}
	}
	for _, pair := range []struct {
		vals map[int][]float64
		attn bool
	}{{oBias, true}, {downBias, false}} {
		for l, v := range pair.vals {
			if len(v) != cfg.Hidden {
				return nil, nil, errors.Errorf("layer %d output bias has %d values, hidden size is %d", l, len(v), cfg.Hidden)
			}
			attn, mlp := arch.Of(next).OutputBiases(next, l)
			if pair.attn {
				adds[attn] = v
			} else {
				adds[mlp] = v
			}
		}
	}
	return next, adds, nil
}

// prunedReader presents the pruned model's tensors, read from the unpruned checkpoint and sliced
// on demand, with compensation biases added (or created).
type prunedReader struct {
	src   checkpoint.Reader
	infos []checkpoint.TensorInfo
	from  map[string]string        // pruned tensor name → unpruned name
	cuts  map[string]map[int][]int // unpruned name → axis → removed indices
	adds  map[string][]float64     // unpruned bias name → values to add (nil: created as zeros)
	dtype map[string]dtypes.DType  // created biases → their dtype (the weight's)
}

func newPrunedReader(cfg, final *config.Config, src checkpoint.Reader, cuts map[string]map[int][]int, keptLayers []int, adds map[string][]float64) (*prunedReader, error) {
	specs, err := models.ExpectedTensors(final)
	if err != nil {
		return nil, err
	}
	srcInfo := map[string]checkpoint.TensorInfo{}
	for _, ti := range src.Tensors() {
		srcInfo[ti.Name] = ti
	}
	p := &prunedReader{src: src, from: map[string]string{}, cuts: cuts, adds: adds, dtype: map[string]dtypes.DType{}}
	prefix := arch.Of(final).LayerPrefix()
	for newIdx, l := range keptLayers {
		to, from := fmt.Sprintf(prefix, newIdx), fmt.Sprintf(arch.Of(cfg).LayerPrefix(), l)
		for _, n := range groups.LayerTensors(final, newIdx) {
			p.from[n] = from + strings.TrimPrefix(n, to)
		}
	}
	for _, s := range specs {
		name, ok := p.from[s.Name]
		if !ok {
			name = s.Name
			p.from[s.Name] = name
		}
		ti, ok := srcInfo[name]
		if _, add := adds[name]; !ok && add && strings.HasSuffix(name, ".bias") {
			w, ok := srcInfo[strings.TrimSuffix(name, ".bias")+".weight"]
			if !ok {
				return nil, errors.Errorf("apply plan: checkpoint has no tensor %s.weight", strings.TrimSuffix(name, ".bias"))
			}
			p.dtype[name] = w.DType
			p.infos = append(p.infos, checkpoint.TensorInfo{Name: s.Name, DType: w.DType, Shape: s.Shape, File: w.File})
			continue
		}
		if !ok {
			return nil, errors.Errorf("apply plan: checkpoint has no tensor %s", name)
		}
		if want := cutShape(ti.Shape, cuts[name]); !slices.Equal(want, s.Shape) {
			return nil, errors.Errorf("apply plan: %s would become %v, the pruned config implies %v", s.Name, want, s.Shape)
		}
		p.infos = append(p.infos, checkpoint.TensorInfo{Name: s.Name, DType: ti.DType, Shape: s.Shape, File: ti.File})
	}
	sort.Slice(p.infos, func(i, j int) bool { return p.infos[i].Name < p.infos[j].Name })
	return p, nil
}

// cutShape is shape without the removed indices.
func cutShape(shape []int, removed map[int][]int) []int {
	out := slices.Clone(shape)
	for a, idx := range removed {
		out[a] -= len(idx)
	}
	return out
}

func (p *prunedReader) Tensors() []checkpoint.TensorInfo { return slices.Clone(p.infos) }

func (p *prunedReader) Read(name string) (*tensors.Tensor, error) {
	src, ok := p.from[name]
	if !ok {
		return nil, errors.Errorf("pruned model has no tensor %q", name)
	}
	t, err := p.read(src)
	if err != nil {
		return nil, err
	}
	vals, ok := p.adds[src]
	if !ok || vals == nil {
		return t, nil
	}
	defer t.FinalizeAll()
	cur, err := models.ToFloat64(t) // as AddBiases: float64 sum, rounded once to the bias's dtype
	if err != nil {
		return nil, errors.WithMessage(err, src)
	}
	for i, x := range vals {
		cur[i] += x
	}
	return models.FromFloat64(cur, t.DType(), len(cur))
}

// read reads the unpruned tensor src sliced by its cuts (zeros for a created bias).
func (p *prunedReader) read(src string) (*tensors.Tensor, error) {
	if dt, ok := p.dtype[src]; ok {
		for _, ti := range p.infos {
			if p.from[ti.Name] == src {
				return models.FromFloat64(make([]float64, ti.Shape[0]), dt, ti.Shape[0])
			}
		}
	}
	t, err := p.src.Read(src)
	if err != nil {
		return nil, err
	}
	cut := p.cuts[src]
	if len(cut) == 0 {
		return t, nil
	}
	defer t.FinalizeAll()
	s, err := sliceTensor(t, cut)
	if err != nil {
		return nil, errors.WithMessagef(err, "slicing %s", src)
	}
	return s, nil
}

// Close does not close the unpruned checkpoint (its owner does).
func (p *prunedReader) Close() error { return nil }
