package tokenizer

import (
	"os"
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/lib/internal/testdata"
)

func TestSentencePieceLlama2Golden(t *testing.T) {
	g := loadLlama2Golden(t)
	sp, err := LoadSentencePiece(testdata.Path(t, "tokenizers/llama2/tokenizer.model"))
	if err != nil {
		t.Fatal(err)
	}
	if sp.VocabSize() != 32000 || sp.BOS() != 1 || sp.EOS() != 2 {
		t.Fatalf("vocab %d bos %d eos %d, want 32000 1 2", sp.VocabSize(), sp.BOS(), sp.EOS())
	}
	for _, c := range g.Cases {
		ids, err := sp.Encode(c.Input)
		if err != nil {
			t.Fatalf("%q: %v", c.Input, err)
		}
		if !equalInts(ids, c.IDsNoBOS) {
			t.Errorf("Encode(%q) = %v, want %v", c.Input, ids, c.IDsNoBOS)
		}
		withBOS, err := ModelInputs(sp, c.Input)
		if err != nil || !equalInts(withBOS, c.IDsWithBOS) {
			t.Errorf("ModelInputs(%q) = %v, %v; want %v", c.Input, withBOS, err, c.IDsWithBOS)
		}
		for i, id := range c.IDsNoBOS {
			if i < len(c.Pieces) && sp.Piece(id) != c.Pieces[i] {
				t.Errorf("%q: Piece(%d) = %q, want %q", c.Input, id, sp.Piece(id), c.Pieces[i])
			}
		}
		if len(c.Pieces) != len(c.IDsNoBOS) {
			t.Errorf("%q: golden has %d pieces for %d ids", c.Input, len(c.Pieces), len(c.IDsNoBOS))
		}
		if got := sp.Decode(c.IDsWithBOS); got != c.Decoded {
			t.Errorf("Decode(%v) = %q, want %q", c.IDsWithBOS, got, c.Decoded)
		}
	}
}

// spReference is testdata/llama2_sp_reference.json, written by scripts/tokenizer_sp_ref.py with
// the SentencePiece library.
type spReference struct {
	Cases []struct {
		Input   string   `json:"input"`
		IDs     []int    `json:"ids"`
		Pieces  []string `json:"pieces"`
		Decoded string   `json:"decoded"`
	} `json:"cases"`
	Wiki wikiRef `json:"wikitext2_test"`
}

func loadWikiText(t testing.TB) string {
	t.Helper()
	raw, err := os.ReadFile(testdata.Path(t, "text/wikitext2/wikitext2_test_joined_crlf.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(raw), "\r\n", "\n")
}

func TestSentencePieceLlama2Reference(t *testing.T) {
	var ref spReference
	readJSON(t, "testdata/llama2_sp_reference.json", &ref)
	sp, err := LoadSentencePiece(testdata.Path(t, "tokenizers/llama2/tokenizer.model"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ref.Cases {
		ids, err := sp.Encode(c.Input)
		if err != nil {
			t.Fatal(err)
		}
		if !equalInts(ids, c.IDs) {
			t.Errorf("Encode(%q) = %v, want %v", c.Input, ids, c.IDs)
		}
		for i, id := range c.IDs {
			if sp.Piece(id) != c.Pieces[i] {
				t.Errorf("Piece(%d) = %q, want %q", id, sp.Piece(id), c.Pieces[i])
			}
		}
		if got := sp.Decode(c.IDs); got != c.Decoded {
			t.Errorf("Decode(%v) = %q, want %q", c.IDs, got, c.Decoded)
		}
	}
	if testing.Short() {
		return
	}
	// The whole WikiText-2 test text as one string, as LLM-Pruner's perplexity tokenizes it.
	checkWikiText(t, sp, ref.Wiki, true)
}

// Small models trained by scripts/tokenizer_spm_synthetic_ref.py cover what the real files do not:
// BPE without byte fallback (a run of unknown characters is one <unk>), UNUSED pieces re-split,
// no dummy prefix, remove_extra_whitespaces on an identity normalizer, user-defined symbols in BPE
// and unigram, and a unigram model keeping repeated spaces. Expected ids come from the library.
func TestSentencePieceSyntheticModels(t *testing.T) {
	var ref struct {
		Models map[string]struct {
			File      string `json:"file"`
			VocabSize int    `json:"vocab_size"`
			Cases     []struct {
				Input   string   `json:"input"`
				IDs     []int    `json:"ids"`
				Pieces  []string `json:"pieces"`
				Decoded string   `json:"decoded"`
			} `json:"cases"`
		} `json:"models"`
	}
	readJSON(t, "testdata/spm_synthetic_reference.json", &ref)
	if len(ref.Models) != 2 {
		t.Fatalf("want 2 synthetic models, got %d", len(ref.Models))
	}
	for name, m := range ref.Models {
		sp, err := LoadSentencePiece("testdata/" + m.File)
		if err != nil {
			t.Fatal(err)
		}
		if sp.VocabSize() != m.VocabSize {
			t.Errorf("%s: VocabSize %d, want %d", name, sp.VocabSize(), m.VocabSize)
		}
		for _, c := range m.Cases {
			ids, err := sp.Encode(c.Input)
			if err != nil {
				t.Fatal(err)
			}
			if !equalInts(ids, c.IDs) {
				t.Errorf("%s: Encode(%q) = %v, want %v", name, c.Input, ids, c.IDs)
				continue
			}
			for i, id := range ids {
				if sp.Piece(id) != c.Pieces[i] {
					t.Errorf("%s: Piece(%d) = %q, want %q", name, id, sp.Piece(id), c.Pieces[i])
				}
			}
			if got := sp.Decode(ids); got != c.Decoded {
				t.Errorf("%s: Decode(%v) = %q, want %q", name, ids, got, c.Decoded)
			}
		}
	}
}
