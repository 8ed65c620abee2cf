package main

// The deployment speed table of the README: a LLaMA-7B-shaped model (random weights, hidden 4096,
// 32 heads, MLP 11008, a few layers, vocabulary 512) dense and block-pruned as the paper prunes
// LLaMA-7B (ratio 0.25 on the inner layers, with and without --round-to), written as GGUF F16 and
// Q8_0 and run by llama.cpp (prompt and decode tokens/s), beside llmpruner's own `stats` latency.
// Minutes and ~20 GB of disk: run on purpose with
//
//	LLMPRUNER_BENCH_DEPLOY=1 LLMPRUNER_NODE_MODULES=… go test ./cmd/llmpruner -run TestDeploySpeed -v -timeout 60m
//
// LLMPRUNER_BENCH_LAYERS overrides the 6 layers; LLMPRUNER_BENCH_THREADS the llama.cpp threads
// (default 1: on a shared machine a second thread mostly waits at ggml's barriers);
// LLMPRUNER_BENCH_ROUND the --round-to values (default 0,64,128,256; 0 = none);
// LLMPRUNER_BENCH_TYPES the GGUF types (default f16,q8_0); LLMPRUNER_BENCH_DIR keeps the models there (and reuses those already written);
// LLMPRUNER_BENCH_OUT=FILE also writes the table.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/llamacpp"
	"github.com/llmpruner/llmpruner/lib/models"
)

func TestDeploySpeed(t *testing.T) {
	if os.Getenv("LLMPRUNER_BENCH_DEPLOY") != "1" {
		t.Skip("set LLMPRUNER_BENCH_DEPLOY=1 to run the deployment speed benchmark (minutes, ~20 GB of disk)")
	}
	threads := 1
	if s := os.Getenv("LLMPRUNER_BENCH_THREADS"); s != "" {
		threads, _ = strconv.Atoi(s)
	}
	r := llamaCpp(t, threads)
	layers := 6
	if s := os.Getenv("LLMPRUNER_BENCH_LAYERS"); s != "" {
		layers, _ = strconv.Atoi(s)
	}
	dir := os.Getenv("LLMPRUNER_BENCH_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	exists := func(p string) bool { _, err := os.Stat(filepath.Join(p, "model.safetensors")); return err == nil }
	dense := filepath.Join(dir, "dense")
	if !exists(dense) {
		writeRandomBF16(t, dense, layers)
	}
	tok := dataPath(t, "models/stories260K/tok512.bin")
	inner := fmt.Sprintf("1:%d", layers-1)
	type variant struct{ name, dir string }
	variants := []variant{{"dense", dense}}
	rounds := []int{0, 64, 128, 256}
	if s := os.Getenv("LLMPRUNER_BENCH_ROUND"); s != "" {
		rounds = nil
		for _, f := range strings.Split(s, ",") {
			v, _ := strconv.Atoi(f)
			rounds = append(rounds, v)
		}
	}
	for _, r := range rounds {
		name := "pruned"
		if r > 0 {
			name = fmt.Sprintf("pruned --round-to %d", r)
		}
		out := filepath.Join(dir, fmt.Sprintf("pruned%d", r))
		if exists(out) {
			variants = append(variants, variant{name, out})
			continue
		}
		mustSucceed(t, "prune", "--model", dense, "--out", out, "--strategy", "block", "--ratio", "0.25", "--attn-layers", inner,
			"--mlp-layers", inner, "--criterion", "l2", "--round-to", strconv.Itoa(r))
		variants = append(variants, variant{name, out})
	}
	types := []string{"f16", "q8_0"}
	if s := os.Getenv("LLMPRUNER_BENCH_TYPES"); s != "" {
		types = strings.Split(s, ",")
	}
	params := map[string]int64{}
	var runs []llamacpp.Run
	for _, v := range variants {
		m := loadConfig(t, v.dir)
		params[v.name] = arch.NumParams(m)
		for _, typ := range types {
			out := filepath.Join(dir, strings.ReplaceAll(v.name, " ", "_")+"."+typ+".gguf")
			if _, err := os.Stat(out); err != nil {
				mustSucceed(t, "convert", "--model", v.dir, "--tokenizer", tok, "--out", out, "--dtype", typ)
			}
			runs = append(runs, llamacpp.Run{Model: out, Context: 256, Tasks: []llamacpp.Task{llamacpp.Bench(64, 32, 2)}})
		}
	}
	res, err := r.Run(runs...)
	if err != nil {
		t.Fatal(err)
	}
	type speed struct{ Prompt, Decode float64 }
	bench := map[string]speed{}
	for i, run := range runs {
		bench[run.Model] = speed{res[i][0].PromptTokS, res[i][0].DecodeTokS}
	}
	stats := map[string]float64{}
	for _, v := range []variant{variants[0], variants[1]} {
		r := mustSucceed(t, "stats", "--model", v.dir, "--seq-len", "64", "--gen-tokens", "8", "--warmup", "1", "--repeats", "1", "--json")
		var s statsOutput
		if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
			t.Fatal(err)
		}
		stats[v.name+" forward"] = s.Forward.MedianSeconds
		stats[v.name+" generate"] = s.Generate.TokensPerSec
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| model | parameters | GGUF | prompt tok/s | decode tok/s | decode speed-up | parameter ratio |\n|---|---:|---|---:|---:|---:|---:|\n")
	for _, typ := range types {
		base := bench[filepath.Join(dir, "dense."+typ+".gguf")]
		for _, v := range variants {
			s := bench[filepath.Join(dir, strings.ReplaceAll(v.name, " ", "_")+"."+typ+".gguf")]
			fmt.Fprintf(&b, "| %s | %.0fM | %s | %.1f | %.2f | %.2f× | %.2f× |\n", v.name, float64(params[v.name])/1e6, strings.ToUpper(typ),
				s.Prompt, s.Decode, s.Decode/base.Decode, float64(params["dense"])/float64(params[v.name]))
		}
	}
	fmt.Fprintf(&b, "\nllama.cpp with %d thread(s); prompt 64 tokens, decode 32, best of 2.\n", threads)
	fmt.Fprintf(&b, "llmpruner stats (Go backend, float32): forward of 64 tokens dense %.2f s, pruned %.2f s (%.2f×); generation dense %.2f tok/s, pruned %.2f tok/s (%.2f×)\n",
		stats["dense forward"], stats["pruned forward"], stats["dense forward"]/stats["pruned forward"],
		stats["dense generate"], stats["pruned generate"], stats["pruned generate"]/stats["dense generate"])
	t.Log("\n" + b.String())
	if p := os.Getenv("LLMPRUNER_BENCH_OUT"); p != "" {
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// loadConfig reads a model directory's config.json.
func loadConfig(t *testing.T, dir string) *config.Config {
	t.Helper()
	c, err := arch.LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// writeRandomBF16 writes a LLaMA-7B-shaped HF directory with N(0, 0.02) bfloat16 weights (norms 1).
func writeRandomBF16(t *testing.T, dir string, layers int) {
	t.Helper()
	per := func(v int) []int {
		out := make([]int, layers)
		for i := range out {
			out[i] = v
		}
		return out
	}
	cfg := &config.Config{Arch: arch.Llama, Hidden: 4096, Vocab: 512, HeadDim: 128, Heads: per(32), KVHeads: per(32),
		Inter: per(11008), RMSNormEps: 1e-6, RopeTheta: 10000, MaxPositions: 2048, BOS: 1, EOS: []int{2}}
	specs, err := models.ExpectedTensors(cfg)
	if err != nil {
		t.Fatal(err)
	}
	shapes := map[string][]int{}
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
		shapes[s.Name] = s.Shape
	}
	get := func(name string) (*tensors.Tensor, error) {
		s := shapes[name]
		n := 1
		for _, d := range s {
			n *= d
		}
		x := make([]bfloat16.BFloat16, n)
		rng := rand.New(rand.NewPCG(uint64(len(name)), uint64(n)))
		for i := range x {
			if len(s) == 1 {
				x[i] = bfloat16.FromFloat32(1)
			} else {
				x[i] = bfloat16.FromFloat32(float32(0.02 * rng.NormFloat64()))
			}
		}
		return tensors.FromFlatDataAndDimensions(x, s...), nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := arch.SaveConfig(cfg, filepath.Join(dir, "config.json")); err != nil {
		t.Fatal(err)
	}
	if err := checkpoint.WriteSafetensors(filepath.Join(dir, checkpoint.SafetensorsFile), names, get, nil); err != nil {
		t.Fatal(err)
	}
}
