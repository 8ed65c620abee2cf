package data

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/lib/internal/testdata"
	"github.com/llmpruner/llmpruner/lib/tokenizer"
)

// llama2Golden is testdata/llama2_golden.json, written by testdata/make_llama2_golden.py with the
// SentencePiece library following LLM-Pruner's Python code.
type llama2Golden struct {
	BOS, EOS int
	Eval     map[string]struct {
		Bytes, Tokens int
		Head, Tail    []int
		SHA256IDs     string `json:"sha256_ids"`
	}
	Alpaca []struct {
		Record        int
		Cutoff        int
		TrainOnInputs bool `json:"train_on_inputs"`
		PromptTooLong bool `json:"prompt_too_long"`
		IDs           []int
		Labels        []int
	}
}

func loadLlama2Golden(t *testing.T) (llama2Golden, tokenizer.Tokenizer) {
	t.Helper()
	var g llama2Golden
	raw, err := os.ReadFile("testdata/llama2_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadSentencePiece(testdata.Path(t, "tokenizers/llama2/tokenizer.model"))
	if err != nil {
		t.Fatal(err)
	}
	if tok.BOS() != g.BOS || tok.EOS() != g.EOS {
		t.Fatalf("BOS/EOS %d/%d, golden %d/%d", tok.BOS(), tok.EOS(), g.BOS, g.EOS)
	}
	return g, tok
}

func idsDigest(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	sum := sha256.Sum256([]byte(strings.Join(s, ",")))
	return hex.EncodeToString(sum[:])
}

// The evaluation strings, tokenized once with BOS, give exactly the ids LLM-Pruner feeds its
// perplexity loop (WikiText-2: the well-known 341,469 LLaMA tokens).
func TestEvalTextsLlama2Tokens(t *testing.T) {
	if testing.Short() {
		t.Skip("tokenizes 2 MB of text")
	}
	g, tok := loadLlama2Golden(t)
	for name, read := range map[string]func() (string, error){
		"wikitext2": func() (string, error) { return ReadWikiText2(testdata.Path(t, WikiText2TestFile)) },
		"ptb_valid": func() (string, error) { return ReadPTB(testdata.Path(t, PTBValidFile)) },
		"ptb_test":  func() (string, error) { return ReadPTB(testdata.Path(t, PTBTestFile)) },
	} {
		want := g.Eval[name]
		text, err := read()
		if err != nil {
			t.Fatal(err)
		}
		if len(text) != want.Bytes {
			t.Errorf("%s: %d bytes, golden %d", name, len(text), want.Bytes)
		}
		ids, err := tokenizer.ModelInputs(tok, text)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != want.Tokens || !slices.Equal(ids[:16], want.Head) || !slices.Equal(ids[len(ids)-16:], want.Tail) ||
			idsDigest(ids) != want.SHA256IDs {
			t.Errorf("%s: %d tokens (golden %d), head %v (golden %v), digest equal %v",
				name, len(ids), want.Tokens, ids[:16], want.Head, idsDigest(ids) == want.SHA256IDs)
		}
	}
}

func TestTokenizeAlpacaLlama2Golden(t *testing.T) {
	g, tok := loadLlama2Golden(t)
	recs, err := ReadAlpaca(testdata.Path(t, "text/alpaca/alpaca_cleaned_first5000.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range g.Alpaca {
		name := fmt.Sprintf("record %d cutoff %d trainOnInputs %v", c.Record, c.Cutoff, c.TrainOnInputs)
		ids, labels, err := TokenizeAlpaca(tok, recs[c.Record], c.Cutoff, c.TrainOnInputs)
		if c.PromptTooLong {
			if !errors.Is(err, ErrPromptTooLong) {
				t.Errorf("%s: error %v, want ErrPromptTooLong", name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.Equal(ids, c.IDs) || !slices.Equal(labels, c.Labels) {
			t.Errorf("%s:\nids    %v\ngolden %v\nlabels %v\ngolden %v", name, ids, c.IDs, labels, c.Labels)
		}
	}
}

// Calibration from Alpaca outputs with the real tokenizer: 10 × 64 samples, each a window of a
// distinct output paragraph.
func TestCalibrationSamplesAlpacaOutputs(t *testing.T) {
	_, tok := loadLlama2Golden(t)
	recs, err := ReadAlpaca(testdata.Path(t, "text/alpaca/alpaca_cleaned_first5000.json"))
	if err != nil {
		t.Fatal(err)
	}
	outputs := make([]string, 300)
	for i := range outputs {
		outputs[i] = recs[i].Output
	}
	text := strings.Join(outputs, "\n\n")
	samples, err := CalibrationSamples(tok, text, 10, 64, 42)
	if err != nil {
		t.Fatal(err)
	}
	docs := SplitDocuments(text)
	for i, s := range samples {
		if len(s) != 64 {
			t.Fatalf("sample %d: %d tokens", i, len(s))
		}
		decoded := strings.TrimSpace(tok.Decode(s[1:]))
		found := false
		for _, d := range docs {
			if strings.Contains(d, decoded) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("sample %d %q is not from one document", i, decoded)
		}
	}
}
