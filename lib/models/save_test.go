package models

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/llmpruner/llmpruner/lib/internal/testdata"
)

// TestConvertLlama2CRoundTrip: llama2.c → HF directory → load gives identical logits and the
// same greedy tokens (what `llmpruner convert` does).
func TestConvertLlama2CRoundTrip(t *testing.T) {
	src := mustLoad(t, testdata.Path(t, "models/stories260K/stories260K.bin"), LoadOptions{})
	dir := filepath.Join(t.TempDir(), "stories260K-hf")
	if err := src.Save(dir, "f32"); err != nil {
		t.Fatalf("Save: %+v", err)
	}
	dst := mustLoad(t, dir, LoadOptions{})
	if !dst.Config.TieEmbed || !slices.Equal(dst.Config.KVHeads, src.Config.KVHeads) {
		t.Errorf("config changed: %v vs %v", dst.Config, src.Config)
	}
	if src.Tokenizer != nil && dst.Tokenizer == nil {
		t.Error("the tokenizer was not saved with the model")
	}
	seqs := randomSeqs(rand.New(rand.NewPCG(1, 1)), src.Config.Vocab, 33)
	a, err := src.Logits(seqs)
	if err != nil {
		t.Fatal(err)
	}
	b, err := dst.Logits(seqs)
	if err != nil {
		t.Fatal(err)
	}
	for p := range a[0] {
		if !slices.Equal(a[0][p], b[0][p]) {
			t.Fatalf("position %d: logits differ after the round trip (rel err %.2e)", p, relErr(a[0][p], b[0][p]))
		}
	}
}

// TestBF16CheckpointAgreesWithUpcast: the golden model saved as a BF16 safetensors checkpoint
// loads with bf16 weights, and computes what its float32 upcast (saved as F32) computes.
func TestBF16CheckpointAgreesWithUpcast(t *testing.T) {
	m := mustLoad(t, testdata.GoldenPath(t, "tiny-llama-mha"), LoadOptions{})
	bfDir := filepath.Join(t.TempDir(), "bf16")
	if err := m.Save(bfDir, "bf16"); err != nil {
		t.Fatalf("Save bf16: %+v", err)
	}
	bf := mustLoad(t, bfDir, LoadOptions{})
	if dt := bf.Store.GetVariable(VarPath("model.embed_tokens.weight")).DType(); dt != dtypes.BFloat16 {
		t.Fatalf("bf16 checkpoint loaded as %s", dt)
	}
	upDir := filepath.Join(t.TempDir(), "upcast")
	if err := bf.Save(upDir, "f32"); err != nil {
		t.Fatalf("Save f32: %+v", err)
	}
	up := mustLoad(t, upDir, LoadOptions{})
	gold := loadForwardGolden(t).Results["seq8"]
	lb, err := bf.Logits([][]int{gold.InputIDs})
	if err != nil {
		t.Fatal(err)
	}
	lu, err := up.Logits([][]int{gold.InputIDs})
	if err != nil {
		t.Fatal(err)
	}
	for p := range lb[0] {
		if e := relErr(lb[0][p], lu[0][p]); e > 1e-6 {
			t.Errorf("position %d: bf16 vs upcast relative error %.2e", p, e)
		}
	}
	// bf16 rounding moves the logits a little, but not far, from the f32 golden values.
	e := relErr(lb[0][0], gold.LogitsPos0)
	t.Logf("bf16 vs f32 golden logits: rel err %.2e", e)
	if e > 0.05 || math.IsNaN(e) {
		t.Errorf("bf16 logits too far from the f32 golden: %.2e", e)
	}
}
