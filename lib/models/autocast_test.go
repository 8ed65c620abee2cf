package models

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute/dtypes"
)

// TestMatMulDTypeAutocast: with Hooks.MatMulDType the projections run in half precision: the
// logits move away from float32's (so the setting takes effect) but stay within the rounding a
// bf16/f16 product allows, and the loss within 1%.
func TestMatMulDTypeAutocast(t *testing.T) {
	cfg := nonUniformConfig()
	r := randomWeights(cfg, 21)
	seqs := randomSeqs(rand.New(rand.NewPCG(2, 9)), cfg.Vocab, 12, 7)
	m := modelFromReader(t, cfg, r)
	want, err := m.Logits(seqs)
	if err != nil {
		t.Fatal(err)
	}
	wantLoss, err := m.Loss(seqs)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dt       dtypes.DType
		min, max float64 // bounds of max|Δ|/max|logit|
	}{{dtypes.BFloat16, 1e-4, 3e-2}, {dtypes.Float16, 1e-6, 4e-3}} {
		t.Run(c.dt.String(), func(t *testing.T) {
			mh := modelFromReader(t, cfg, r)
			mh.Hooks = &Hooks{MatMulDType: c.dt}
			got, err := mh.Logits(seqs)
			if err != nil {
				t.Fatalf("Logits: %+v", err)
			}
			var maxDiff, maxRef float64
			for i := range seqs {
				for p := range got[i] {
					for v := range got[i][p] {
						maxDiff = math.Max(maxDiff, math.Abs(float64(got[i][p][v]-want[i][p][v])))
						maxRef = math.Max(maxRef, math.Abs(float64(want[i][p][v])))
					}
				}
			}
			loss, err := mh.Loss(seqs)
			if err != nil {
				t.Fatal(err)
			}
			rel := maxDiff / maxRef
			t.Logf("%s: logits max|Δ|/max|ref| = %.2e, loss %.5f vs float32 %.5f", c.dt, rel, loss, wantLoss)
			if rel < c.min || rel > c.max || math.Abs(loss-wantLoss) > 0.01*wantLoss {
				t.Errorf("%s: logits differ by %.2e (want between %.0e and %.0e), loss %.5f vs %.5f", c.dt, rel, c.min, c.max, loss, wantLoss)
			}
		})
	}
}
