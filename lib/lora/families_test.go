package lora

import (
	"path/filepath"
	"testing"

	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/models"
)

// TestFamilyTargets: Qwen2 (q/k/v biases), Mistral and Llama-3.2 adapt the seven LLaMA projections
// of every layer; r·(in+out) parameters each, as PEFT counts them.
func TestFamilyTargets(t *testing.T) {
	for _, name := range []string{"qwen2_tiny", "mistral_tiny", "llama32_tiny"} {
		m, err := models.Load(groupstest.Backend(t), filepath.Join("..", "models", "testdata", name), models.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		a, err := Attach(m, Config{R: 4, Alpha: 8, Targets: []string{"q", "k_proj", "down"}}, 1)
		if err != nil {
			t.Fatalf("%s: %+v", name, err)
		}
		want := []string{"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj", "model.layers.0.mlp.down_proj",
			"model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.k_proj", "model.layers.1.mlp.down_proj"}
		if len(a.Modules) != len(want) {
			t.Fatalf("%s: modules %v", name, a.Modules)
		}
		for i := range want {
			if a.Modules[i] != want[i] {
				t.Errorf("%s: module %d = %s, want %s", name, i, a.Modules[i], want[i])
			}
		}
		c, D, HD := m.Config, m.Config.Hidden, m.Config.HeadDim
		perLayer := 4 * ((D + c.Heads[0]*HD) + (D + c.KVHeads[0]*HD) + (c.Inter[0] + D))
		if n := a.NumParams(m); n != 2*perLayer {
			t.Errorf("%s: %d adapter parameters, want %d", name, n, 2*perLayer)
		}
	}
}
