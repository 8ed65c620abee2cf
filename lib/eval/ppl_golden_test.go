package eval

import (
	"encoding/json"
	"math"
	"os"
	"testing"
	"unicode/utf8"

	"github.com/llmpruner/llmpruner/lib/data"
	"github.com/llmpruner/llmpruner/lib/internal/testdata"
	"github.com/llmpruner/llmpruner/lib/models"
)

// pplGolden is testdata/ppl_golden.json, written by testdata/make_ppl_golden.py: PyTorch running
// LLM-Pruner's perplexity loop on the tiny random LLaMA of $LLMPRUNER_GOLDEN/tiny-llama-mha.
type pplGolden struct {
	Cases []struct {
		Set         string
		PrefixBytes int `json:"prefix_bytes"`
		SeqLen      int `json:"seq_len"`
		Windows     int
		Predicted   int
		NLL         float64
		PPL         float64
	}
}

// textPrefix cuts s to at most n bytes at a character boundary.
func textPrefix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func TestPerplexityMatchesPyTorchGolden(t *testing.T) {
	raw, err := os.ReadFile("testdata/ppl_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden pplGolden
	if err := json.Unmarshal(raw, &golden); err != nil {
		t.Fatal(err)
	}
	m, err := models.Load(pplTestBackend(t), testdata.GoldenPath(t, "tiny-llama-mha"), models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	texts := map[string]string{}
	for name, spec := range map[string]string{"wikitext2": "wikitext2", "ptb": "ptb"} {
		set, err := data.ParseTextSet(spec, testdata.DataDir(t))
		if err != nil {
			t.Fatal(err)
		}
		if texts[name], err = set.Read(); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range golden.Cases {
		res, err := Perplexity(m, m.Tokenizer, textPrefix(texts[c.Set], c.PrefixBytes), PPLOptions{SeqLen: c.SeqLen})
		if err != nil {
			t.Fatal(err)
		}
		if res.Windows != c.Windows || res.Tokens != c.Predicted || math.Abs(res.NLL-c.NLL) > 1e-5 ||
			math.Abs(res.PPL-c.PPL)/c.PPL > 1e-5 {
			t.Errorf("%s seq-len %d: %+v, PyTorch: %d windows, %d tokens, NLL %.7f, PPL %.3f",
				c.Set, c.SeqLen, res, c.Windows, c.Predicted, c.NLL, c.PPL)
		}
	}
}
