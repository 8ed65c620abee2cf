package checkpoint

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/pkg/errors"
)

// safetensorsDTypes maps the safetensors dtype names to GoMLX dtypes.
var safetensorsDTypes = map[string]dtypes.DType{
	"F64":  dtypes.Float64,
	"F32":  dtypes.Float32,
	"F16":  dtypes.Float16,
	"BF16": dtypes.BFloat16,
	"I64":  dtypes.Int64,
	"I32":  dtypes.Int32,
	"I16":  dtypes.Int16,
	"I8":   dtypes.Int8,
	"U64":  dtypes.Uint64,
	"U32":  dtypes.Uint32,
	"U16":  dtypes.Uint16,
	"U8":   dtypes.Uint8,
	"BOOL": dtypes.Bool,
}

// safetensorsName returns the safetensors dtype name of dt.
func safetensorsName(dt dtypes.DType) (string, error) {
	for name, d := range safetensorsDTypes {
		if d == dt {
			return name, nil
		}
	}
	return "", errors.Errorf("dtype %s cannot be stored in safetensors", dt)
}

// numElements returns the product of the dimensions, or an error when a dimension is negative or
// the product overflows int64.
func numElements(shape []int) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, errors.Errorf("negative dimension in shape %v", shape)
		}
		if d != 0 && n > (1<<62)/int64(d) {
			return 0, errors.Errorf("shape %v is too large", shape)
		}
		n *= int64(d)
	}
	return n, nil
}
