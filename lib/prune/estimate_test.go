package prune

import (
	"math"
	"testing"

	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/importance"
)

// llama7B is the LLaMA-7B config (hidden 4096, 32 layers, 32 heads, ffn 11008, vocab 32000, untied).
func llama7B(t *testing.T) map[string]any {
	return map[string]any{"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
		"num_attention_heads": 32, "vocab_size": 32000, "max_position_embeddings": 2048, "rms_norm_eps": 1e-6}
}

// TestEstimateLLaMA7B checks the original's logged parameter counts (issue #34 of LLM-Pruner):
// block-wise 0.25 on layers 4:30 takes LLaMA-7B from 6,738,415,616 to 5,422,977,024 parameters.
func TestEstimateLLaMA7B(t *testing.T) {
	cfg := groupstest.Config(t, llama7B(t))
	r := &Range{4, 30}
	for _, steps := range []int{1, 4} {
		p, err := Estimate(cfg, Options{Strategy: Block, Ratio: 0.25, AttnLayers: r, MLPLayers: r, IterativeSteps: steps})
		if err != nil {
			t.Fatal(err)
		}
		if p.ParamsBefore != 6_738_415_616 || p.ParamsAfter != 5_422_977_024 {
			t.Errorf("steps %d: params %d → %d, want 6738415616 → 5422977024", steps, p.ParamsBefore, p.ParamsAfter)
		}
		if p.Heads[4] != 24 || p.Inter[4] != 8256 || p.Heads[3] != 32 || p.Inter[30] != 11008 {
			t.Errorf("steps %d: per-layer sizes heads[4]=%d inter[4]=%d heads[3]=%d inter[30]=%d", steps, p.Heads[4], p.Inter[4], p.Heads[3], p.Inter[30])
		}
	}
	// MACs at 64 tokens (test_speedup.py's counting): the paper's 424.02G dense, 339.60G for the
	// block-pruned 20% model.
	p, _ := Estimate(cfg, Options{Strategy: Block, Ratio: 0.25, AttnLayers: r, MLPLayers: r})
	if math.Round(float64(p.MACsBefore)/1e7) != 42402 || math.Round(float64(p.MACsAfter)/1e7) != 33960 {
		t.Errorf("MACs %d → %d, paper 424.02G → 339.60G", p.MACsBefore, p.MACsAfter)
	}
}

func TestEstimateChannelAndLayer(t *testing.T) {
	cfg := groupstest.Config(t, llama7B(t))
	p, err := Estimate(cfg, Options{Strategy: Channel, Ratio: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	if p.Hidden != 3276 { // int(4096·0.8)
		t.Errorf("channel 0.2: hidden %d, want 3276", p.Hidden)
	}
	p, err = Estimate(cfg, Options{Strategy: Layer, KeepLayers: 12})
	if err != nil {
		t.Fatal(err)
	}
	want := 2*int64(32000*4096) + 4096 + 12*arch.LayerParams(cfg, 0)
	if p.Layers != 12 || p.ParamsAfter != want {
		t.Errorf("layer 12: %d layers, %d params; want 12, %d", p.Layers, p.ParamsAfter, want)
	}
	p, err = Estimate(cfg, Options{Strategy: Block, Ratio: 0.3, RoundTo: 64})
	if err != nil {
		t.Fatal(err)
	}
	// 11008·0.7 = 7705.6 → 7705 kept → nearest multiple of 64 = 7680; heads: 4096·0.7 → 2867 channels
	// kept, 1229 pruned → 9 whole heads pruned (rounded down, as MetaPruner) → 23 (×128 already a multiple of 64)
	if p.Inter[0] != 7680 || p.Heads[0] != 23 {
		t.Errorf("round-to 64: inter %d heads %d, want 7680 23", p.Inter[0], p.Heads[0])
	}
}

func TestValidateErrors(t *testing.T) {
	cfg := groupstest.Config(t, llama7B(t))
	bad := map[string]Options{
		"ratio 1":           {Strategy: Block, Ratio: 1},
		"ratio negative":    {Strategy: Block, Ratio: -0.1},
		"reversed range":    {Strategy: Block, Ratio: 0.2, AttnLayers: &Range{30, 4}},
		"empty range":       {Strategy: Block, Ratio: 0.2, MLPLayers: &Range{5, 5}},
		"range beyond":      {Strategy: Block, Ratio: 0.2, AttnLayers: &Range{4, 33}},
		"keep too many":     {Strategy: Layer, KeepLayers: 33},
		"taylor w/o taylor": {Strategy: Block, Ratio: 0.2, Importance: importance.Options{Criterion: importance.L2, Taylor: importance.ParamMix}},
		"global channel":    {Strategy: Channel, Ratio: 0.2, Global: true},
		"ranges on channel": {Strategy: Channel, Ratio: 0.2, AttnLayers: &Range{1, 2}},
		"negative steps":    {Strategy: Block, Ratio: 0.2, IterativeSteps: -1},
		"global plan":       {Strategy: Block, Ratio: 0.2, Global: true},
	}
	for name, o := range bad {
		if _, err := Estimate(cfg, o); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	// int(8·0.05) = 0 MLP channels would be left in the tiny model's layer 2.
	if _, err := Estimate(groupstest.Tiny(t), Options{Strategy: Block, Ratio: 0.95}); err == nil {
		t.Error("ratio 0.95 on the tiny model: no error for removing every MLP channel")
	} else {
		t.Log(err)
	}
	if _, err := ParseRange("4-30"); err == nil {
		t.Error("ParseRange(4-30): no error")
	}
	if r, err := ParseRange("4:30"); err != nil || r != (Range{4, 30}) {
		t.Errorf("ParseRange(4:30) = %v, %v", r, err)
	}
}
