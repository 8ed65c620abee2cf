package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// storiesTrainText writes the first KB kilobytes of the TinyStories text to a temporary file.
func storiesTrainText(t *testing.T, kb int) string {
	t.Helper()
	raw, err := os.ReadFile(dataPath(t, "text/tinystories/tinystories_val_head.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, filepath.Join(t.TempDir(), "train.txt"), string(raw[:kb*1024]))
}

// finetuneArgs is a tiny LoRA run on stories260K text (64-token windows, 4 steps of 4).
func finetuneArgs(model, data, out string, extra ...string) []string {
	args := []string{"finetune", "--model", model, "--data", data, "--out", out, "--cutoff-len", "64",
		"--batch", "4", "--micro-batch", "4", "--lr", "3e-3", "--max-steps", "4", "--warmup-steps", "0",
		"--val-size", "4", "--eval-every", "2", "--save-every", "2", "--keep", "5"}
	return append(args, extra...)
}

// safetensorsHeader reads the JSON header of a safetensors file (independently of lib/checkpoint).
func safetensorsHeader(t *testing.T, path string) map[string]json.RawMessage {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(raw[:8])
	var h map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+n], &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestFinetuneAdapterScoreAndMerge trains a tiny adapter through the CLI, checks the PEFT files,
// and checks that score --adapter equals score on the --merge output within 1e-5.
func TestFinetuneAdapterScoreAndMerge(t *testing.T) {
	model := stories260K(t)
	data := storiesTrainText(t, 60)
	out := filepath.Join(t.TempDir(), "lora")
	res := mustSucceed(t, finetuneArgs(model, data, out, "--merge", "--json")...)
	var fo finetuneOutput
	if err := json.Unmarshal([]byte(res.stdout), &fo); err != nil {
		t.Fatalf("finetune --json: %v\n%s", err, res.stdout)
	}
	// 35 modules (5 layers × 7) of r·(in+out): per layer 8·(4·64+64+64+64+... ) counted by hand:
	// q 64→64, k 64→32, v 64→32, o 64→64, gate 64→172, up 64→172, down 172→64.
	perLayer := 8 * ((64 + 64) + (64 + 32) + (64 + 32) + (64 + 64) + (64 + 172) + (64 + 172) + (172 + 64))
	if fo.Steps != 4 || fo.AdapterParams != 5*perLayer || fo.OptimizerState != 2*5*perLayer || len(fo.Evals) != 2 {
		t.Errorf("finetune result %+v (want 4 steps, %d adapter parameters, 2 evaluations)", fo, 5*perLayer)
	}
	if !strings.Contains(res.stderr, "step 4/4") || !strings.Contains(res.stderr, "tokens/s") {
		t.Errorf("finetune progress log lacks the step/loss/tokens-per-second lines:\n%s", res.stderr)
	}
	for _, f := range []string{"adapter_config.json", "adapter_model.safetensors", "training_log.json",
		"checkpoint-2/trainer_state.json", "checkpoint-4/optimizer.safetensors", "merged/config.json", "merged/model.safetensors"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("finetune did not write %s", f)
		}
	}
	var cfg struct {
		PeftType string   `json:"peft_type"`
		R        int      `json:"r"`
		Alpha    float64  `json:"lora_alpha"`
		Targets  []string `json:"target_modules"`
	}
	raw, _ := os.ReadFile(filepath.Join(out, "adapter_config.json"))
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.PeftType != "LORA" || cfg.R != 8 || cfg.Alpha != 16 ||
		!slices.Equal(cfg.Targets, []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}) {
		t.Errorf("adapter_config.json: %s", raw)
	}
	h := safetensorsHeader(t, filepath.Join(out, "adapter_model.safetensors"))
	for name, shape := range map[string]string{
		"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": "[8,64]",
		"base_model.model.model.layers.4.mlp.down_proj.lora_B.weight":    "[64,8]",
		"base_model.model.model.layers.2.self_attn.k_proj.lora_B.weight": "[32,8]",
	} {
		var info struct{ Shape []int }
		if err := json.Unmarshal(h[name], &info); err != nil {
			t.Errorf("adapter_model.safetensors lacks %s", name)
			continue
		}
		if got, _ := json.Marshal(info.Shape); string(got) != shape {
			t.Errorf("%s has shape %s, want %s", name, got, shape)
		}
	}
	if len(h) != 2*35+1 { // + __metadata__
		t.Errorf("adapter_model.safetensors holds %d entries, want 70 tensors + metadata", len(h))
	}

	input := writeFile(t, filepath.Join(t.TempDir(), "in.jsonl"),
		`{"text":"Once upon a time, there was a little girl named Lily. She liked to play outside."}`+"\n"+
			`{"ids":[1,403,407,261,378,432,383,286,261,376,298,315,421]}`+"\n")
	base := parseScores(t, mustSucceed(t, "score", "--model", model, "--input", input, "--logits").stdout)
	adapted := parseScores(t, mustSucceed(t, "score", "--model", model, "--adapter", out, "--input", input, "--logits").stdout)
	merged := parseScores(t, mustSucceed(t, "score", "--model", filepath.Join(out, "merged"), "--input", input, "--logits").stdout)
	maxDiff := func(a, b []scoreOutput) float64 {
		d := 0.0
		for i := range a {
			d = math.Max(d, math.Abs(a[i].NLL-b[i].NLL))
			for j := range a[i].LogitsLast {
				d = math.Max(d, math.Abs(float64(a[i].LogitsLast[j]-b[i].LogitsLast[j])))
				d = math.Max(d, math.Abs(float64(a[i].LogitsFirst[j]-b[i].LogitsFirst[j])))
			}
		}
		return d
	}
	if d := maxDiff(adapted, merged); d > 1e-5 {
		t.Errorf("score --adapter and score of the merged model differ by %g (want ≤ 1e-5)", d)
	}
	if d := maxDiff(adapted, base); d < 1e-3 {
		t.Errorf("the trained adapter changes the scores by only %g", d)
	}
	// convert --adapter merges too: same scores as finetune --merge.
	conv := filepath.Join(t.TempDir(), "conv")
	mustSucceed(t, "convert", "--model", model, "--adapter", out, "--out", conv)
	if d := maxDiff(parseScores(t, mustSucceed(t, "score", "--model", conv, "--input", input, "--logits").stdout), merged); d > 1e-5 {
		t.Errorf("convert --adapter differs from finetune --merge by %g", d)
	}
	// info --adapter describes it.
	info := mustSucceed(t, "info", "--model", model, "--adapter", out)
	if !strings.Contains(info.stdout, "adapter") || !strings.Contains(info.stdout, "LoRA r 8, alpha 16") {
		t.Errorf("info --adapter:\n%s", info.stdout)
	}
}

// TestFinetuneResume: a run resumed from its step-2 checkpoint (as after a kill) ends with the
// same adapter, bit for bit, and the same loss curve as the uninterrupted run; Ctrl-C stops a run
// cleanly with a one-line message telling how to resume.
func TestFinetuneResume(t *testing.T) {
	model := stories260K(t)
	data := storiesTrainText(t, 60)
	full := filepath.Join(t.TempDir(), "full")
	mustSucceed(t, finetuneArgs(model, data, full)...)

	cut := filepath.Join(t.TempDir(), "cut")
	if err := os.MkdirAll(cut, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("cp", "-r", filepath.Join(full, "checkpoint-2"), cut).Run(); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, finetuneArgs(model, data, cut, "--resume", cut)...)
	for _, f := range []string{"adapter_model.safetensors", "checkpoint-4/optimizer.safetensors"} {
		a, _ := os.ReadFile(filepath.Join(full, f))
		b, err := os.ReadFile(filepath.Join(cut, f))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("resumed run's %s differs from the uninterrupted run's (err %v)", f, err)
		}
	}
	var logA, logB struct {
		Losses []float64 `json:"losses"`
	}
	ra, _ := os.ReadFile(filepath.Join(full, "training_log.json"))
	rb, _ := os.ReadFile(filepath.Join(cut, "training_log.json"))
	if json.Unmarshal(ra, &logA) != nil || json.Unmarshal(rb, &logB) != nil || len(logA.Losses) != 4 || !slices.Equal(logA.Losses, logB.Losses) {
		t.Errorf("loss curves: uninterrupted %v, resumed %v", logA.Losses, logB.Losses)
	}
	// Different settings than the checkpoint's: refused.
	other := filepath.Join(t.TempDir(), "other")
	res := runCLI(t, finetuneArgs(model, data, other, "--resume", cut, "--lora-r", "4")...)
	expectFailure(t, res, 1, "other settings")

	// Ctrl-C: a long run stops between steps with a resume hint.
	sig := filepath.Join(t.TempDir(), "sig")
	cmd := exec.Command(cliBinary, finetuneArgs(model, data, sig, "--max-steps", "100000", "--save-every", "1", "--keep", "2")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(40 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(filepath.Join(sig, "checkpoint-1")); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	code := -1
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	msg := stderr.String()
	if code != 1 || !strings.Contains(msg, "llmpruner: finetune: interrupted after step") || !strings.Contains(msg, "--resume "+sig) {
		t.Errorf("SIGINT: exit %d, stderr:\n%s", code, msg)
	}
	// The checkpoint it points at is a complete adapter.
	ck, _ := filepath.Glob(filepath.Join(sig, "checkpoint-*"))
	if len(ck) == 0 {
		t.Fatal("no checkpoint after SIGINT")
	}
	input := writeFile(t, filepath.Join(t.TempDir(), "in.jsonl"), `{"text":"Once upon a time"}`+"\n")
	mustSucceed(t, "score", "--model", model, "--adapter", ck[len(ck)-1], "--input", input)
}

// TestFinetuneBadInput: clear one-line errors, non-zero exits, and nothing written to --out.
func TestFinetuneBadInput(t *testing.T) {
	model := stories260K(t)
	data := storiesTrainText(t, 20)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	malformed := writeFile(t, filepath.Join(dir, "bad.json"), `[{"instruction": "Say hi", "output": "hi"}, {"instruction": 3}]`)
	notJSON := writeFile(t, filepath.Join(dir, "broken.json"), `[{"instruction": "Say hi", "output": `)
	emptyJSON := writeFile(t, filepath.Join(dir, "empty.json"), `[]`)
	emptyText := writeFile(t, filepath.Join(dir, "empty.txt"), ``)
	var recs []map[string]string
	for range 20 {
		recs = append(recs, map[string]string{"instruction": "Write a long story about a cat and a dog who play in the park.", "input": "", "output": "ok"})
	}
	rawRecs, _ := json.Marshal(recs)
	longPrompt := writeFile(t, filepath.Join(dir, "long.json"), string(rawRecs))
	tinyLlama := dataPath(t, "models/tiny-random-llama")
	ids := writeFile(t, filepath.Join(dir, "ids.jsonl"), `{"ids":[1,2,3,4]}`+"\n")

	// An adapter trained on stories260K, for the shape mismatch case.
	adapter := filepath.Join(dir, "adapter")
	mustSucceed(t, finetuneArgs(model, data, adapter, "--max-steps", "1", "--save-every", "0")...)

	for _, c := range []struct {
		name  string
		args  []string
		code  int
		wants []string
	}{
		{"malformed record", finetuneArgs(model, malformed, out, "--data-format", "alpaca"), 1, []string{"bad.json", "instruction"}},
		{"not JSON", finetuneArgs(model, notJSON, out), 1, []string{"broken.json"}},
		{"empty alpaca", finetuneArgs(model, emptyJSON, out), 1, []string{"empty.json"}},
		{"empty text", finetuneArgs(model, emptyText, out), 1, []string{"empty.txt"}},
		{"cutoff shorter than the prompt", finetuneArgs(model, longPrompt, out, "--cutoff-len", "16", "--val-size", "0"), 1, []string{"cutoff"}},
		{"r 0", finetuneArgs(model, data, out, "--lora-r", "0"), 2, []string{"--lora-r 0: the LoRA rank must be positive"}},
		{"r negative", finetuneArgs(model, data, out, "--lora-r", "-4"), 2, []string{"must be positive"}},
		{"unknown target", finetuneArgs(model, data, out, "--lora-targets", "q,lm_head"), 2, []string{`unknown LoRA target module "lm_head"`}},
		{"ChatGLM target on LLaMA", finetuneArgs(model, data, out, "--lora-targets", "query_key_value"), 1, []string{`"query_key_value" for llama models`}},
		{"empty targets", finetuneArgs(model, data, out, "--lora-targets", ","), 2, []string{"--lora-targets is empty"}},
		{"epochs and max-steps", finetuneArgs(model, data, out, "--epochs", "1"), 2, []string{"--epochs or --max-steps"}},
		{"batch not multiple", finetuneArgs(model, data, out, "--micro-batch", "3"), 2, []string{"not a multiple"}},
		{"bad format", finetuneArgs(model, data, out, "--data-format", "csv"), 2, []string{"--data-format"}},
		{"tensor parallel on the Go backend", finetuneArgs(model, data, out, "--tensor-parallel", "2"), 1, []string{"over 2 devices", "has 1"}},
		{"tensor parallel negative", finetuneArgs(model, data, out, "--tensor-parallel", "-1"), 2, []string{"--tensor-parallel -1"}},
		{"missing data", finetuneArgs(model, filepath.Join(dir, "nope.txt"), out), 1, []string{"nope.txt"}},
		{"no --out", []string{"finetune", "--model", model, "--data", data}, 2, []string{"--out is required"}},
		{"resume non-checkpoint", finetuneArgs(model, data, out, "--resume", dir), 1, []string{"not a checkpoint"}},
		{"adapter for other shapes", []string{"score", "--model", tinyLlama, "--adapter", adapter, "--input", ids}, 1,
			[]string{"--adapter", "does not fit the model", "needs"}},
		{"adapter with --lora-r", finetuneArgs(model, data, out, "--adapter", adapter, "--lora-r", "4"), 2, []string{"--lora-r cannot be combined with --adapter"}},
		{"adapter for other shapes (eval ppl)", []string{"eval", "ppl", "--model", tinyLlama, "--adapter", adapter, "--data", "x=" + data}, 1, []string{"does not fit"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := runCLI(t, c.args...)
			expectFailure(t, res, c.code, c.wants...)
			if _, err := os.Stat(out); err == nil {
				t.Errorf("a failed finetune left %s behind", out)
				_ = os.RemoveAll(out)
			}
		})
	}
	// A non-empty --out is refused without --resume.
	expectFailure(t, runCLI(t, finetuneArgs(model, data, adapter)...), 1, "not empty", "--resume")
}

// TestEveryModelCommandTakesAdapter: every command with --model accepts --adapter and checks it
// before doing any work.
func TestEveryModelCommandTakesAdapter(t *testing.T) {
	model := stories260K(t)
	dir := t.TempDir()
	notAdapter := t.TempDir()
	input := writeFile(t, filepath.Join(dir, "in.jsonl"), `{"ids":[1,2,3]}`+"\n")
	text := writeFile(t, filepath.Join(dir, "t.txt"), "Once upon a time there was a cat.")
	zs := dataPath(t, "zeroshot/lm-eval-docs")
	for _, args := range [][]string{
		{"info"},
		{"generate", "--max-new-tokens", "2"},
		{"score", "--input", input},
		{"eval", "ppl", "--data", "x=" + text},
		{"eval", "zeroshot", "--tasks", "piqa", "--limit", "2", "--data-dir", zs},
		{"stats", "--repeats", "1", "--warmup", "0"},
		{"convert", "--out", filepath.Join(dir, "conv")},
		{"prune", "--out", filepath.Join(dir, "pruned"), "--strategy", "block", "--ratio", "0.25", "--criterion", "l2"},
		{"tokenize", "--text", "hi"},
		{"finetune", "--data", text, "--out", filepath.Join(dir, "ft")},
	} {
		args = append(args, "--model", model, "--adapter", notAdapter)
		res := runCLI(t, args...)
		expectFailure(t, res, 1, "--adapter "+notAdapter, "no adapter_config.json")
	}
	for _, out := range []string{"conv", "pruned", "ft"} {
		if _, err := os.Stat(filepath.Join(dir, out)); err == nil {
			t.Errorf("a failed command wrote %s", out)
		}
	}
}
