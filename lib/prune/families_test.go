package prune

import (
	"path/filepath"
	"testing"

	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/importance"
	"github.com/llmpruner/llmpruner/lib/models"
)

// TestFamiliesPruneSaveReload: Taylor block pruning of the tiny Qwen2 (q/k/v biases pruned with
// their heads), Mistral and Llama-3.2 models gives the estimated sizes, writes a directory of the
// same family, and reloads to the same logits.
func TestFamiliesPruneSaveReload(t *testing.T) {
	for _, name := range []string{"qwen2_tiny", "mistral_tiny", "llama32_tiny"} {
		m, err := models.Load(groupstest.Backend(t), filepath.Join("..", "models", "testdata", name), models.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		V := m.Config.Vocab
		o := Options{Strategy: Block, Ratio: 0.5, Importance: importance.Options{Criterion: importance.Taylor},
			Sampler: func(step int) ([][]int, error) { return groupstest.Tokens(3, 12, V, uint64(40+step)), nil }}
		est, err := Estimate(m.Config, o)
		if err != nil {
			t.Fatal(err)
		}
		before := m.Config.Clone()
		if _, err := Prune(m, o); err != nil {
			t.Fatalf("%s: %+v", name, err)
		}
		if arch.NumParams(m.Config) != est.ParamsAfter || est.ParamsAfter >= arch.NumParams(before) {
			t.Errorf("%s: pruned to %s (%d params), estimate %d", name, m.Config, arch.NumParams(m.Config), est.ParamsAfter)
		}
		prompt := groupstest.Tokens(1, 9, V, 77)
		want, err := m.Logits(prompt)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), name)
		if err := m.Save(out, ""); err != nil {
			t.Fatal(err)
		}
		back, err := models.Load(groupstest.Backend(t), out, models.LoadOptions{})
		if err != nil {
			t.Fatalf("%s: reload: %+v", name, err)
		}
		if back.Config.Arch != before.Arch || back.Config.String() != m.Config.String() || back.Config.SlidingWindow != before.SlidingWindow {
			t.Errorf("%s: reloaded %s", name, back.Config)
		}
		if before.QKVBiasOnly {
			kb := back.Store.GetVariable(models.VarPath("model.layers.0.self_attn.k_proj.bias"))
			if kb == nil || kb.Shape().Dim(0) != back.Config.KVHeads[0]*back.Config.HeadDim {
				t.Errorf("%s: k_proj bias %v after pruning to %d kv heads", name, kb, back.Config.KVHeads[0])
			}
		}
		got, err := back.Logits(prompt)
		if err != nil {
			t.Fatal(err)
		}
		ref := make([][]float64, len(want[0]))
		for i, row := range want[0] {
			for _, v := range row {
				ref[i] = append(ref[i], float64(v))
			}
		}
		if d := relDiff(got[0], ref); d > 1e-6 {
			t.Errorf("%s: reloaded logits differ by %.2e", name, d)
		}
		t.Logf("%s: %d → %d parameters, kv heads %v → %v", name, arch.NumParams(before), est.ParamsAfter, before.KVHeads, back.Config.KVHeads)
	}
}
