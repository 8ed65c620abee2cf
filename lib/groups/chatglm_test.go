package groups_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/groups"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/prune"
)

// chatglmTiny is a small non-uniform ChatGLM config: 3 layers, hidden 32, head_dim 8, heads
// [4 3 4], MLP widths [12 10 8], vocab 40 with [MASK] 36, [gMASK] 37, <sop> 38, <eop> 39.
func chatglmTiny(t *testing.T) *config.Config {
	t.Helper()
	data, _ := json.Marshal(map[string]any{"model_type": "chatglm", "hidden_size": 32, "num_layers": 3,
		"num_attention_heads": 4, "inner_hidden_size": 12, "vocab_size": 40, "layernorm_epsilon": 1e-5,
		"max_sequence_length": 32, "mask_token_id": 36, "gmask_token_id": 37, "bos_token_id": 38, "eos_token_id": 39,
		config.KeyHeadsPerLayer: []int{4, 3, 4}, config.KeyKVHeadsPerLayer: []int{4, 3, 4}, config.KeyInterPerLayer: []int{12, 10, 8}})
	cfg, err := arch.ParseConfig(data, "chatglm tiny")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// chatglmPrompts are prefix-LM inputs: text, [gMASK] (or [MASK]), <sop>, continuation.
var chatglmPrompts = [][]int{{3, 14, 15, 9, 26, 37, 38, 5, 35, 8}, {2, 7, 36, 18, 28, 1, 38, 8, 4, 11}}

// TestChatGLMRemovalEqualsZeroing: slicing ChatGLM head and MLP-channel groups out equals zeroing
// their members (fused query_key_value rows in the per-head interleaved layout, dense columns,
// biases) in the unpruned model.
func TestChatGLMRemovalEqualsZeroing(t *testing.T) {
	cfg := chatglmTiny(t)
	m := groupstest.RandomModel(t, cfg, 4, 0.3)
	heads0, _ := groups.AttentionHeads(cfg, 0)
	heads1, _ := groups.AttentionHeads(cfg, 1)
	mlp0, _ := groups.MLPChannels(cfg, 0)
	mlp2, _ := groups.MLPChannels(cfg, 2)
	cases := map[string][]groups.Group{
		"heads 1,3 of layer 0":             {heads0.Groups[1], heads0.Groups[3]},
		"head 2 of layer 1 (last)":         {heads1.Groups[2]},
		"MLP channels 0,5,11 of layer 0":   {mlp0.Groups[0], mlp0.Groups[5], mlp0.Groups[11]},
		"MLP channel 7 of layer 2 + heads": {mlp2.Groups[7], heads1.Groups[0], heads0.Groups[0]},
	}
	base := logits(t, m.Store, cfg, chatglmPrompts)
	for name, gs := range cases {
		zeroed := clone(t, m.Store)
		zeroMembers(t, zeroed, gs)
		want := logits(t, zeroed, cfg, chatglmPrompts)
		sliced := clone(t, m.Store)
		next, err := prune.RemoveGroups(sliced, cfg, gs)
		if err != nil {
			t.Fatal(err)
		}
		got := logits(t, sliced, next, chatglmPrompts)
		if d := maxDiff(got, want); d > 1e-4 {
			t.Errorf("%s: sliced vs zeroed logits differ by %.3g", name, d)
		}
		if d := maxDiff(got, base); d < 1e-3 {
			t.Errorf("%s: removing the group did not change the logits (%.3g): test cannot fail", name, d)
		}
	}
}

// TestChatGLMGroupMembers checks the worked example of chatglm.go (head 1 of a head_dim-2 layer).
func TestChatGLMGroupMembers(t *testing.T) {
	data := []byte(`{"model_type":"chatglm","hidden_size":8,"num_layers":1,"num_attention_heads":4,"head_dim":4,
"inner_hidden_size":6,"vocab_size":10,"mask_token_id":6,"gmask_token_id":7,"bos_token_id":8,"eos_token_id":9}`)
	cfg, err := arch.ParseConfig(data, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	cfg.HeadDim = 2 // the doc example; Validate (multiple of 4) is not needed to list groups
	f, err := groups.AttentionHeads(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	qkv := "transformer.layers.0.attention.query_key_value."
	want := []groups.Member{
		{Tensor: qkv + "weight", Axis: 0, Indices: []int{6, 7}},
		{Tensor: qkv + "weight", Axis: 0, Indices: []int{8, 9}},
		{Tensor: qkv + "weight", Axis: 0, Indices: []int{10, 11}},
		{Tensor: "transformer.layers.0.attention.dense.weight", Axis: 1, Indices: []int{2, 3}},
		{Tensor: qkv + "bias", Axis: 0, Indices: []int{6, 7, 8, 9, 10, 11}, Bias: true},
	}
	g := f.Groups[1]
	if len(g.Members) != len(want) {
		t.Fatalf("members %+v", g.Members)
	}
	for i := range want {
		if g.Members[i].Tensor != want[i].Tensor || g.Members[i].Axis != want[i].Axis || g.Members[i].Bias != want[i].Bias ||
			!slices.Equal(g.Members[i].Indices, want[i].Indices) {
			t.Errorf("member %d = %+v, want %+v", i, g.Members[i], want[i])
		}
	}
	h, _ := groups.HiddenChannels(cfg)
	if h.Groups[3].Members[0].Tensor != "transformer.layers.0.input_layernorm.weight" || len(h.Groups[3].Members) != 3+3+2+5 {
		t.Errorf("hidden channel members %+v", h.Groups[3].Members)
	}
	if _, err := groups.MLPChannels(cfg, 1); err == nil {
		t.Error("layer out of range: no error")
	}
}
