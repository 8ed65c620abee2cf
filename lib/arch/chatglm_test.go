package arch

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/llmpruner/llmpruner/lib/internal/testdata"
)

// chatglm6B is THUDM/chatglm-6b's config.json (the architecture fields).
const chatglm6B = `{"_name_or_path":"THUDM/chatglm-6b","architectures":["ChatGLMModel"],"bos_token_id":130004,
"eos_token_id":130005,"mask_token_id":130000,"gmask_token_id":130001,"pad_token_id":3,"hidden_size":4096,
"inner_hidden_size":16384,"layernorm_epsilon":1e-05,"max_sequence_length":2048,"model_type":"chatglm",
"num_attention_heads":32,"num_layers":28,"position_encoding_2d":true,"torch_dtype":"float16","use_cache":true,
"vocab_size":130528}`

// Hand count for ChatGLM-6B (tied lm_head, HF's default): embeddings 130528·4096 = 534,642,688;
// final LayerNorm 8,192; per layer 4·4096 (2 LayerNorms) + 3·4096·4096+3·4096 (query_key_value)
// + 4096·4096+4096 (dense) + 2·4096·16384+16384+4096 (MLP) = 201,379,840, ×28 = 5,638,635,520.
const chatglm6BParams = 534642688 + 8192 + 28*201379840

func TestChatGLM6BConfig(t *testing.T) {
	c, err := ParseConfig([]byte(chatglm6B), "chatglm-6b")
	if err != nil {
		t.Fatal(err)
	}
	if c.Arch != ChatGLM || c.Hidden != 4096 || c.NumLayers() != 28 || c.HeadDim != 128 || c.Heads[27] != 32 ||
		c.KVHeads[0] != 32 || c.Inter[3] != 16384 || c.Vocab != 130528 || c.MaxPositions != 2048 || c.RMSNormEps != 1e-5 ||
		!c.TieEmbed || !c.AttnBias || !c.MLPBias {
		t.Fatalf("bad resolve: %s", c)
	}
	if s := ChatGLMTokens(c); s != (ChatGLMSpecial{BOS: 130004, EOS: 130005, Mask: 130000, GMask: 130001}) {
		t.Fatalf("special tokens %+v", s)
	}
	if got := NumParams(c); got != chatglm6BParams {
		t.Fatalf("NumParams = %d, want %d", got, chatglm6BParams)
	}
	if math.Abs(ChatGLMAlpha(c)-math.Sqrt(56)) > 1e-12 {
		t.Fatalf("alpha %g", ChatGLMAlpha(c))
	}
}

func TestChatGLMRealConfigFile(t *testing.T) {
	path := testdata.Path(t, "tokenizers/chatglm-6b/config.json")
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if NumParams(c) != chatglm6BParams {
		t.Fatalf("NumParams = %d, want %d", NumParams(c), chatglm6BParams)
	}
}

// A pruned ChatGLM config round-trips with its per-layer lists, and keeps alpha's layer count
// when layers are removed.
func TestChatGLMRoundTripPruned(t *testing.T) {
	c, err := ParseConfig([]byte(chatglm6B), "chatglm-6b")
	if err != nil {
		t.Fatal(err)
	}
	c.Heads, c.KVHeads, c.Inter = c.Heads[:3], c.KVHeads[:3], c.Inter[:3]
	c.Heads[1], c.KVHeads[1], c.Inter[2] = 29, 29, 14000
	path := t.TempDir() + "/config.json"
	if err := SaveConfig(c, path); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if m["num_layers"] != 3.0 || m["model_type"] != "chatglm" || m["inner_hidden_size"] != 16384.0 || m["mask_token_id"] != 130000.0 {
		t.Fatalf("written config: %s", data)
	}
	d, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if d.Heads[1] != 29 || d.Inter[2] != 14000 || d.NumLayers() != 3 || math.Abs(ChatGLMAlpha(d)-math.Sqrt(56)) > 1e-12 {
		t.Fatalf("reloaded %s alpha %g", d, ChatGLMAlpha(d))
	}
	if NumParams(d) != NumParams(c) {
		t.Fatalf("params %d vs %d", NumParams(d), NumParams(c))
	}
}

func TestChatGLMBadConfigs(t *testing.T) {
	for name, edit := range map[string]func(m map[string]any){
		"no gmask":     func(m map[string]any) { delete(m, "gmask_token_id") },
		"1d positions": func(m map[string]any) { m["position_encoding_2d"] = false },
		"quantized":    func(m map[string]any) { m["quantization_bit"] = 4 },
		"odd heads":    func(m map[string]any) { m["hidden_size"] = 4095 },
	} {
		var m map[string]any
		_ = json.Unmarshal([]byte(chatglm6B), &m)
		edit(m)
		data, _ := json.Marshal(m)
		if _, err := ParseConfig(data, "cfg"); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// The DeepNorm scale follows the original code: sqrt(2·28) whatever num_layers says (GLMBlock's
// default, which ChatGLMModel never overrides), unless the config carries llmpruner's
// residual_alpha_num_layers; what llmpruner writes keeps it.
func TestChatGLMAlphaAsOriginal(t *testing.T) {
	for js, want := range map[string]float64{
		`"num_layers":2`:  math.Sqrt(56),
		`"num_layers":28`: math.Sqrt(56),
		`"num_layers":40`: math.Sqrt(56),
		`"num_layers":2,"residual_alpha_num_layers":10`: math.Sqrt(20),
	} {
		data := `{"model_type":"chatglm","hidden_size":64,"num_attention_heads":4,"vocab_size":160,` + js +
			`,"bos_token_id":1,"eos_token_id":2,"mask_token_id":3,"gmask_token_id":4}`
		c, err := ParseConfig([]byte(data), js)
		if err != nil {
			t.Fatal(err)
		}
		if got := ChatGLMAlpha(c); math.Abs(got-want) > 1e-12 {
			t.Errorf("%s: alpha %g, want %g", js, got, want)
		}
		out, err := MarshalConfig(c)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseConfig(out, "written")
		if err != nil {
			t.Fatal(err)
		}
		if got := ChatGLMAlpha(back); math.Abs(got-want) > 1e-12 {
			t.Errorf("%s: alpha %g after writing, want %g", js, got, want)
		}
	}
}
