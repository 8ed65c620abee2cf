package lora

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/pkg/errors"
)

// targetModules maps the short target names to the Hugging Face projection modules of a LLaMA
// decoder layer (the names PEFT's target_modules use).
var targetModules = []struct{ short, module string }{
	{"q", "self_attn.q_proj"}, {"k", "self_attn.k_proj"}, {"v", "self_attn.v_proj"}, {"o", "self_attn.o_proj"},
	{"gate", "mlp.gate_proj"}, {"up", "mlp.up_proj"}, {"down", "mlp.down_proj"},
}

// AllTargets are the seven projections LLM-Pruner adapts by default, in short form.
var AllTargets = []string{"q", "k", "v", "o", "gate", "up", "down"}

// Config describes an adapter.
type Config struct {
	R       int      // rank r (> 0)
	Alpha   float64  // scale numerator: the update is (Alpha/R)·B·A
	Dropout float64  // dropout probability on the adapter input during training, in [0, 1)
	Targets []string // short names (q k v o gate up down) or PEFT names (q_proj … down_proj)
	// BaseModel is recorded as base_model_name_or_path in adapter_config.json.
	BaseModel string
}

// DefaultConfig is post_training.py's default: r 8, alpha 16, dropout 0.05, all seven projections.
func DefaultConfig() Config {
	return Config{R: 8, Alpha: 16, Dropout: 0.05, Targets: slices.Clone(AllTargets)}
}

// Scale is alpha/r, the factor of the low-rank update.
func (c Config) Scale() float64 { return c.Alpha / float64(c.R) }

// Validate checks r, alpha, dropout and the target names.
func (c Config) Validate() error {
	if c.R <= 0 {
		return errors.Errorf("LoRA rank r = %d: must be positive (--lora-r)", c.R)
	}
	if math.IsNaN(c.Alpha) || math.IsInf(c.Alpha, 0) || c.Alpha == 0 {
		return errors.Errorf("LoRA alpha = %g: must be a finite non-zero number (--lora-alpha)", c.Alpha)
	}
	if !(c.Dropout >= 0 && c.Dropout < 1) {
		return errors.Errorf("LoRA dropout = %g: must be in [0, 1) (--lora-dropout)", c.Dropout)
	}
	_, err := c.moduleSuffixes()
	return err
}

// moduleSuffixes resolves Targets to module suffixes ("self_attn.q_proj", …) in the canonical
// order q k v o gate up down, rejecting unknown and empty lists.
func (c Config) moduleSuffixes() ([]string, error) {
	if len(c.Targets) == 0 {
		return nil, errors.New("LoRA targets: the list is empty (want some of q,k,v,o,gate,up,down)")
	}
	want := map[string]bool{}
	for _, t := range c.Targets {
		name := strings.TrimSpace(t)
		found := false
		for _, tm := range targetModules {
			if name == tm.short || name == tm.short+"_proj" || name == tm.module {
				want[tm.module], found = true, true
			}
		}
		if !found {
			return nil, errors.Errorf("unknown LoRA target module %q (want q,k,v,o,gate,up,down or q_proj,…,down_proj)", t)
		}
	}
	var out []string
	for _, tm := range targetModules {
		if want[tm.module] {
			out = append(out, tm.module)
		}
	}
	return out, nil
}

// peftTargets returns the PEFT target_modules list (q_proj, k_proj, …) in canonical order.
func (c Config) peftTargets() ([]string, error) {
	suffixes, err := c.moduleSuffixes()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(suffixes))
	for i, s := range suffixes {
		out[i] = s[strings.LastIndex(s, ".")+1:]
	}
	return out, nil
}

// ParseTargets splits a comma-separated --lora-targets value.
func ParseTargets(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// moduleNames lists the full module names ("model.layers.3.mlp.up_proj") of an adapter over
// numLayers decoder layers.
func moduleNames(suffixes []string, numLayers int) []string {
	var out []string
	for l := range numLayers {
		for _, s := range suffixes {
			out = append(out, fmt.Sprintf("model.layers.%d.%s", l, s))
		}
	}
	return out
}
