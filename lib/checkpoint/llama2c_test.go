package checkpoint

import (
	"math"
	"testing"

	"github.com/llmpruner/llmpruner/lib/internal/testdata"
)

// TestLlama2CMatchesHFGolden converts stories260K.bin and compares every tensor with the
// independent PyTorch conversion in golden/stories260K-hf.
func TestLlama2CMatchesHFGolden(t *testing.T) {
	bin := testdata.Path(t, "models/stories260K/stories260K.bin")
	golden := testdata.GoldenPath(t, "stories260K-hf/model.safetensors")
	r, err := Open(bin) // detected by content
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cs, ok := r.(ConfigSource)
	if !ok {
		t.Fatal("llama2.c reader does not implement ConfigSource")
	}
	cfg := cs.Config()
	if cfg.Hidden != 64 || cfg.NumLayers() != 5 || cfg.Heads[0] != 8 || cfg.KVHeads[0] != 4 || cfg.Vocab != 512 ||
		cfg.Inter[0] != 172 || cfg.HeadDim != 8 || !cfg.TieEmbed || cfg.MaxPositions != 512 || cfg.RMSNormEps != 1e-5 {
		t.Errorf("config = %s (max pos %d, eps %g)", cfg, cfg.MaxPositions, cfg.RMSNormEps)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
	g, err := Open(golden)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	gi, ri := g.Tensors(), r.Tensors()
	if len(gi) != len(ri) {
		t.Fatalf("%d tensors converted, golden has %d", len(ri), len(gi))
	}
	for i := range gi {
		if gi[i].Name != ri[i].Name {
			t.Fatalf("tensor %d: %q, golden %q", i, ri[i].Name, gi[i].Name)
		}
		a, err := r.Read(ri[i].Name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := g.Read(gi[i].Name)
		if err != nil {
			t.Fatal(err)
		}
		if a.Shape().String() != b.Shape().String() {
			t.Fatalf("%s: shape %s, golden %s", ri[i].Name, a.Shape(), b.Shape())
		}
		av, bv := float64s(t, a), float64s(t, b)
		maxDiff := 0.0
		for j := range av {
			maxDiff = math.Max(maxDiff, math.Abs(av[j]-bv[j]))
		}
		if maxDiff > 1e-7 {
			t.Errorf("%s: max |Δ| %g vs golden", ri[i].Name, maxDiff)
		}
	}
}
