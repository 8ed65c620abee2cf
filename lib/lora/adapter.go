package lora

import (
	"math"
	"math/rand/v2"
	"strings"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/pkg/errors"
)

// Store parameters recording the adapter attached to a model's store.
const (
	paramR         = "/lora/r"
	paramAlpha     = "/lora/alpha"
	paramDropout   = "/lora/dropout"
	paramTargets   = "/lora/targets"
	paramBaseModel = "/lora/base_model"
)

// Adapter describes the LoRA adapter attached to a model.
type Adapter struct {
	Config Config
	// Modules are the adapted projections ("model.layers.0.self_attn.q_proj", or ChatGLM's
	// "transformer.layers.0.attention.query_key_value", …), layer by layer.
	Modules []string
}

// NumParams is the number of trainable adapter parameters: Σ r·(in + out) over the modules.
func (a *Adapter) NumParams(m *models.Model) int {
	n := 0
	for _, mod := range a.Modules {
		w := m.Store.GetVariable(models.VarPath(mod + ".weight"))
		if w != nil {
			n += a.Config.R * (w.Shape().Dim(0) + w.Shape().Dim(1))
		}
	}
	return n
}

// loraNames returns the HF names of the A and B matrices of module.
func loraNames(module string) (a, b string) {
	return module + ".lora_A.weight", module + ".lora_B.weight"
}

// Attach adds a fresh adapter to m: for every decoder layer and target projection, A [r, in]
// drawn Kaiming-uniform (a=√5) from a generator seeded with seed, and B [out, r] = 0; freezes the
// base weights and installs the adapter's Hooks.Linear on m (so m.Logits, eval, generation use it).
// It fails if m already has an adapter, the config is invalid or a projection is missing.
func Attach(m *models.Model, cfg Config, seed int64) (*Adapter, error) {
	at, targets, err := cfg.resolve(m.Config.Arch)
	if err != nil {
		return nil, err
	}
	if a, _ := AdapterOf(m); a != nil {
		return nil, errors.New("attaching a LoRA adapter: the model already has one (merge or load it instead)")
	}
	cfg.Targets = peftNames(targets)
	modules := at.moduleNames(targets, m.Config.NumLayers())
	values := make(map[string]*tensors.Tensor)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6c6f7261)) // second word: "lora"
	for _, mod := range modules {
		w := m.Store.GetVariable(models.VarPath(mod + ".weight"))
		if w == nil || w.Shape().Rank() != 2 {
			return nil, errors.Errorf("attaching a LoRA adapter: the model has no 2-D weight %s.weight", mod)
		}
		out, in := w.Shape().Dim(0), w.Shape().Dim(1)
		an, bn := loraNames(mod)
		values[an] = tensors.FromFlatDataAndDimensions(kaimingUniform(rng, cfg.R, in), cfg.R, in)
		values[bn] = tensors.FromFlatDataAndDimensions(make([]float32, out*cfg.R), out, cfg.R)
	}
	if err := install(m, cfg, modules, values); err != nil {
		return nil, errors.WithMessage(err, "attaching a LoRA adapter")
	}
	return &Adapter{Config: cfg, Modules: modules}, nil
}

// kaimingUniform is torch.nn.init.kaiming_uniform_(a=√5) of an [rows, fanIn] weight (nn.Linear's
// and PEFT's init of lora_A): gain = √(2/(1+a²)) = √(1/3), bound = gain·√(3/fanIn) = 1/√fanIn,
// values U(−bound, bound).
func kaimingUniform(rng *rand.Rand, rows, fanIn int) []float32 {
	a := math.Sqrt(5)
	gain := math.Sqrt(2 / (1 + a*a))
	bound := gain * math.Sqrt(3/float64(fanIn))
	out := make([]float32, rows*fanIn)
	for i := range out {
		out[i] = float32((2*rng.Float64() - 1) * bound)
	}
	return out
}

// install creates the adapter variables from values (HF name → tensor), freezes the base
// weights, records cfg in the store parameters and sets m.Hooks.
func install(m *models.Model, cfg Config, modules []string, values map[string]*tensors.Tensor) error {
	for _, mod := range modules {
		an, bn := loraNames(mod)
		for _, name := range []string{an, bn} {
			if _, err := m.Store.CreateVariable(models.VarPath(name), values[name]); err != nil {
				removeAdapterVars(m)
				return errors.Wrapf(err, "creating variable %s", name)
			}
		}
	}
	for v := range m.Store.IterVariables() {
		v.SetTrainable(isAdapterVar(v.Path()))
	}
	m.Store.SetParams(map[string]any{paramR: cfg.R, paramAlpha: cfg.Alpha, paramDropout: cfg.Dropout,
		paramTargets: strings.Join(cfg.Targets, ","), paramBaseModel: cfg.BaseModel})
	setHooks(m, cfg, modules)
	return nil
}

// isAdapterVar reports whether a store path is a LoRA matrix.
func isAdapterVar(path string) bool {
	return strings.HasSuffix(path, "/lora_A/weight") || strings.HasSuffix(path, "/lora_B/weight")
}

// removeAdapterVars deletes every LoRA variable and parameter and unfreezes the base weights.
func removeAdapterVars(m *models.Model) {
	var paths []string
	for v := range m.Store.IterVariables() {
		if isAdapterVar(v.Path()) {
			paths = append(paths, v.Path())
		}
	}
	for _, p := range paths {
		_ = m.Store.DeleteVariable(p)
	}
	for v := range m.Store.IterVariables() {
		v.SetTrainable(true)
	}
	for _, k := range []string{paramR, paramAlpha, paramDropout, paramTargets, paramBaseModel} {
		m.Store.SetParam(k, nil)
	}
}

// AdapterOf returns the adapter attached to m (by Attach or LoadAdapter), or nil when there is none.
func AdapterOf(m *models.Model) (*Adapter, error) {
	rAny, ok := m.Store.GetParam(paramR)
	if !ok || rAny == nil {
		return nil, nil
	}
	cfg := Config{R: rAny.(int)}
	if v, ok := m.Store.GetParam(paramAlpha); ok {
		cfg.Alpha, _ = v.(float64)
	}
	if v, ok := m.Store.GetParam(paramDropout); ok {
		cfg.Dropout, _ = v.(float64)
	}
	if v, ok := m.Store.GetParam(paramTargets); ok {
		s, _ := v.(string)
		cfg.Targets = ParseTargets(s)
	}
	if v, ok := m.Store.GetParam(paramBaseModel); ok {
		cfg.BaseModel, _ = v.(string)
	}
	var modules []string
	for v := range m.Store.IterVariables() {
		if p := v.Path(); strings.HasSuffix(p, "/lora_A/weight") {
			modules = append(modules, strings.TrimSuffix(models.HFName(p), ".lora_A.weight"))
		}
	}
	if at, err := targetsOf(m.Config.Arch); err == nil {
		at.sortModules(modules)
	}
	return &Adapter{Config: cfg, Modules: modules}, nil
}

// adapterVars returns the adapter variables in a fixed order (per module: A then B) with their
// HF names.
func adapterVars(m *models.Model, a *Adapter) ([]*model.Variable, []string, error) {
	var vars []*model.Variable
	var names []string
	for _, mod := range a.Modules {
		an, bn := loraNames(mod)
		for _, n := range []string{an, bn} {
			v := m.Store.GetVariable(models.VarPath(n))
			if v == nil {
				return nil, nil, errors.Errorf("LoRA variable %s is missing from the store", n)
			}
			vars = append(vars, v)
			names = append(names, n)
		}
	}
	return vars, names, nil
}

// Detach removes the adapter from m without merging it: the model is the base model again.
func Detach(m *models.Model) {
	removeAdapterVars(m)
	if m.Hooks != nil {
		h := *m.Hooks
		h.Linear = nil
		m.Hooks = &h
	}
	m.ResetExecs()
}
