package tokenizer

import (
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
		withBOS, err := EncodeWithBOS(sp, c.Input)
		if err != nil || !equalInts(withBOS, c.IDsWithBOS) {
			t.Errorf("EncodeWithBOS(%q) = %v, %v; want %v", c.Input, withBOS, err, c.IDsWithBOS)
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
