package lora

import "math"

// adamW is PyTorch's AdamW (torch.optim.AdamW, single-tensor path) over the adapter parameters,
// on the host in float32: with t the 1-based step,
//
//	p ← p·(1 − lr·wd);  m ← m + (1−β1)(g − m);  v ← β2·v + (1−β2)·g²
//	p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε)
//
// Only adapter parameters have moments: the base model carries no optimizer state.
type adamW struct {
	beta1, beta2, eps, weightDecay float64
	m, v                           [][]float32 // per parameter, like its values
}

func newAdamW(sizes []int, beta1, beta2, eps, wd float64) *adamW {
	o := &adamW{beta1: beta1, beta2: beta2, eps: eps, weightDecay: wd}
	for _, n := range sizes {
		o.m = append(o.m, make([]float32, n))
		o.v = append(o.v, make([]float32, n))
	}
	return o
}

// stateSize is the number of float32 values of optimizer state.
func (o *adamW) stateSize() int {
	n := 0
	for i := range o.m {
		n += len(o.m[i]) + len(o.v[i])
	}
	return n
}

// update applies step t (1-based) with learning rate lr to params given their gradients.
func (o *adamW) update(params, grads [][]float32, t int, lr float64) {
	decay := float32(1 - lr*o.weightDecay)
	b1, b2 := float32(o.beta1), float32(o.beta2)
	bc1 := 1 - math.Pow(o.beta1, float64(t))
	bc2Sqrt := float32(math.Sqrt(1 - math.Pow(o.beta2, float64(t))))
	stepSize := float32(lr / bc1)
	eps := float32(o.eps)
	for i, p := range params {
		g, m, v := grads[i], o.m[i], o.v[i]
		for j := range p {
			if o.weightDecay != 0 {
				p[j] *= decay
			}
			m[j] += (1 - b1) * (g[j] - m[j])
			v[j] = b2*v[j] + (1-b2)*g[j]*g[j]
			denom := float32(math.Sqrt(float64(v[j])))/bc2Sqrt + eps
			p[j] -= stepSize * m[j] / denom
		}
	}
}

// clipGradNorm is torch.nn.utils.clip_grad_norm_: it scales all gradients by
// min(1, maxNorm/(‖g‖₂ + 1e-6)) and returns the norm before clipping. maxNorm ≤ 0 disables it.
func clipGradNorm(grads [][]float32, maxNorm float64) float64 {
	var sq float64
	for _, g := range grads {
		for _, x := range g {
			sq += float64(x) * float64(x)
		}
	}
	norm := math.Sqrt(sq)
	if maxNorm <= 0 {
		return norm
	}
	coef := maxNorm / (norm + 1e-6)
	if coef < 1 {
		c := float32(coef)
		for _, g := range grads {
			for j := range g {
				g[j] *= c
			}
		}
	}
	return norm
}

// linearSchedule is Hugging Face's get_linear_schedule_with_warmup: the learning rate of
// optimizer step s (0-based) is base·s/warmup during warm-up, then decays linearly to 0 at total.
func linearSchedule(base float64, s, warmup, total int) float64 {
	if s < warmup {
		return base * float64(s) / float64(max(1, warmup))
	}
	return base * math.Max(0, float64(total-s)/float64(max(1, total-warmup)))
}
