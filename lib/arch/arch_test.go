package arch

import (
	"slices"
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/lib/config"
)

// ChatGLM-6B's MACs at S = 64, written out by hand: the MLP has two matrices (dense_h_to_4h,
// dense_4h_to_h), not LLaMA's three.
func TestChatGLMMACsByHand(t *testing.T) {
	c, err := ParseConfig([]byte(chatglm6B), "chatglm-6b")
	if err != nil {
		t.Fatal(err)
	}
	const S, D, HD, H, F, V, L = 64, 4096, 128, 32, 16384, 130528, 28
	want := MACBreakdown{
		AttentionLinear: L * (S*D*HD*4*H + S*(3*H*HD+D)),
		Attention:       L * H * (2*S*S*HD + S*S),
		Rotary:          L * 2 * S * HD * 2 * H,
		MLPLinear:       L * (2*S*D*F + S*(F+D)),
		Activation:      L * S * F,
		Norm:            (2*L + 1) * 2 * S * D,
		LMHead:          S * D * V,
	}
	if got := MACs(c, S); got != want {
		t.Fatalf("MACs %+v, want %+v", got, want)
	}
}

// Every family's tensor list agrees with its parameter count, its layer tensors and its groups.
func TestFamiliesConsistent(t *testing.T) {
	llama, err := ParseConfig([]byte(llama7B), "llama7b")
	if err != nil {
		t.Fatal(err)
	}
	glm, err := ParseConfig([]byte(chatglm6B), "chatglm-6b")
	if err != nil {
		t.Fatal(err)
	}
	biased := llama.Clone()
	biased.AttnBias, biased.MLPBias, biased.TieEmbed = true, true, true
	for name, c := range map[string]*config.Config{"llama": llama, "llama-biases": biased, "chatglm": glm} {
		c.Heads[1], c.KVHeads[1], c.Inter[1] = 16, 16, 1000 // non-uniform
		f := Of(c)
		shape := map[string][]int{}
		for _, ts := range f.Tensors(c) {
			shape[ts.Name] = ts.Shape
		}
		var layers int64
		for l := range c.NumLayers() {
			var n int64
			for _, name := range f.LayerTensors(c, l) {
				s, ok := shape[name]
				if !ok {
					t.Fatalf("%s: layer tensor %s is not a model tensor", name, name)
				}
				n += numel(s)
			}
			if n != f.LayerParams(c, l) {
				t.Errorf("%s layer %d: tensors hold %d params, LayerParams %d", name, l, n, f.LayerParams(c, l))
			}
			layers += n
			// Each group block stays inside its tensor: the last unit's last index.
			check := func(blocks []Block, units int) {
				for _, b := range blocks {
					s, ok := shape[b.Tensor]
					if !ok || b.Axis >= len(s) {
						t.Fatalf("%s: block on %s axis %d: no such tensor/axis", name, b.Tensor, b.Axis)
					}
					if last := b.Indices(units - 1); last[len(last)-1] != s[b.Axis]-1 && !strings.Contains(b.Tensor, "query_key_value") {
						t.Errorf("%s: %s axis %d: last unit ends at %d, size %d", name, b.Tensor, b.Axis, last[len(last)-1], s[b.Axis])
					}
				}
			}
			check(f.HeadBlocks(c, l), c.KVHeads[l])
			check(f.MLPBlocks(c, l), c.Inter[l])
		}
		if total := countTensors(f.Tensors(c)); total != f.NumParams(c) || total <= layers {
			t.Errorf("%s: tensors %d, NumParams %d, layers %d", name, total, f.NumParams(c), layers)
		}
		if !slices.Contains(f.HiddenTensors(c).Cols, f.Embedding()) {
			t.Errorf("%s: hidden channels miss the embedding", name)
		}
	}
}

// The GGUF names cover every LLaMA tensor.
func TestLlamaGGUFNames(t *testing.T) {
	c, err := ParseConfig([]byte(llama7B), "llama7b")
	if err != nil {
		t.Fatal(err)
	}
	g := Of(c).GGUF()
	for _, ts := range Of(c).Tensors(c) {
		if _, ok := g.Global[ts.Name]; ok {
			continue
		}
		rest := strings.TrimPrefix(ts.Name, "model.layers.")
		_, module, _ := strings.Cut(rest, ".")
		module = strings.TrimSuffix(strings.TrimSuffix(module, ".weight"), ".bias")
		if _, ok := g.Layer[module]; !ok {
			t.Errorf("no GGUF name for %s", ts.Name)
		}
	}
	if g := Of(&config.Config{Arch: ChatGLM}).GGUF(); g.Arch != "" || g.Unsupported == "" {
		t.Errorf("ChatGLM GGUF names %+v", g)
	}
}

func TestDetect(t *testing.T) {
	for js, want := range map[string]config.Arch{
		`{"model_type":"llama"}`:                                Llama,
		`{"architectures":["LlamaForCausalLM"]}`:                Llama,
		`{"model_type":"chatglm"}`:                              ChatGLM,
		`{"architectures":["ChatGLMModel"]}`:                    ChatGLM,
		`{"architectures":["ChatGLMForConditionalGeneration"]}`: ChatGLM,
	} {
		f, err := Detect([]byte(js), "test")
		if err != nil || f.Name() != want {
			t.Errorf("%s: %v %v, want %s", js, f, err, want)
		}
	}
	if _, err := Detect([]byte(`{"model_type":"gpt2"}`), "test"); err == nil || !strings.Contains(err.Error(), "supported: ") {
		t.Errorf("gpt2: %v", err)
	}
}
