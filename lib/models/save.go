package models

// Saving a model as a Hugging Face directory.

import (
	"slices"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/pkg/errors"
)

// ParseSaveDType maps a --dtype value ("", "f32"/"float32", "bf16"/"bfloat16", "f16"/"float16")
// to a dtype; "" keeps each tensor's stored dtype (dtypes.InvalidDType).
func ParseSaveDType(s string) (dtypes.DType, error) {
	switch strings.ToLower(s) {
	case "":
		return dtypes.InvalidDType, nil
	case "f32", "float32", "fp32":
		return dtypes.Float32, nil
	case "bf16", "bfloat16":
		return dtypes.BFloat16, nil
	case "f16", "float16", "fp16", "half":
		return dtypes.Float16, nil
	}
	return dtypes.InvalidDType, errors.Errorf("unknown dtype %q (want f32, bf16 or f16)", s)
}

// Save writes the model as a Hugging Face directory (config.json with the per-layer sizes,
// model.safetensors — sharded above 5 GB —, generation_config.json and the tokenizer files),
// atomically. dtype is "f32", "bf16", "f16" or "" (keep the stored dtypes). Only the model's own
// tensors are written (e.g. not LoRA adapters), and they must match m.Config's shapes.
func (m *Model) Save(dir string, dtype string) error {
	dt, err := ParseSaveDType(dtype)
	if err != nil {
		return errors.WithMessagef(err, "saving model to %s", dir)
	}
	specs, err := ExpectedTensors(m.Config)
	if err != nil {
		return err
	}
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
		v := m.Store.GetVariable(VarPath(s.Name))
		if v == nil {
			return errors.Errorf("saving model to %s: the store has no variable %s", dir, VarPath(s.Name))
		}
		if !slices.Equal(v.Shape().Dimensions, s.Shape) {
			return errors.Errorf("saving model to %s: %s has shape %v but the config implies %v (update the config after pruning)",
				dir, s.Name, v.Shape().Dimensions, s.Shape)
		}
	}
	get := func(name string) (*tensors.Tensor, error) {
		return m.Store.GetVariable(VarPath(name)).Value()
	}
	err = checkpoint.SaveHF(dir, m.Config, names, get, checkpoint.SaveOptions{
		DType: dt, TokenizerFiles: m.TokenizerFiles, GenerationConfig: true,
	})
	return errors.WithMessagef(err, "saving model to %s", dir)
}
