package main

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/lib/checkpoint"
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

// TestConvertGGUFFromEveryInput: convert --format gguf from each checkpoint format llmpruner
// reads — an HF safetensors directory, the same weights sharded into several safetensors files
// with an index, and a pytorch_model.bin written by torch.save (scripts/models_torch_bin.py) — and
// back to an HF directory gives the source's float32 tensors bit for bit (the llama2.c .bin, the
// GGUF input and --adapter are covered above and in TestConvertGGUFAdapter).
func TestConvertGGUFFromEveryInput(t *testing.T) {
	src := goldenPath(t, "tiny-llama-mha")
	dir := t.TempDir()
	cfg, r, err := checkpoint.OpenWithConfig(src)
	if err != nil {
		t.Fatal(err)
	}
	sharded := filepath.Join(dir, "sharded")
	err = checkpoint.SaveHFFromReader(sharded, cfg, r, checkpoint.SaveOptions{MaxShardBytes: 200_000})
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if shards, _ := filepath.Glob(filepath.Join(sharded, "model-*-of-*.safetensors")); len(shards) < 2 {
		t.Fatalf("sharded copy has %d shards, want several", len(shards))
	}
	copyFile(t, filepath.Join(src, "tokenizer.model"), filepath.Join(sharded, "tokenizer.model"))
	inputs := map[string]string{"safetensors": src, "sharded safetensors": sharded}
	if python := torchPython(); python != "" {
		bin := filepath.Join(dir, "torch-bin")
		if out, err := exec.Command(python, filepath.Join("..", "..", "scripts", "models_torch_bin.py"), src, bin, "--dtype", "float32").CombinedOutput(); err != nil {
			t.Fatalf("models_torch_bin.py: %v\n%s", err, out)
		}
		copyFile(t, filepath.Join(src, "tokenizer.model"), filepath.Join(bin, "tokenizer.model"))
		inputs["pytorch_model.bin"] = bin
	} else if os.Getenv("LLMPRUNER_REQUIRE_TORCH") == "1" {
		t.Fatal("python3 with torch is required (LLMPRUNER_REQUIRE_TORCH=1)")
	}
	want := readAllTensors(t, src)
	for name, in := range inputs {
		gguf := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".gguf")
		mustSucceed(t, "convert", "--model", in, "--out", gguf, "--format", "gguf")
		back := gguf + ".hf"
		mustSucceed(t, "convert", "--model", gguf, "--out", back, "--format", "hf")
		got := readAllTensors(t, back)
		if len(got) != len(want) {
			t.Errorf("%s: %d tensors after GGUF → HF, want %d", name, len(got), len(want))
		}
		for k, w := range want {
			if g, ok := got[k]; !ok || !slices.Equal(g, w) {
				t.Errorf("%s: tensor %s differs after → GGUF → HF", name, k)
			}
		}
	}
}

// readAllTensors reads every tensor of a checkpoint as float32 bits.
func readAllTensors(t *testing.T, path string) map[string][]uint32 {
	t.Helper()
	r, err := checkpoint.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := map[string][]uint32{}
	for _, info := range r.Tensors() {
		x, err := r.Read(info.Name)
		if err != nil {
			t.Fatal(err)
		}
		var bits []uint32
		x.MustConstFlatData(func(flat any) {
			for _, v := range flat.([]float32) {
				bits = append(bits, math.Float32bits(v))
			}
		})
		out[info.Name] = bits
	}
	return out
}

// copyFile copies src to dst.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// torchPython returns a Python interpreter that can import torch ($PYTHON, python3, or Debian's
// /usr/bin/python3 when another python3 shadows it), or "".
func torchPython() string {
	for _, p := range []string{os.Getenv("PYTHON"), "python3", "/usr/bin/python3"} {
		if p != "" && exec.Command(p, "-c", "import torch").Run() == nil {
			return p
		}
	}
	return ""
}
