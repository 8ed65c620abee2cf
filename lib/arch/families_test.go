package arch

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/lib/config"
)

// The released configs give the published parameter counts (testdata/*.json are the Hub's
// config.json files): Qwen2.5-0.5B 494,032,768 (tied, q/k/v biases), Qwen2.5-7B 7,615,616,512,
// Mistral-7B-v0.1 7,241,732,096, Llama-3.2-1B 1,235,814,400 (tied).
func TestReleasedParamCounts(t *testing.T) {
	for _, c := range []struct {
		file   string
		arch   config.Arch
		params int64
		check  func(*config.Config) bool
	}{
		{"qwen2.5-0.5b", Qwen2, 494_032_768, func(c *config.Config) bool {
			return c.TieEmbed && c.AttnBias && c.QKVBiasOnly && !c.OBias() && c.KVHeads[0] == 2 && c.HeadDim == 64 &&
				c.RopeTheta == 1e6 && c.SlidingWindow == 0
		}},
		{"qwen2.5-7b", Qwen2, 7_615_616_512, func(c *config.Config) bool { return !c.TieEmbed && c.KVHeads[27] == 4 }},
		{"mistral-7b-v0.1", Mistral, 7_241_732_096, func(c *config.Config) bool {
			return c.SlidingWindow == 4096 && !c.AttnBias && c.KVHeads[0] == 8 && c.MaxPositions == 32768
		}},
		{"llama-3.2-1b", Llama, 1_235_814_400, func(c *config.Config) bool {
			return c.TieEmbed && c.RopeScaling.Kind() == "llama3" && c.HeadDim == 64 && c.RopeTheta == 5e5
		}},
	} {
		cfg, err := LoadConfig(filepath.Join("testdata", c.file+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Arch != c.arch || !c.check(cfg) {
			t.Errorf("%s: resolved %s (sliding window %d, q/k/v-only biases %v)", c.file, cfg, cfg.SlidingWindow, cfg.QKVBiasOnly)
		}
		if got := NumParams(cfg); got != c.params {
			t.Errorf("%s: %d parameters, published %d", c.file, got, c.params)
		}
		// Written back and read again: the same family and sizes.
		data, err := MarshalConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseConfig(data, c.file)
		if err != nil {
			t.Fatal(err)
		}
		if back.String() != cfg.String() || back.SlidingWindow != cfg.SlidingWindow || back.QKVBiasOnly != cfg.QKVBiasOnly ||
			NumParams(back) != c.params {
			t.Errorf("%s: round trip %s", c.file, back)
		}
	}
}

// Qwen2's head groups carry their q/k/v bias slices (o_proj has none), and its per-layer counts
// include them.
func TestQwen2Groups(t *testing.T) {
	cfg, err := LoadConfig(filepath.Join("testdata", "qwen2.5-0.5b.json"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := Of(cfg).HeadBlocks(cfg, 3)
	var biases []string
	for _, b := range blocks {
		if b.Bias {
			biases = append(biases, b.Tensor[strings.LastIndex(b.Tensor[:len(b.Tensor)-5], ".")+1:])
		}
	}
	if strings.Join(biases, ",") != "q_proj.bias,k_proj.bias,v_proj.bias" || blocks[0].Tensor != LlamaLayerTensor(3, "self_attn.k_proj.weight") {
		t.Errorf("head blocks: biases %v, root %s", biases, blocks[0].Tensor)
	}
	// Group of kv head 1 (GQA 7 query heads per kv head, head_dim 64): q rows 448…895, k/v 64…127.
	for _, b := range blocks {
		idx := b.Indices(1)
		want := 64
		if strings.Contains(b.Tensor, "q_proj") || strings.Contains(b.Tensor, "o_proj") {
			want = 448
		}
		if idx[0] != want || len(idx) != want {
			t.Errorf("%s: unit 1 = %d…, %d indices", b.Tensor, idx[0], len(idx))
		}
	}
	for _, n := range Of(cfg).LayerTensors(cfg, 0) {
		if strings.HasSuffix(n, "o_proj.bias") {
			t.Errorf("Qwen2 layer has %s", n)
		}
	}
	// An o_proj (or MLP) bias makes it a LLaMA with attention_bias: config.json says so and reads
	// back as such, with Qwen2's q/k/v biases, tying and rope_theta.
	biased := cfg.Clone()
	if err := Of(cfg).EnableBiases(biased, true, false); err != nil {
		t.Fatal(err)
	}
	js, err := MarshalConfig(biased)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseConfig(js, "biased qwen2")
	if err != nil {
		t.Fatal(err)
	}
	if back.Arch != Llama || !back.OBias() || !back.AttnBias || back.MLPBias || back.RopeTheta != cfg.RopeTheta || back.TieEmbed != cfg.TieEmbed ||
		NumParams(back) != NumParams(cfg)+int64(cfg.NumLayers()*cfg.Hidden) || !strings.Contains(string(js), `"LlamaForCausalLM"`) {
		t.Errorf("Qwen2 with an o_proj bias reads back as %s %s (o bias %v, mlp bias %v, %d params):\n%s", back.Arch, back, back.OBias(), back.MLPBias, NumParams(back), js)
	}
	if g := Of(cfg).GGUF(); g == nil || g.Arch != "qwen2" {
		t.Errorf("GGUF names %+v", g)
	}
	// MACs: q/k/v biases counted, no o bias: S·(H+2KV)·hd per layer over the bias-free count.
	plain := cfg.Clone()
	plain.AttnBias, plain.QKVBiasOnly = false, false
	diff := MACs(cfg, 64).Total() - llamaFamily.MACs(plain, 64).Total()
	if want := int64(24 * 64 * (14 + 2*2) * 64); diff != want {
		t.Errorf("bias MACs %d, want %d", diff, want)
	}
}

func TestBadFamilyConfigs(t *testing.T) {
	for name, js := range map[string]string{
		"qwen2 sliding":  `{"model_type":"qwen2","hidden_size":64,"num_hidden_layers":1,"num_attention_heads":8,"vocab_size":10,"intermediate_size":4,"use_sliding_window":true,"sliding_window":16}`,
		"mistral window": `{"model_type":"mistral","hidden_size":64,"num_hidden_layers":1,"num_attention_heads":8,"vocab_size":10,"intermediate_size":4,"sliding_window":-3}`,
	} {
		if _, err := ParseConfig([]byte(js), name); err == nil {
			t.Errorf("%s accepted", name)
		} else {
			t.Log(err)
		}
	}
}

// FromGGUF: llama.cpp's architectures back to families (deci by its q/k/v biases).
func TestFromGGUF(t *testing.T) {
	for _, c := range []struct {
		arch    string
		qkvOnly bool
		want    config.Arch
	}{{"llama", false, Llama}, {"qwen2", true, Qwen2}, {"deci", false, Llama}, {"deci", true, Qwen2}} {
		f, err := FromGGUF(c.arch, c.qkvOnly)
		if err != nil || f.Name() != c.want {
			t.Errorf("FromGGUF(%q, %v) = %v, %v; want %s", c.arch, c.qkvOnly, f, err, c.want)
		}
	}
	for _, a := range []string{"chatglm", "", "gpt2"} {
		if f, err := FromGGUF(a, false); err == nil {
			t.Errorf("FromGGUF(%q) = %s", a, f.Name())
		} else {
			t.Log(err)
		}
	}
}
