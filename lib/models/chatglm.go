package models

// ChatGLM-6B (v1, THUDM/chatglm-6b) in graph ops, with Hugging Face tensor names:
//
//	transformer.word_embeddings.weight                     [V, D]
//	transformer.layers.{l}.input_layernorm.{weight,bias}   [D]
//	transformer.layers.{l}.attention.query_key_value.weight [3·H_l·HD, D]  per head [q | k | v]
//	transformer.layers.{l}.attention.query_key_value.bias   [3·H_l·HD]
//	transformer.layers.{l}.attention.dense.weight           [D, H_l·HD]   (+ .bias [D])
//	transformer.layers.{l}.post_attention_layernorm.{weight,bias} [D]
//	transformer.layers.{l}.mlp.dense_h_to_4h.weight         [I_l, D]      (+ .bias [I_l])
//	transformer.layers.{l}.mlp.dense_4h_to_h.weight         [D, I_l]      (+ .bias [D])
//	transformer.final_layernorm.{weight,bias}              [D]
//	lm_head.weight                                         [V, D]        (absent when tied, the default)
//
// The block (what the reference modeling_chatglm.py computes, in float32):
//
//	h = LayerNorm(x);  x = h·alpha + dense(attention(h));  h = LayerNorm(x);  x = h·alpha + MLP(h)
//
// with alpha = sqrt(2·N) (N = 28 as in the original code, whatever num_layers says, or the
// residual_alpha_num_layers llmpruner writes; arch.ChatGLMAlpha) multiplying the
// *normalized* input, tanh-GELU MLP, and 2D rotary positions: each head's first half rotates with
// the position ids, its second half with the block position ids (rotate_half, inverse frequencies
// of a HD/2-wide rotary rounded to float16 as the reference stores them). The reference divides
// the query by sqrt(HD)·(layer+1) and multiplies the scores by (layer+1) before a float32 softmax
// (query_key_layer_scaling); that is exactly the plain 1/sqrt(HD) softmax up to rounding (checked
// against scripts/chatglm_ref.py, which implements the scaled form). Other float16 details of the
// reference that only change rounding are computed in float32: its rotation angles and cos/sin
// tables (float16 there), and its masked scores (-10000 there, the lowest float32 here; the same
// softmax since no row is fully masked).
//
// Prefix-LM inputs (get_masks / get_position_ids of the reference): the context length ctx is the
// index of the first <sop> (bos_token_id); every token attends to the whole context and causally
// after it. Position ids are i inside the context and the index of the first [gMASK] (or, without
// one, [MASK]) from <sop> on; block position ids are 0 in the context and i-ctx+1 from <sop> on.
// A sequence without <sop> (plain text scored as a language model, e.g. calibration data) is
// treated as ctx = 0: purely causal, position ids all equal to the mask position (0 when there is
// no mask token) and block ids 1, 2, … — what the text would get after "[gMASK] <sop>".

import (
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/config"
)

// The ChatGLM layout's forward pass. Its generation cache ends with one int32 [2] buffer holding
// the prompt's context length and mask position (chatglmDecodeStep).
func init() {
	layouts["chatglm"] = &layout{
		logits: func(scope *model.Scope, cfg *config.Config, tokens, mask *Node, hooks *Hooks) *Node {
			return chatglmLogits(&chatglm{cfg: cfg, w: newWeights(scope, tokens.Graph(), hooks)}, tokens, mask)
		},
		decode:      chatglmDecodeStep,
		cacheExtra:  []shapes.Shape{shapes.Make(dtypes.Int32, 2)},
		reader:      chatglmReader,      // chatglm_load.go
		checkPrompt: checkChatGLMPrompt, // chatglm_load.go
		startPrompt: func(cfg *config.Config) []int {
			sp := arch.ChatGLMTokens(cfg)
			return []int{sp.GMask, sp.BOS} // the model inputs of empty text: [gMASK] <sop>
		},
	}
}

// chatglm builds the ChatGLM forward pass of one graph.
type chatglm struct {
	cfg *config.Config
	w   *weights
}

// layerNorm is torch's LayerNorm over the last axis in float32: (x-mean)/sqrt(var+eps)·w + b.
func layerNorm(x, w, b *Node, eps float64) *Node {
	mean := ReduceAndKeep(x, ReduceMean, -1)
	centered := Sub(x, mean)
	variance := ReduceAndKeep(Square(centered), ReduceMean, -1)
	inv := Reciprocal(Sqrt(AddScalar(variance, eps)))
	return Add(Mul(Mul(centered, inv), ExpandLeftToRank(w, x.Rank())), ExpandLeftToRank(b, x.Rank()))
}

// geluTanh is the tanh approximation of GELU the reference uses (OpenAI's gelu).
func geluTanh(x *Node) *Node {
	inner := Mul(MulScalar(x, 0.7978845608028654), OnePlus(Mul(MulScalar(x, 0.044715), x)))
	return Mul(MulScalar(x, 0.5), OnePlus(Tanh(inner)))
}

// chatglmInvFreq returns the inverse frequencies of ChatGLM's rotary embedding of width HD/2
// (HD/4 values), computed in float32 and rounded to float16 as the reference's
// RotaryEmbedding(precision=torch.half) keeps them.
func chatglmInvFreq(headDim int) []float32 {
	dim := headDim / 2
	out := make([]float32, dim/2)
	for i := range out {
		exp := float32(2*i) / float32(dim)
		out[i] = roundHalf(1 / float32(math.Pow(10000, float64(exp))))
	}
	return out
}

// roundHalf rounds a normal-range float32 to the nearest float16 value (ties to even).
func roundHalf(x float32) float32 {
	if x == 0 {
		return 0
	}
	m, e := math.Frexp(float64(x)) // x = m·2^e, 0.5 ≤ |m| < 1
	return float32(math.Ldexp(math.RoundToEven(m*2048)/2048, e))
}

// chatglmRoPE returns the rotations of the position ids and block position ids pos, block [B, S]
// (int32), each shaped [B, S, 1, HD/4] to broadcast over the heads.
func chatglmRoPE(pos, block *Node, headDim int) (first, second *rope) {
	g := pos.Graph()
	inv := chatglmInvFreq(headDim)
	B, S, n := pos.Shape().Dim(0), pos.Shape().Dim(1), len(inv)
	invN := Reshape(Const(g, inv), 1, 1, 1, n)
	make1 := func(p *Node) *rope {
		angles := Mul(Reshape(ConvertDType(p, dtypes.Float32), B, S, 1, 1), invN) // [B, S, 1, HD/4]
		return &rope{cos: Cos(angles), sin: Sin(angles)}
	}
	return make1(pos), make1(block)
}

// rotate2D applies the 2D rotary encoding to x [B, S, H, HD]: first half with r1, second with r2.
func rotate2D(x *Node, r1, r2 *rope) *Node {
	HD := x.Shape().Dim(-1)
	x1 := Slice(x, AxisRange(), AxisRange(), AxisRange(), AxisRange(0, HD/2))
	x2 := Slice(x, AxisRange(), AxisRange(), AxisRange(), AxisRange(HD/2))
	return Concatenate([]*Node{r1.apply(x1), r2.apply(x2)}, -1)
}

// layer applies ChatGLM layer l to x [B, S, D]; allowed is [B or 1, S, Sk].
func (m *chatglm) layer(l int, x *Node, r1, r2 *rope, allowed *Node, kv kvSource) *Node {
	cfg := m.cfg
	B, S := x.Shape().Dim(0), x.Shape().Dim(1)
	H, HD := cfg.Heads[l], cfg.HeadDim
	t := func(rest string) string { return arch.ChatGLMLayerTensor(l, rest) }
	alpha := arch.ChatGLMAlpha(cfg)

	h := layerNorm(x, m.w.get(t("input_layernorm.weight")), m.w.get(t("input_layernorm.bias")), cfg.RMSNormEps)
	qkv := Reshape(m.w.proj(h, t("attention.query_key_value"), true), B, S, H, 3*HD) // per head [q | k | v]
	part := func(i int) *Node {
		return Slice(qkv, AxisRange(), AxisRange(), AxisRange(), AxisRange(i*HD, (i+1)*HD)) // [B, S, H, HD]
	}
	q, k, v := rotate2D(part(0), r1, r2), rotate2D(part(1), r1, r2), part(2)
	keys, values := kv(l, k, v)              // [B, H, Sk, HD]
	attn := attend(q, keys, values, allowed) // [B, S, H·HD]
	x = Add(MulScalar(h, alpha), m.w.proj(attn, t("attention.dense"), true))

	h = layerNorm(x, m.w.get(t("post_attention_layernorm.weight")), m.w.get(t("post_attention_layernorm.bias")), cfg.RMSNormEps)
	act := geluTanh(m.w.proj(h, t("mlp.dense_h_to_4h"), true)) // [B, S, I]
	return Add(MulScalar(h, alpha), m.w.proj(act, t("mlp.dense_4h_to_h"), true))
}

// head applies the final LayerNorm and the LM head: [B, S, D] → [B, S, V].
func (m *chatglm) head(x *Node) *Node {
	x = layerNorm(x, m.w.get(arch.ChatGLMFinalNorm+".weight"), m.w.get(arch.ChatGLMFinalNorm+".bias"), m.cfg.RMSNormEps)
	if m.cfg.TieEmbed {
		return m.w.linear(x, "lm_head", m.w.get(arch.ChatGLMEmbed), nil)
	}
	return m.w.proj(x, "lm_head", false)
}

// hidden runs the embedding and all layers: [B, S, D] before the final LayerNorm.
func (m *chatglm) hidden(tokens, pos, block, allowed *Node, kv kvSource) *Node {
	x := Gather(m.w.get(arch.ChatGLMEmbed), InsertAxes(ConvertDType(tokens, dtypes.Int32), -1)) // [B, S, D]
	r1, r2 := chatglmRoPE(pos, block, m.cfg.HeadDim)
	for l := range m.cfg.NumLayers() {
		x = m.layer(l, x, r1, r2, allowed, kv)
	}
	return x
}

// firstIndex returns, per row of eq [B, S] (bool), the first index where it is true, S if none: [B] int32.
func firstIndex(eq *Node) *Node {
	S := eq.Shape().Dim(1)
	iota := Iota(eq.Graph(), shapes.Make(dtypes.Int32, eq.Shape().Dimensions...), 1)
	return ReduceMin(Where(eq, iota, Scalar(eq.Graph(), dtypes.Int32, S)), 1)
}

// chatglmPrefix finds, per row of tokens [B, S], the context length ctx (index of the first <sop>;
// 0 when absent) and the mask position (first [gMASK], else first [MASK], else 0): both [B] int32.
func chatglmPrefix(cfg *config.Config, tokens *Node) (ctx, maskPos *Node) {
	g := tokens.Graph()
	sp := arch.ChatGLMTokens(cfg)
	tok := ConvertDType(tokens, dtypes.Int32)
	S := Scalar(g, dtypes.Int32, tokens.Shape().Dim(1))
	is := func(id int) *Node { return Equal(tok, Scalar(g, dtypes.Int32, id)) }
	ctx = firstIndex(is(sp.BOS))
	ctx = Where(Equal(ctx, S), ZerosLike(ctx), ctx)
	gm, mk := firstIndex(is(sp.GMask)), firstIndex(is(sp.Mask))
	maskPos = Where(LessThan(gm, S), gm, Where(LessThan(mk, S), mk, ZerosLike(mk)))
	return ctx, maskPos
}

// chatglmPositions returns the position and block position ids [B, S] of absolute positions
// abs [B or 1, S] given ctx and maskPos [B].
func chatglmPositions(abs, ctx, maskPos *Node, B int) (pos, block *Node) {
	S := abs.Shape().Dim(1)
	abs = BroadcastToShape(abs, shapes.Make(dtypes.Int32, B, S))
	c, mp := BroadcastToShape(Reshape(ctx, B, 1), abs.Shape()), BroadcastToShape(Reshape(maskPos, B, 1), abs.Shape())
	inCtx := LessThan(abs, c)
	pos = Where(inCtx, abs, mp)
	block = Where(inCtx, ZerosLike(abs), OnePlus(Sub(abs, c)))
	return pos, block
}

// chatglmAllowed is the prefix-LM mask of queries at absolute positions q [B or 1, Sq] over keys
// at positions 0 … Sk-1: key ≤ query or key < ctx[b]. Shape [B, Sq, Sk].
func chatglmAllowed(q, ctx *Node, B, Sk int) *Node {
	g := q.Graph()
	Sq := q.Shape().Dim(1)
	full := shapes.Make(dtypes.Int32, B, Sq, Sk)
	qs := BroadcastToShape(Reshape(q, q.Shape().Dim(0), Sq, 1), full)
	ks := Iota(g, full, 2)
	c := BroadcastToShape(Reshape(ctx, B, 1, 1), full)
	return LogicalOr(LessOrEqual(ks, qs), LessThan(ks, c))
}

// chatglmLogits is Logits for ChatGLM.
func chatglmLogits(m *chatglm, tokens, mask *Node) *Node {
	g := tokens.Graph()
	B, S := tokens.Shape().Dim(0), tokens.Shape().Dim(1)
	ctx, maskPos := chatglmPrefix(m.cfg, tokens)
	abs := Iota(g, shapes.Make(dtypes.Int32, 1, S), 1)
	pos, block := chatglmPositions(abs, ctx, maskPos, B)
	allowed := chatglmAllowed(abs, ctx, B, S)
	if mask != nil {
		allowed = LogicalAnd(allowed, BroadcastToShape(Reshape(mask, B, 1, S), allowed.Shape()))
	}
	return m.head(m.hidden(tokens, pos, block, allowed, noCache))
}

// chatglmDecodeStep is DecodeStep for ChatGLM. Besides the per-layer key/value buffers, the cache
// holds one int32 [2] state buffer (last in buffers): the prompt's context length and mask
// position, found in the prompt step (pos0 = 0) and carried to the following steps.
func chatglmDecodeStep(scope *model.Scope, cfg *config.Config, tokens, pos0, last *Node, buffers []*Node, hooks *Hooks) (*Node, []*Node) {
	L := cfg.NumLayers()
	if len(buffers) != 2*L+1 {
		exceptions.Panicf("DecodeStep: %d cache buffers for %d ChatGLM layers, want %d", len(buffers), L, 2*L+1)
	}
	g := tokens.Graph()
	pos0 = ConvertDType(pos0, dtypes.Int32)
	state := buffers[2*L] // [2] int32: ctx, mask position
	ctxNew, maskNew := chatglmPrefix(cfg, tokens)
	found := Concatenate([]*Node{ctxNew, maskNew}, 0) // [2]
	state = Where(BroadcastToShape(Equal(pos0, ScalarZero(g, dtypes.Int32)), state.Shape()), found, state)
	ctx, maskPos := Slice(state, AxisRange(0, 1)), Slice(state, AxisRange(1, 2)) // [1] each

	logits, updated := kvDecode(cfg, pos0, buffers[:2*L], func(c *kvCache) *Node {
		S, maxLen := tokens.Shape().Dim(1), c.keys[0].Shape().Dim(2)
		abs := Add(Iota(g, shapes.Make(dtypes.Int32, 1, S), 1), pos0) // [1, S]
		pos, block := chatglmPositions(abs, ctx, maskPos, 1)
		allowed := chatglmAllowed(abs, ctx, 1, maxLen)
		m := &chatglm{cfg: cfg, w: newWeights(scope, g, hooks)}
		x := m.hidden(tokens, pos, block, allowed, c.source)                                   // [1, S, D]
		x = Gather(Reshape(x, S, cfg.Hidden), Reshape(ConvertDType(last, dtypes.Int32), 1, 1)) // [1, D]
		return m.head(x)
	})
	return logits, append(updated, state)
}
