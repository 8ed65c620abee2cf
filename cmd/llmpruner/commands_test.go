package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInfo checks the text and JSON forms of info on stories260K (5 layers, hidden 64, 8 heads,
// 4 kv heads, MLP 172, vocab 512, tied: 260,032 parameters by hand: 512·64 + 64 + 5·45,440).
func TestInfo(t *testing.T) {
	model := stories260K(t)
	var info modelInfo
	if err := json.Unmarshal([]byte(mustSucceed(t, "info", "--model", model, "--json").stdout), &info); err != nil {
		t.Fatal(err)
	}
	if info.Params != 512*64+64+5*(2*64+64*64+2*64*32+64*64+3*64*172) || info.NumLayers != 5 || info.HeadDim != 8 ||
		info.Layers[0].KVHeads != 4 || !info.TiedEmbed || info.TokenizerVoc != 512 || info.BOS != 1 {
		t.Errorf("info: %+v", info)
	}
	text := mustSucceed(t, "info", "--model", model).stdout
	for _, want := range []string{"260032", "0-4", "tok512.bin", "Float32"} {
		if !strings.Contains(text, want) {
			t.Errorf("info text lacks %q:\n%s", want, text)
		}
	}
}

// TestEvalPPLAgreesWithScore: the perplexity of a text one window long equals exp of the mean
// NLL that score reports for the same 128 ids (BOS + the text's first 127 tokens).
func TestEvalPPLAgreesWithScore(t *testing.T) {
	model := stories260K(t)
	tok := dataPath(t, "models/stories260K/tok512.bin")
	dir := t.TempDir()
	story := "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. " +
		"One day, she saw a big, red ball. She wanted to play with it, but it was too high. Her mom said, \"Let's go home.\" " +
		"Lily was sad, but she said yes. They walked home together and ate some cake. The sun was warm and the birds sang. " +
		"Lily smiled at her mom and said, \"Thank you for the cake!\" The end."
	var tk tokenizeOutput
	if err := json.Unmarshal([]byte(mustSucceed(t, "tokenize", "--tokenizer", tok, "--text", story, "--json").stdout), &tk); err != nil {
		t.Fatal(err)
	}
	if len(tk.IDs) < 128 || len(tk.IDs) >= 256 {
		t.Fatalf("test text is %d tokens, want one window of 128", len(tk.IDs))
	}
	ids, _ := json.Marshal(map[string][]int{"ids": tk.IDs[:128]})
	input := writeFile(t, filepath.Join(dir, "w.jsonl"), string(ids)+"\n")
	sc := parseScores(t, mustSucceed(t, "score", "--model", model, "--input", input).stdout)[0]
	textFile := writeFile(t, filepath.Join(dir, "story.txt"), story)
	var out struct {
		SeqLen int `json:"seq_len"`
		Sets   []struct {
			Name    string  `json:"name"`
			PPL     float64 `json:"ppl"`
			Tokens  int     `json:"tokens"`
			Windows int     `json:"windows"`
		} `json:"sets"`
	}
	res := mustSucceed(t, "eval", "ppl", "--model", model, "--data", "story="+textFile, "--data", "again="+textFile, "--json")
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatalf("eval ppl --json: %v\n%s", err, res.stdout)
	}
	if len(out.Sets) != 2 || out.Sets[0].Name != "story" || out.Sets[0].Windows != 1 || out.Sets[0].Tokens != 127 || out.SeqLen != 128 {
		t.Fatalf("eval ppl output %+v", out)
	}
	if want := math.Exp(sc.NLL); math.Abs(out.Sets[0].PPL-want) > 1e-6*want {
		t.Errorf("eval ppl %g, exp(score nll) %g", out.Sets[0].PPL, want)
	}
	// Mixed precision: bf16 matrix products move the NLL a little, not much.
	bf := parseScores(t, mustSucceed(t, "score", "--model", model, "--input", input, "--matmul-dtype", "bf16").stdout)[0]
	if d := math.Abs(bf.NLL - sc.NLL); d == 0 || d > 0.02*sc.NLL {
		t.Errorf("score --matmul-dtype bf16: NLL %.5f vs float32 %.5f", bf.NLL, sc.NLL)
	}
}

// TestStats checks params and MACs against the count written out by hand for stories260K at
// S = 64 (test_speedup.py's rules, per layer: q/k/v/o 64·64·8·(2·8+2·4), attention
// 8·(64·64·8·2 + 64·64), RoPE 2·64·8·(8+4), MLP 3·64·64·172, SiLU 64·172, norms 2·2·64·64; plus the
// final norm 2·64·64 and lm_head 64·64·512) and sanity-checks the measured latency.
func TestStats(t *testing.T) {
	model := stories260K(t)
	perLayer := int64(64*64*8*(2*8+2*4) + 8*(64*64*8*2+64*64) + 2*64*8*(8+4) + 3*64*64*172 + 64*172 + 2*2*64*64)
	wantMACs := 5*perLayer + 2*64*64 + 64*64*512
	var out statsOutput
	res := mustSucceed(t, "stats", "--model", model, "--warmup", "1", "--repeats", "3", "--gen-tokens", "8", "--json")
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if out.Params != 260032 || out.MACs != wantMACs || out.SeqLen != 64 || out.Batch != 1 {
		t.Errorf("stats: params %d, MACs %d (want 260032, %d)", out.Params, out.MACs, wantMACs)
	}
	if out.Forward == nil || out.Generate == nil || out.Forward.MedianSeconds <= 0 || out.Generate.TokensPerSec <= 0 ||
		out.Forward.MinSeconds > out.Forward.MedianSeconds || out.Forward.Repeats != 3 {
		t.Errorf("latency: forward %+v, generate %+v", out.Forward, out.Generate)
	}
	// From a config alone: the same static figures, no timings.
	cfg := writeFile(t, filepath.Join(t.TempDir(), "config.json"), llama7BConfig)
	res = mustSucceed(t, "stats", "--config", cfg, "--json")
	out = statsOutput{}
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if out.Params != 6738415616 || out.Forward != nil {
		t.Errorf("stats --config: %+v", out)
	}
	if out.MACs < 423_900_000_000 || out.MACs > 424_100_000_000 {
		t.Errorf("LLaMA-7B MACs at S=64: %d, want about 424.02G (the paper)", out.MACs)
	}
}

// TestEvalZeroShotSmall runs two tasks on their first 5 documents.
func TestEvalZeroShotSmall(t *testing.T) {
	model := stories260K(t)
	dir := dataPath(t, "zeroshot/lm-eval-docs")
	res := mustSucceed(t, "eval", "zeroshot", "--model", model, "--data-dir", dir, "--tasks", "piqa,boolq", "--limit", "5", "--json")
	var out struct {
		Tasks map[string]struct {
			Acc float64 `json:"acc"`
			N   int     `json:"n"`
		} `json:"tasks"`
		Average float64 `json:"average"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatalf("%v\n%s", err, res.stdout)
	}
	if len(out.Tasks) != 2 || out.Tasks["piqa"].N != 5 || out.Tasks["boolq"].N != 5 {
		t.Errorf("zeroshot: %+v", out)
	}
	for name, r := range out.Tasks {
		if r.Acc*5 != math.Round(r.Acc*5) {
			t.Errorf("%s acc %g is not a count out of 5", name, r.Acc)
		}
	}
	table := mustSucceed(t, "eval", "zeroshot", "--model", model, "--data-dir", dir, "--tasks", "piqa", "--limit", "3").stdout
	if !strings.Contains(table, "| PIQA |") || !strings.Contains(table, "stories260K.bin") {
		t.Errorf("markdown table:\n%s", table)
	}
	// --compare puts further models in the same table / JSON.
	var both struct {
		Models []struct {
			Model string `json:"model"`
		} `json:"models"`
	}
	res = mustSucceed(t, "eval", "zeroshot", "--model", model, "--compare", "again="+model, "--data-dir", dir, "--tasks", "piqa", "--limit", "2", "--json")
	if err := json.Unmarshal([]byte(res.stdout), &both); err != nil || len(both.Models) != 2 || both.Models[1].Model != "again" {
		t.Errorf("--compare JSON: %v %s", err, res.stdout)
	}
	// A garbled task file is an error naming it.
	bad := t.TempDir()
	writeFile(t, filepath.Join(bad, "piqa.jsonl"), "{not json\n")
	expectFailure(t, runCLI(t, "eval", "zeroshot", "--model", model, "--data-dir", bad, "--tasks", "piqa"), 1, "piqa")
	expectFailure(t, runCLI(t, "eval", "zeroshot", "--model", model, "--data-dir", bad, "--tasks", "boolq"), 1, "boolq.jsonl")
}

// TestDemo runs the demo on a slice of the TinyStories text and checks every section.
func TestDemo(t *testing.T) {
	stories260K(t)
	dataPath(t, "text/tinystories/tinystories_val_head.txt")
	g := readStoriesGolden(t)
	res := mustSucceed(t, "demo", "--ppl-kb", "40", "--max-new-tokens", "40", "--steps", "8")
	for _, want := range []string{"== Model ==", "260032", "== Perplexity ==", "held-out text: the last 39 KB of tinystories_val_head.txt", "PPL", "== A story",
		"== Pruning: block-wise, 50% of layers 1-4", "parameters: 260032 → 169408", "PPL before", "pruned model",
		"== Recovery: LoRA r 8, alpha 16, lr 0.003, 8 steps × 16 windows of 128 tokens", "recovered model",
		"== Summary", "| model     | parameters |       PPL |", "| dense     |     260032 |", "| pruned    |     169408 |",
		"| recovered |     169408 |", "LoRA regained"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, res.stdout)
		}
	}
	// The table's numbers: pruning hurts, 8 LoRA steps already regain part of it.
	var ppl = map[string]float64{}
	for _, line := range strings.Split(res.stdout, "\n") {
		var name string
		var params int64
		var v float64
		if n, _ := fmt.Sscanf(strings.ReplaceAll(line, "|", " "), "%s %d %f", &name, &params, &v); n == 3 {
			ppl[name] = v
		}
	}
	if !(ppl["dense"] > 1 && ppl["pruned"] > 2*ppl["dense"] && ppl["recovered"] < ppl["pruned"] && ppl["recovered"] > ppl["dense"]) {
		t.Errorf("demo table PPLs %v: want dense < recovered < pruned, pruned ≥ 2×dense", ppl)
	}
	// The story is the model's greedy one: the published text.
	if !strings.Contains(res.stdout, g.PublishedText[:100]) {
		t.Errorf("demo story is not the published greedy story:\n%s", res.stdout)
	}
}

// TestDemoOfflineWithoutData: with no data folder and no reachable Hub, the demo says what to set
// or download.
func TestDemoOfflineWithoutData(t *testing.T) {
	env := []string{"LLMPRUNER_DATA=", "HF_ENDPOINT=http://127.0.0.1:9", "XDG_CACHE_HOME=" + t.TempDir(),
		"HF_HUB_CACHE=" + t.TempDir(), "HF_HOME=" + t.TempDir()}
	res := runCLIEnv(t, env, "demo")
	expectFailure(t, res, 1, "LLMPRUNER_DATA", "karpathy/tinyllamas", "stories260K/stories260K.bin", "tok512.bin")
}

// TestDemoJSON: demo --json prints one JSON document with the same figures.
func TestDemoJSON(t *testing.T) {
	stories260K(t)
	dataPath(t, "text/tinystories/tinystories_val_head.txt")
	res := mustSucceed(t, "demo", "--ppl-kb", "20", "--max-new-tokens", "10", "--steps", "4", "--json")
	var out demoResult
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatalf("demo --json: %v\n%s", err, res.stdout)
	}
	if out.Model.Params != 260032 || out.PPL == nil || out.PPL.PPL <= 1 || out.Pruned == nil ||
		out.Pruned.ParamsAfter >= out.Pruned.ParamsBefore || !strings.HasPrefix(out.Story, "Once upon a time") {
		t.Errorf("demo --json: %+v", out)
	}
	if out.Recovered == nil || out.Recovered.Steps != 4 || len(out.Table) != 3 || out.Table[2].Name != "recovered" ||
		out.Table[2].PPL != out.Recovered.PPL.PPL || out.Table[1].PPL != out.Pruned.PPL.PPL {
		t.Errorf("demo --json recovery/table: %+v %+v", out.Recovered, out.Table)
	}
	// The held-out text follows the training text in the file: no byte of it is trained on.
	text, err := os.ReadFile(dataPath(t, "text/tinystories/tinystories_val_head.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if out.HeldOutBytes < 19*1024 || out.TrainBytes+out.HeldOutBytes > len(text) {
		t.Errorf("held-out %d + train %d bytes of a %d-byte file", out.HeldOutBytes, out.TrainBytes, len(text))
	}
}

// TestDemoFromHFCacheOffline: without LLMPRUNER_DATA and without network, the demo uses a
// stories260K found in the Hugging Face cache, and skips what needs the TinyStories text.
func TestDemoFromHFCacheOffline(t *testing.T) {
	model := stories260K(t)
	tok := dataPath(t, "models/stories260K/tok512.bin")
	cache := t.TempDir()
	repo := filepath.Join(cache, "huggingface", "hub", "models--karpathy--tinyllamas")
	snap := filepath.Join(repo, "snapshots", "0123abcd", "stories260K")
	if err := os.MkdirAll(snap, 0o755); err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{model: "stories260K.bin", tok: "tok512.bin"} {
		raw, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(snap, dst), string(raw))
	}
	_ = os.MkdirAll(filepath.Join(repo, "refs"), 0o755)
	writeFile(t, filepath.Join(repo, "refs", "main"), "0123abcd\n")
	env := []string{"LLMPRUNER_DATA=", "HF_ENDPOINT=http://127.0.0.1:9", "XDG_CACHE_HOME=" + cache, "HF_HUB_CACHE=", "HF_HOME="}
	res := runCLIEnv(t, env, "demo", "--max-new-tokens", "20")
	if res.code != 0 {
		t.Fatalf("demo from the HF cache: exit %d\n%s", res.code, res.stderr)
	}
	for _, want := range []string{"0123abcd/stories260K/stories260K.bin", "skipped: TinyStories text not found", "Once upon a time"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, res.stdout)
		}
	}
}
