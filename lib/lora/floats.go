package lora

// Host-side float conversions of small tensors (adapter matrices, merged weights).

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/pkg/errors"
)

// toFloat32s copies a float32, bfloat16 or float16 tensor's values as float32.
func toFloat32s(t *tensors.Tensor) ([]float32, error) {
	var out []float32
	var convErr error
	err := t.ConstFlatData(func(src any) {
		switch s := src.(type) {
		case []float32:
			out = append([]float32(nil), s...)
		case []bfloat16.BFloat16:
			out = make([]float32, len(s))
			for i, v := range s {
				out[i] = v.Float32()
			}
		case []float16.Float16:
			out = make([]float32, len(s))
			for i, v := range s {
				out[i] = v.Float32()
			}
		default:
			convErr = errors.Errorf("unsupported dtype %s (want F32, BF16 or F16)", t.DType())
		}
	})
	if err == nil {
		err = convErr
	}
	return out, err
}

// fromFloat32s builds a tensor of dtype dt (float32, bfloat16 or float16) and the given
// dimensions from float32 values (rounding to nearest even).
func fromFloat32s(data []float32, dt dtypes.DType, dims ...int) (*tensors.Tensor, error) {
	switch dt {
	case dtypes.Float32:
		return tensors.FromFlatDataAndDimensions(append([]float32(nil), data...), dims...), nil
	case dtypes.BFloat16, dtypes.Float16:
	default:
		return nil, errors.Errorf("unsupported dtype %s (want F32, BF16 or F16)", dt)
	}
	t := tensors.FromShape(shapes.Make(dt, dims...))
	err := t.MutableFlatData(func(dst any) {
		switch d := dst.(type) {
		case []bfloat16.BFloat16:
			for i, v := range data {
				d[i] = bfloat16.FromFloat32(v)
			}
		case []float16.Float16:
			for i, v := range data {
				d[i] = float16.FromFloat32(v)
			}
		}
	})
	return t, err
}
