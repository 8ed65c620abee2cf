package data

import (
	"slices"
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/lib/internal/testdata"
	"github.com/llmpruner/llmpruner/lib/tokenizer"
)

// The prune command's default calibration for stories260K: 10 × 64 tokens of TinyStories text
// with the model's tok512 tokenizer. Each sample decodes to text inside one paragraph, paragraphs
// are distinct, and the draw is reproducible.
func TestCalibrationSamplesTinyStories(t *testing.T) {
	tok, _, err := tokenizer.Load(testdata.Path(t, "models/stories260K/tok512.bin"))
	if err != nil {
		t.Fatal(err)
	}
	text, err := ReadCalibrationText(testdata.Path(t, "text/tinystories/tinystories_val_head.txt"))
	if err != nil {
		t.Fatal(err)
	}
	samples, err := CalibrationSamples(tok, text, 10, 64, 42)
	if err != nil {
		t.Fatal(err)
	}
	docs := SplitDocuments(text)
	used := map[int]bool{}
	for i, s := range samples {
		if len(s) != 64 || slices.Contains(s[1:], tok.BOS()) {
			t.Fatalf("sample %d: %d tokens, BOS inside: %v", i, len(s), s)
		}
		piece := strings.TrimSpace(tok.Decode(s[1:]))
		owner := -1
		for d, doc := range docs {
			if strings.Contains(doc, piece) {
				owner = d
				break
			}
		}
		if owner < 0 || used[owner] {
			t.Errorf("sample %d %q: paragraph %d (already used: %v)", i, piece, owner, used[owner])
		}
		used[owner] = true
	}
	again, err := CalibrationSamples(tok, text, 10, 64, 42)
	if err != nil || !slices.EqualFunc(samples, again, slices.Equal) {
		t.Error("not reproducible for a seed")
	}
}
