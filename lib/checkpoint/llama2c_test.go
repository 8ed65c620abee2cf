package checkpoint

import (
	"math"
	"strings"
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

// TestLlama2CFormats reads llama2.c files of versions 0, 1 and 2 (Q8_0), tied and untied, written
// by scripts/checkpoint_fixtures.py, and compares with the HF-layout tensors torch computed.
func TestLlama2CFormats(t *testing.T) {
	expected := loadExpected(t)
	for _, name := range []string{"l2c_v0_tied.bin", "l2c_v0_untied.bin", "l2c_v1_tied.bin", "l2c_v1_untied.bin", "l2c_v2_tied.bin", "l2c_v2_untied.bin"} {
		t.Run(name, func(t *testing.T) {
			if f, err := DetectFormat("testdata/" + name); err != nil || f != FormatLlama2C {
				t.Fatalf("DetectFormat = %q, %v", f, err)
			}
			cfg, r, err := LoadLlama2C("testdata/" + name)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			tied := !strings.Contains(name, "untied")
			if cfg.Hidden != 8 || cfg.NumLayers() != 2 || cfg.Heads[1] != 2 || cfg.KVHeads[1] != 1 || cfg.Inter[0] != 12 ||
				cfg.Vocab != 10 || cfg.HeadDim != 4 || cfg.MaxPositions != 4 || cfg.TieEmbed != tied || cfg.BOS != 1 || cfg.EOS[0] != 2 {
				t.Errorf("config %s (max pos %d)", cfg, cfg.MaxPositions)
			}
			checkAgainst(t, r, expected[name])
		})
	}
}
