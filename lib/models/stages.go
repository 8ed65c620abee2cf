package models

// The forward pass cut at the decoder-layer boundaries, for computations that hold one layer at a
// time (layer-streamed Taylor importance of models larger than memory): the embedding, one decoder
// layer and the head are separate graph functions whose only weights are the ones they read
// through Hooks.Weight. Chained, they compute exactly what Logits computes (same ops, same order).
//
// LLaMA family only: ChatGLM's positions and attention mask depend on the tokens (the <sop>
// context), which a layer on its own does not see.

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/support/exceptions"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/pkg/errors"
)

// CheckStaged returns an error when cfg's architecture has no staged forward pass.
func CheckStaged(cfg *config.Config) error {
	lay, err := layoutOf(cfg)
	if err != nil {
		return err
	}
	if !lay.staged {
		return errors.Errorf("layer-by-layer computation supports the llama layout, not the %q architecture", cfg.Arch)
	}
	return nil
}

// LayerTensors lists the tensors of decoder layer l (names and shapes, checkpoint order).
func LayerTensors(cfg *config.Config, l int) []TensorSpec {
	prefix := fmt.Sprintf(arch.Of(cfg).LayerPrefix(), l)
	var out []TensorSpec
	for _, s := range arch.Of(cfg).Tensors(cfg) {
		if strings.HasPrefix(s.Name, prefix) {
			out = append(out, s)
		}
	}
	return out
}

// OuterTensors lists the tensors outside the decoder layers: the embedding, the final norm and
// (unless tied) lm_head.
func OuterTensors(cfg *config.Config) []TensorSpec {
	var out []TensorSpec
	for _, s := range arch.Of(cfg).Tensors(cfg) {
		if TensorLayer(cfg, s.Name) < 0 {
			out = append(out, s)
		}
	}
	return out
}

// TensorLayer returns the decoder layer a tensor of cfg's model belongs to, or -1 for the
// embedding, final norm and lm_head.
func TensorLayer(cfg *config.Config, name string) int {
	for l := range cfg.NumLayers() {
		if strings.HasPrefix(name, fmt.Sprintf(arch.Of(cfg).LayerPrefix(), l)) {
			return l
		}
	}
	return -1
}

// HalfLayerTensors lists the tensors of the attention half (mlp false: input_layernorm and the
// self_attn projections) or the MLP half (post_attention_layernorm and the mlp projections) of
// decoder layer l.
func HalfLayerTensors(cfg *config.Config, l int, mlp bool) []TensorSpec {
	var out []TensorSpec
	for _, s := range LayerTensors(cfg, l) {
		if IsMLPHalf(cfg, l, s.Name) == mlp {
			out = append(out, s)
		}
	}
	return out
}

// IsMLPHalf reports whether the tensor name of layer l belongs to the layer's MLP half.
func IsMLPHalf(cfg *config.Config, l int, name string) bool {
	rest := strings.TrimPrefix(name, arch.LlamaLayerTensor(l, ""))
	return strings.HasPrefix(rest, "mlp.") || strings.HasPrefix(rest, "post_attention_layernorm.")
}

// stagedWeights resolves hooks for a staged graph; hooks.Weight is required (there is no store).
func stagedWeights(g *Graph, hooks *Hooks) *weights {
	if hooks == nil || hooks.Weight == nil {
		exceptions.Panicf("staged forward pass: Hooks.Weight must be set (no store to read weights from)")
	}
	return newWeights(nil, g, hooks)
}

// EmbedStage looks tokens [B, S] up in the embedding: [B, S, D] float32.
func EmbedStage(cfg *config.Config, tokens *Node, hooks *Hooks) *Node {
	checkTokens(tokens, nil)
	m := &llama{cfg: cfg, w: stagedWeights(tokens.Graph(), hooks)}
	return m.embed(tokens)
}

// LayerStage applies decoder layer l to x [B, S, D] (positions 0…S−1, causal attention, no
// padding): [B, S, D].
func LayerStage(cfg *config.Config, l int, x *Node, hooks *Hooks) *Node {
	g := x.Graph()
	S := x.Shape().Dim(1)
	m := &llama{cfg: cfg, w: stagedWeights(g, hooks)}
	positions := Iota(g, shapes.Make(dtypes.Int32, S), 0)
	r := newRoPE(positions, cfg.InvFrequencies())
	return m.layer(l, x, r, slidingWindow(causalMask(g, S, nil), positions, positions, cfg.SlidingWindow), noCache)
}

// HalfLayerStage applies the attention half (mlp false) or the MLP half of decoder layer l to x
// [B, S, D] (positions 0…S−1, causal attention within the sliding window, if any): [B, S, D]. The MLP half of the attention half's
// output is LayerStage.
func HalfLayerStage(cfg *config.Config, l int, mlp bool, x *Node, hooks *Hooks) *Node {
	g := x.Graph()
	m := &llama{cfg: cfg, w: stagedWeights(g, hooks)}
	if mlp {
		return m.mlpBlock(l, x)
	}
	S := x.Shape().Dim(1)
	positions := Iota(g, shapes.Make(dtypes.Int32, S), 0)
	r := newRoPE(positions, cfg.InvFrequencies())
	return m.attentionBlock(l, x, r, slidingWindow(causalMask(g, S, nil), positions, positions, cfg.SlidingWindow), noCache)
}

// HeadStage applies the final norm and the LM head to x [B, S, D]: logits [B, S, V].
func HeadStage(cfg *config.Config, x *Node, hooks *Hooks) *Node {
	m := &llama{cfg: cfg, w: stagedWeights(x.Graph(), hooks)}
	return m.head(x)
}

// ReleaseMemory frees the buffers of the step just finished for the next step's use, so that the
// peak of a layer-by-layer computation is about one step's working set whatever its depth. Without
// it the streamed Taylor peak grew with every half layer (8 LLaMA-7B-shaped layers: 4.02 GB, five
// half layers' worth): the Go backend keeps freed buffers in a sync.Pool per size bucket, which a
// garbage collection only moves to its victim cache (the next one drops them), and the collector,
// paced by the heap's growth, rarely ran during the sweep. Two collections free them; the heap
// keeps the pages and serves the next step's buffers from them (8 layers: 2.03 GB). Returning the
// pages to the operating system as well (debug.FreeOSMemory) lowered the peak a little more (1.77
// GB) but made every step fault them in again: on 2 layers 40.7 s of CPU time instead of 16.5 s.
func ReleaseMemory() {
	runtime.GC() // pooled buffers move to the pools' victim caches
	runtime.GC() // and are dropped
}

// ParamWeights returns a Hooks.Weight that reads the tensors names from the graph parameters
// params (same order), each converted once to float32 and recorded in f32 (so a caller can
// differentiate with respect to the float32 weights). A name outside names panics: the stage's
// graph read a tensor it was not given.
func ParamWeights(names []string, params []*Node, f32 map[string]*Node) func(*Graph, string) *Node {
	index := make(map[string]int, len(names))
	for i, n := range names {
		index[n] = i
	}
	return func(_ *Graph, name string) *Node {
		if n, ok := f32[name]; ok {
			return n
		}
		i, ok := index[name]
		if !ok {
			panic(errors.Errorf("staged graph reads tensor %s, which is not among its inputs", name))
		}
		n := params[i]
		if n.DType() != dtypes.Float32 {
			n = ConvertDType(n, dtypes.Float32)
		}
		f32[name] = n
		return n
	}
}
