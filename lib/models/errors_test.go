package models

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/lib/internal/testdata"
)

// copyDir copies the regular files of src into a new temp dir.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// editConfig rewrites one field of dir/config.json.
func editConfig(t *testing.T, dir, old, new string) {
	t.Helper()
	p := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("config.json has no %q", old)
	}
	if err := os.WriteFile(p, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func wantError(t *testing.T, err error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected an error mentioning %q", fragments)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q\ndoes not mention %q", err, f)
		}
	}
}

// TestLoadErrors: bad inputs give clear errors, not panics.
func TestLoadErrors(t *testing.T) {
	golden := testdata.GoldenPath(t, "tiny-llama-mha")
	t.Run("shape-mismatch", func(t *testing.T) {
		dir := copyDir(t, golden)
		editConfig(t, dir, `"intermediate_size": 172`, `"intermediate_size": 100`)
		_, err := Load(backend(t), dir, LoadOptions{})
		wantError(t, err, "wrong shape", "model.layers.0.mlp.gate_proj.weight: checkpoint [172 64], config implies [100 64]")
	})
	t.Run("tied-but-lm_head-present", func(t *testing.T) {
		dir := copyDir(t, golden)
		editConfig(t, dir, `"tie_word_embeddings": false`, `"tie_word_embeddings": true`)
		_, err := Load(backend(t), dir, LoadOptions{})
		wantError(t, err, "unexpected tensors", "lm_head.weight", "tie_word_embeddings=true")
	})
	t.Run("fewer-layers-in-checkpoint", func(t *testing.T) {
		dir := copyDir(t, golden)
		editConfig(t, dir, `"num_hidden_layers": 4`, `"num_hidden_layers": 5`)
		_, err := Load(backend(t), dir, LoadOptions{})
		wantError(t, err, "missing tensors", "model.layers.4.self_attn.q_proj.weight")
	})
	t.Run("unknown-architecture", func(t *testing.T) {
		dir := copyDir(t, golden)
		editConfig(t, dir, `"model_type": "llama"`, `"model_type": "gpt2"`)
		editConfig(t, dir, `"LlamaForCausalLM"`, `"GPT2LMHeadModel"`)
		_, err := Load(backend(t), dir, LoadOptions{})
		wantError(t, err, "unknown architecture", "gpt2")
	})
	t.Run("missing-path", func(t *testing.T) {
		_, err := Load(backend(t), filepath.Join(t.TempDir(), "nope"), LoadOptions{})
		wantError(t, err, "nope", "no such file")
	})
	t.Run("no-config", func(t *testing.T) {
		_, err := Load(backend(t), t.TempDir(), LoadOptions{})
		wantError(t, err, "config.json")
	})
	t.Run("single-non-llama2c-file", func(t *testing.T) {
		_, err := Load(backend(t), filepath.Join(golden, "model.safetensors"), LoadOptions{})
		wantError(t, err, "llama2.c", "config.json")
	})
}

// TestSequenceErrors: sequences longer than the context and out-of-vocabulary ids are rejected
// with clear errors by every host-side entry point.
func TestSequenceErrors(t *testing.T) {
	m := mustLoad(t, testdata.GoldenPath(t, "tiny-llama-mha"), LoadOptions{})
	long := make([]int, m.Config.MaxPositions+1)
	_, err := m.Logits([][]int{{1, 2}, long})
	wantError(t, err, "sequence 1 has 257 tokens", "context of 256")
	// TokenLogProbs takes one target-only token more (lm-eval's max_length+1 window), not two.
	_, _, err = m.TokenLogProbs([][]int{append(long, 0)})
	wantError(t, err, "sequence 0 has 258 tokens", "context of 256", "+ 1 target token")
	_, err = m.Loss([][]int{long})
	wantError(t, err, "longer than the model's context")
	_, err = m.Generate(long, GenerateOptions{})
	wantError(t, err, "longer than the model's context")
	_, err = m.Logits([][]int{{1, 32000}})
	wantError(t, err, "token id 32000 is outside the vocabulary")
	_, err = m.Generate(nil, GenerateOptions{})
	wantError(t, err, "prompt is empty")
	_, err = m.Generate([]int{1}, GenerateOptions{Temperature: -1})
	wantError(t, err, "must not be negative")
	// Generation stops at the end of the context.
	out, err := m.Generate(make([]int, m.Config.MaxPositions-3), GenerateOptions{MaxNewTokens: 10, IgnoreEOS: true})
	if err != nil || len(out) != 3 {
		t.Errorf("near the context end: %d tokens (err %v), want 3", len(out), err)
	}
}
