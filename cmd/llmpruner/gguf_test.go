package main

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

// TestConvertGGUFRoundTrip: llama2.c .bin → GGUF (F32, selected by the .gguf suffix) → every
// command reads the GGUF (tokenizer from its metadata) with bit-identical scores and logits, and
// GGUF → HF directory keeps them too.
func TestConvertGGUFRoundTrip(t *testing.T) {
	model := stories260K(t)
	dir := t.TempDir()
	gguf := filepath.Join(dir, "stories260K.gguf")
	mustSucceed(t, "convert", "--model", model, "--out", gguf)
	input := writeFile(t, filepath.Join(dir, "in.jsonl"),
		`{"text":"Once upon a time, there was a little girl named Lily."}`+"\n"+
			`{"text":"The cat sat on the mat.\nIt was happy!"}`+"\n"+
			`{"ids":[1,403,407,261,378,432,383,286]}`+"\n")
	a := mustSucceed(t, "score", "--model", model, "--input", input, "--logits")
	b := mustSucceed(t, "score", "--model", gguf, "--input", input, "--logits")
	if a.stdout != b.stdout {
		t.Errorf("scores differ after conversion to GGUF:\n.bin: %.300s\nGGUF: %.300s", a.stdout, b.stdout)
	}
	hf := filepath.Join(dir, "back-hf")
	mustSucceed(t, "convert", "--model", gguf, "--out", hf, "--format", "hf")
	// The HF directory has no tokenizer file (GGUF holds the vocabulary only): give it one.
	tok := filepath.Join(filepath.Dir(model), "tok512.bin")
	c := mustSucceed(t, "score", "--model", hf, "--tokenizer", tok, "--input", input, "--logits")
	if a.stdout != c.stdout {
		t.Errorf("scores differ after GGUF → HF:\n.bin: %.300s\nHF:   %.300s", a.stdout, c.stdout)
	}
	g1 := mustSucceed(t, "generate", "--model", model, "--prompt", "Once upon a time", "--max-new-tokens", "20", "--json")
	g2 := mustSucceed(t, "generate", "--model", gguf, "--prompt", "Once upon a time", "--max-new-tokens", "20", "--json")
	if g1.stdout != g2.stdout {
		t.Errorf("generate differs: %s vs %s", g1.stdout, g2.stdout)
	}
	mustSucceed(t, "info", "--model", gguf)
}

// TestConvertGGUFBadInput: one-line errors, nothing written.
func TestConvertGGUFBadInput(t *testing.T) {
	model := stories260K(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "m.gguf")
	chatglm, err := filepath.Abs(filepath.Join("..", "..", "lib", "models", "testdata", "chatglm_tiny"))
	if err != nil {
		t.Fatal(err)
	}
	blocker := writeFile(t, filepath.Join(dir, "file"), "")
	existing := writeFile(t, filepath.Join(dir, "old.gguf"), "x")
	// An adapter for another model's shapes.
	adapter := filepath.Join(dir, "adapter")
	mustSucceed(t, finetuneArgs(model, storiesTrainText(t, 20), adapter, "--max-steps", "1", "--save-every", "0")...)
	tinyLlama := dataPath(t, "models/tiny-random-llama")
	for _, c := range []struct {
		name  string
		args  []string
		code  int
		out   string
		wants []string
	}{
		{"unknown dtype", []string{"convert", "--model", model, "--out", out, "--dtype", "q4_k"}, 2, out, []string{"--dtype", "q4_k"}},
		{"unknown format", []string{"convert", "--model", model, "--out", out, "--format", "onnx"}, 2, out, []string{"--format"}},
		{"ChatGLM", []string{"convert", "--model", chatglm, "--out", out}, 1, out, []string{"ChatGLM-6B (v1)"}},
		{"unwritable", []string{"convert", "--model", model, "--out", filepath.Join(blocker, "m.gguf")}, 1, filepath.Join(blocker, "m.gguf"), []string{"m.gguf"}},
		{"exists", []string{"convert", "--model", model, "--out", existing}, 1, "", []string{"exists", "--force"}},
		{"adapter for other shapes", []string{"convert", "--model", tinyLlama, "--adapter", adapter, "--out", out}, 1, out, []string{"--adapter", "does not fit"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			expectFailure(t, runCLI(t, c.args...), c.code, c.wants...)
			if c.out != "" {
				if _, err := os.Stat(c.out); err == nil {
					t.Errorf("%s was written", c.out)
				}
			}
		})
	}
	if b, _ := os.ReadFile(existing); string(b) != "x" {
		t.Error("an existing --out was changed without --force")
	}
	// With its own model the adapter is merged into the GGUF weights: the file scores as the
	// model with the adapter applied.
	input := writeFile(t, filepath.Join(dir, "in.jsonl"), `{"ids":[1,403,407,261,378,432,383,286,261,376]}`+"\n")
	mustSucceed(t, "convert", "--model", model, "--adapter", adapter, "--out", out)
	want := parseScores(t, mustSucceed(t, "score", "--model", model, "--adapter", adapter, "--input", input).stdout)
	got := parseScores(t, mustSucceed(t, "score", "--model", out, "--input", input).stdout)
	base := parseScores(t, mustSucceed(t, "score", "--model", model, "--input", input).stdout)
	if math.Abs(got[0].NLL-want[0].NLL) > 1e-4 || got[0].NLL == base[0].NLL {
		t.Errorf("GGUF with merged adapter: nll %.6f, with the adapter applied %.6f, without %.6f", got[0].NLL, want[0].NLL, base[0].NLL)
	}
}
