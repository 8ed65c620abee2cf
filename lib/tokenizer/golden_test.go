package tokenizer

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/llmpruner/llmpruner/lib/internal/testdata"
)

// llama2Golden is ../shared/golden/tokenizer_llama2.json: ids, pieces and decoded text produced
// by the SentencePiece library (0.1.97) with the LLaMA-2 tokenizer.model.
type llama2Golden struct {
	Cases []struct {
		Input      string   `json:"input"`
		IDsNoBOS   []int    `json:"ids_no_bos"`
		IDsWithBOS []int    `json:"ids_with_bos"`
		Pieces     []string `json:"pieces"`
		Decoded    string   `json:"decoded"`
	} `json:"cases"`
}

func loadLlama2Golden(t *testing.T) llama2Golden {
	t.Helper()
	var g llama2Golden
	readJSON(t, testdata.GoldenPath(t, "tokenizer_llama2.json"), &g)
	if len(g.Cases) == 0 {
		t.Fatal("golden tokenizer_llama2.json has no cases")
	}
	return g
}

// stories260KGolden is ../shared/golden/stories260K_greedy.json (llama2.c run.c output).
type stories260KGolden struct {
	GreedyIDs []int  `json:"greedy_ids_after_bos_64"`
	Text      string `json:"published_greedy_text"`
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// wikiRef is a reference tokenizer's encoding of the whole WikiText-2 test text.
type wikiRef struct {
	NumIDs   int    `json:"num_ids"`
	FirstIDs []int  `json:"first_ids"`
	SHA256   string `json:"ids_sha256"`
}

// checkWikiText encodes the WikiText-2 test text as one string (as LLM-Pruner's perplexity does)
// and compares the id count and SHA-256 with want, and the first ids when firstIDs.
func checkWikiText(t *testing.T, tok interface{ Encode(string) ([]int, error) }, want wikiRef, firstIDs bool) {
	t.Helper()
	ids, err := tok.Encode(loadWikiText(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != want.NumIDs || idsSHA256(ids) != want.SHA256 ||
		(firstIDs && (len(ids) < len(want.FirstIDs) || !equalInts(ids[:len(want.FirstIDs)], want.FirstIDs))) {
		t.Errorf("WikiText-2: %d ids (want %d), sha256 %s (want %s)", len(ids), want.NumIDs, idsSHA256(ids), want.SHA256)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
