package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFile writes a test fixture.
func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// parseScores reads score's JSON-lines output.
func parseScores(t *testing.T, stdout string) []scoreOutput {
	t.Helper()
	var outs []scoreOutput
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var o scoreOutput
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			t.Fatalf("score output line %q: %v", line, err)
		}
		outs = append(outs, o)
	}
	return outs
}

// TestConvertRoundTripIdenticalLogits: llama2.c .bin → HF directory → load gives bit-identical
// scores and logits (the full output lines are equal), and the directory holds what HF expects.
func TestConvertRoundTripIdenticalLogits(t *testing.T) {
	model := stories260K(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "stories260K-hf")
	mustSucceed(t, "convert", "--model", model, "--out", out)
	for _, f := range []string{"config.json", "model.safetensors", "tok512.bin"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("converted directory lacks %s", f)
		}
	}
	input := writeFile(t, filepath.Join(dir, "in.jsonl"),
		`{"text":"Once upon a time, there was a little girl named Lily."}`+"\n\n"+
			`{"ids":[1,403,407,261,378,432,383,286]}`+"\n")
	a := mustSucceed(t, "score", "--model", model, "--input", input, "--logits")
	b := mustSucceed(t, "score", "--model", out, "--input", input, "--logits")
	if a.stdout != b.stdout {
		t.Errorf("scores differ after conversion:\n.bin: %.300s\nHF:   %.300s", a.stdout, b.stdout)
	}
	scores := parseScores(t, a.stdout)
	if len(scores) != 2 {
		t.Fatalf("%d output lines for 2 inputs", len(scores))
	}
	for i, s := range scores {
		if len(s.LogitsFirst) != 512 || len(s.LogitsLast) != 512 {
			t.Errorf("line %d: logits rows of %d and %d, want the vocabulary size 512", i, len(s.LogitsFirst), len(s.LogitsLast))
		}
		if !(s.NLL > 0 && s.NLL < 5) || math.IsNaN(s.NLL) {
			t.Errorf("line %d: nll %g is not a plausible next-token loss", i, s.NLL)
		}
	}
	if scores[0].Tokens != 16 || scores[1].Tokens != 8 {
		t.Errorf("tokens %d, %d; want 16 (BOS + 15) and 8", scores[0].Tokens, scores[1].Tokens)
	}
	// The story's first sentence is what the model generates greedily: a low loss.
	if scores[0].NLL > 0.5 {
		t.Errorf("nll of the model's own greedy sentence is %g, want < 0.5", scores[0].NLL)
	}
	// Converting to bf16 changes the stored dtype and halves the weights.
	bf := filepath.Join(dir, "bf16")
	mustSucceed(t, "convert", "--model", out, "--out", bf, "--dtype", "bf16")
	res := mustSucceed(t, "info", "--model", bf, "--json")
	var info modelInfo
	if err := json.Unmarshal([]byte(res.stdout), &info); err != nil {
		t.Fatal(err)
	}
	if len(info.DTypes) != 1 || info.DTypes[0] != "BFloat16" || info.Params != 260032 {
		t.Errorf("bf16 conversion: dtypes %v, params %d", info.DTypes, info.Params)
	}
}

// TestScoreMatchesGoldenHF: the independent PyTorch conversion in golden/stories260K-hf scores
// the same as our llama2.c reader within float32 tolerance (2e-5 on the logits per the golden note).
func TestScoreMatchesGoldenHF(t *testing.T) {
	model := stories260K(t)
	hf := goldenPath(t, "stories260K-hf")
	input := writeFile(t, filepath.Join(t.TempDir(), "in.jsonl"), `{"ids":[1,403,407,261,378,432,383,286,261,376]}`+"\n")
	a := parseScores(t, mustSucceed(t, "score", "--model", model, "--input", input, "--logits").stdout)[0]
	b := parseScores(t, mustSucceed(t, "score", "--model", hf, "--input", input, "--logits").stdout)[0]
	maxDiff := 0.0
	for i := range a.LogitsLast {
		maxDiff = max(maxDiff, math.Abs(float64(a.LogitsLast[i]-b.LogitsLast[i])), math.Abs(float64(a.LogitsFirst[i]-b.LogitsFirst[i])))
	}
	if maxDiff > 1e-4 || math.Abs(a.NLL-b.NLL) > 1e-5 {
		t.Errorf("llama2.c vs PyTorch HF conversion: max |Δlogit| %g, Δnll %g", maxDiff, a.NLL-b.NLL)
	}
}
