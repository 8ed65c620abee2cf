package models

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/lib/internal/testdata"
)

// stories260KGolden is golden/stories260K_greedy.json.
type stories260KGolden struct {
	GreedyIDsAfterBOS []int `json:"greedy_ids_after_bos_64"`
}

// TestGenerateStories260K: greedy decoding from BOS reproduces llama2.c's run.c ids, from the
// llama2.c .bin and from the golden HF conversion.
func TestGenerateStories260K(t *testing.T) {
	var gold stories260KGolden
	readJSON(t, testdata.GoldenPath(t, "stories260K_greedy.json"), &gold)
	for _, path := range []string{
		testdata.Path(t, "models/stories260K/stories260K.bin"),
		testdata.GoldenPath(t, "stories260K-hf"),
	} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			m := mustLoad(t, path, LoadOptions{})
			var streamed []int
			got, err := m.Generate([]int{1}, GenerateOptions{MaxNewTokens: len(gold.GreedyIDsAfterBOS), OnToken: func(id int) bool {
				streamed = append(streamed, id)
				return true
			}})
			if err != nil {
				t.Fatalf("Generate: %+v", err)
			}
			if !slices.Equal(got, gold.GreedyIDsAfterBOS) {
				t.Errorf("greedy ids\n got %v\nwant %v", got, gold.GreedyIDsAfterBOS)
			}
			if !slices.Equal(streamed, got) {
				t.Errorf("streamed %v, returned %v", streamed, got)
			}
		})
	}
}

// TestGenerateTinyRandomLlama: the third-party checkpoint's README ids from prompt [1, 2, 3].
func TestGenerateTinyRandomLlama(t *testing.T) {
	m := mustLoad(t, testdata.Path(t, "models/tiny-random-llama"), LoadOptions{})
	want := []int{18568, 1727, 8705, 3598, 27426, 4496, 998, 16911}
	got, err := m.Generate([]int{1, 2, 3}, GenerateOptions{MaxNewTokens: len(want)})
	if err != nil {
		t.Fatalf("Generate: %+v", err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("greedy ids %v, want %v", got, want)
	}
}

// TestGenerateMatchesPyTorchGreedy: cached decoding reproduces PyTorch's full-recompute greedy
// continuation of the golden tiny-llama-mha sequence.
func TestGenerateMatchesPyTorchGreedy(t *testing.T) {
	gold := loadForwardGolden(t).Results["seq8"]
	m := mustLoad(t, testdata.GoldenPath(t, "tiny-llama-mha"), LoadOptions{})
	got, err := m.Generate(gold.InputIDs, GenerateOptions{MaxNewTokens: len(gold.Greedy32), IgnoreEOS: true})
	if err != nil {
		t.Fatalf("Generate: %+v", err)
	}
	if !slices.Equal(got, gold.Greedy32) {
		t.Errorf("greedy ids\n got %v\nwant %v", got, gold.Greedy32)
	}
}

// greedyNoCache decodes by recomputing the whole sequence each step (no KV cache).
func greedyNoCache(t *testing.T, m *Model, prompt []int, n int) []int {
	seq := slices.Clone(prompt)
	for range n {
		logits, err := m.Logits([][]int{seq})
		if err != nil {
			t.Fatalf("Logits: %+v", err)
		}
		seq = append(seq, sample(logits[0][len(seq)-1], GenerateOptions{}, nil))
	}
	return seq[len(prompt):]
}

// TestGenerateCacheEqualsNoCache: KV-cache greedy decoding equals full recomputation, for a
// multi-token prompt on a GQA model.
func TestGenerateCacheEqualsNoCache(t *testing.T) {
	m := mustLoad(t, testdata.Path(t, "models/stories260K/stories260K.bin"), LoadOptions{})
	prompt := []int{1, 403, 407, 261, 378, 432, 383}
	want := greedyNoCache(t, m, prompt, 20)
	got, err := m.Generate(prompt, GenerateOptions{MaxNewTokens: 20, IgnoreEOS: true})
	if err != nil {
		t.Fatalf("Generate: %+v", err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("cached %v\nno-cache %v", got, want)
	}
}

// TestGenerateSampling: seeded sampling is deterministic, differs across seeds, and top-k 1 is
// greedy.
func TestGenerateSampling(t *testing.T) {
	m := mustLoad(t, testdata.Path(t, "models/stories260K/stories260K.bin"), LoadOptions{})
	gen := func(o GenerateOptions) []int {
		o.MaxNewTokens = 30
		out, err := m.Generate([]int{1}, o)
		if err != nil {
			t.Fatalf("Generate: %+v", err)
		}
		return out
	}
	a := gen(GenerateOptions{Temperature: 1, TopP: 0.9, Seed: 7})
	b := gen(GenerateOptions{Temperature: 1, TopP: 0.9, Seed: 7})
	c := gen(GenerateOptions{Temperature: 1, TopP: 0.9, Seed: 8})
	if !slices.Equal(a, b) {
		t.Errorf("same seed gave different tokens:\n%v\n%v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 7 and 8 gave identical samples %v", a)
	}
	greedy := gen(GenerateOptions{})
	if k1 := gen(GenerateOptions{Temperature: 0.8, TopK: 1, Seed: 3}); !slices.Equal(k1, greedy) {
		t.Errorf("top-k 1 %v differs from greedy %v", k1, greedy)
	}
	stopped := 0
	if _, err := m.Generate([]int{1}, GenerateOptions{MaxNewTokens: 10, OnToken: func(int) bool { stopped++; return stopped < 3 }}); err != nil || stopped != 3 {
		t.Errorf("OnToken returning false should stop after 3 tokens, got %d (err %v)", stopped, err)
	}
}

// TestTokenizerAttached: the tokenizer found beside each model encodes/decodes consistently with
// the stories260K golden ids and text; a model without tokenizer files still loads.
func TestTokenizerAttached(t *testing.T) {
	var gold struct {
		IDs  []int  `json:"greedy_ids_after_bos_64"`
		Text string `json:"published_greedy_text"`
	}
	readJSON(t, testdata.GoldenPath(t, "stories260K_greedy.json"), &gold)
	m := mustLoad(t, testdata.Path(t, "models/stories260K/stories260K.bin"), LoadOptions{})
	if m.Tokenizer == nil {
		t.Fatalf("no tokenizer attached: %v", m.TokenizerErr)
	}
	ids, err := m.Tokenizer.Encode("Once upon a time, there was a little girl named Lily.")
	if err != nil || !slices.Equal(ids, gold.IDs[:15]) {
		t.Errorf("Encode = %v (err %v), want %v", ids, err, gold.IDs[:15])
	}
	text := strings.TrimSpace(m.Tokenizer.Decode(gold.IDs))
	if !strings.HasPrefix(gold.Text, text) || len(text) < 150 {
		t.Errorf("decoded greedy ids %q are not a prefix of the published text", text)
	}
	hf := mustLoad(t, testdata.GoldenPath(t, "tiny-llama-mha"), LoadOptions{})
	if hf.Tokenizer == nil || hf.Tokenizer.VocabSize() != 32000 || !slices.Contains(hf.EOSTokens(), 2) {
		t.Errorf("tiny-llama-mha tokenizer %v (err %v), EOS %v", hf.Tokenizer, hf.TokenizerErr, hf.EOSTokens())
	}
	bare := mustLoad(t, testdata.Path(t, "models/tiny-random-llama"), LoadOptions{})
	if bare.Tokenizer != nil || bare.TokenizerErr == nil {
		t.Errorf("tiny-random-llama has no tokenizer files, got %v / %v", bare.Tokenizer, bare.TokenizerErr)
	}
	withOverride := mustLoad(t, testdata.Path(t, "models/tiny-random-llama"), LoadOptions{Tokenizer: testdata.Path(t, "tokenizers/llama2/tokenizer.model")})
	if withOverride.Tokenizer == nil || withOverride.Tokenizer.BOS() != 1 {
		t.Errorf("override tokenizer not attached")
	}
}
