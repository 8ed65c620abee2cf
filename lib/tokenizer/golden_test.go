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
