package main

// GGUF files written by llmpruner, run by the real llama.cpp (the prebuilt CPU build of
// node-llama-cpp 3.22.1, llama.cpp release v0.5.0) through scripts/llamacpp.mjs. The tests skip
// when node or the package is absent, unless LLMPRUNER_REQUIRE_LLAMACPP=1 (CI installs both and
// sets it).

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/llamacpp"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/llmpruner/llmpruner/lib/prune"
	"github.com/llmpruner/llmpruner/lib/tokenizer"
)

// llamaCpp returns a llama.cpp runner (threads 0: every core), or skips (fails when required).
func llamaCpp(t *testing.T, threads int) *llamacpp.Runner {
	t.Helper()
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	r, err := llamacpp.New(repo)
	if err != nil {
		if os.Getenv("LLMPRUNER_REQUIRE_LLAMACPP") == "1" {
			t.Fatal(err)
		}
		t.Skip("llama.cpp tests skipped: ", err)
	}
	r.Threads = threads
	return r
}

// runLlamaCpp runs the runs in one node process with one thread (the tests compare numbers, not speed).
func runLlamaCpp(t *testing.T, runs ...llamacpp.Run) [][]llamacpp.Result {
	t.Helper()
	res, err := llamaCpp(t, 1).Run(runs...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// loadModel loads a model in-process (for logits).
func loadModel(t *testing.T, path string, tok string) *models.Model {
	t.Helper()
	be, err := backend()
	if err != nil {
		t.Fatal(err)
	}
	m, err := models.Load(be, path, models.LoadOptions{Tokenizer: tok})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// logitsError is max |a−b| over all positions divided by max |b|.
func logitsError(t *testing.T, got [][]float32, want [][]float32) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d logits rows, want %d", len(got), len(want))
	}
	var d, scale float64
	for i := range want {
		if len(got[i]) < len(want[i]) {
			t.Fatalf("row %d: %d logits, want %d", i, len(got[i]), len(want[i]))
		}
		for j, w := range want[i] {
			d = max(d, math.Abs(float64(got[i][j]-w)))
			scale = max(scale, math.Abs(float64(w)))
		}
	}
	return d / scale
}

// storyIDs is BOS + stories260K's 64 greedy tokens (real text for the logits comparisons).
func storyIDs(t *testing.T) []int {
	t.Helper()
	data, err := os.ReadFile(goldenPath(t, "stories260K_greedy.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		IDs []int `json:"greedy_ids_after_bos_64"`
	}
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	return append([]int{1}, g.IDs...)
}

// generateIDs is `llmpruner generate --ids 1 --max-new-tokens n --json`.
func generateIDs(t *testing.T, model string, n int) []int {
	t.Helper()
	res := mustSucceed(t, "generate", "--model", model, "--ids", "1", "--max-new-tokens", strconv.Itoa(n), "--json")
	var out generateOutput
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatal(err)
	}
	return out.IDs
}

func agreement(a, b []int) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// TestLlamaCppStories260K: stories260K as GGUF in llama.cpp. F32: the greedy continuation of BOS
// is the published one and the logits match llmpruner's; F16, BF16 and Q8_0: measured error and
// greedy agreement (logged; loose bounds).
func TestLlamaCppStories260K(t *testing.T) {
	llamaCpp(t, 1)
	model := stories260K(t)
	dir := t.TempDir()
	story := storyIDs(t)
	want, err := loadModel(t, model, "").Logits([][]int{story})
	if err != nil {
		t.Fatal(err)
	}
	types := []string{"f32", "f16", "bf16", "q8_0"}
	var runs []llamacpp.Run
	for _, typ := range types {
		out := filepath.Join(dir, typ+".gguf")
		mustSucceed(t, "convert", "--model", model, "--out", out, "--dtype", typ)
		runs = append(runs, llamacpp.Run{Model: out, Tasks: []llamacpp.Task{llamacpp.Greedy([]int{1}, 64), llamacpp.Logits(story)}})
	}
	runs[0].Tasks = append(runs[0].Tasks, llamacpp.Tokenize(tokenizerTexts))
	res := runLlamaCpp(t, runs...)
	// The llama2.c tokenizer (tok512.bin) written as SentencePiece-style metadata tokenizes as
	// llmpruner's llama2.c tokenizer.
	tok := loadModel(t, model, "").Tokenizer
	for j, text := range tokenizerTexts {
		want, err := tok.Encode(text)
		if err != nil {
			t.Fatal(err)
		}
		if got := res[0][2].Tokens[j]; !slices.Equal(got, want) {
			t.Errorf("tok512 %q: llama.cpp %v, llmpruner %v", text, got, want)
		}
	}
	for i, typ := range types {
		greedy := res[i][0].IDs
		e := logitsError(t, res[i][1].Logits, want[0])
		agree := agreement(greedy, story[1:])
		t.Logf("%-4s: logits max error %.2e of the largest |logit|; greedy agrees with llmpruner for %d of 64 tokens", typ, e, agree)
		bound := map[string]float64{"f32": 1e-5, "f16": 5e-3, "bf16": 3e-2, "q8_0": 3e-2}[typ]
		if e > bound {
			t.Errorf("%s: logits error %.2e > %.0e", typ, e, bound)
		}
		if typ == "f32" && !slices.Equal(greedy, story[1:]) {
			t.Errorf("llama.cpp greedy ids %v\nwant the published %v", greedy, story[1:])
		}
	}
}

// TestLlamaCppPruned: block-pruned (non-uniform, deci), layer-pruned (llama) and bias-compensated
// stories260K in llama.cpp: greedy ids equal `llmpruner generate` for 48 tokens and the logits
// agree within 1e-3 relative.
func TestLlamaCppPruned(t *testing.T) {
	llamaCpp(t, 1)
	model := stories260K(t)
	dir := t.TempDir()
	calib := storiesTrainText(t, 20)
	block := filepath.Join(dir, "block")
	mustSucceed(t, "prune", "--model", model, "--out", block, "--strategy", "block", "--ratio", "0.5", "--attn-layers", "1:4",
		"--mlp-layers", "1:4", "--criterion", "taylor", "--calib", calib, "--num-examples", "4")
	layer := filepath.Join(dir, "layer")
	mustSucceed(t, "prune", "--model", model, "--out", layer, "--strategy", "layer", "--ratio", "0.4", "--criterion", "l2")
	// Bias compensation (as FLAP writes it): random o_proj / down_proj biases on the block-pruned model.
	biased := filepath.Join(dir, "biased")
	m := loadModel(t, block, "")
	rng := rand.New(rand.NewPCG(3, 9))
	vec := func() []float64 {
		v := make([]float64, m.Config.Hidden)
		for i := range v {
			v[i] = 0.1 * rng.NormFloat64()
		}
		return v
	}
	cfg, err := prune.AddBiases(m.Store, m.Config, map[int][]float64{1: vec(), 3: vec()}, map[int][]float64{2: vec()})
	if err != nil {
		t.Fatal(err)
	}
	m.Config = cfg
	if err := m.Save(biased, ""); err != nil {
		t.Fatal(err)
	}
	story := storyIDs(t)
	cases := []struct{ name, dir, arch string }{{"block", block, "deci"}, {"layer", layer, "llama"}, {"biased", biased, "deci"}}
	var runs []llamacpp.Run
	for _, c := range cases {
		out := filepath.Join(dir, c.name+".gguf")
		res := mustSucceed(t, "convert", "--model", c.dir, "--out", out, "--json")
		var info struct {
			Arch string `json:"arch"`
		}
		if err := json.Unmarshal([]byte(res.stdout), &info); err != nil || info.Arch != c.arch {
			t.Errorf("%s: architecture %q, want %s (%v)", c.name, info.Arch, c.arch, err)
		}
		runs = append(runs, llamacpp.Run{Model: out, Tasks: []llamacpp.Task{llamacpp.Greedy([]int{1}, 48), llamacpp.Logits(story)}})
	}
	res := runLlamaCpp(t, runs...)
	for i, c := range cases {
		want := generateIDs(t, c.dir, 48)
		got := res[i][0].IDs
		if !slices.Equal(got, want) {
			t.Errorf("%s: llama.cpp greedy %v\nllmpruner generate %v", c.name, got, want)
		}
		logits, err := loadModel(t, c.dir, "").Logits([][]int{story})
		if err != nil {
			t.Fatal(err)
		}
		e := logitsError(t, res[i][1].Logits, logits[0])
		t.Logf("%s: %d greedy tokens equal; logits max error %.2e relative", c.name, agreement(got, want), e)
		if e > 1e-3 {
			t.Errorf("%s: logits differ by %.2e relative", c.name, e)
		}
	}
}

// TestLlamaCppEmptyLayers: layers pruned to nothing computed by llama.cpp exactly as llmpruner
// computes the dense model with those parts zeroed: no heads in layer 0 (one zero head) and
// layer 2 (deci's attention-free layer), no MLP in layer 3 (one zero channel), nothing left in
// layer 4 (left out).
func TestLlamaCppEmptyLayers(t *testing.T) {
	llamaCpp(t, 1)
	m := loadModel(t, stories260K(t), "")
	cfg := m.Config.Clone()
	specs, err := models.ExpectedTensors(m.Config)
	if err != nil {
		t.Fatal(err)
	}
	noAttn := map[int]bool{0: true, 2: true, 4: true}
	noMLP := map[int]bool{3: true, 4: true}
	var names []string
	for _, s := range specs {
		drop := false
		for l := range cfg.NumLayers() {
			p := fmt.Sprintf("model.layers.%d.", l)
			drop = drop || noAttn[l] && (strings.HasPrefix(s.Name, p+"self_attn.") || s.Name == p+"input_layernorm.weight")
			drop = drop || noMLP[l] && (strings.HasPrefix(s.Name, p+"mlp.") || s.Name == p+"post_attention_layernorm.weight")
		}
		if !drop {
			names = append(names, s.Name)
		}
	}
	for l := range noAttn {
		cfg.Heads[l], cfg.KVHeads[l] = 0, 0
	}
	for l := range noMLP {
		cfg.Inter[l] = 0
	}
	path := filepath.Join(t.TempDir(), "empty.gguf")
	v, err := tokenizer.GGUFVocabOf(m.Tokenizer)
	if err != nil {
		t.Fatal(err)
	}
	res, err := checkpoint.SaveGGUF(path, cfg, names, func(n string) (*tensors.Tensor, error) {
		return m.Store.GetVariable(models.VarPath(n)).Value()
	}, checkpoint.GGUFOptions{Vocab: v})
	if err != nil {
		t.Fatal(err)
	}
	if res.Arch != "deci" || res.Layers != 4 {
		t.Errorf("written as %s with %d layers, want deci with 4", res.Arch, res.Layers)
	}
	// The reference: the dense model with o_proj / down_proj of the removed parts zeroed.
	for l := range noAttn {
		zero(t, m, fmt.Sprintf("model.layers.%d.self_attn.o_proj.weight", l))
	}
	for l := range noMLP {
		zero(t, m, fmt.Sprintf("model.layers.%d.mlp.down_proj.weight", l))
	}
	m.ResetExecs()
	story := storyIDs(t)
	want, err := m.Logits([][]int{story})
	if err != nil {
		t.Fatal(err)
	}
	out := runLlamaCpp(t, llamacpp.Run{Model: path, Tasks: []llamacpp.Task{llamacpp.Logits(story)}})
	e := logitsError(t, out[0][0].Logits, want[0])
	t.Logf("empty layers: logits max error %.2e relative", e)
	if e > 1e-4 {
		t.Errorf("llama.cpp logits differ from the zeroed dense model by %.2e relative", e)
	}
}

func zero(t *testing.T, m *models.Model, name string) {
	t.Helper()
	v := m.Store.GetVariable(models.VarPath(name))
	if err := v.SetValue(tensors.FromShape(v.Shape())); err != nil {
		t.Fatal(err)
	}
}

// tokenizerTexts are strings whose tokenization differs easily between implementations.
var tokenizerTexts = []string{
	"Hello world", " Hello world", "Hello  world", "  leading spaces", "trailing spaces   ",
	"line one\nline two", "\n\nblank lines\n\n", "tab\tseparated\tvalues", "numbers 1234567890 and 3.14159",
	"year 2024, 10,000 people", "Ünïcödé äöü ß", "naïve café résumé", "日本語のテキスト", "中文文本测试",
	"Привет, мир!", "مرحبا بالعالم", "emoji 🦙🚀👍🏽", "👨‍👩‍👧‍👦 family", "mixed: abc123DEF!?",
	"can't won't it's", "URL https://example.com/path?q=1", "code: for (i = 0; i < n; i++) { x += i; }",
	"   ", "a", "A.B.C.", "CamelCaseWordsHere", "snake_case_words_here", "<s> not special </s>",
	"<|begin_of_text|> as text", "The quick brown fox jumps over the lazy dog.", "((( nested )))", "x\r\ny",
}

// TestLlamaCppTokenizers: a tiny random LLaMA with the real LLaMA-2 SentencePiece tokenizer and
// one with the LLaMA-3 tiktoken tokenizer, written as GGUF: llama.cpp tokenizes every test string
// as llmpruner does, and llama.cpp's own test strings into Hugging Face's ids.
func TestLlamaCppTokenizers(t *testing.T) {
	llamaCpp(t, 1)
	dir := t.TempDir()
	// LLaMA-2: the tiny random HF model (vocab 32000) with the LLaMA-2 tokenizer.model.
	l2tok := dataPath(t, "tokenizers/llama2/tokenizer.model")
	l2 := filepath.Join(dir, "llama2.gguf")
	mustSucceed(t, "convert", "--model", dataPath(t, "models/tiny-random-llama"), "--tokenizer", l2tok, "--out", l2)
	// LLaMA-3: random weights of a tiny LLaMA with the 128256-token vocabulary.
	l3tok, _, err := tokenizer.Load(dataPath(t, "tokenizers/llama3/tokenizer.model"))
	if err != nil {
		t.Fatal(err)
	}
	l3 := filepath.Join(dir, "llama3.gguf")
	writeRandomLlama(t, l3, 128256, l3tok)
	texts := map[string]tokenizer.Tokenizer{}
	tok2, _, err := tokenizer.Load(l2tok)
	if err != nil {
		t.Fatal(err)
	}
	texts["llama2"], texts["llama3"] = tok2, l3tok
	spmTexts, spmIDs := vocabTestStrings(t, "ggml-vocab-llama-spm.gguf")
	bpeTexts, bpeIDs := vocabTestStrings(t, "ggml-vocab-llama-bpe.gguf")
	out := runLlamaCpp(t,
		llamacpp.Run{Model: l2, Tasks: []llamacpp.Task{llamacpp.Tokenize(tokenizerTexts), llamacpp.Tokenize(spmTexts)}},
		llamacpp.Run{Model: l3, Tasks: []llamacpp.Task{llamacpp.Tokenize(tokenizerTexts), llamacpp.Tokenize(bpeTexts)}},
	)
	for i, c := range []struct {
		name    string
		refText []string
		refIDs  [][]int
	}{{"llama2", spmTexts, spmIDs}, {"llama3", bpeTexts, bpeIDs}} {
		got := out[i][0].Tokens
		for j, text := range tokenizerTexts {
			want, err := texts[c.name].Encode(text)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got[j], want) {
				t.Errorf("%s %q: llama.cpp %v, llmpruner %v", c.name, text, got[j], want)
			}
		}
		hf := out[i][1].Tokens
		for j, text := range c.refText {
			if !slices.Equal(hf[j], c.refIDs[j]) {
				t.Errorf("%s %q: llama.cpp %v, Hugging Face %v", c.name, text, hf[j], c.refIDs[j])
			}
		}
		t.Logf("%s: %d strings as llmpruner, %d of llama.cpp's test strings as Hugging Face", c.name, len(tokenizerTexts), len(c.refText))
	}
}

// vocabTestStrings reads llama.cpp's tokenizer test strings and Hugging Face's ids for them.
func vocabTestStrings(t *testing.T, name string) ([]string, [][]int) {
	t.Helper()
	inp, err := os.ReadFile(dataPath(t, "tokenizers/llamacpp-vocab/"+name+".inp"))
	if err != nil {
		t.Fatal(err)
	}
	outb, err := os.ReadFile(dataPath(t, "tokenizers/llamacpp-vocab/"+name+".out"))
	if err != nil {
		t.Fatal(err)
	}
	const sep = "\n__ggml_vocab_test__\n"
	texts := strings.Split(strings.TrimSuffix(string(inp), sep), sep)
	lines := strings.Split(strings.TrimSuffix(string(outb), "\n"), "\n")
	if len(lines) != len(texts) {
		t.Fatalf("%s: %d strings, %d id lines", name, len(texts), len(lines))
	}
	ids := make([][]int, len(lines))
	for i, l := range lines {
		ids[i] = []int{}
		for _, f := range strings.Fields(l) {
			v, err := strconv.Atoi(f)
			if err != nil {
				t.Fatal(err)
			}
			ids[i] = append(ids[i], v)
		}
	}
	return texts, ids
}

// writeRandomLlama writes a one-layer LLaMA (hidden 16, 2 heads) with random weights, a vocabulary
// of vocab rows and tok's metadata as GGUF.
func writeRandomLlama(t *testing.T, path string, vocab int, tok tokenizer.Tokenizer) {
	t.Helper()
	cfg := &config.Config{Arch: arch.Llama, Hidden: 16, Vocab: vocab, HeadDim: 8, Heads: []int{2}, KVHeads: []int{2},
		Inter: []int{32}, RMSNormEps: 1e-5, RopeTheta: 500000, MaxPositions: 256, TieEmbed: true, BOS: tok.BOS(), EOS: []int{tok.EOS()}}
	v, err := tokenizer.GGUFVocabOf(tok)
	if err != nil {
		t.Fatal(err)
	}
	writeRandomModel(t, path, cfg, v)
}

// writeRandomModel writes a model of cfg with random weights (N(0, 0.02²)) and the tokenizer
// metadata v as GGUF.
func writeRandomModel(t *testing.T, path string, cfg *config.Config, v *tokenizer.GGUFVocab) {
	t.Helper()
	writeRandomModelStd(t, path, cfg, v, 0.02)
}

// writeRandomModelStd is writeRandomModel with weights of standard deviation std.
func writeRandomModelStd(t *testing.T, path string, cfg *config.Config, v *tokenizer.GGUFVocab, std float64) {
	t.Helper()
	specs, err := models.ExpectedTensors(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	var names []string
	data := map[string]*tensors.Tensor{}
	for _, s := range specs {
		x := make([]float32, shapes.Make(dtypes.Float32, s.Shape...).Size())
		for i := range x {
			x[i] = float32(std * rng.NormFloat64())
		}
		names = append(names, s.Name)
		data[s.Name] = tensors.FromFlatDataAndDimensions(x, s.Shape...)
	}
	if _, err := checkpoint.SaveGGUF(path, cfg, names, func(n string) (*tensors.Tensor, error) { return data[n], nil },
		checkpoint.GGUFOptions{Vocab: v}); err != nil {
		t.Fatal(err)
	}
}
