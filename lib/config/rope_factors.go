package config

import (
	"math"

	"github.com/pkg/errors"
)

// Llama3RopeFactors are llama.cpp's rope_freqs for c's "llama3" rope scaling: one divisor per
// inverse frequency [HeadDim/2], plain / scaled (1 for the unscaled high frequencies, the factor
// for the low ones).
func (c *Config) Llama3RopeFactors() []float32 {
	scaled := c.InvFrequencies()
	out := make([]float32, len(scaled))
	for i, s := range scaled {
		plain := 1 / math.Pow(c.RopeTheta, float64(2*i)/float64(c.HeadDim))
		out[i] = float32(plain / s)
	}
	return out
}

// Llama3FromRopeFactors recovers a "llama3" rope_scaling from llama.cpp's rope_freqs (factors,
// [headDim/2]) for rope_theta theta: the largest factor is the scaling factor; between the bands,
// Hugging Face's smooth = (original_max_position_embeddings/wavelength − low_freq_factor) /
// (high_freq_factor − low_freq_factor) is linear in 1/wavelength, fitted on the frequencies
// there (at least two needed). Only the ratios original_max_position_embeddings/low_freq_factor
// and high_freq_factor/low_freq_factor shape the frequencies, so low_freq_factor is taken as 1
// (Meta's value). The result is accepted only when it gives back exactly the same factors.
func Llama3FromRopeFactors(theta float64, headDim int, factors []float32) (*RopeScaling, error) {
	half := headDim / 2
	if len(factors) != half || half == 0 {
		return nil, errors.Errorf("rope_freqs has %d factors, head_dim %d needs %d", len(factors), headDim, half)
	}
	factor := 0.0
	for i, f := range factors {
		if !(f >= 1) || math.IsInf(float64(f), 0) {
			return nil, errors.Errorf("rope_freqs[%d] = %g: llama3 scaling factors are finite and at least 1", i, f)
		}
		factor = max(factor, float64(f))
	}
	if factor == 1 {
		return nil, errors.New("rope_freqs are all 1: no rope scaling (write none)")
	}
	// Least-squares line 1/wavelength = m·smooth + k over the frequencies between the bands.
	var n, sx, sy, sxx, sxy float64
	for i, f := range factors {
		if f == 1 || math.Abs(float64(f)-factor) <= 1e-6*factor {
			continue
		}
		plain := 1 / math.Pow(theta, float64(2*i)/float64(headDim))
		x := (1/float64(f) - 1/factor) / (1 - 1/factor) // smooth
		y := plain / (2 * math.Pi)                      // 1/wavelength
		n, sx, sy, sxx, sxy = n+1, sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	if n < 2 || n*sxx-sx*sx == 0 {
		return nil, errors.Errorf("rope_freqs has %.0f frequencies between the scaled and unscaled bands: the llama3 parameters cannot be recovered from fewer than 2", n)
	}
	m := (n*sxy - sx*sy) / (n*sxx - sx*sx)
	k := (sy - m*sx) / n
	if k <= 0 || m <= 0 {
		return nil, errors.New("rope_freqs do not follow llama3 scaling")
	}
	// k = low/orig, m = (high − low)/orig with low = 1.
	orig := math.Round(1 / k)
	high := math.Round((1+m*orig)*1e4) / 1e4
	r := &RopeScaling{RopeType: "llama3", Factor: math.Round(factor*1e4) / 1e4, LowFreqFactor: 1, HighFreqFactor: high,
		OriginalMaxPositionEmbeddings: int(orig)}
	c := &Config{RopeTheta: theta, HeadDim: headDim, RopeScaling: r}
	for i, f := range c.Llama3RopeFactors() {
		if f != factors[i] {
			return nil, errors.Errorf("rope_freqs do not follow llama3 scaling (closest: factor %g, high_freq_factor %g, original_max_position_embeddings %d; factor %d is %g, not %g)",
				r.Factor, r.HighFreqFactor, r.OriginalMaxPositionEmbeddings, i, factors[i], f)
		}
	}
	return r, nil
}
