package arch

import (
	"encoding/json"
	"github.com/llmpruner/llmpruner/lib/config"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const llama7B = `{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":4096,"intermediate_size":11008,
"num_hidden_layers":32,"num_attention_heads":32,"vocab_size":32000,"max_position_embeddings":2048,"rms_norm_eps":1e-6,
"tie_word_embeddings":false,"bos_token_id":1,"eos_token_id":2,"custom_field":{"kept":true}}`

func TestLlama7BParams(t *testing.T) {
	c, err := ParseConfig([]byte(llama7B), "llama7b")
	if err != nil {
		t.Fatal(err)
	}
	// The original LLM-Pruner logs 6,738,415,616 parameters for LLaMA-7B.
	if got := NumParams(c); got != 6738415616 {
		t.Fatalf("NumParams = %d, want 6738415616", got)
	}
	if c.HeadDim != 128 || c.KVHeads[31] != 32 || c.BOS != 1 || len(c.EOS) != 1 || c.EOS[0] != 2 {
		t.Fatalf("bad resolve: %s", c)
	}
}

func TestRoundTripNonUniform(t *testing.T) {
	c, err := ParseConfig([]byte(llama7B), "llama7b")
	if err != nil {
		t.Fatal(err)
	}
	c.Heads[3], c.KVHeads[3], c.Inter[5] = 24, 24, 8256
	path := filepath.Join(t.TempDir(), "config.json")
	if err := SaveConfig(c, path); err != nil {
		t.Fatal(err)
	}
	d, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if d.String() != c.String() || NumParams(d) != NumParams(c) {
		t.Fatalf("round trip changed config:\n%s\n%s", c, d)
	}
	var kept struct{ Kept bool }
	if err := json.Unmarshal(d.Raw["custom_field"], &kept); err != nil || !kept.Kept {
		t.Fatalf("unknown field not preserved: %s", d.Raw["custom_field"])
	}
}

func TestBadConfigs(t *testing.T) {
	for name, js := range map[string]string{
		"unknown arch":  `{"model_type":"gpt2","hidden_size":8}`,
		"bad gqa":       `{"model_type":"llama","hidden_size":64,"num_hidden_layers":1,"num_attention_heads":8,"num_key_value_heads":3,"vocab_size":10,"intermediate_size":4}`,
		"bad json":      `{"model_type":`,
		"list mismatch": `{"model_type":"llama","hidden_size":64,"num_hidden_layers":2,"num_attention_heads":8,"vocab_size":10,"intermediate_size":4,"intermediate_size_per_layer":[4]}`,
		"bad rope":      `{"model_type":"llama","hidden_size":64,"num_hidden_layers":1,"num_attention_heads":8,"vocab_size":10,"intermediate_size":4,"rope_scaling":{"rope_type":"yarn","factor":2}}`,
		"zero hidden":   `{"model_type":"llama","hidden_size":0,"num_hidden_layers":1,"num_attention_heads":8,"vocab_size":10,"intermediate_size":4}`,
	} {
		if _, err := ParseConfig([]byte(js), name); err == nil {
			t.Errorf("%s: expected an error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func TestLlama3RopeScaling(t *testing.T) {
	js := `{"model_type":"llama","hidden_size":4096,"num_hidden_layers":1,"num_attention_heads":32,"num_key_value_heads":8,
	"vocab_size":128256,"intermediate_size":14336,"rope_theta":500000.0,
	"rope_scaling":{"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192,"rope_type":"llama3"}}`
	c, err := ParseConfig([]byte(js), "llama3.1")
	if err != nil {
		t.Fatal(err)
	}
	inv := c.InvFrequencies()
	// Values from HF's _compute_llama3_parameters: high frequencies unchanged, low ones divided by
	// the factor, the band in between interpolated.
	base := func(i int) float64 { return 1 / math.Pow(5e5, float64(2*i)/128) }
	if inv[0] != base(0) {
		t.Fatalf("inv[0] = %v, want %v", inv[0], base(0))
	}
	if got, want := inv[63], base(63)/8; math.Abs(got-want) > 1e-18 {
		t.Fatalf("inv[63] = %v, want %v", got, want)
	}
	// i=32: wavelength 2π/base(32) ≈ 4.4e3 lies between 8192/4 and 8192: smoothed.
	w := 2 * math.Pi / base(32)
	smooth := (8192/w - 1) / (4 - 1)
	if got, want := inv[32], (1-smooth)*base(32)/8+smooth*base(32); math.Abs(got-want) > 1e-15*want {
		t.Fatalf("inv[32] = %v, want %v", got, want)
	}
}

// TestMarshalStockWhenUniform: a model whose layers all have the same sizes gets a stock
// config.json (no per-layer lists; transformers and vLLM read it); a non-uniform one keeps the
// lists; both read back to the same sizes.
func TestMarshalStockWhenUniform(t *testing.T) {
	for _, c := range []struct {
		heads, inter []int
		lists        bool
	}{{[]int{8, 8}, []int{64, 64}, false}, {[]int{8, 4}, []int{64, 64}, true}, {[]int{8, 8}, []int{64, 32}, true}} {
		cfg := &config.Config{Arch: Llama, Hidden: 64, Vocab: 10, HeadDim: 8, Heads: c.heads, KVHeads: c.heads, Inter: c.inter,
			RMSNormEps: 1e-5, RopeTheta: 10000, MaxPositions: 32, BOS: 1}
		data, err := MarshalConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{config.KeyHeadsPerLayer, config.KeyKVHeadsPerLayer, config.KeyInterPerLayer} {
			if got := strings.Contains(string(data), `"`+key+`"`); got != c.lists {
				t.Errorf("heads %v inter %v: %s present = %v, want %v", c.heads, c.inter, key, got, c.lists)
			}
		}
		back, err := ParseConfig(data, "config.json")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(back.Heads, c.heads) || !slices.Equal(back.Inter, c.inter) {
			t.Errorf("read back heads %v inter %v", back.Heads, back.Inter)
		}
	}
}
