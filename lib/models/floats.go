package models

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/pkg/errors"
)

// ToFloat64 reads a floating-point tensor (float32, float64, bfloat16 or float16) as a flat
// float64 slice (row-major).
func ToFloat64(t *tensors.Tensor) ([]float64, error) {
	var out []float64
	var convErr error
	err := t.ConstFlatData(func(src any) {
		switch s := src.(type) {
		case []float32:
			out = make([]float64, len(s))
			for i, v := range s {
				out[i] = float64(v)
			}
		case []float64:
			out = append([]float64{}, s...)
		case []bfloat16.BFloat16:
			out = make([]float64, len(s))
			for i, v := range s {
				out[i] = float64(v.Float32())
			}
		case []float16.Float16:
			out = make([]float64, len(s))
			for i, v := range s {
				out[i] = float64(v.Float32())
			}
		default:
			convErr = errors.Errorf("cannot read a %s tensor as float64", t.DType())
		}
	})
	if err == nil {
		err = convErr
	}
	return out, err
}

// FromFloat64 makes a host tensor of dtype dt (float32, float64, bfloat16 or float16) and the
// given dimensions from row-major values.
func FromFloat64(v []float64, dt dtypes.DType, dims ...int) (*tensors.Tensor, error) {
	out := tensors.FromShape(shapes.Make(dt, dims...))
	if out.Shape().Size() != len(v) {
		_ = out.FinalizeAll()
		return nil, errors.Errorf("%d values for a tensor of shape %v", len(v), dims)
	}
	var convErr error
	err := out.MutableFlatData(func(dst any) {
		switch d := dst.(type) {
		case []float32:
			for i := range d {
				d[i] = float32(v[i])
			}
		case []float64:
			copy(d, v)
		case []bfloat16.BFloat16:
			for i := range d {
				d[i] = bfloat16.FromFloat32(float32(v[i]))
			}
		case []float16.Float16:
			for i := range d {
				d[i] = float16.FromFloat32(float32(v[i]))
			}
		default:
			convErr = errors.Errorf("cannot write float64 values into a %s tensor", dt)
		}
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

// WeightFloat64 returns the store tensor hfName as a flat float64 slice (row-major) and its
// dimensions.
func (m *Model) WeightFloat64(hfName string) ([]float64, []int, error) {
	v := m.Store.GetVariable(VarPath(hfName))
	if v == nil {
		return nil, nil, errors.Errorf("model has no tensor %s", hfName)
	}
	t, err := v.Value()
	if err != nil {
		return nil, nil, errors.Wrapf(err, "reading %s", hfName)
	}
	data, err := ToFloat64(t)
	if err != nil {
		return nil, nil, errors.WithMessage(err, hfName)
	}
	return data, t.Shape().Dimensions, nil
}
