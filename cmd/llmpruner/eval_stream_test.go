package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/models"
)

// TestEvalPPLStreamEqualsLoaded: eval ppl --stream, and --max-memory small enough to stream the
// windows in several sweeps, give the loaded model's perplexity on stories260K (GQA, tied
// embeddings); a limit that one batch cannot meet is refused in one line, a large limit loads the
// model, and --adapter is refused when streaming.
func TestEvalPPLStreamEqualsLoaded(t *testing.T) {
	model := stories260K(t)
	text, err := os.ReadFile(dataPath(t, "text/tinystories/tinystories_val_head.txt"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	textPath := filepath.Join(dir, "text.txt")
	if err := os.WriteFile(textPath, text[:30000], 0o644); err != nil {
		t.Fatal(err)
	}
	ppl := func(extra ...string) (float64, string) {
		t.Helper()
		args := append([]string{"eval", "ppl", "--model", model, "--data", "t=" + textPath, "--json"}, extra...)
		res := mustSucceed(t, args...)
		var out struct {
			Sets []struct {
				NLL     float64 `json:"nll"`
				Windows int     `json:"windows"`
			} `json:"sets"`
		}
		if err := json.Unmarshal([]byte(res.stdout), &out); err != nil || len(out.Sets) != 1 || out.Sets[0].Windows == 0 {
			t.Fatalf("eval ppl %v: bad JSON %q: %v", extra, res.stdout, err)
		}
		return out.Sets[0].NLL, res.stderr
	}
	want, _ := ppl()
	check := func(name string, got float64) {
		t.Helper()
		if rel := (got - want) / want; rel > 1e-5 || rel < -1e-5 {
			t.Errorf("%s: NLL %.8g, loaded %.8g (relative difference %.3g)", name, got, want, rel)
		}
	}
	got, stderr := ppl("--stream")
	if !strings.Contains(stderr, "layer by layer") {
		t.Errorf("--stream did not say it streams:\n%s", stderr)
	}
	check("--stream", got)

	cfg, r, err := checkpoint.LoadLlama2C(model)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	fixed := models.SweepBytes(cfg, dtypes.Float32, 0, 4, 128)
	limit := fixed + 3*4*129*int64(4*cfg.Hidden) // three batches of 4 windows per sweep
	got, stderr = ppl("--max-memory", strconv.FormatInt(limit, 10))
	if !strings.Contains(stderr, "up to 1548 tokens per sweep") {
		t.Errorf("--max-memory %d did not stream three batches per sweep:\n%s", limit, stderr)
	}
	check("--max-memory", got)
	if _, stderr = ppl("--max-memory", "100GB"); !strings.Contains(stderr, "loading the model") {
		t.Errorf("--max-memory 100GB did not load the model:\n%s", stderr)
	}
	expectFailure(t, runCLI(t, "eval", "ppl", "--model", model, "--data", "t="+textPath, "--max-memory", "1MB"), 1,
		"--max-memory 1MB is too small", "even streamed one layer at a time")
	adapter := filepath.Join(dir, "adapter")
	if err := os.MkdirAll(adapter, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(adapter, "adapter_config.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	expectFailure(t, runCLI(t, "eval", "ppl", "--model", model, "--data", "t="+textPath, "--stream", "--adapter", adapter), 2,
		"--adapter cannot be applied to a streamed model")
}

// TestEvalZeroShotStreamEqualsLoaded: eval zeroshot --stream (every request through the layers in
// sweeps) gives the loaded model's accuracies on stories260K.
func TestEvalZeroShotStreamEqualsLoaded(t *testing.T) {
	model := stories260K(t)
	dataDir := dataPath(t, "zeroshot/lm-eval-docs")
	run := func(extra ...string) map[string]any {
		t.Helper()
		args := append([]string{"eval", "zeroshot", "--model", model, "--data-dir", dataDir, "--tasks", "boolq,hellaswag,arc_easy",
			"--limit", "12", "--json"}, extra...)
		var out map[string]any
		if err := json.Unmarshal([]byte(mustSucceed(t, args...).stdout), &out); err != nil {
			t.Fatal(err)
		}
		return out["tasks"].(map[string]any)
	}
	want, got := run(), run("--stream", "--max-memory", "1GB")
	for task, w := range want {
		wj, _ := json.Marshal(w)
		gj, _ := json.Marshal(got[task])
		if string(wj) != string(gj) {
			t.Errorf("%s: streamed %s, loaded %s", task, gj, wj)
		}
	}
}
