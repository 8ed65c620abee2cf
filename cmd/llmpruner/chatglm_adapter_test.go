package main

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/lora"
	"github.com/llmpruner/llmpruner/lib/models"
)

// TestChatGLMAdapterThroughCLI: a LoRA adapter on the tiny ChatGLM fixture (PEFT names
// transformer.layers.N.attention.query_key_value …) applies through score --adapter, and
// convert --adapter (merge) gives the same scores.
func TestChatGLMAdapterThroughCLI(t *testing.T) {
	fixture, err := filepath.Abs(filepath.Join("..", "..", "lib", "models", "testdata", "chatglm_tiny"))
	if err != nil {
		t.Fatal(err)
	}
	be, err := backend()
	if err != nil {
		t.Fatal(err)
	}
	m, err := models.Load(be, fixture, models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := lora.Attach(m, lora.DefaultConfig(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Modules) != 8 || a.Modules[0] != "transformer.layers.0.attention.query_key_value" {
		t.Fatalf("ChatGLM adapter modules %v", a.Modules)
	}
	rng := rand.New(rand.NewPCG(4, 4))
	for _, mod := range a.Modules {
		v := m.Store.GetVariable(models.VarPath(mod + ".lora_B.weight"))
		d := make([]float32, v.Shape().Size())
		for i := range d {
			d[i] = float32(0.05 * rng.NormFloat64())
		}
		if err := v.SetValue(tensors.FromFlatDataAndDimensions(d, v.Shape().Dimensions...)); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	adapter := filepath.Join(dir, "adapter")
	if err := lora.SaveAdapter(m, adapter); err != nil {
		t.Fatal(err)
	}
	input := writeFile(t, filepath.Join(dir, "in.jsonl"), `{"ids":[5,17,99,151,152,30,40,41,8]}`+"\n"+`{"ids":[1,2,3,4,5,6,7]}`+"\n")
	base := parseScores(t, mustSucceed(t, "score", "--model", fixture, "--input", input, "--logits").stdout)
	adapted := parseScores(t, mustSucceed(t, "score", "--model", fixture, "--adapter", adapter, "--input", input, "--logits").stdout)
	merged := filepath.Join(dir, "merged")
	mustSucceed(t, "convert", "--model", fixture, "--adapter", adapter, "--out", merged, "--dtype", "f32")
	fromMerged := parseScores(t, mustSucceed(t, "score", "--model", merged, "--input", input, "--logits").stdout)
	diff := func(x, y []scoreOutput) (d, scale float64) {
		for i := range x {
			for j := range x[i].LogitsLast {
				d = math.Max(d, math.Abs(float64(x[i].LogitsLast[j]-y[i].LogitsLast[j])))
				scale = math.Max(scale, math.Abs(float64(x[i].LogitsLast[j])))
			}
		}
		return d, scale
	}
	if d, _ := diff(adapted, base); d < 1e-3 {
		t.Errorf("score --adapter changed ChatGLM logits by only %g", d)
	}
	if d, scale := diff(adapted, fromMerged); d > 1e-5*scale {
		t.Errorf("ChatGLM: score --adapter vs the merged model: max diff %g (max |logit| %g; want ≤ 1e-5 relative)", d, scale)
	}
}

// TestChatGLMStats: stats --model on a ChatGLM model times generation from a valid ChatGLM prompt
// ([gMASK] <sop>; a bare BOS is refused by generation) and counts its MACs with ChatGLM's two-matrix
// MLP, by hand for the tiny fixture (D 64, F 128, 4 heads of 16, 2 layers, V 160) at S = 64.
func TestChatGLMStats(t *testing.T) {
	fixture, err := filepath.Abs(filepath.Join("..", "..", "lib", "models", "testdata", "chatglm_tiny"))
	if err != nil {
		t.Fatal(err)
	}
	res := mustSucceed(t, "stats", "--model", fixture, "--warmup", "0", "--repeats", "1", "--gen-tokens", "4", "--json")
	var out statsOutput
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatal(err)
	}
	const S, D, F, H, HD, V, L = 64, 64, 128, 4, 16, 160, 2
	perLayer := int64(S*D*HD*4*H + S*(3*H*HD+D) + // query_key_value, dense and their biases
		H*(2*S*S*HD+S*S) + 2*S*HD*2*H + // attention, rotary of q and k
		2*S*D*F + S*(F+D) + S*F + // two MLP matrices and biases, GELU
		2*2*S*D) // two LayerNorms
	if want := L*perLayer + 2*S*D + S*D*V; out.MACs != want {
		t.Errorf("ChatGLM MACs %d, want %d", out.MACs, want)
	}
	if out.Generate == nil || out.Generate.Tokens != 4 || out.Generate.TokensPerSec <= 0 {
		t.Errorf("generation timing %+v", out.Generate)
	}
}
