// Package groupstest builds small random LLaMA models in memory for the tests of groups,
// importance and prune, and shares one backend per test process.
package groupstest

import (
	"encoding/json"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/models"
)

var (
	backendOnce sync.Once
	backend     compute.Backend
)

// Backend returns the process-wide backend (GOMLX_BACKEND, default "go").
func Backend(t testing.TB) compute.Backend {
	t.Helper()
	backendOnce.Do(func() { backend = compute.MustNew() })
	return backend
}

// Config parses an HF config.json given as a map (for tests).
func Config(t testing.TB, fields map[string]any) *config.Config {
	t.Helper()
	base := map[string]any{"model_type": "llama", "rms_norm_eps": 1e-5, "max_position_embeddings": 64,
		"tie_word_embeddings": false, "bos_token_id": 1, "eos_token_id": 2}
	for k, v := range fields {
		base[k] = v
	}
	data, err := json.Marshal(base)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := arch.ParseConfig(data, "test config")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Tiny returns a small non-uniform config: 3 layers, hidden 16, head_dim 4, heads [4 4 2],
// kv-heads [4 2 1] (MHA, GQA n_rep 2, GQA n_rep 2), MLP widths [12 10 8], vocab 40.
func Tiny(t testing.TB) *config.Config {
	t.Helper()
	return Config(t, map[string]any{"hidden_size": 16, "intermediate_size": 12, "num_hidden_layers": 3,
		"num_attention_heads": 4, "num_key_value_heads": 4, "head_dim": 4, "vocab_size": 40,
		config.KeyHeadsPerLayer: []int{4, 4, 2}, config.KeyKVHeadsPerLayer: []int{4, 2, 1}, config.KeyInterPerLayer: []int{12, 10, 8}})
}

// Tiny4 returns a 4-layer non-uniform config (heads [4 4 2 4], kv-heads [4 2 1 2], MLP widths
// [12 10 8 10], hidden 16, head_dim 4, vocab 40), with extra's config.json fields set over it
// (tied embeddings, biases, another model_type, …).
func Tiny4(t testing.TB, extra map[string]any) *config.Config {
	t.Helper()
	fields := map[string]any{"hidden_size": 16, "intermediate_size": 12, "num_hidden_layers": 4,
		"num_attention_heads": 4, "num_key_value_heads": 4, "head_dim": 4, "vocab_size": 40,
		config.KeyHeadsPerLayer: []int{4, 4, 2, 4}, config.KeyKVHeadsPerLayer: []int{4, 2, 1, 2},
		config.KeyInterPerLayer: []int{12, 10, 8, 10}}
	for k, v := range extra {
		fields[k] = v
	}
	return Config(t, fields)
}

// RandomModel fills every tensor cfg implies with N(0, std²) values (norm weights around 1), seeded.
func RandomModel(t testing.TB, cfg *config.Config, seed uint64, std float64) *models.Model {
	t.Helper()
	specs, err := models.ExpectedTensors(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 7))
	store := model.NewStore()
	for _, s := range specs {
		n := 1
		for _, d := range s.Shape {
			n *= d
		}
		data := make([]float32, n)
		norm := len(s.Shape) == 1 && !isBias(s.Name)
		for i := range data {
			if norm {
				data[i] = float32(1 + 0.2*r.NormFloat64())
			} else {
				data[i] = float32(std * r.NormFloat64())
			}
		}
		if _, err := store.CreateVariable(models.VarPath(s.Name), tensors.FromFlatDataAndDimensions(data, s.Shape...)); err != nil {
			t.Fatal(err)
		}
	}
	return &models.Model{Config: cfg, Store: store, Backend: Backend(t)}
}

func isBias(name string) bool { return len(name) > 5 && name[len(name)-5:] == ".bias" }

// Tokens returns n rows of l random token ids in [0, vocab), seeded.
func Tokens(n, l, vocab int, seed uint64) [][]int {
	r := rand.New(rand.NewPCG(seed, 11))
	out := make([][]int, n)
	for i := range out {
		out[i] = make([]int, l)
		for j := range out[i] {
			out[i][j] = r.IntN(vocab)
		}
	}
	return out
}
