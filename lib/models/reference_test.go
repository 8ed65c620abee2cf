package models

// An independent, deliberately naive float64 LLaMA forward pass (plain loops, one token at a
// time), used to check the graph implementation on random non-uniform models.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/pkg/errors"
)

// memReader is an in-memory checkpoint.Reader of float64 values, served as float32 or bf16.
type memReader struct {
	vals   map[string][]float64
	shapes map[string][]int
	dtype  dtypes.DType
}

func (r *memReader) Tensors() []checkpoint.TensorInfo {
	var out []checkpoint.TensorInfo
	for n, s := range r.shapes {
		out = append(out, checkpoint.TensorInfo{Name: n, DType: r.dtype, Shape: s, File: "memory"})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

func (r *memReader) Read(name string) (*tensors.Tensor, error) {
	v, ok := r.vals[name]
	if !ok {
		return nil, errors.Errorf("no tensor %s", name)
	}
	if r.dtype == dtypes.BFloat16 {
		b := make([]bfloat16.BFloat16, len(v))
		for i, x := range v {
			b[i] = bfloat16.FromFloat32(float32(x))
		}
		return tensors.FromFlatDataAndDimensions(b, r.shapes[name]...), nil
	}
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	return tensors.FromFlatDataAndDimensions(f, r.shapes[name]...), nil
}

func (r *memReader) Close() error { return nil }

// randomWeights draws every tensor cfg needs (norm weights around 1, others ~ N(0, 0.3²)),
// rounded to float32 so that the reference sees exactly what the model stores.
func randomWeights(cfg *config.Config, seed uint64) *memReader {
	rng := rand.New(rand.NewPCG(seed, 1))
	r := &memReader{vals: map[string][]float64{}, shapes: map[string][]int{}, dtype: dtypes.Float32}
	specs, _ := ExpectedTensors(cfg)
	for _, s := range specs {
		n := 1
		for _, d := range s.Shape {
			n *= d
		}
		v := make([]float64, n)
		for i := range v {
			if len(s.Shape) == 1 && !isBias(s.Name) {
				v[i] = float64(float32(1 + 0.2*rng.NormFloat64()))
			} else {
				v[i] = float64(float32(0.3 * rng.NormFloat64()))
			}
		}
		r.vals[s.Name], r.shapes[s.Name] = v, s.Shape
	}
	return r
}

func isBias(name string) bool { return len(name) > 5 && name[len(name)-5:] == ".bias" }

// nonUniformConfig is a 2-layer model with different heads, KV heads (GQA in layer 0) and MLP
// widths per layer, an explicit head_dim unrelated to hidden/heads, and biases.
func nonUniformConfig() *config.Config {
	return &config.Config{
		Arch: arch.Llama, Hidden: 12, Vocab: 23, HeadDim: 6,
		Heads: []int{4, 2}, KVHeads: []int{2, 2}, Inter: []int{10, 7},
		RMSNormEps: 1e-5, RopeTheta: 10000, MaxPositions: 64,
		AttnBias: true, MLPBias: true, BOS: 1, EOS: []int{2},
	}
}

// refModel evaluates the reference forward pass.
type refModel struct {
	cfg *config.Config
	w   map[string][]float64
}

// matVec returns W·x (+b) for W [out, in] stored row-major.
func (r *refModel) linear(x []float64, module string, bias bool) []float64 {
	w := r.w[module+".weight"]
	in := len(x)
	out := make([]float64, len(w)/in)
	for o := range out {
		for i := range in {
			out[o] += w[o*in+i] * x[i]
		}
		if bias {
			out[o] += r.w[module+".bias"][o]
		}
	}
	return out
}

func (r *refModel) norm(x []float64, name string) []float64 {
	var ms float64
	for _, v := range x {
		ms += v * v
	}
	scale := 1 / math.Sqrt(ms/float64(len(x))+r.cfg.RMSNormEps)
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = v * scale * r.w[name][i]
	}
	return out
}

// rotate applies rotate_half RoPE to one head vector at position pos.
func (r *refModel) rotate(x []float64, pos int) {
	HD := len(x)
	for i := range HD / 2 {
		theta := float64(pos) * math.Pow(r.cfg.RopeTheta, -float64(2*i)/float64(HD))
		a, b := x[i], x[i+HD/2]
		x[i] = a*math.Cos(theta) - b*math.Sin(theta)
		x[i+HD/2] = b*math.Cos(theta) + a*math.Sin(theta)
	}
}

// logits returns [len(tokens)][V].
func (r *refModel) logits(tokens []int) [][]float64 {
	cfg := r.cfg
	D, HD := cfg.Hidden, cfg.HeadDim
	xs := make([][]float64, len(tokens))
	for t, id := range tokens {
		xs[t] = slices.Clone(r.w["model.embed_tokens.weight"][id*D : (id+1)*D])
	}
	for l := range cfg.NumLayers() {
		p := fmt.Sprintf("model.layers.%d.", l)
		H, KV := cfg.Heads[l], cfg.KVHeads[l]
		qs, ks, vs := make([][]float64, len(tokens)), make([][]float64, len(tokens)), make([][]float64, len(tokens))
		for t := range tokens {
			h := r.norm(xs[t], p+"input_layernorm.weight")
			qs[t] = r.linear(h, p+"self_attn.q_proj", cfg.AttnBias)
			ks[t] = r.linear(h, p+"self_attn.k_proj", cfg.AttnBias)
			vs[t] = r.linear(h, p+"self_attn.v_proj", cfg.AttnBias)
			for hh := range H {
				r.rotate(qs[t][hh*HD:(hh+1)*HD], t)
			}
			for hh := range KV {
				r.rotate(ks[t][hh*HD:(hh+1)*HD], t)
			}
		}
		for t := range tokens {
			attn := make([]float64, H*HD)
			for hh := range H {
				kvh := hh / (H / KV)
				q := qs[t][hh*HD : (hh+1)*HD]
				scores := make([]float64, t+1)
				maxS := math.Inf(-1)
				for s := 0; s <= t; s++ {
					for d := range HD {
						scores[s] += q[d] * ks[s][kvh*HD+d]
					}
					scores[s] /= math.Sqrt(float64(HD))
					maxS = math.Max(maxS, scores[s])
				}
				var z float64
				for s := range scores {
					scores[s] = math.Exp(scores[s] - maxS)
					z += scores[s]
				}
				for s := range scores {
					for d := range HD {
						attn[hh*HD+d] += scores[s] / z * vs[s][kvh*HD+d]
					}
				}
			}
			o := r.linear(attn, p+"self_attn.o_proj", cfg.AttnBias)
			for d := range D {
				xs[t][d] += o[d]
			}
			h := r.norm(xs[t], p+"post_attention_layernorm.weight")
			gate := r.linear(h, p+"mlp.gate_proj", cfg.MLPBias)
			up := r.linear(h, p+"mlp.up_proj", cfg.MLPBias)
			for i := range gate {
				gate[i] = gate[i] / (1 + math.Exp(-gate[i])) * up[i]
			}
			down := r.linear(gate, p+"mlp.down_proj", cfg.MLPBias)
			for d := range D {
				xs[t][d] += down[d]
			}
		}
	}
	out := make([][]float64, len(tokens))
	head := "lm_head"
	if cfg.TieEmbed {
		r.w["tied.weight"] = r.w["model.embed_tokens.weight"]
		head = "tied"
	}
	for t := range tokens {
		out[t] = r.linear(r.norm(xs[t], "model.norm.weight"), head, false)
	}
	return out
}

// nll returns -log softmax(logits)[target].
func nll(logits []float64, target int) float64 {
	m := slices.Max(logits)
	var z float64
	for _, v := range logits {
		z += math.Exp(v - m)
	}
	return -(logits[target] - m - math.Log(z))
}
