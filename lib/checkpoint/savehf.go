package checkpoint

import (
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/atomicfile"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/pkg/errors"
)

// DefaultMaxShardBytes is the shard size SaveHF uses when SaveOptions.MaxShardBytes is 0
// (transformers' default max_shard_size is 5 GB).
const DefaultMaxShardBytes = 5_000_000_000

// SaveOptions controls SaveHF.
type SaveOptions struct {
	// DType converts floating-point tensors on write: dtypes.Float32, dtypes.BFloat16 or
	// dtypes.Float16; dtypes.InvalidDType (the zero value) keeps each tensor's dtype. Integer and
	// bool tensors are never converted. Narrowing rounds to nearest even, as torch does.
	DType dtypes.DType
	// TokenizerFiles are copied into the directory under their base names.
	TokenizerFiles []string
	// GenerationConfig also writes generation_config.json (bos/eos token ids).
	GenerationConfig bool
	// MaxShardBytes splits model.safetensors into shards with an index above this size;
	// 0 means DefaultMaxShardBytes, a negative value never shards.
	MaxShardBytes int64
}

// SaveHF writes a Hugging Face model directory: config.json, model.safetensors (or shards plus
// model.safetensors.index.json), the tokenizer files and optionally generation_config.json. The
// directory is written atomically (a temporary sibling renamed into place): readers never see a
// half-written model, and an existing dir is replaced only on success. get is called up to twice
// per name, one tensor at a time; SaveHF never keeps or finalizes the tensors it returns.
func SaveHF(dir string, cfg *config.Config, names []string, get func(string) (*tensors.Tensor, error), opts SaveOptions) error {
	infos, err := infosFromGet(names, get)
	if err != nil {
		return errors.WithMessagef(err, "saving %s", dir)
	}
	return saveHF(dir, cfg, infos, borrowed(get), opts)
}

// SaveHFFromReader converts a checkpoint (any Reader: llama2.c, PyTorch, safetensors) into a
// Hugging Face directory like SaveHF, reading one tensor at a time.
func SaveHFFromReader(dir string, cfg *config.Config, r Reader, opts SaveOptions) error {
	return saveHF(dir, cfg, r.Tensors(), func(name string) (*tensors.Tensor, func(), error) {
		t, err := r.Read(name)
		if err != nil {
			return nil, nil, err
		}
		return t, func() { _ = t.FinalizeAll() }, nil
	}, opts)
}

func saveHF(dir string, cfg *config.Config, infos []TensorInfo, get source, opts SaveOptions) error {
	switch opts.DType {
	case dtypes.InvalidDType, dtypes.Float32, dtypes.BFloat16, dtypes.Float16:
	default:
		return errors.Errorf("saving %s: output dtype %s is not supported (float32, bfloat16 or float16)", dir, opts.DType)
	}
	for _, f := range opts.TokenizerFiles {
		if st, err := os.Stat(f); err != nil || st.IsDir() {
			return errors.Errorf("saving %s: tokenizer file %s is missing or not a regular file", dir, f)
		}
	}
	out := cloneInfos(infos)
	for i := range out {
		out[i].DType = targetDType(out[i].DType, opts.DType)
	}
	cfg = cfg.Clone()
	if cfg.Raw == nil {
		cfg.Raw = map[string]json.RawMessage{}
	}
	if name := torchDTypeName(out); name != "" {
		cfg.Raw["torch_dtype"] = json.RawMessage(`"` + name + `"`)
	}
	maxShard := opts.MaxShardBytes
	if maxShard == 0 {
		maxShard = DefaultMaxShardBytes
	}
	convert := func(name string) (*tensors.Tensor, func(), error) {
		t, release, err := get(name)
		if err != nil {
			return nil, nil, err
		}
		to := targetDType(t.DType(), opts.DType)
		if to == t.DType() {
			return t, release, nil
		}
		c, err := convertFloat(t, to)
		release()
		if err != nil {
			return nil, nil, errors.WithMessagef(err, "tensor %q", name)
		}
		return c, func() { _ = c.FinalizeAll() }, nil
	}
	return atomicfile.WriteDir(dir, func(tmp string) error {
		if err := arch.SaveConfig(cfg, filepath.Join(tmp, "config.json")); err != nil {
			return err
		}
		if _, err := writeSharded(tmp, out, convert, map[string]string{"format": "pt"}, maxShard); err != nil {
			return errors.WithMessagef(err, "saving %s", dir)
		}
		for _, f := range opts.TokenizerFiles {
			if err := copyFile(f, filepath.Join(tmp, filepath.Base(f))); err != nil {
				return errors.WithMessagef(err, "saving %s", dir)
			}
		}
		if opts.GenerationConfig {
			gc := map[string]any{"_from_model_config": true}
			if cfg.BOS >= 0 {
				gc["bos_token_id"] = cfg.BOS
			}
			if len(cfg.EOS) == 1 {
				gc["eos_token_id"] = cfg.EOS[0]
			} else if len(cfg.EOS) > 1 {
				gc["eos_token_id"] = cfg.EOS
			}
			data, _ := json.MarshalIndent(gc, "", "  ")
			if err := os.WriteFile(filepath.Join(tmp, "generation_config.json"), append(data, '\n'), 0o644); err != nil {
				return errors.Wrapf(err, "saving %s", dir)
			}
		}
		return nil
	})
}

// targetDType is the dtype a tensor of dtype dt is written as when converting to want.
func targetDType(dt, want dtypes.DType) dtypes.DType {
	if want == dtypes.InvalidDType {
		return dt
	}
	switch dt {
	case dtypes.Float64, dtypes.Float32, dtypes.Float16, dtypes.BFloat16:
		return want
	}
	return dt
}

// torchDTypeName names the (most common) floating dtype of the tensors for config.json.
func torchDTypeName(infos []TensorInfo) string {
	count := map[dtypes.DType]int{}
	for _, ti := range infos {
		count[ti.DType]++
	}
	best, name := 0, ""
	for dt, n := range map[dtypes.DType]string{dtypes.Float32: "float32", dtypes.BFloat16: "bfloat16", dtypes.Float16: "float16"} {
		if count[dt] > best {
			best, name = count[dt], n
		}
	}
	return name
}

// convertFloat converts a floating-point tensor to dtype to (float32, bfloat16 or float16),
// through float32, rounding to nearest even; NaNs stay NaN.
func convertFloat(t *tensors.Tensor, to dtypes.DType) (*tensors.Tensor, error) {
	out := tensors.FromShape(shapes.Make(to, t.Shape().Dimensions...))
	var convErr error
	err := t.ConstFlatData(func(src any) {
		var at func(i int) float32
		switch s := src.(type) {
		case []float32:
			at = func(i int) float32 { return s[i] }
		case []float64:
			at = func(i int) float32 { return float32(s[i]) }
		case []float16.Float16:
			at = func(i int) float32 { return s[i].Float32() }
		case []bfloat16.BFloat16:
			at = func(i int) float32 { return s[i].Float32() }
		case nil:
			return
		default:
			convErr = errors.Errorf("cannot convert %s to %s", t.DType(), to)
			return
		}
		convErr = out.MutableFlatData(func(dst any) {
			switch d := dst.(type) {
			case []float32:
				for i := range d {
					d[i] = at(i)
				}
			case []bfloat16.BFloat16:
				for i := range d {
					v := at(i)
					if math.IsNaN(float64(v)) {
						d[i] = bfloat16.FromBits(uint16(math.Float32bits(v)>>16) | 0x7FC0)
					} else {
						d[i] = bfloat16.FromFloat32(v)
					}
				}
			case []float16.Float16:
				for i := range d {
					d[i] = float16.FromFloat32(at(i))
				}
			}
		})
	})
	if err == nil {
		err = convErr
	}
	if err != nil {
		_ = out.FinalizeAll()
		return nil, err
	}
	return out, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return errors.Wrap(err, "copying tokenizer file")
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return errors.Wrapf(err, "copying %s", src)
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return errors.Wrapf(err, "copying %s to %s", src, dst)
	}
	return errors.Wrapf(out.Close(), "copying %s to %s", src, dst)
}
