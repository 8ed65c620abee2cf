package models

// The LLaMA decoder (LlamaForCausalLM) in graph ops, with Hugging Face tensor names:
//
//	model.embed_tokens.weight                    [V, D]
//	model.layers.{l}.input_layernorm.weight      [D]
//	model.layers.{l}.self_attn.q_proj.weight     [H_l·HD, D]   (+ .bias [H_l·HD] if attention_bias)
//	model.layers.{l}.self_attn.k_proj.weight     [KV_l·HD, D]  (+ .bias)
//	model.layers.{l}.self_attn.v_proj.weight     [KV_l·HD, D]  (+ .bias)
//	model.layers.{l}.self_attn.o_proj.weight     [D, H_l·HD]   (+ .bias [D])
//	model.layers.{l}.post_attention_layernorm.weight [D]
//	model.layers.{l}.mlp.gate_proj.weight        [I_l, D]      (+ .bias if mlp_bias)
//	model.layers.{l}.mlp.up_proj.weight          [I_l, D]      (+ .bias)
//	model.layers.{l}.mlp.down_proj.weight        [D, I_l]      (+ .bias [D])
//	model.norm.weight                            [D]
//	lm_head.weight                               [V, D]        (absent when tie_word_embeddings)

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/layers/activation"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/config"
)

// The LLaMA layout's forward pass (every family whose arch.Family.Layout is "llama").
func init() {
	layouts["llama"] = &layout{
		logits: func(scope *model.Scope, cfg *config.Config, tokens, mask *Node, hooks *Hooks) *Node {
			return llamaLogits(&llama{cfg: cfg, w: newWeights(scope, tokens.Graph(), hooks)}, tokens, mask)
		},
		decode: func(scope *model.Scope, cfg *config.Config, tokens, pos0, last *Node, buffers []*Node, hooks *Hooks) (*Node, []*Node) {
			return kvDecode(cfg, pos0, buffers, func(c *kvCache) *Node {
				m := &llama{cfg: cfg, w: newWeights(scope, tokens.Graph(), hooks)}
				return llamaDecode(m, tokens, ConvertDType(last, dtypes.Int32), c)
			})
		},
		branchScores: llamaBranchScores, // branches.go
		staged:       true,              // stages.go
	}
}

// llama builds the LLaMA forward pass of one graph.
type llama struct {
	cfg *config.Config
	w   *weights
}

// kvSource turns the new keys/values of layer l ([B, S, KV, HD], already rotated) into the
// keys/values to attend to ([B, KV, Sk, HD]). Without a cache they are just transposed; the
// generation cache writes them into its buffers first.
type kvSource func(l int, k, v *Node) (keys, values *Node)

// noCache is the kvSource of a plain forward pass.
func noCache(_ int, k, v *Node) (*Node, *Node) {
	return TransposeAllAxes(k, 0, 2, 1, 3), TransposeAllAxes(v, 0, 2, 1, 3)
}

// embed looks the tokens [B, S] up: [B, S, D].
func (m *llama) embed(tokens *Node) *Node {
	table := m.w.get(arch.LlamaEmbed) // [V, D]
	return Gather(table, InsertAxes(ConvertDType(tokens, dtypes.Int32), -1))
}

// layer applies decoder layer l to x [B, S, D]; allowed is the attention mask [B or 1, S, Sk].
func (m *llama) layer(l int, x *Node, r *rope, allowed *Node, kv kvSource) *Node {
	return m.mlpBlock(l, m.attentionBlock(l, x, r, allowed, kv))
}

// attentionBlock is the first half of decoder layer l: x + o_proj(attention(norm(x))), [B, S, D].
func (m *llama) attentionBlock(l int, x *Node, r *rope, allowed *Node, kv kvSource) *Node {
	cfg := m.cfg
	B, S := x.Shape().Dim(0), x.Shape().Dim(1)
	H, KV, HD := cfg.Heads[l], cfg.KVHeads[l], cfg.HeadDim
	p := arch.LlamaLayerTensor(l, "")

	h := rmsNorm(x, m.w.get(p+"input_layernorm.weight"), cfg.RMSNormEps)
	q := Reshape(m.w.proj(h, p+"self_attn.q_proj", cfg.AttnBias), B, S, H, HD)
	k := Reshape(m.w.proj(h, p+"self_attn.k_proj", cfg.AttnBias), B, S, KV, HD)
	v := Reshape(m.w.proj(h, p+"self_attn.v_proj", cfg.AttnBias), B, S, KV, HD)
	q, k = r.apply(q), r.apply(k)
	keys, values := kv(l, k, v)              // [B, KV, Sk, HD]
	attn := attend(q, keys, values, allowed) // [B, S, H·HD]
	return Add(x, m.w.proj(attn, p+"self_attn.o_proj", cfg.OBias()))
}

// mlpBlock is the second half of decoder layer l: x + down_proj(SwiGLU(norm(x))), [B, S, D].
func (m *llama) mlpBlock(l int, x *Node) *Node {
	cfg := m.cfg
	p := arch.LlamaLayerTensor(l, "")
	h := rmsNorm(x, m.w.get(p+"post_attention_layernorm.weight"), cfg.RMSNormEps)
	gate := m.w.proj(h, p+"mlp.gate_proj", cfg.MLPBias) // [B, S, I]
	up := m.w.proj(h, p+"mlp.up_proj", cfg.MLPBias)     // [B, S, I]
	act := Mul(activation.Swish(gate), up)              // SwiGLU
	return Add(x, m.w.proj(act, p+"mlp.down_proj", cfg.MLPBias))
}

// head applies the final norm and the LM head: x [B, S, D] → logits [B, S, V].
func (m *llama) head(x *Node) *Node {
	x = rmsNorm(x, m.w.get(arch.LlamaFinalNorm), m.cfg.RMSNormEps)
	if m.cfg.TieEmbed {
		return m.w.linear(x, "lm_head", m.w.get(arch.LlamaEmbed), nil)
	}
	return m.w.proj(x, "lm_head", false)
}

// hidden runs the embedding and all layers over tokens [B, S] at the given positions [S]:
// [B, S, D] before the final norm.
func (m *llama) hidden(tokens, positions, allowed *Node, kv kvSource) *Node {
	x := m.embed(tokens)
	r := newRoPE(positions, m.cfg.InvFrequencies())
	for l := range m.cfg.NumLayers() {
		x = m.layer(l, x, r, allowed, kv)
	}
	return x
}

// llamaLogits is Logits for the LLaMA architecture.
func llamaLogits(m *llama, tokens, mask *Node) *Node {
	g := tokens.Graph()
	S := tokens.Shape().Dim(1)
	positions := Iota(g, shapes.Make(dtypes.Int32, S), 0)
	allowed := slidingWindow(causalMask(g, S, mask), positions, positions, m.cfg.SlidingWindow)
	return m.head(m.hidden(tokens, positions, allowed, noCache))
}

// llamaDecode runs new tokens [1, S] through the layers using the cache and returns the logits
// [1, V] of new token number last (scalar int32).
func llamaDecode(m *llama, tokens, last *Node, c *kvCache) *Node {
	S, maxLen := tokens.Shape().Dim(1), c.keys[0].Shape().Dim(2)
	slots := Iota(tokens.Graph(), shapes.Make(dtypes.Int32, maxLen), 0) // slot j holds position j
	allowed := slidingWindow(c.allowed(S, maxLen), c.positions(S), slots, m.cfg.SlidingWindow)
	x := m.hidden(tokens, c.positions(S), allowed, c.source)     // [1, S, D]
	x = Gather(Reshape(x, S, m.cfg.Hidden), Reshape(last, 1, 1)) // [1, D]
	return m.head(x)                                             // [1, V]
}
