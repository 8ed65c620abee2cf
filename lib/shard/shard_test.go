package shard

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gomlx/compute/distributed"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/config"
)

// Published config.json architecture fields (meta-llama/Llama-2-70b-hf, huggyllama/llama-7b,
// THUDM/chatglm-6b).
const (
	llama2_70B = `{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":8192,
		"intermediate_size":28672,"num_attention_heads":64,"num_hidden_layers":80,"num_key_value_heads":8,
		"vocab_size":32000,"max_position_embeddings":4096,"rms_norm_eps":1e-5,"tie_word_embeddings":false}`
	llama7B = `{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":4096,
		"intermediate_size":11008,"num_attention_heads":32,"num_hidden_layers":32,"vocab_size":32000,
		"max_position_embeddings":2048,"rms_norm_eps":1e-6}`
	chatglm6B = `{"architectures":["ChatGLMModel"],"model_type":"chatglm","hidden_size":4096,
		"inner_hidden_size":16384,"num_attention_heads":32,"num_layers":28,"vocab_size":130528,
		"max_sequence_length":2048,"layernorm_epsilon":1e-5,"bos_token_id":130004,"eos_token_id":130005,
		"mask_token_id":130000,"gmask_token_id":130001,"pad_token_id":3,"position_encoding_2d":true}`
)

func parse(t *testing.T, js string) *config.Config {
	t.Helper()
	c, err := arch.ParseConfig([]byte(js), "test config")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func adapterOn(c *config.Config, rank int, modules ...string) *Adapter {
	a := &Adapter{Rank: rank}
	for l := range c.NumLayers() {
		for _, m := range modules {
			a.Modules = append(a.Modules, fmt.Sprintf("model.layers.%d.%s", l, m))
		}
	}
	return a
}

var allLlama = []string{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
	"mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}

func TestLlamaColumnAndRowParallel(t *testing.T) {
	c := parse(t, llama2_70B)
	lay, err := TensorParallel(c, 4, adapterOn(c, 8, allLlama...))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		"model.embed_tokens.weight":                     0,
		"lm_head.weight":                                0,
		"model.norm.weight":                             -1,
		"model.layers.7.input_layernorm.weight":         -1,
		"model.layers.7.self_attn.q_proj.weight":        0,
		"model.layers.7.self_attn.k_proj.weight":        0,
		"model.layers.7.self_attn.v_proj.weight":        0,
		"model.layers.7.self_attn.o_proj.weight":        1,
		"model.layers.7.mlp.gate_proj.weight":           0,
		"model.layers.7.mlp.up_proj.weight":             0,
		"model.layers.7.mlp.down_proj.weight":           1,
		"model.layers.7.self_attn.q_proj.lora_A.weight": -1,
		"model.layers.7.self_attn.q_proj.lora_B.weight": 0,
		"model.layers.7.self_attn.o_proj.lora_A.weight": 1,
		"model.layers.7.self_attn.o_proj.lora_B.weight": -1,
		"model.layers.7.mlp.down_proj.lora_A.weight":    1,
		"model.layers.7.mlp.down_proj.lora_B.weight":    -1,
	}
	for name, ax := range want {
		p, ok := lay.Placement(name)
		if !ok {
			t.Fatalf("no placement for %s", name)
		}
		if p.Axis != ax {
			t.Errorf("%s: axis %d, want %d", name, p.Axis, ax)
		}
	}
	if r := lay.Replicated(); len(r) != 0 {
		t.Errorf("replicated projections on LLaMA-2-70B over 4 devices: %v", r)
	}
	// Every split tensor divides evenly: the shard shapes GoMLX computes are valid.
	mesh, err := distributed.NewDeviceMesh([]int{2, 4}, []string{"data", ModelAxis})
	if err != nil {
		t.Fatal(err)
	}
	specs, err := lay.Specs(mesh)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range lay.Placements {
		spec := specs[p.Tensor]
		shard := spec.ShardShape(shapes.Make(dtypes.BFloat16, p.Shape...))
		if !shard.Ok() {
			t.Fatalf("%s %v: invalid shard shape under %s", p.Tensor, p.Shape, spec)
		}
		for ax, d := range p.Shape {
			want := d
			if ax == p.Axis {
				want = d / 4
			}
			if shard.Dimensions[ax] != want {
				t.Fatalf("%s: shard %v of %v, axis %d", p.Tensor, shard.Dimensions, p.Shape, p.Axis)
			}
		}
	}
	// A device holds whole key/value groups: under GQA 8 kv heads over 4 devices give 2 each,
	// with their 16 query heads (rows 0..2047 of q_proj on device 0 are heads 0..15, whose kv
	// heads 0..1 are rows 0..255 of k_proj on device 0).
	q, _ := lay.Placement("model.layers.0.self_attn.q_proj.weight")
	k, _ := lay.Placement("model.layers.0.self_attn.k_proj.weight")
	hd := c.HeadDim
	if rowsQ, rowsK := q.Shape[0]/4, k.Shape[0]/4; rowsQ/hd/(c.Heads[0]/c.KVHeads[0]) != rowsK/hd {
		t.Errorf("device slice of q_proj has %d heads, of k_proj %d kv heads: groups split", rowsQ/hd, rowsK/hd)
	}
}

// The README's per-device memory of LoRA recovery of LLaMA-2-70B on 4 and 8 devices comes from
// this layout.
func TestDeviceBytesLlama2_70B(t *testing.T) {
	c := parse(t, llama2_70B)
	bf16 := func(string) int64 { return 2 }
	one, err := TensorParallel(c, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	total := one.DeviceBytes(bf16)
	if want := 2 * arch.NumParams(c); total != want {
		t.Fatalf("one device holds %d bytes, want all %d", total, want)
	}
	for _, tc := range []struct {
		n    int
		want float64 // GB of frozen bf16 weights per device
	}{{4, 34.5}, {8, 17.25}} {
		lay, err := TensorParallel(c, tc.n, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := float64(lay.DeviceBytes(bf16)) / 1e9
		if got < tc.want-0.05 || got > tc.want+0.05 {
			t.Errorf("%d devices: %.2f GB per device, want %.2f", tc.n, got, tc.want)
		}
		t.Logf("LLaMA-2-70B over %d devices: %.2f GB of bf16 weights per device (all: %.1f GB)", tc.n, got, float64(total)/1e9)
	}
	// Adapters at r 8 on all seven projections: 103.5M parameters; in float32 with gradients and
	// two AdamW moments 1.66 GB, split over 4 devices where their base weights are split.
	lay, err := TensorParallel(c, 4, adapterOn(c, 8, allLlama...))
	if err != nil {
		t.Fatal(err)
	}
	var adapterParams, perDevice int64
	for _, p := range lay.Placements {
		if !strings.Contains(p.Tensor, ".lora_") {
			continue
		}
		n := int64(p.Shape[0] * p.Shape[1])
		adapterParams += n
		if p.Split() {
			n /= 4
		}
		perDevice += n
	}
	if adapterParams != 103_546_880 {
		t.Errorf("adapter parameters %d, want 103,546,880", adapterParams)
	}
	t.Logf("adapters: %d parameters, %d per device (%.2f GB with gradients and moments in float32)",
		adapterParams, perDevice, float64(16*perDevice)/1e9)
}

// Pruned layers whose group counts do not divide by the devices stay whole on every device, and
// the report names them.
func TestPrunedLayersThatDoNotDivide(t *testing.T) {
	c := parse(t, llama7B)
	c.Heads[3], c.KVHeads[3] = 26, 26
	c.Inter[5] = 8807
	lay, err := TensorParallel(c, 4, adapterOn(c, 8, "self_attn.q_proj", "mlp.down_proj"))
	if err != nil {
		t.Fatal(err)
	}
	for name, ax := range map[string]int{
		"model.layers.3.self_attn.q_proj.weight":        -1,
		"model.layers.3.self_attn.o_proj.weight":        -1,
		"model.layers.3.self_attn.q_proj.lora_B.weight": -1,
		"model.layers.4.self_attn.q_proj.weight":        0,
		"model.layers.5.mlp.up_proj.weight":             -1,
		"model.layers.5.mlp.down_proj.lora_A.weight":    -1,
		"model.layers.5.self_attn.q_proj.weight":        0,
		"model.layers.3.mlp.down_proj.weight":           1,
	} {
		if p, _ := lay.Placement(name); p.Axis != ax {
			t.Errorf("%s: axis %d, want %d", name, p.Axis, ax)
		}
	}
	rep := strings.Join(lay.Replicated(), "\n")
	for _, want := range []string{"layer 3 has 26 key/value head groups, not divisible by 4 devices",
		"layer 5 has 8807 MLP channels, not divisible by 4 devices"} {
		if !strings.Contains(rep, want) {
			t.Errorf("report lacks %q:\n%s", want, rep)
		}
	}
	if strings.Contains(rep, "layer 4") {
		t.Errorf("layer 4 divides but is reported:\n%s", rep)
	}
}

// ChatGLM-6B's fused query_key_value keeps each head's q, k and v rows together (3·128 rows per
// head), so a contiguous split over devices holds whole heads; its vocabulary 130528 divides by 4
// but not by 64.
func TestChatGLMFusedHeads(t *testing.T) {
	c := parse(t, chatglm6B)
	lay, err := TensorParallel(c, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, ax := range map[string]int{
		"transformer.layers.0.attention.query_key_value.weight": 0,
		"transformer.layers.0.attention.query_key_value.bias":   0,
		"transformer.layers.0.attention.dense.weight":           1,
		"transformer.layers.0.attention.dense.bias":             -1,
		"transformer.layers.0.mlp.dense_h_to_4h.weight":         0,
		"transformer.layers.0.mlp.dense_4h_to_h.weight":         1,
		"transformer.word_embeddings.weight":                    0,
	} {
		p, ok := lay.Placement(name)
		if !ok {
			t.Fatalf("no placement for %s", name)
		}
		if p.Axis != ax {
			t.Errorf("%s: axis %d, want %d", name, p.Axis, ax)
		}
	}
	lay64, err := TensorParallel(c, 64, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := lay64.Placement("transformer.word_embeddings.weight"); p.Split() || !strings.Contains(p.Reason, "130528") {
		t.Errorf("64 devices: embedding %+v, want replicated with the vocabulary named", p)
	}
}

func TestBadArguments(t *testing.T) {
	c := parse(t, llama7B)
	if _, err := TensorParallel(c, 0, nil); err == nil || !strings.Contains(err.Error(), "0 devices") {
		t.Errorf("0 devices: %v", err)
	}
	if _, err := TensorParallel(c, 2, &Adapter{Rank: 8, Modules: []string{"model.layers.0.self_attn.nope"}}); err == nil ||
		!strings.Contains(err.Error(), "model.layers.0.self_attn.nope") {
		t.Errorf("unknown module: %v", err)
	}
	lay, err := TensorParallel(c, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	mesh, _ := distributed.NewDeviceMesh([]int{4}, []string{ModelAxis})
	if _, err := lay.Specs(mesh); err == nil || !strings.Contains(err.Error(), "made for 2") {
		t.Errorf("mesh of 4 for a layout of 2: %v", err)
	}
	mesh, _ = distributed.NewDeviceMesh([]int{2}, []string{"data"})
	if _, err := lay.Specs(mesh); err == nil {
		t.Errorf("mesh without a %q axis: no error", ModelAxis)
	}
}
