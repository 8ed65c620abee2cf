package checkpoint

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/gomlx/core/tensors"
)

// expectedTensor is one entry of testdata/expected.json (written by scripts/checkpoint_fixtures.py).
type expectedTensor struct {
	DType  string      `json:"dtype"`
	Shape  []int       `json:"shape"`
	Values []jsonFloat `json:"values"`
}

// jsonFloat is a float64 that also accepts "inf", "-inf" and "nan" (JSON has no such numbers).
type jsonFloat float64

func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		v, err := strconv.ParseFloat(s, 64)
		*f = jsonFloat(v)
		return err
	}
	var v float64
	err := json.Unmarshal(b, &v)
	*f = jsonFloat(v)
	return err
}

func loadExpected(t *testing.T) map[string]map[string]expectedTensor {
	t.Helper()
	data, err := os.ReadFile("testdata/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]map[string]expectedTensor
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// torchDTypes maps torch dtype names (as the fixture script writes them) to GoMLX dtypes.
var torchDTypes = map[string]dtypes.DType{
	"float64": dtypes.Float64, "float32": dtypes.Float32, "float16": dtypes.Float16, "bfloat16": dtypes.BFloat16,
	"int64": dtypes.Int64, "int32": dtypes.Int32, "int16": dtypes.Int16, "int8": dtypes.Int8,
	"uint8": dtypes.Uint8, "bool": dtypes.Bool,
}

// float64s returns the tensor's values as float64 (exact for every supported dtype).
func float64s(t *testing.T, x *tensors.Tensor) []float64 {
	t.Helper()
	var out []float64
	err := x.ConstFlatData(func(flat any) {
		switch v := flat.(type) {
		case []float64:
			out = slices.Clone(v)
		case []float32:
			out = conv(v, func(a float32) float64 { return float64(a) })
		case []float16.Float16:
			out = conv(v, func(a float16.Float16) float64 { return float64(a.Float32()) })
		case []bfloat16.BFloat16:
			out = conv(v, func(a bfloat16.BFloat16) float64 { return float64(a.Float32()) })
		case []int64:
			out = conv(v, func(a int64) float64 { return float64(a) })
		case []int32:
			out = conv(v, func(a int32) float64 { return float64(a) })
		case []int16:
			out = conv(v, func(a int16) float64 { return float64(a) })
		case []int8:
			out = conv(v, func(a int8) float64 { return float64(a) })
		case []uint8:
			out = conv(v, func(a uint8) float64 { return float64(a) })
		case []bool:
			out = conv(v, func(a bool) float64 {
				if a {
					return 1
				}
				return 0
			})
		case nil:
			out = []float64{}
		default:
			t.Fatalf("unexpected flat type %T", flat)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func conv[T any](in []T, f func(T) float64) []float64 {
	out := make([]float64, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

// checkAgainst asserts that every expected tensor is in r with the exact dtype, shape and values.
func checkAgainst(t *testing.T, r Reader, want map[string]expectedTensor) {
	t.Helper()
	infos := map[string]TensorInfo{}
	for _, ti := range r.Tensors() {
		infos[ti.Name] = ti
	}
	if len(infos) != len(want) {
		t.Errorf("got %d tensors, want %d", len(infos), len(want))
	}
	for name, w := range want {
		ti, ok := infos[name]
		if !ok {
			t.Errorf("tensor %q missing", name)
			continue
		}
		if ti.DType != torchDTypes[w.DType] || !slices.Equal(ti.Shape, w.Shape) {
			t.Errorf("%s: info %s%v, want %s%v", name, ti.DType, ti.Shape, w.DType, w.Shape)
		}
		x, err := r.Read(name)
		if err != nil {
			t.Errorf("read %s: %v", name, err)
			continue
		}
		if x.DType() != torchDTypes[w.DType] || !slices.Equal(x.Shape().Dimensions, w.Shape) {
			t.Errorf("%s: tensor %s, want %s%v", name, x.Shape(), w.DType, w.Shape)
		}
		got := float64s(t, x)
		if len(got) != len(w.Values) {
			t.Errorf("%s: %d values, want %d", name, len(got), len(w.Values))
			continue
		}
		for i := range got {
			if want := float64(w.Values[i]); got[i] != want && !(math.IsNaN(got[i]) && math.IsNaN(want)) {
				t.Errorf("%s[%d] = %v, want %v", name, i, got[i], w.Values[i])
				break
			}
		}
	}
}

// bitsEqual compares two tensors' dtype, shape and raw bytes.
func bitsEqual(t *testing.T, a, b *tensors.Tensor) bool {
	t.Helper()
	if a.DType() != b.DType() || !slices.Equal(a.Shape().Dimensions, b.Shape().Dimensions) {
		return false
	}
	var ab, bb []byte
	_ = a.ConstBytes(func(d []byte) { ab = slices.Clone(d) })
	_ = b.ConstBytes(func(d []byte) { bb = slices.Clone(d) })
	return slices.Equal(ab, bb)
}
