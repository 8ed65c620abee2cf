package lora

// Adapters in Hugging Face PEFT's format: adapter_config.json and adapter_model.safetensors with
// tensor names "base_model.model.<module>.lora_A.weight" [r, in] and ".lora_B.weight" [out, r].

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/atomicfile"
	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/llmpruner/llmpruner/lib/option"
	"github.com/pkg/errors"
)

// File names of a PEFT adapter directory.
const (
	ConfigFile       = "adapter_config.json"
	WeightsFile      = "adapter_model.safetensors"
	weightsFileTorch = "adapter_model.bin" // what LLM-Pruner's post_training.py wrote
	peftPrefix       = "base_model.model."
)

// peftConfig is adapter_config.json (the fields PEFT's LoraConfig writes that matter here).
type peftConfig struct {
	PeftType          string   `json:"peft_type"`
	TaskType          string   `json:"task_type"`
	R                 int      `json:"r"`
	LoraAlpha         float64  `json:"lora_alpha"`
	LoraDropout       float64  `json:"lora_dropout"`
	TargetModules     any      `json:"target_modules"`
	Bias              string   `json:"bias"`
	FanInFanOut       bool     `json:"fan_in_fan_out"`
	InferenceMode     bool     `json:"inference_mode"`
	InitLoraWeights   bool     `json:"init_lora_weights"`
	ModulesToSave     []string `json:"modules_to_save"`
	BaseModelNameOrPa string   `json:"base_model_name_or_path"`
	UseRSLoRA         bool     `json:"use_rslora,omitempty"`
	UseDoRA           bool     `json:"use_dora,omitempty"`
}

// PEFTName is the tensor name PEFT saves for the HF name of an adapter matrix
// ("model.layers.0.self_attn.q_proj.lora_A.weight" → "base_model.model.model.layers.0…").
func PEFTName(hfName string) string { return peftPrefix + hfName }

// adapterConfigJSON renders adapter_config.json for a.
func adapterConfigJSON(a *Adapter) ([]byte, error) {
	if len(a.Config.Targets) == 0 {
		return nil, errors.New("the adapter lists no target modules")
	}
	pc := peftConfig{PeftType: "LORA", TaskType: "CAUSAL_LM", R: a.Config.R, LoraAlpha: a.Config.Alpha,
		LoraDropout: a.Config.Dropout, TargetModules: a.Config.Targets, Bias: "none", FanInFanOut: false,
		InferenceMode: true, InitLoraWeights: true, BaseModelNameOrPa: a.Config.BaseModel}
	data, err := json.MarshalIndent(pc, "", "  ")
	return append(data, '\n'), err
}

// SaveAdapter writes m's adapter to dir in PEFT's format (adapter_config.json and
// adapter_model.safetensors, float32), each file atomically; dir is created if needed and other
// files in it are left alone.
func SaveAdapter(m *models.Model, dir string) error {
	a, err := AdapterOf(m)
	if err != nil || a == nil {
		return errors.Errorf("saving LoRA adapter to %s: the model has no adapter", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return errors.Wrapf(err, "saving LoRA adapter to %s", dir)
	}
	return errors.WithMessagef(writeAdapterFiles(m, a, dir), "saving LoRA adapter to %s", dir)
}

// writeAdapterFiles writes the two PEFT files of a into the existing directory dir.
func writeAdapterFiles(m *models.Model, a *Adapter, dir string) error {
	vars, names, err := adapterVars(m, a)
	if err != nil {
		return err
	}
	byName := map[string]int{}
	peftNames := make([]string, len(names))
	for i, n := range names {
		peftNames[i] = PEFTName(n)
		byName[peftNames[i]] = i
	}
	get := func(name string) (*tensors.Tensor, error) { return vars[byName[name]].Value() }
	meta := map[string]string{"format": "pt"}
	if err := checkpoint.WriteSafetensors(filepath.Join(dir, WeightsFile), peftNames, get, meta); err != nil {
		return err
	}
	cfgJSON, err := adapterConfigJSON(a)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, ConfigFile), cfgJSON, 0o644)
}

// readAdapterConfig reads and checks dir/adapter_config.json.
func readAdapterConfig(dir string) (Config, error) {
	path := filepath.Join(dir, ConfigFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, errors.Wrapf(err, "reading LoRA adapter config")
	}
	var pc peftConfig
	if err := json.Unmarshal(data, &pc); err != nil {
		return Config{}, errors.Wrapf(err, "%s: not a valid adapter_config.json", path)
	}
	switch {
	case pc.PeftType != "LORA":
		return Config{}, errors.Errorf("%s: peft_type %q is not supported (want LORA)", path, pc.PeftType)
	case pc.Bias != "" && pc.Bias != "none":
		return Config{}, errors.Errorf("%s: bias %q is not supported (want none)", path, pc.Bias)
	case pc.FanInFanOut:
		return Config{}, errors.Errorf("%s: fan_in_fan_out adapters (GPT-2 Conv1D layout) are not supported", path)
	case pc.UseDoRA || pc.UseRSLoRA:
		return Config{}, errors.Errorf("%s: DoRA / rsLoRA adapters are not supported", path)
	case len(pc.ModulesToSave) > 0:
		return Config{}, errors.Errorf("%s: modules_to_save %v is not supported", path, pc.ModulesToSave)
	}
	cfg := Config{R: pc.R, Alpha: pc.LoraAlpha, Dropout: pc.LoraDropout, BaseModel: pc.BaseModelNameOrPa}
	switch t := pc.TargetModules.(type) {
	case []any:
		for _, x := range t {
			s, ok := x.(string)
			if !ok {
				return Config{}, errors.Errorf("%s: target_modules must be a list of names, got %v", path, pc.TargetModules)
			}
			cfg.Targets = append(cfg.Targets, s)
		}
	case string:
		return Config{}, errors.Errorf("%s: target_modules as a regular expression (%q) is not supported; list the modules", path, t)
	default:
		return Config{}, errors.Errorf("%s: target_modules missing or not a list", path)
	}
	if len(cfg.Targets) == 0 {
		return Config{}, errors.Errorf("%s: target_modules is empty", path)
	}
	if err := cfg.Validate(); err != nil { // said with the file's keys: no option was given
		keys := map[option.Name]string{OptR: "r", OptAlpha: "lora_alpha", OptDropout: "lora_dropout"}
		return Config{}, errors.Errorf("%s: %s", path, option.Rename(err, func(n option.Name) string { return keys[n] }))
	}
	return cfg, nil
}

// openAdapterWeights opens adapter_model.safetensors, or else adapter_model.bin.
func openAdapterWeights(dir string) (checkpoint.Reader, string, error) {
	st := filepath.Join(dir, WeightsFile)
	if _, err := os.Stat(st); err == nil {
		r, err := checkpoint.OpenSafetensors(st)
		return r, st, err
	}
	bin := filepath.Join(dir, weightsFileTorch)
	if _, err := os.Stat(bin); err == nil {
		r, err := checkpoint.OpenPyTorch(bin)
		return r, bin, err
	}
	return nil, "", errors.Errorf("LoRA adapter %s: neither %s nor %s found", dir, WeightsFile, weightsFileTorch)
}

// LoadAdapter reads a PEFT LoRA adapter directory (adapter_config.json plus
// adapter_model.safetensors or adapter_model.bin) and attaches it to m, which must not have an
// adapter yet: afterwards m's forward passes (Logits, eval, generation) include it. Every
// adapter tensor must belong to a projection of m listed in target_modules, with A [r, in] and
// B [out, r] matching that projection's weight; anything else is an error naming the tensor.
func LoadAdapter(m *models.Model, dir string) (*Adapter, error) {
	if a, _ := AdapterOf(m); a != nil {
		return nil, errors.Errorf("loading LoRA adapter %s: the model already has an adapter", dir)
	}
	cfg, modules, values, err := readAdapter(m, dir)
	if err != nil {
		return nil, err
	}
	if err := install(m, cfg, modules, values); err != nil {
		return nil, errors.WithMessagef(err, "loading LoRA adapter %s", dir)
	}
	return &Adapter{Config: cfg, Modules: modules}, nil
}

// readAdapter reads and validates an adapter directory against m: its config, modules and
// float32 tensors by HF name.
func readAdapter(m *models.Model, dir string) (Config, []string, map[string]*tensors.Tensor, error) {
	cfg, err := readAdapterConfig(dir)
	if err != nil {
		return Config{}, nil, nil, err
	}
	at, targets, err := cfg.resolve(m.Config.Arch)
	if err != nil {
		return Config{}, nil, nil, errors.WithMessagef(err, "LoRA adapter %s (was it made for another architecture?)", dir)
	}
	cfg.Targets = peftNames(targets)
	r, path, err := openAdapterWeights(dir)
	if err != nil {
		return Config{}, nil, nil, err
	}
	defer r.Close()
	infos := r.Tensors()
	shapes := map[string][]int{}
	var problems []string
	for _, ti := range infos {
		name := strings.TrimPrefix(ti.Name, peftPrefix)
		name = strings.Replace(name, ".default.weight", ".weight", 1) // PEFT's in-memory adapter name
		shapes[name] = ti.Shape
		if !strings.HasSuffix(name, ".lora_A.weight") && !strings.HasSuffix(name, ".lora_B.weight") {
			problems = append(problems, fmt.Sprintf("unexpected tensor %s (only lora_A/lora_B weights are supported)", ti.Name))
		}
	}
	var modules []string
	for name := range shapes {
		if mod, ok := strings.CutSuffix(name, ".lora_A.weight"); ok {
			modules = append(modules, mod)
		} else if mod, ok := strings.CutSuffix(name, ".lora_B.weight"); ok {
			if _, hasA := shapes[mod+".lora_A.weight"]; !hasA {
				problems = append(problems, fmt.Sprintf("%s has lora_B but no lora_A", mod))
			}
		}
	}
	at.sortModules(modules)
	if len(modules) == 0 && len(problems) == 0 {
		problems = append(problems, "no lora_A tensors")
	}
	for _, mod := range modules {
		if _, i, ok := at.parseModule(mod); !ok || !slices.Contains(targets, at.targets[i]) {
			problems = append(problems, fmt.Sprintf("%s is not among target_modules %v", mod, cfg.Targets))
			continue
		}
		problems = append(problems, checkShapes(m, cfg.R, mod, shapes)...)
	}
	if len(problems) > 0 {
		const maxShown = 10
		if len(problems) > maxShown {
			problems = append(problems[:maxShown], fmt.Sprintf("... and %d more", len(problems)-maxShown))
		}
		return Config{}, nil, nil, errors.Errorf("LoRA adapter %s does not fit the model (was it made for a model with other shapes?):\n  %s",
			path, strings.Join(problems, "\n  "))
	}
	values := map[string]*tensors.Tensor{}
	for _, ti := range infos {
		name := strings.Replace(strings.TrimPrefix(ti.Name, peftPrefix), ".default.weight", ".weight", 1)
		t, err := r.Read(ti.Name)
		if err != nil {
			return Config{}, nil, nil, errors.WithMessagef(err, "LoRA adapter %s", path)
		}
		data, err := toFloat32s(t)
		_ = t.FinalizeAll()
		if err != nil {
			return Config{}, nil, nil, errors.WithMessagef(err, "LoRA adapter %s: tensor %s", path, ti.Name)
		}
		for _, v := range data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return Config{}, nil, nil, errors.Errorf("LoRA adapter %s: tensor %s holds NaN or Inf values", path, ti.Name)
			}
		}
		values[name] = tensors.FromFlatDataAndDimensions(data, ti.Shape...)
	}
	return cfg, modules, values, nil
}

// checkShapes compares the A and B shapes of module with the model's projection weight.
func checkShapes(m *models.Model, r int, module string, shapes map[string][]int) []string {
	w := m.Store.GetVariable(models.VarPath(module + ".weight"))
	if w == nil {
		return []string{fmt.Sprintf("%s: the model has no such projection (has %d layers)", module, m.Config.NumLayers())}
	}
	out, in := w.Shape().Dim(0), w.Shape().Dim(1)
	var problems []string
	an, bn := loraNames(module)
	if got, ok := shapes[bn]; !ok {
		problems = append(problems, fmt.Sprintf("%s is missing", PEFTName(bn)))
	} else if !slices.Equal(got, []int{out, r}) {
		problems = append(problems, fmt.Sprintf("%s is %v, the model's %s.weight [%d, %d] needs [%d, %d]", PEFTName(bn), got, module, out, in, out, r))
	}
	if got := shapes[an]; !slices.Equal(got, []int{r, in}) {
		problems = append(problems, fmt.Sprintf("%s is %v, the model's %s.weight [%d, %d] needs [%d, %d]", PEFTName(an), got, module, out, in, r, in))
	}
	return problems
}
