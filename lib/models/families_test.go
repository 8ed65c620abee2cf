package models

import (
	"path/filepath"
	"slices"
	"testing"
)

// familyExpected is testdata/{qwen2,mistral,llama32}_tiny/expected.json, written by
// scripts/llama_family_ref.py (an independent float64 PyTorch implementation).
type familyExpected struct {
	Prompts      [][]int       `json:"prompts"`
	Logits       [][][]float64 `json:"logits"`
	GreedyPrompt []int         `json:"greedy_prompt"`
	Greedy       []int         `json:"greedy"`
}

var familyFixtures = []string{"qwen2_tiny", "mistral_tiny", "llama32_tiny"}

// TestFamiliesMatchReference: Qwen2 (GQA, q/k/v biases, tied, rope_theta 1e6), Mistral (sliding
// window 6, prompts of 5, 9 and 16 tokens) and Llama-3.2 (tied, llama3 rope scaling, explicit
// head_dim) give the reference's logits (batched with padding, ≤ 1e-4 relative) and its greedy
// continuation through the KV cache; saved and reloaded, the same logits.
func TestFamiliesMatchReference(t *testing.T) {
	for _, name := range familyFixtures {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			var e familyExpected
			readJSON(t, filepath.Join(dir, "expected.json"), &e)
			m := mustLoad(t, dir, LoadOptions{})
			logits, err := m.Logits(e.Prompts)
			if err != nil {
				t.Fatalf("Logits: %+v", err)
			}
			worst := 0.0
			for i, p := range e.Prompts {
				for pos := range p {
					worst = max(worst, relErr(logits[i][pos], e.Logits[i][pos]))
				}
			}
			t.Logf("%s (%s): worst logits relative error %.2e", name, m.Config.Arch, worst)
			if worst > 1e-4 {
				t.Errorf("logits relative error %.3e exceeds 1e-4", worst)
			}
			got, err := m.Generate(e.GreedyPrompt, GenerateOptions{MaxNewTokens: len(e.Greedy), IgnoreEOS: true})
			if err != nil {
				t.Fatalf("Generate: %+v", err)
			}
			if !slices.Equal(got, e.Greedy) {
				t.Errorf("greedy %v, reference %v", got, e.Greedy)
			}
			out := filepath.Join(t.TempDir(), "out")
			if err := m.Save(out, "f32"); err != nil {
				t.Fatalf("Save: %+v", err)
			}
			back := mustLoad(t, out, LoadOptions{})
			if back.Config.String() != m.Config.String() || back.Config.SlidingWindow != m.Config.SlidingWindow {
				t.Errorf("reloaded config %s", back.Config)
			}
			again, err := back.Logits(e.Prompts[:1])
			if err != nil {
				t.Fatal(err)
			}
			for pos := range e.Prompts[0] {
				if d := relErr(again[0][pos], e.Logits[0][pos]); d > 1e-4 {
					t.Fatalf("reloaded logits differ by %.2e", d)
				}
			}
		})
	}
}

// TestMistralWindowMatters: the 16-token prompt reaches past the 6-position window, so the
// reference logits there differ from full causal attention; within the window they agree.
func TestMistralWindowMatters(t *testing.T) {
	dir := filepath.Join("testdata", "mistral_tiny")
	var e familyExpected
	readJSON(t, filepath.Join(dir, "expected.json"), &e)
	m := mustLoad(t, dir, LoadOptions{})
	m.Config.SlidingWindow = 0
	full, err := m.Logits(e.Prompts[2:])
	if err != nil {
		t.Fatal(err)
	}
	if d := relErr(full[0][5], e.Logits[2][5]); d > 1e-4 {
		t.Errorf("position 5 (inside the window) differs without the window: %.2e", d)
	}
	if d := relErr(full[0][15], e.Logits[2][15]); d < 1e-3 {
		t.Errorf("position 15 (past the window) is the same without the window (%.2e): the test cannot fail", d)
	}
}
