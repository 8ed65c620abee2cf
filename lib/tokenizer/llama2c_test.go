package tokenizer

import (
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/lib/internal/testdata"
)

// The stories260K acceptance check: tok512.bin encodes the start of the author's published greedy
// story to the first ids of run.c's greedy run, and decoding run.c's 64 greedy ids gives a prefix
// of the published text.
func TestLlama2CTok512Stories260K(t *testing.T) {
	var g stories260KGolden
	readJSON(t, testdata.GoldenPath(t, "stories260K_greedy.json"), &g)
	tok, err := LoadLlama2C(testdata.Path(t, "models/stories260K/tok512.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != 512 {
		t.Fatalf("VocabSize = %d, want 512", tok.VocabSize())
	}
	const sentence = "Once upon a time, there was a little girl named Lily."
	if !strings.HasPrefix(g.Text, sentence) {
		t.Fatalf("golden text does not start with %q", sentence)
	}
	ids, err := tok.Encode(sentence)
	if err != nil {
		t.Fatal(err)
	}
	if !equalInts(ids, g.GreedyIDs[:15]) {
		t.Errorf("Encode(%q) = %v, want %v", sentence, ids, g.GreedyIDs[:15])
	}
	text := tok.Decode(append([]int{1}, g.GreedyIDs...))
	if len(text) < 150 || !strings.HasPrefix(g.Text, text) {
		t.Errorf("Decode(greedy ids) = %q, not a prefix of the published text %q", text, g.Text)
	}
	back, err := tok.Encode(text)
	if err != nil || tok.Decode(back) != text {
		t.Errorf("Decode(Encode(%q)) = %q, %v", text, tok.Decode(back), err)
	}
}

// The llama2.c export of the LLaMA-2 tokenizer (tokenizer.bin) against the SentencePiece golden
// cases. run.c's algorithm (dummy " " token, one token per character with byte fallback, best-score
// merges) is SentencePiece's BPE on the same scores, so all ten golden cases agree, ids and decoded
// text alike: the empty string, the fullwidth/circled characters (byte fallback), leading, trailing,
// repeated and internal space runs ("   " → one 4-space token), "a" and the newline (<0x0A>).
// It also agrees with the SentencePiece library on the extra strings of llama2_sp_reference.json
// and on all of WikiText-2 test, except where the text holds a literal "▁" (U+2581): the export
// turned that piece into " ", so run.c byte-encodes the character where SentencePiece sees a space.
func TestLlama2CTokenizerBinLlama2Golden(t *testing.T) {
	g := loadLlama2Golden(t)
	tok, err := LoadLlama2C(testdata.Path(t, "tokenizers/llama2/tokenizer.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != 32000 {
		t.Fatalf("VocabSize = %d, want 32000", tok.VocabSize())
	}
	for _, c := range g.Cases {
		ids, err := tok.Encode(c.Input)
		if err != nil {
			t.Fatalf("%q: %v", c.Input, err)
		}
		if !equalInts(ids, c.IDsNoBOS) {
			t.Errorf("Encode(%q) = %v, want %v", c.Input, ids, c.IDsNoBOS)
		}
		if got := tok.Decode(c.IDsWithBOS); got != c.Decoded {
			t.Errorf("Decode(%v) = %q, want %q", c.IDsWithBOS, got, c.Decoded)
		}
	}
	var ref spReference
	readJSON(t, "testdata/llama2_sp_reference.json", &ref)
	for _, c := range ref.Cases {
		ids, err := tok.Encode(c.Input)
		if err != nil {
			t.Fatal(err)
		}
		if literalSpace := strings.Contains(c.Input, spSpace); equalInts(ids, c.IDs) == literalSpace {
			t.Errorf("Encode(%q) = %v, SentencePiece %v (literal ▁: %v)", c.Input, ids, c.IDs, literalSpace)
		}
	}
	if testing.Short() {
		return
	}
	checkWikiText(t, tok, ref.Wiki, false)
}
