package prune

import (
	"slices"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/importance"
	"github.com/llmpruner/llmpruner/lib/models"
)

// toBF16 rounds every weight of m to bfloat16 and stores it as such.
func toBF16(t *testing.T, m *models.Model) {
	t.Helper()
	for v := range m.Store.IterVariables() {
		f := tensors.MustCopyFlatData[float32](v.MustValue())
		if err := v.SetValue(tensors.FromFlatDataAndDimensions(bfloat16.FromFloat32s(f...), v.Shape().Dimensions...)); err != nil {
			t.Fatal(err)
		}
	}
}

func toF32(b []bfloat16.BFloat16) []float32 {
	out := make([]float32, len(b))
	for i, x := range b {
		out[i] = x.Float32()
	}
	return out
}

// TestBF16Weights: a model stored in bf16 prunes to the same groups as its exact float32 copy and
// keeps its dtype, and its pruned weights are the float32 copy's pruned weights.
func TestBF16Weights(t *testing.T) {
	cfg := groupstest.Tiny(t)
	a, b := groupstest.RandomModel(t, cfg, 12, 0.3), groupstest.RandomModel(t, cfg, 12, 0.3)
	toBF16(t, a)
	toBF16(t, b)
	// b: the same bf16 values held in float32
	for v := range b.Store.IterVariables() {
		f := toF32(tensors.MustCopyFlatData[bfloat16.BFloat16](v.MustValue()))
		v.MustSetValue(tensors.FromFlatDataAndDimensions(f, v.Shape().Dimensions...))
	}
	opts := Options{Strategy: Block, Ratio: 0.5, Importance: importance.Options{Criterion: importance.Taylor},
		Sampler: sampler(cfg)}
	ra, err := Prune(a, opts)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := Prune(b, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ra.Layers {
		if !slices.Equal(ra.Layers[i].KVHeadsKept, rb.Layers[i].KVHeadsKept) || !slices.Equal(ra.Layers[i].MLPChannelsKept, rb.Layers[i].MLPChannelsKept) {
			t.Errorf("layer %d: bf16 and float32 copies kept different groups", i)
		}
	}
	for v := range a.Store.IterVariables() {
		if v.DType() != dtypes.BFloat16 {
			t.Fatalf("%s became %s", v.Path(), v.DType())
		}
		got := toF32(tensors.MustCopyFlatData[bfloat16.BFloat16](v.MustValue()))
		want := tensors.MustCopyFlatData[float32](b.Store.GetVariable(v.Path()).MustValue())
		if !slices.Equal(got, want) {
			t.Fatalf("%s: bf16 slice differs from the float32 slice", v.Path())
		}
	}
}
