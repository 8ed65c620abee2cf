package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// llama7BConfig is LLaMA-7B's config.json (decapoda/huggyllama layout): hidden 4096, 32 layers,
// 32 heads, ffn 11008, vocab 32000, untied.
const llama7BConfig = `{
  "architectures": ["LlamaForCausalLM"], "model_type": "llama",
  "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
  "num_attention_heads": 32, "vocab_size": 32000, "max_position_embeddings": 2048,
  "rms_norm_eps": 1e-06, "hidden_act": "silu", "tie_word_embeddings": false,
  "bos_token_id": 1, "eos_token_id": 2
}`

// TestPlanLlama7BMatchesOriginal: block-wise 0.25 on layers 4:30 gives the parameter counts the
// original LLM-Pruner logs for LLaMA-7B (6,738,415,616 → 5,422,977,024).
func TestPlanLlama7BMatchesOriginal(t *testing.T) {
	cfg := writeFile(t, filepath.Join(t.TempDir(), "config.json"), llama7BConfig)
	res := mustSucceed(t, "plan", "--config", cfg, "--strategy", "block", "--ratio", "0.25",
		"--attn-layers", "4:30", "--mlp-layers", "4:30", "--json")
	var out struct {
		Before int64 `json:"params_before"`
		After  int64 `json:"params_after"`
		Heads  []int `json:"heads_per_layer"`
		Inter  []int `json:"intermediate_per_layer"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatalf("plan --json output %q: %v", res.stdout, err)
	}
	if out.Before != 6738415616 || out.After != 5422977024 {
		t.Errorf("params %d → %d, want 6738415616 → 5422977024", out.Before, out.After)
	}
	if len(out.Heads) != 32 || out.Heads[3] != 32 || out.Heads[4] != 24 || out.Heads[29] != 24 || out.Heads[30] != 32 {
		t.Errorf("heads per layer %v", out.Heads)
	}
	if out.Inter[4] != 8256 || out.Inter[31] != 11008 {
		t.Errorf("intermediate per layer %v", out.Inter)
	}
	// The text output states the same numbers.
	text := mustSucceed(t, "plan", "--config", cfg, "--strategy", "block", "--ratio", "0.25", "--attn-layers", "4:30", "--mlp-layers", "4:30")
	if !strings.Contains(text.stdout, "6738415616 → 5422977024") {
		t.Errorf("text output:\n%s", text.stdout)
	}
}

// TestPlanBadInput: plan rejects what prune rejects, before computing anything.
func TestPlanBadInput(t *testing.T) {
	cfg := writeFile(t, filepath.Join(t.TempDir(), "config.json"), llama7BConfig)
	base := []string{"plan", "--config", cfg, "--strategy", "block"}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"ratio 1", []string{"--ratio", "1"}, 2, "--ratio 1 must be in [0, 1)"},
		{"negative ratio", []string{"--ratio", "-0.1"}, 2, "must be in [0, 1)"},
		{"no ratio", nil, 2, "--ratio is required"},
		{"empty range", []string{"--ratio", "0.2", "--attn-layers", "4:4"}, 2, "--attn-layers 4:4 is empty"},
		{"reversed range", []string{"--ratio", "0.2", "--mlp-layers", "30:4"}, 2, "--mlp-layers 30:4 is reversed"},
		// Checked by the library (prune.Options.Validate), reported with the flags.
		{"range beyond model", []string{"--ratio", "0.2", "--attn-layers", "4:40"}, 1, "--attn-layers 4:40 is beyond the model"},
		{"global layer-wise", []string{"--strategy", "layer", "--ratio", "0.2", "--global"}, 1, "--global applies to block-wise pruning, not --strategy layer"},
		{"too many layers kept", []string{"--strategy", "layer", "--keep-layers", "99"}, 1, "--keep-layers 99: the model has 32 layers"},
		{"bad range", []string{"--ratio", "0.2", "--attn-layers", "4-30"}, 2, "--attn-layers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectFailure(t, runCLI(t, append(base, tc.args...)...), tc.code, tc.want)
		})
	}
	expectFailure(t, runCLI(t, "plan", "--config", filepath.Join(t.TempDir(), "nope.json"), "--strategy", "block", "--ratio", "0.2"), 1, "nope.json")
	expectFailure(t, runCLI(t, "plan", "--config", cfg, "--strategy", "diagonal", "--ratio", "0.2"), 2, "--strategy")
}
