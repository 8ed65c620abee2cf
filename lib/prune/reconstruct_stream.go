package prune

// Reconstruction of a model that is not loaded: ApplyReconstructed's layer-by-layer re-fit with
// only one decoder layer's weights in memory at a time, then the pruned model written as
// WriteStreamed writes it.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/groups"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/pkg/errors"
)

// WriteReconstructedStreamed writes into the Hugging Face directory dir the model that
// ApplyReconstructed(plan) makes of the checkpoint r (a model of config cfg) without loading it:
// each decoder layer is read, run densely on the dense model's hidden states, narrowed, re-fitted
// on the pruned model's hidden states (the same graphs and ridge fits as ApplyReconstructed), run
// again and written to a temporary file beside dir; then the model is written one tensor at a time
// (checkpoint.SaveHFFromReader). Memory: one layer, the calibration batch's dense and pruned hidden
// states, and the fits' normal equations. Plans with bias compensation (flap) are refused. It
// returns the pruned config.
func WriteReconstructedStreamed(backend compute.Backend, cfg *config.Config, r checkpoint.Reader, plan *Plan, o ReconstructOptions, dir string, save checkpoint.SaveOptions) (final *config.Config, err error) {
	defer func() {
		if rec := recover(); rec != nil {
			err = errors.Errorf("reconstruct: %v", rec)
		}
	}()
	if err := plan.validate(); err != nil {
		return nil, errors.WithMessage(err, "reconstruct")
	}
	if err := plan.CheckModel(cfg); err != nil {
		return nil, errors.WithMessage(err, "reconstruct")
	}
	if err := models.CheckStaged(cfg); err != nil {
		return nil, errors.WithMessage(err, "reconstruct: runs the model one layer at a time")
	}
	if len(plan.LayersKept) != cfg.NumLayers() || len(plan.HiddenChannelsKept) != cfg.Hidden {
		return nil, errors.New("reconstruct: the plan removes layers or hidden channels; reconstruction re-fits width (head / MLP-channel) pruning only")
	}
	for _, lp := range plan.Layers {
		if lp.OProjBias != nil || lp.DownProjBias != nil {
			return nil, errors.New("reconstruct: a streamed model cannot be reconstructed after bias compensation (criterion flap); load the model")
		}
	}
	if len(o.Calibration) == 0 {
		return nil, errors.New("reconstruct: needs calibration samples (none given)")
	}
	for i, row := range o.Calibration {
		if len(row) != len(o.Calibration[0]) || len(row) < 1 {
			return nil, errors.Errorf("reconstruct: calibration sample %d has %d tokens, sample 0 has %d (all must be equal)", i, len(row), len(o.Calibration[0]))
		}
	}
	if o.Damp < 0 {
		return nil, errors.Errorf("reconstruct: damping %g must be ≥ 0", o.Damp)
	}
	if o.Damp == 0 {
		o.Damp = 0.01
	}
	if o.Batch <= 0 {
		o.Batch = 8
	}
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(dir)), ".reconstruct-")
	if err != nil {
		return nil, errors.Wrap(err, "reconstruct: temporary directory")
	}
	defer os.RemoveAll(tmp)

	full := newRemoval()
	full.addLayerPlans(cfg, plan.Layers)
	var batches [][][]int
	for s := 0; s < len(o.Calibration); s += o.Batch {
		batches = append(batches, o.Calibration[s:min(s+o.Batch, len(o.Calibration))])
	}
	outer, err := layerModel(backend, cfg, r, []string{arch.Of(cfg).Embedding()})
	if err != nil {
		return nil, err
	}
	xd, err := embedBatches(outer, batches)
	outer.Store.Finalize()
	if err != nil {
		return nil, err
	}
	xp := cloneBatches(xd)
	T, D := len(o.Calibration[0]), cfg.Hidden
	cur := cfg.Clone()
	layerFiles := map[string]string{} // tensor → its re-fitted layer's file
	for l := range cfg.NumLayers() {
		names := groups.LayerTensors(cfg, l)
		m, err := layerModel(backend, cur, r, names)
		if err != nil {
			return nil, err
		}
		if cur, err = reconstructLayer(m, l, full, batches, xd, xp, T, D, o.Damp); err != nil {
			m.Store.Finalize()
			return nil, err
		}
		path := filepath.Join(tmp, fmt.Sprintf("layer-%d.safetensors", l))
		err = checkpoint.WriteSafetensors(path, names, func(n string) (*tensors.Tensor, error) {
			v := m.Store.GetVariable(models.VarPath(n))
			if v == nil {
				return nil, errors.Errorf("layer %d has no tensor %s", l, n)
			}
			return v.Value()
		}, nil)
		m.Store.Finalize()
		if err != nil {
			return nil, errors.WithMessagef(err, "reconstruct: layer %d", l)
		}
		for _, n := range names {
			layerFiles[n] = path
		}
	}
	if err := cur.Validate(); err != nil {
		return nil, errors.WithMessage(err, "pruned config")
	}
	lr, err := newLayeredReader(cur, r, layerFiles)
	if err != nil {
		return nil, err
	}
	defer lr.Close()
	if err := checkpoint.SaveHFFromReader(dir, cur, lr, save); err != nil {
		return nil, err
	}
	return cur, nil
}

// reconstructLayer is one iteration of ApplyReconstructed on m, a model holding only decoder layer
// l (config: layers before l already pruned): the dense run on xd, the plan's removal for layer l,
// the re-fits on xp, and the pruned run; xd and xp become the next layer's inputs. It returns the
// config with layer l pruned.
func reconstructLayer(m *models.Model, l int, full *removal, batches [][][]int, xd, xp [][]float32, T, D int, damp float64) (*config.Config, error) {
	dense, err := runLayer(m, l, batches, xd, T)
	if err != nil {
		return nil, errors.WithMessagef(err, "reconstruct: dense layer %d", l)
	}
	step := newRemoval()
	if rm, ok := full.heads[l]; ok {
		step.heads[l] = rm
	}
	if rm, ok := full.mlp[l]; ok {
		step.mlp[l] = rm
	}
	remove, err := step.groups(m.Config)
	if err != nil {
		return nil, err
	}
	next, err := groupsRemovedConfig(m.Config, remove)
	if err != nil {
		return nil, err
	}
	cuts := tensorCuts(remove)
	names := make([]string, 0, len(cuts))
	for n := range cuts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names { // RemoveGroups on the one-layer store
		v := m.Store.GetVariable(models.VarPath(n))
		if v == nil {
			return nil, errors.Errorf("reconstruct: layer %d has no tensor %s", l, n)
		}
		t, err := v.Value()
		if err != nil {
			return nil, errors.Wrapf(err, "reading %s", n)
		}
		s, err := sliceTensor(t, cuts[n])
		if err != nil {
			return nil, errors.WithMessagef(err, "slicing %s", n)
		}
		if err := v.SetValue(s); err != nil {
			return nil, errors.Wrapf(err, "replacing %s", n)
		}
	}
	m.Config = next
	if _, ok := step.heads[l]; ok {
		p, err := runLayer(m, l, batches, xp, T)
		if err != nil {
			return nil, errors.WithMessagef(err, "reconstruct: pruned layer %d", l)
		}
		targets := make([][]float32, len(batches)) // H_l − X'_l
		for b := range batches {
			targets[b] = sub(dense[b].hAttn, xp[b])
		}
		if err := refit(m, attnProj(m.Config, l), p.inO(), targets, D, damp); err != nil {
			return nil, errors.WithMessagef(err, "reconstruct: layer %d o_proj", l)
		}
	}
	if _, ok := step.mlp[l]; ok {
		p, err := runLayer(m, l, batches, xp, T) // with the new o_proj
		if err != nil {
			return nil, errors.WithMessagef(err, "reconstruct: pruned layer %d", l)
		}
		targets := make([][]float32, len(batches)) // X_{l+1} − (residual after attention)
		for b := range batches {
			targets[b] = sub(dense[b].out, p[b].hAttn)
		}
		if err := refit(m, mlpProj(m.Config, l), p.inD(), targets, D, damp); err != nil {
			return nil, errors.WithMessagef(err, "reconstruct: layer %d down_proj", l)
		}
	}
	p, err := runLayer(m, l, batches, xp, T)
	if err != nil {
		return nil, errors.WithMessagef(err, "reconstruct: pruned layer %d", l)
	}
	for b := range batches {
		xd[b], xp[b] = dense[b].out, p[b].out
	}
	return next, nil
}

// layerModel is a model of config cfg whose store holds only the named tensors, read from r.
func layerModel(backend compute.Backend, cfg *config.Config, r checkpoint.Reader, names []string) (*models.Model, error) {
	store := model.NewStore()
	for _, n := range names {
		t, err := r.Read(n)
		if err != nil {
			store.Finalize()
			return nil, err
		}
		if _, err := store.CreateVariable(models.VarPath(n), t); err != nil {
			store.Finalize()
			return nil, errors.Wrapf(err, "reconstruct: %s", n)
		}
	}
	return &models.Model{Config: cfg, Store: store, Backend: backend}, nil
}

// layeredReader presents the pruned model: the tensors of re-fitted layers from their files, the
// others from the original checkpoint.
type layeredReader struct {
	src   checkpoint.Reader
	files map[string]checkpoint.Reader // path → open file
	from  map[string]string            // tensor → path ("" = src)
	infos []checkpoint.TensorInfo
}

func newLayeredReader(cfg *config.Config, src checkpoint.Reader, layerFiles map[string]string) (*layeredReader, error) {
	specs, err := models.ExpectedTensors(cfg)
	if err != nil {
		return nil, err
	}
	lr := &layeredReader{src: src, files: map[string]checkpoint.Reader{}, from: map[string]string{}}
	infos := map[string]checkpoint.TensorInfo{}
	for _, ti := range src.Tensors() {
		infos[ti.Name] = ti
	}
	for _, path := range layerFiles {
		if _, ok := lr.files[path]; ok {
			continue
		}
		f, err := checkpoint.OpenSafetensors(path)
		if err != nil {
			lr.Close()
			return nil, err
		}
		lr.files[path] = f
		for _, ti := range f.Tensors() {
			infos[ti.Name] = ti
		}
	}
	for _, s := range specs {
		ti, ok := infos[s.Name]
		if !ok {
			lr.Close()
			return nil, errors.Errorf("reconstruct: no tensor %s", s.Name)
		}
		if !slices.Equal(ti.Shape, s.Shape) {
			lr.Close()
			return nil, errors.Errorf("reconstruct: %s has shape %v, the pruned config implies %v", s.Name, ti.Shape, s.Shape)
		}
		lr.from[s.Name] = layerFiles[s.Name]
		lr.infos = append(lr.infos, ti)
	}
	sort.Slice(lr.infos, func(i, j int) bool { return lr.infos[i].Name < lr.infos[j].Name })
	return lr, nil
}

func (lr *layeredReader) Tensors() []checkpoint.TensorInfo { return slices.Clone(lr.infos) }

func (lr *layeredReader) Read(name string) (*tensors.Tensor, error) {
	path, ok := lr.from[name]
	if !ok {
		return nil, errors.Errorf("pruned model has no tensor %q", name)
	}
	if path == "" {
		return lr.src.Read(name)
	}
	return lr.files[path].Read(name)
}

// Close closes the layer files (not the original checkpoint: its owner does).
func (lr *layeredReader) Close() error {
	for _, f := range lr.files {
		_ = f.Close()
	}
	return nil
}

// ReconstructStreamBytes estimates the peak memory of WriteReconstructedStreamed for cfg's model
// stored in dtype stored (bytes per value: size) with samples × seqLen calibration tokens: the
// largest layer's weights (as stored and float32 in the graph), the ridge fit's float64 normal
// equations (K² + K·D for K = the widest output projection's inputs + 1), the dense and pruned
// hidden states and one layer run's activations of every calibration batch, and the runtime.
func ReconstructStreamBytes(cfg *config.Config, size int64, samples, seqLen int) int64 {
	var weights, widest int64
	for l := range cfg.NumLayers() {
		weights = max(weights, arch.LayerParams(cfg, l)*(size+4))
		widest = max(widest, int64(cfg.Inter[l]), int64(cfg.Heads[l]*cfg.HeadDim))
	}
	K, D, tokens := widest+1, int64(cfg.Hidden), int64(samples)*int64(seqLen)
	fit := 8 * (K*K + K*D)
	acts := 4 * tokens * (4*D + 2*(2*D+2*widest))
	return weights + fit + acts + 300<<20
}
