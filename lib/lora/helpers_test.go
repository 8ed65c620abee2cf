package lora

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/models"
)

// tinyModel is groupstest's 3-layer non-uniform random model (hidden 16, heads [4 4 2], kv [4 2 1],
// MLP [12 10 8], vocab 40).
func tinyModel(t testing.TB, seed uint64) *models.Model {
	t.Helper()
	return groupstest.RandomModel(t, groupstest.Tiny(t), seed, 0.3)
}

// randomizeB fills every lora_B with N(0, std²) values so the adapter changes the outputs.
func randomizeB(t testing.TB, m *models.Model, seed uint64, std float64) {
	t.Helper()
	a, _ := AdapterOf(m)
	r := rand.New(rand.NewPCG(seed, 3))
	for _, mod := range a.Modules {
		_, bn := loraNames(mod)
		v := m.Store.GetVariable(models.VarPath(bn))
		d := make([]float32, v.Shape().Size())
		for i := range d {
			d[i] = float32(std * r.NormFloat64())
		}
		if err := v.SetValue(tensors.FromFlatDataAndDimensions(d, v.Shape().Dimensions...)); err != nil {
			t.Fatal(err)
		}
	}
}

func logitsOf(t testing.TB, m *models.Model, seqs [][]int) [][][]float32 {
	t.Helper()
	out, err := m.Logits(seqs)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func maxAbsDiff(a, b [][][]float32) float64 {
	d := 0.0
	for i := range a {
		for j := range a[i] {
			for k := range a[i][j] {
				d = math.Max(d, math.Abs(float64(a[i][j][k])-float64(b[i][j][k])))
			}
		}
	}
	return d
}
