package main

// The LLaMA-layout families beyond LLaMA — Qwen2 (llama.cpp's qwen2 / deci), Mistral and
// Llama-3.2 (llama / deci) — written as GGUF and run by the real llama.cpp, as the LLaMA family is
// in llamacpp_test.go; their tokenizer.json tokenizers written as llama.cpp's gpt2 metadata.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/internal/ggufvocab"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/llamacpp"
	"github.com/llmpruner/llmpruner/lib/tokenizer"
)

// familyFixture is a tiny random checkpoint PyTorch wrote (scripts/llama_family_ref.py).
func familyFixture(t *testing.T, name string) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "lib", "models", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// withConfig copies the checkpoint dir to a new directory with config.json's key set to value.
func withConfig(t *testing.T, dir, out, key string, value any) string {
	t.Helper()
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(dir, "model.safetensors"), filepath.Join(out, "model.safetensors"))
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg[key] = value
	data, err = json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(out, "config.json"), string(data))
	return out
}

// TestLlamaCppFamilies: Qwen2 (GQA, q/k/v biases, tied, rope_theta 1e6), Mistral and Llama-3.2
// (tied, llama3 rope scaling: rope_freqs) — dense, block-pruned in one layer (non-uniform: deci)
// and, for Qwen2, pruned alike in every layer (heads·head_dim no longer hidden_size: deci, since
// llama.cpp's qwen2 sizes attention [hidden, hidden]) — converted to F32 GGUF: llama.cpp's greedy
// ids equal `llmpruner generate`'s and its logits llmpruner's within 1e-5 relative; Qwen2 and the
// block-pruned Llama-3.2 also as F16 and Q8_0 (measured error and greedy agreement logged; loose
// bounds, as for stories260K). Mistral's
// fixture has a 6-token sliding window, which llama.cpp's llama graph lacks: it is checked within
// the window, and a copy whose window covers the context over 40 tokens.
func TestLlamaCppFamilies(t *testing.T) {
	llamaCpp(t, 1)
	dir := t.TempDir()
	qwen2, llama32 := familyFixture(t, "qwen2_tiny"), familyFixture(t, "llama32_tiny")
	mistral := familyFixture(t, "mistral_tiny")
	mistral64 := withConfig(t, mistral, filepath.Join(dir, "mistral64"), "sliding_window", 64)
	prune := func(name, model, layers string) string {
		out := filepath.Join(dir, name)
		mustSucceed(t, "prune", "--model", model, "--out", out, "--strategy", "block", "--ratio", "0.5",
			"--attn-layers", layers, "--mlp-layers", layers, "--criterion", "l2")
		return out
	}
	const n = 40
	llama32Block := prune("llama32-block", llama32, "1:2")
	cases := []struct {
		name, dir, arch string
		n               int // greedy tokens after the first
		typ             checkpoint.GGUFType
	}{
		{"qwen2", qwen2, "qwen2", n, checkpoint.GGUFF32},
		{"qwen2 block", prune("qwen2-block", qwen2, "1:2"), "deci", n, checkpoint.GGUFF32},
		{"qwen2 every layer", prune("qwen2-all", qwen2, "0:2"), "deci", n, checkpoint.GGUFF32},
		{"mistral", mistral64, "llama", n, checkpoint.GGUFF32},
		{"mistral block", prune("mistral-block", mistral64, "1:2"), "deci", n, checkpoint.GGUFF32},
		{"mistral window 6", mistral, "llama", 5, checkpoint.GGUFF32},
		{"llama3.2", llama32, "llama", n, checkpoint.GGUFF32},
		{"llama3.2 block", llama32Block, "deci", n, checkpoint.GGUFF32},
		{"qwen2", qwen2, "qwen2", n, checkpoint.GGUFF16},
		{"qwen2", qwen2, "qwen2", n, checkpoint.GGUFQ8_0},
		{"llama3.2 block", llama32Block, "deci", n, checkpoint.GGUFQ8_0},
	}
	var runs []llamacpp.Run
	want := make([][]int, len(cases))
	for i, c := range cases {
		// The fixtures have no tokenizer; llama.cpp needs one to load a file: a placeholder
		// vocabulary of the model's size (the checks use ids only).
		out := filepath.Join(dir, fmt.Sprintf("%d.gguf", i))
		m := loadModel(t, c.dir, "")
		info, err := m.SaveGGUF(out, checkpoint.GGUFOptions{Vocab: idVocab(m.Config), Type: c.typ})
		if err != nil {
			t.Fatalf("%s: %+v", c.name, err)
		}
		if info.Arch != c.arch {
			t.Errorf("%s: architecture %q, want %s", c.name, info.Arch, c.arch)
		}
		if (c.name == "mistral window 6") != (len(info.Notes) == 1) {
			t.Errorf("%s: notes %q", c.name, info.Notes)
		}
		want[i] = generateIDs(t, c.dir, c.n)
		seq := append([]int{1}, want[i]...)
		runs = append(runs, llamacpp.Run{Model: out, Context: 64, Tasks: []llamacpp.Task{llamacpp.Greedy([]int{1}, c.n), llamacpp.Logits(seq)}})
	}
	res := runLlamaCpp(t, runs...)
	for i, c := range cases {
		got := res[i][0].IDs
		if c.typ == checkpoint.GGUFF32 && !slices.Equal(got, want[i]) {
			t.Errorf("%s: llama.cpp greedy %v\nllmpruner generate %v", c.name, got, want[i])
		}
		logits, err := loadModel(t, c.dir, "").Logits([][]int{append([]int{1}, want[i]...)})
		if err != nil {
			t.Fatal(err)
		}
		e := logitsError(t, res[i][1].Logits, logits[0])
		t.Logf("%-17s %-5s %-4s: %d of %d greedy tokens equal; logits max error %.2e relative", c.name, c.arch, c.typ, agreement(got, want[i]), c.n, e)
		bound := map[checkpoint.GGUFType]float64{checkpoint.GGUFF32: 1e-5, checkpoint.GGUFF16: 5e-3, checkpoint.GGUFQ8_0: 5e-2}[c.typ]
		if e > bound {
			t.Errorf("%s %s: logits differ by %.2e relative (bound %.0e)", c.name, c.typ, e, bound)
		}
	}
}

// idVocab is a SentencePiece-style vocabulary of c.Vocab pieces for the fixtures, which have no
// tokenizer (node-llama-cpp tokenizes a few strings when it loads a model; the checks use ids
// only): <unk>, c's BOS and EOS, the newline and tab bytes, one piece per printable ASCII
// character, placeholders after them.
func idVocab(c *config.Config) *tokenizer.GGUFVocab {
	v := &tokenizer.GGUFVocab{Model: "llama", Pre: "default", BOS: c.BOS, EOS: -1, UNK: 0, PAD: -1, AddSpacePrefix: true}
	if len(c.EOS) > 0 {
		v.EOS = c.EOS[0]
	}
	pieces := []string{"<0x0A>", "<0x09>"}
	for ch := ' '; ch <= '~'; ch++ {
		pieces = append(pieces, strings.ReplaceAll(string(ch), " ", "▁"))
	}
	for id := range c.Vocab {
		piece, typ := fmt.Sprintf("▁t%d", id), int32(tokenizer.GGUFTokenNormal)
		switch {
		case id == 0:
			piece, typ = "<unk>", tokenizer.GGUFTokenUnknown
		case id == v.BOS:
			piece, typ = "<s>", tokenizer.GGUFTokenControl
		case id == v.EOS:
			piece, typ = "</s>", tokenizer.GGUFTokenControl
		case len(pieces) > 0:
			piece, pieces = pieces[0], pieces[1:]
			if strings.HasPrefix(piece, "<0x") {
				typ = tokenizer.GGUFTokenByte
			}
		}
		v.Tokens, v.Types, v.Scores = append(v.Tokens, piece), append(v.Types, typ), append(v.Scores, -float32(id))
	}
	return v
}

// TestLlamaCppTokenizerJSON: tiny random Qwen2 and LLaMA models with the Qwen2 and LLaMA-3
// tokenizer.json (rebuilt from llama.cpp's reference vocabularies, internal/ggufvocab) written as
// GGUF: llama.cpp tokenizes llmpruner's test strings (and two chat-formatted ones) as llmpruner
// and llama.cpp's test strings into Hugging Face's ids; the Qwen2 file read back by llmpruner
// tokenizes them alike. Strings holding added tokens ("<|…|>") are tokenized by llama.cpp with
// parse_special, which matches them as Hugging Face does; the others without, because llama.cpp
// also makes control tokens of normal vocabulary entries that look like end-of-generation markers
// (Qwen2's "</s>", src/llama-vocab.cpp), which Hugging Face reads as text.
func TestLlamaCppTokenizerJSON(t *testing.T) {
	llamaCpp(t, 1)
	dir := t.TempDir()
	type tcase struct {
		vocab  string
		family config.Arch
		tok    tokenizer.Tokenizer
		path   string
		texts  []string
		hf     [][]int
	}
	var cases []*tcase
	var runs []llamacpp.Run
	for _, c := range []struct {
		vocab  string
		family config.Arch
	}{{"qwen2", arch.Qwen2}, {"llama-bpe", arch.Llama}} {
		ref, err := ggufvocab.Read(dataPath(t, "tokenizers/llamacpp-vocab/ggml-vocab-"+c.vocab+".gguf"))
		if err != nil {
			t.Fatal(err)
		}
		tj, err := ref.TokenizerJSON()
		if err != nil {
			t.Fatal(err)
		}
		tc, err := ref.TokenizerConfigJSON()
		if err != nil {
			t.Fatal(err)
		}
		tokDir := filepath.Join(dir, c.vocab)
		if err := os.MkdirAll(tokDir, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(tokDir, "tokenizer.json"), string(tj))
		writeFile(t, filepath.Join(tokDir, "tokenizer_config.json"), string(tc))
		tok, _, err := tokenizer.Load(tokDir)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := tokenizer.Underlying(tok).(*tokenizer.HFBPE); !ok {
			t.Fatalf("%s: loaded %T", c.vocab, tokenizer.Underlying(tok))
		}
		path := filepath.Join(dir, c.vocab+".gguf")
		cfg := &config.Config{Arch: c.family, Hidden: 16, Vocab: len(ref.Tokens), HeadDim: 8, Heads: []int{2}, KVHeads: []int{2},
			Inter: []int{32}, RMSNormEps: 1e-6, RopeTheta: 1e6, MaxPositions: 256, TieEmbed: true, BOS: tok.BOS(), EOS: []int{tok.EOS()}}
		if c.family == arch.Qwen2 {
			cfg.AttnBias, cfg.QKVBiasOnly = true, true
		}
		v, err := tokenizer.GGUFVocabOf(tok)
		if err != nil {
			t.Fatal(err)
		}
		writeRandomModel(t, path, cfg, v)
		texts, hf := vocabTestStrings(t, "ggml-vocab-"+c.vocab+".gguf")
		cases = append(cases, &tcase{c.vocab, c.family, tok, path, texts, hf})
		runs = append(runs, llamacpp.Run{Model: path, Tasks: []llamacpp.Task{llamacpp.Tokenize(familyTexts),
			llamacpp.TokenizeSpecial(familyTexts), llamacpp.Tokenize(texts)}})
	}
	out := runLlamaCpp(t, runs...)
	for i, c := range cases {
		back := loadModel(t, c.path, "").Tokenizer
		for j, text := range familyTexts {
			want, err := c.tok.Encode(text)
			if err != nil {
				t.Fatal(err)
			}
			got := out[i][0].Tokens[j]
			if strings.Contains(text, "<|") {
				got = out[i][1].Tokens[j]
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s %q: llama.cpp %v, llmpruner %v", c.vocab, text, got, want)
			}
			if c.family == arch.Qwen2 {
				if got, err := back.Encode(text); err != nil || !slices.Equal(got, want) {
					t.Errorf("%s %q: read back from GGUF %v (%v), tokenizer.json %v", c.vocab, text, got, err, want)
				}
			}
		}
		for j, text := range c.texts {
			if got := out[i][2].Tokens[j]; !slices.Equal(got, c.hf[j]) {
				t.Errorf("%s %q: llama.cpp %v, Hugging Face %v", c.vocab, text, got, c.hf[j])
			}
		}
		t.Logf("%s: %d strings as llmpruner, %d of llama.cpp's test strings as Hugging Face", c.vocab, len(familyTexts), len(c.texts))
	}
}

// familyTexts are tokenizerTexts and chat-formatted strings with Qwen2's and LLaMA-3's added tokens.
var familyTexts = append(slices.Clone(tokenizerTexts), "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
	"<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>")

// TestConvertGGUFFamilies: Qwen2 (dense: llama.cpp's qwen2, q/k rows as Hugging Face stores them;
// block-pruned: deci, q/k rows and biases in pairs) and Mistral (llama) to GGUF and back to a
// Hugging Face directory: every float32 tensor bit for bit, the family kept for Qwen2 (read from
// qwen2, or from deci with q/k/v biases and no o_proj bias), and the GGUF file scores as the source
// (Mistral within its 6-token window: GGUF has no window, so it reads back as a LLaMA).
func TestConvertGGUFFamilies(t *testing.T) {
	dir := t.TempDir()
	qwen2 := familyFixture(t, "qwen2_tiny")
	block := filepath.Join(dir, "qwen2-block")
	mustSucceed(t, "prune", "--model", qwen2, "--out", block, "--strategy", "block", "--ratio", "0.5",
		"--attn-layers", "1:2", "--mlp-layers", "1:2", "--criterion", "l2")
	long := writeFile(t, filepath.Join(dir, "long.jsonl"), `{"ids":[1,17,42,99,3,140,8,66,12]}`+"\n")
	short := writeFile(t, filepath.Join(dir, "short.jsonl"), `{"ids":[1,17,42,99,3,140]}`+"\n")
	for _, c := range []struct{ name, dir, arch, family, input string }{
		{"qwen2", qwen2, "qwen2", "qwen2", long}, {"qwen2 block", block, "deci", "qwen2", long},
		{"mistral", familyFixture(t, "mistral_tiny"), "llama", "llama", short},
	} {
		gguf := filepath.Join(dir, filepath.Base(c.dir)+".gguf")
		res := mustSucceed(t, "convert", "--model", c.dir, "--out", gguf, "--json")
		var info struct {
			Arch string `json:"arch"`
		}
		if err := json.Unmarshal([]byte(res.stdout), &info); err != nil || info.Arch != c.arch {
			t.Errorf("%s: architecture %q, want %s (%v)", c.name, info.Arch, c.arch, err)
		}
		back := gguf + ".hf"
		mustSucceed(t, "convert", "--model", gguf, "--out", back, "--format", "hf")
		want, got := readAllTensors(t, c.dir), readAllTensors(t, back)
		if len(got) != len(want) {
			t.Errorf("%s: %d tensors after GGUF → HF, want %d", c.name, len(got), len(want))
		}
		for k, w := range want {
			if g, ok := got[k]; !ok || !slices.Equal(g, w) {
				t.Errorf("%s: tensor %s differs after → GGUF → HF", c.name, k)
			}
		}
		cfg, err := arch.LoadConfig(filepath.Join(back, "config.json"))
		if err != nil || string(cfg.Arch) != c.family {
			t.Errorf("%s: read back as %v (%v), want %s", c.name, cfg, err, c.family)
		}
		a := mustSucceed(t, "score", "--model", c.dir, "--input", c.input, "--logits")
		b := mustSucceed(t, "score", "--model", gguf, "--input", c.input, "--logits")
		if a.stdout != b.stdout {
			t.Errorf("%s: scores differ after conversion to GGUF:\nsource: %.300s\nGGUF:   %.300s", c.name, a.stdout, b.stdout)
		}
	}
}

// TestLlamaCppLlama3RopeFreqs: a random Llama-3.x-shaped model (head_dim 64, rope_theta 5e5,
// llama3 scaling factor 32, original context 8192, as Llama-3.2) written as GGUF carries only
// llama.cpp's rope_freqs; read back, its rope_scaling is recovered exactly, the Hugging Face
// directory converted from it has the same tensors bit for bit, and its logits equal llama.cpp's
// on the GGUF file.
func TestLlamaCppLlama3RopeFreqs(t *testing.T) {
	llamaCpp(t, 1)
	dir := t.TempDir()
	rs := &config.RopeScaling{RopeType: "llama3", Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192}
	cfg := &config.Config{Arch: arch.Llama, Hidden: 128, Vocab: 300, HeadDim: 64, Heads: []int{2, 2}, KVHeads: []int{1, 1},
		Inter: []int{64, 96}, RMSNormEps: 1e-5, RopeTheta: 500000, RopeScaling: rs, MaxPositions: 256, TieEmbed: true, BOS: 1, EOS: []int{2}}
	gguf := filepath.Join(dir, "l3.gguf")
	// Weights large enough for peaked attention, so that the rotation angles show in the logits.
	writeRandomModelStd(t, gguf, cfg, idVocab(cfg), 0.3)
	hf := filepath.Join(dir, "hf")
	mustSucceed(t, "convert", "--model", gguf, "--out", hf, "--format", "hf")
	back, err := arch.LoadConfig(filepath.Join(hf, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if back.RopeScaling == nil || *back.RopeScaling != *rs {
		t.Errorf("rope_scaling read back as %+v, want %+v", back.RopeScaling, *rs)
	}
	want, got := readAllTensors(t, gguf), readAllTensors(t, hf)
	for k, w := range want {
		if g, ok := got[k]; !ok || !slices.Equal(g, w) {
			t.Errorf("tensor %s differs after GGUF → HF", k)
		}
	}
	ids := []int{1} // 160 positions: the scaled low frequencies turn visibly
	for i := range 159 {
		ids = append(ids, 3+(i*37)%290)
	}
	out := runLlamaCpp(t, llamacpp.Run{Model: gguf, Tasks: []llamacpp.Task{llamacpp.Logits(ids)}})
	logits, err := loadModel(t, hf, "").Logits([][]int{ids})
	if err != nil {
		t.Fatal(err)
	}
	e := logitsError(t, out[0][0].Logits, logits[0])
	t.Logf("llama3 rope_freqs read back: logits max error %.2e relative to llama.cpp", e)
	if e > 1e-5 {
		t.Errorf("logits differ from llama.cpp's by %.2e relative", e)
	}
}
