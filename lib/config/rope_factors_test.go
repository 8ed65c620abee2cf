package config

import (
	"strings"
	"testing"
)

// TestLlama3FromRopeFactors: the rope_freqs of Llama-3.1-8B's and Llama-3.2-1B's rope scaling
// give their parameters back; factors that no llama3 scaling gives, or too few frequencies between
// the bands, are refused in one line.
func TestLlama3FromRopeFactors(t *testing.T) {
	for _, c := range []struct {
		hd     int
		factor float64
	}{{128, 8}, {64, 32}} {
		want := &RopeScaling{RopeType: "llama3", Factor: c.factor, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192}
		cfg := &Config{RopeTheta: 500000, HeadDim: c.hd, RopeScaling: want}
		got, err := Llama3FromRopeFactors(500000, c.hd, cfg.Llama3RopeFactors())
		if err != nil {
			t.Fatalf("head_dim %d: %+v", c.hd, err)
		}
		if *got != *want {
			t.Errorf("head_dim %d: %+v, want %+v", c.hd, *got, *want)
		}
	}
	tiny := &Config{RopeTheta: 500000, HeadDim: 16, RopeScaling: &RopeScaling{RopeType: "llama3", Factor: 32,
		LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 16}}
	good := (&Config{RopeTheta: 500000, HeadDim: 64, RopeScaling: &RopeScaling{RopeType: "llama3", Factor: 32,
		LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192}}).Llama3RopeFactors()
	bent := append([]float32(nil), good...)
	bent[16] *= 1.01
	for name, c := range map[string]struct {
		factors []float32
		hd      int
		want    string
	}{
		"too few between": {tiny.Llama3RopeFactors(), 16, "fewer than 2"},
		"all one":         {make32(32, 1), 64, "all 1"},
		"below one":       {append(make32(31, 1), 0.5), 64, "at least 1"},
		"length":          {good[:10], 64, "needs 32"},
		"not llama3":      {bent, 64, "do not follow llama3"},
	} {
		_, err := Llama3FromRopeFactors(500000, c.hd, c.factors)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line with %q", name, err, c.want)
		}
	}
}

func make32(n int, v float32) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = v
	}
	return out
}
