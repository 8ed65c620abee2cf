package prune

// Pruning a model that is not loaded: StreamScore computes the scores from the checkpoint one
// decoder layer (or one tensor) at a time, Select makes the Plan as usual, and WriteStreamed
// writes the pruned model by reading, slicing and writing one tensor at a time. Memory is one
// layer's working set (importance.StreamSource) or one tensor, never the whole model.

import (
	"slices"
	"sort"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/groups"
	"github.com/llmpruner/llmpruner/lib/importance"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/pkg/errors"
)

// CheckStreamable returns an error when opts cannot be carried out on a streamed model: one step
// (IterativeSteps 1, rescoring would need the pruned model), no ranked layer pruning, LLaMA family.
func CheckStreamable(cfg *config.Config, opts Options) error {
	if err := models.CheckStaged(cfg); err != nil {
		return err
	}
	switch {
	case opts.steps() > 1:
		return errors.Errorf("streamed pruning makes one step (IterativeSteps %d rescores the pruned model between steps)", opts.IterativeSteps)
	case opts.Strategy == Layer && opts.RankLayers:
		return errors.New("streamed pruning cannot rank layers (RankLayers) yet: keep the first layers or load the model")
	case opts.Reconstruct:
		return errors.New("streamed pruning cannot reconstruct (Reconstruct re-fits layers of the loaded model)")
	case opts.Strategy != Layer && (opts.Importance.Criterion == importance.FLAP || opts.Importance.Criterion == importance.WandaSP):
		return errors.Errorf("streamed pruning supports the taylor, l1, l2 and random criteria, not %s (its calibration statistics are not streamed yet)", opts.Importance.Criterion)
	}
	return nil
}

// StreamScore is Score for the model src reads from its checkpoint (see CheckStreamable for what
// is supported): Taylor importance layer by layer (TaylorEstimator.StreamScores), l1/l2 one tensor
// at a time, random without weights.
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
		return &Scores{}, nil
	}
	fams, err := familiesOf(cfg, &opts)
	if err != nil {
		return nil, err
	}
	impOpts := opts.Importance
	if impOpts.Criterion == importance.Taylor {
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
	return scoresOf(cfg.NumLayers(), fams, raw), nil
}

// WriteStreamed writes the model that Apply(plan) makes of the checkpoint r (a model of config
// cfg) into the Hugging Face directory dir, reading, slicing and writing one tensor at a time
// (checkpoint.SaveHFFromReader: atomic, save.DType converts). Plans with bias compensation are
// refused (the added biases need the loaded model). It returns the pruned config.
func WriteStreamed(cfg *config.Config, r checkpoint.Reader, plan *Plan, dir string, save checkpoint.SaveOptions) (*config.Config, error) {
	if err := plan.validate(); err != nil {
		return nil, errors.WithMessage(err, "apply plan")
	}
	if err := plan.CheckModel(cfg); err != nil {
		return nil, errors.WithMessage(err, "apply plan")
	}
	rem := removalOf(cfg, plan)
	if len(rem.oBias) > 0 || len(rem.downBias) > 0 {
		return nil, errors.New("apply plan: bias compensation cannot be written from a streamed checkpoint (load the model)")
	}
	remove, err := rem.groups(cfg)
	if err != nil {
		return nil, err
	}
	mid, err := groupsRemovedConfig(cfg, remove)
	if err != nil {
		return nil, err
	}
	drop := map[int]bool{}
	for _, l := range rem.layers {
		drop[l] = true
	}
	final, kept := layersRemovedConfig(mid, drop)
	if err := final.Validate(); err != nil {
		return nil, errors.WithMessage(err, "pruned config")
	}
	pr, err := newPrunedReader(cfg, final, r, tensorCuts(remove), kept)
	if err != nil {
		return nil, err
	}
	if err := checkpoint.SaveHFFromReader(dir, final, pr, save); err != nil {
		return nil, err
	}
	return final, nil
}

// prunedReader presents the pruned model's tensors, read from the unpruned checkpoint and sliced
// on demand.
type prunedReader struct {
	src   checkpoint.Reader
	infos []checkpoint.TensorInfo
	from  map[string]string        // pruned tensor name → unpruned name
	cuts  map[string]map[int][]int // unpruned name → axis → removed indices
}

func newPrunedReader(cfg, final *config.Config, src checkpoint.Reader, cuts map[string]map[int][]int, keptLayers []int) (*prunedReader, error) {
	specs, err := models.ExpectedTensors(final)
	if err != nil {
		return nil, err
	}
	srcInfo := map[string]checkpoint.TensorInfo{}
	for _, ti := range src.Tensors() {
		srcInfo[ti.Name] = ti
	}
	p := &prunedReader{src: src, from: map[string]string{}, cuts: cuts}
	for newIdx, l := range keptLayers {
		to, from := groups.LayerTensors(final, newIdx), groups.LayerTensors(cfg, l)
		for i := range to {
			p.from[to[i]] = from[i]
		}
	}
	for _, s := range specs {
		name, ok := p.from[s.Name]
		if !ok {
			name = s.Name
			p.from[s.Name] = name
		}
		ti, ok := srcInfo[name]
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
