package checkpoint

// Tensor names in Hugging Face and in llama.cpp, from the family descriptor's table
// (arch.GGUFNames: llama / deci / qwen2 for the LLaMA-layout families), and the q/k row order of
// each.

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/llmpruner/llmpruner/lib/arch"
)

// ggufRopeFreqs is the LLaMA-3 rope scaling tensor (one factor per rotary pair).
const ggufRopeFreqs = "rope_freqs.weight"

// hfTensor is a Hugging Face LLaMA tensor name taken apart.
type hfTensor struct {
	layer  int    // -1 outside the decoder layers
	module string // "self_attn.q_proj", …; the whole name outside the layers
	param  string // "weight" or "bias"
}

// parseHFName splits a tensor name; ok is false for names llama.cpp has no place for in g.
func parseHFName(g *arch.GGUFNames, name string) (hfTensor, bool) {
	if _, ok := g.Global[name]; ok {
		return hfTensor{layer: -1, module: name}, true
	}
	rest, ok := strings.CutPrefix(name, "model.layers.")
	if !ok {
		return hfTensor{}, false
	}
	num, rest, ok := strings.Cut(rest, ".")
	layer, err := strconv.Atoi(num)
	if !ok || err != nil || layer < 0 || strconv.Itoa(layer) != num {
		return hfTensor{}, false
	}
	dot := strings.LastIndexByte(rest, '.')
	if dot < 0 {
		return hfTensor{}, false
	}
	t := hfTensor{layer: layer, module: rest[:dot], param: rest[dot+1:]}
	if _, ok := g.Layer[t.module]; !ok || (t.param != "weight" && t.param != "bias") {
		return hfTensor{}, false
	}
	return t, true
}

// ggufName is the llama.cpp name of t in GGUF layer blk (decoder layers may be renumbered).
func (t hfTensor) ggufName(g *arch.GGUFNames, blk int) string {
	if t.layer < 0 {
		return g.Global[t.module]
	}
	return fmt.Sprintf("blk.%d.%s.%s", blk, g.Layer[t.module], t.param)
}

// rotary reports whether t's rows are RoPE'd (q and k, weights and biases): Hugging Face splits
// each head into halves, llama.cpp's rope "norm" mode (llama, deci) rotates adjacent pairs.
func (t hfTensor) rotary() bool {
	return t.module == "self_attn.q_proj" || t.module == "self_attn.k_proj"
}

// hfNameOfGGUF is the inverse of ggufName: the Hugging Face name of a llama.cpp tensor.
func hfNameOfGGUF(g *arch.GGUFNames, name string) (string, int, bool) {
	for hf, gn := range g.Global {
		if gn == name {
			return hf, -1, true
		}
	}
	rest, ok := strings.CutPrefix(name, "blk.")
	if !ok {
		return "", 0, false
	}
	num, rest, ok := strings.Cut(rest, ".")
	layer, err := strconv.Atoi(num)
	if !ok || err != nil || layer < 0 || strconv.Itoa(layer) != num {
		return "", 0, false
	}
	dot := strings.LastIndexByte(rest, '.')
	if dot < 0 {
		return "", 0, false
	}
	module, param := rest[:dot], rest[dot+1:]
	if param != "weight" && param != "bias" {
		return "", 0, false
	}
	for hf, gn := range g.Layer {
		if gn == module {
			return fmt.Sprintf("model.layers.%d.%s.%s", layer, hf, param), layer, true
		}
	}
	return "", 0, false
}

// rotaryToPairs reorders the rows of a [heads·headDim, cols] matrix (or a [heads·headDim]
// vector, cols 1) from Hugging Face's half-split RoPE layout to llama.cpp's interleaved pairs:
// within each head, row 2j+c ← row c·headDim/2+j. rotaryToHalves undoes it.
func rotaryToPairs(x []float32, headDim, cols int) { permuteRotary(x, headDim, cols, true) }

func rotaryToHalves(x []float32, headDim, cols int) { permuteRotary(x, headDim, cols, false) }

func permuteRotary(x []float32, headDim, cols int, toPairs bool) {
	half := headDim / 2
	head := headDim * cols
	tmp := make([]float32, head)
	for h := 0; h+head <= len(x); h += head {
		copy(tmp, x[h:h+head])
		for j := range half {
			for c := range 2 {
				pair, split := (2*j+c)*cols, (c*half+j)*cols
				if toPairs {
					copy(x[h+pair:h+pair+cols], tmp[split:split+cols])
				} else {
					copy(x[h+split:h+split+cols], tmp[pair:pair+cols])
				}
			}
		}
	}
}
