package checkpoint

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/lib/internal/testdata"
	"github.com/llmpruner/llmpruner/lib/tokenizer"
)

// readGGUFFile parses a GGUF file's header.
func readGGUFFile(t *testing.T, path string) *ggufFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	g, err := parseGGUF(path, f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// vocabTests reads llama.cpp's tokenizer test strings (NAME.inp, split by
// "\n__ggml_vocab_test__\n") and Hugging Face's ids for them (NAME.out, one line each).
func vocabTests(t *testing.T, name string) ([]string, [][]int) {
	t.Helper()
	inp, err := os.ReadFile(testdata.Path(t, "tokenizers/llamacpp-vocab/"+name+".inp"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(testdata.Path(t, "tokenizers/llamacpp-vocab/"+name+".out"))
	if err != nil {
		t.Fatal(err)
	}
	texts := strings.Split(strings.TrimSuffix(string(inp), "\n__ggml_vocab_test__\n"), "\n__ggml_vocab_test__\n")
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(texts) {
		t.Fatalf("%s: %d strings, %d id lines", name, len(texts), len(lines))
	}
	ids := make([][]int, len(lines))
	for i, l := range lines {
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

// TestGGUFVocabMatchesLlamaCpp: the tokenizer metadata written for the LLaMA-2 SentencePiece
// model and the LLaMA-3 tiktoken file (merges rebuilt from the ranks) equals what llama.cpp's own
// converter wrote into its reference vocabulary files.
func TestGGUFVocabMatchesLlamaCpp(t *testing.T) {
	for _, c := range []struct{ tok, ref string }{
		{"tokenizers/llama2/tokenizer.model", "ggml-vocab-llama-spm.gguf"},
		{"tokenizers/llama3/tokenizer.model", "ggml-vocab-llama-bpe.gguf"},
	} {
		t.Run(c.ref, func(t *testing.T) {
			tok, _, err := tokenizer.Load(testdata.Path(t, c.tok))
			if err != nil {
				t.Fatal(err)
			}
			got, err := tokenizer.GGUFVocabOf(tok)
			if err != nil {
				t.Fatal(err)
			}
			want, err := readGGUFFile(t, testdata.Path(t, "tokenizers/llamacpp-vocab/"+c.ref)).vocab()
			if err != nil {
				t.Fatal(err)
			}
			if got.Model != want.Model || got.Pre != want.Pre {
				t.Errorf("model/pre %s/%s, llama.cpp %s/%s", got.Model, got.Pre, want.Model, want.Pre)
			}
			if !slices.Equal(got.Tokens, want.Tokens) {
				t.Errorf("tokens differ (%d vs %d)", len(got.Tokens), len(want.Tokens))
			}
			if want.Scores != nil && !slices.Equal(got.Scores, want.Scores) {
				t.Errorf("scores differ")
			}
			diff := 0
			for i := range min(len(got.Types), len(want.Types)) {
				if got.Types[i] != want.Types[i] {
					if diff < 5 {
						t.Errorf("token %d %q: type %d, llama.cpp %d", i, got.Tokens[i], got.Types[i], want.Types[i])
					}
					diff++
				}
			}
			if len(got.Merges) != len(want.Merges) || !slices.Equal(got.Merges, want.Merges) {
				t.Errorf("merges differ (%d vs %d)", len(got.Merges), len(want.Merges))
			}
			if got.BOS != want.BOS || got.EOS != want.EOS || got.UNK != want.UNK {
				t.Errorf("bos/eos/unk %d/%d/%d, llama.cpp %d/%d/%d", got.BOS, got.EOS, got.UNK, want.BOS, want.EOS, want.UNK)
			}
		})
	}
}

// TestGGUFVocabTokenizes: the tokenizer built from llama.cpp's reference vocabulary files encodes
// llama.cpp's test strings into Hugging Face's ids.
func TestGGUFVocabTokenizes(t *testing.T) {
	for _, name := range []string{"ggml-vocab-llama-spm.gguf", "ggml-vocab-llama-bpe.gguf"} {
		t.Run(name, func(t *testing.T) {
			v, err := readGGUFFile(t, testdata.Path(t, "tokenizers/llamacpp-vocab/"+name)).vocab()
			if err != nil {
				t.Fatal(err)
			}
			tok, err := tokenizer.FromGGUFVocab(v)
			if err != nil {
				t.Fatal(err)
			}
			texts, want := vocabTests(t, name)
			for i, text := range texts {
				got, err := tok.Encode(text)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, want[i]) {
					t.Errorf("%q: %v, Hugging Face %v", text, got, want[i])
				}
			}
			t.Logf("%d strings", len(texts))
		})
	}
}
