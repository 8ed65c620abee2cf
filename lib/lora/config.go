package lora

import (
	"math"
	"strings"

	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/option"
	"github.com/pkg/errors"
)

// Config describes an adapter.
type Config struct {
	R       int     // rank r (> 0)
	Alpha   float64 // scale numerator: the update is (Alpha/R)·B·A
	Dropout float64 // dropout probability on the adapter input during training, in [0, 1)
	// Targets are the adapted projections of every layer, by short name (LLaMA: q k v o gate up
	// down; ChatGLM: query_key_value dense dense_h_to_4h dense_4h_to_h) or PEFT name (q_proj …);
	// empty means every projection of the model's architecture.
	Targets []string
	// BaseModel is recorded as base_model_name_or_path in adapter_config.json.
	BaseModel string
}

// DefaultConfig is post_training.py's default: r 8, alpha 16, dropout 0.05, every projection of
// the architecture (LLaMA's seven; ChatGLM's four).
func DefaultConfig() Config {
	return Config{R: 8, Alpha: 16, Dropout: 0.05}
}

// Scale is alpha/r, the factor of the low-rank update.
func (c Config) Scale() float64 { return c.Alpha / float64(c.R) }

// The options as error messages name them (option.Error; the command line says its flags).
const (
	OptR            option.Name = "lora.Config.R"
	OptAlpha        option.Name = "lora.Config.Alpha"
	OptDropout      option.Name = "lora.Config.Dropout"
	OptLearningRate option.Name = "lora.TrainOptions.LearningRate"
	OptBatchSize    option.Name = "lora.TrainOptions.BatchSize"
	OptMicroBatch   option.Name = "lora.TrainOptions.MicroBatch"
	OptPPLSeqLen    option.Name = "lora.TrainOptions.PPLSeqLen"
	OptCutoffLen    option.Name = "lora.DataOptions.CutoffLen"
	OptValSize      option.Name = "lora.DataOptions.ValSize"
)

// Validate checks r, alpha, dropout and the target names.
func (c Config) Validate() error {
	if c.R <= 0 {
		return option.Errorf("%s %d: the LoRA rank must be positive", OptR, c.R)
	}
	if math.IsNaN(c.Alpha) || math.IsInf(c.Alpha, 0) || c.Alpha == 0 {
		return option.Errorf("%s %g: LoRA's alpha must be a finite non-zero number", OptAlpha, c.Alpha)
	}
	if !(c.Dropout >= 0 && c.Dropout < 1) {
		return option.Errorf("%s %g: LoRA's dropout must be in [0, 1)", OptDropout, c.Dropout)
	}
	for _, t := range c.Targets {
		if !knownAnywhere(strings.TrimSpace(t)) {
			return errors.Errorf("unknown LoRA target module %q (want %s)", t, describeAll())
		}
	}
	return nil
}

// resolve validates c and maps its targets onto the projections of arch.
func (c Config) resolve(arch config.Arch) (*archTargets, []target, error) {
	if err := c.Validate(); err != nil {
		return nil, nil, err
	}
	at, err := targetsOf(arch)
	if err != nil {
		return nil, nil, err
	}
	ts, err := at.resolve(c.Targets)
	return at, ts, err
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
