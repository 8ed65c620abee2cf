package arch

// ChatGLM-6B (v1, THUDM/chatglm-6b). Its config.json:
//
//	hidden_size 4096, num_layers 28, num_attention_heads 32, inner_hidden_size 16384,
//	vocab_size 130528, layernorm_epsilon 1e-5, position_encoding_2d true, max_sequence_length 2048,
//	bos_token_id 130004 (<sop>), eos_token_id 130005 (<eop>), mask_token_id 130000 ([MASK]),
//	gmask_token_id 130001 ([gMASK]), pad_token_id 3
//
// resolves into a Config: Heads = KVHeads (plain multi-head attention), Inter = inner_hidden_size,
// HeadDim = hidden/heads unless "head_dim" is given, RMSNormEps holds layernorm_epsilon (the
// LayerNorm epsilon), MaxPositions = max_sequence_length, AttnBias and MLPBias are true (every
// ChatGLM projection has a bias). Pruned configs carry the per-layer lists and
// KeyChatGLMAlphaLayers (see ChatGLMAlpha).
//
// tie_word_embeddings is absent from ChatGLM-6B's config; Hugging Face's default (true) ties
// lm_head to the word embeddings, so NumParams counts them once: ≈6.17B for ChatGLM-6B.
//
// Its tensors:
//
//	transformer.word_embeddings.weight                              [V, D]
//	transformer.layers.{l}.input_layernorm.{weight,bias}            [D]
//	transformer.layers.{l}.attention.query_key_value.{weight,bias}  [3·H·hd, D], rows per head [q | k | v]
//	transformer.layers.{l}.attention.dense.{weight,bias}            [D, H·hd]
//	transformer.layers.{l}.post_attention_layernorm.{weight,bias}   [D]
//	transformer.layers.{l}.mlp.dense_h_to_4h.{weight,bias}          [F, D]
//	transformer.layers.{l}.mlp.dense_4h_to_h.{weight,bias}          [D, F]
//	transformer.final_layernorm.{weight,bias}                       [D]
//	lm_head.weight                                                  [V, D] (untied only)

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"

	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/pkg/errors"
)

// ChatGLM tensor names outside the layers. ChatGLMFinalNorm is a module prefix: append ".weight"
// or ".bias".
const (
	ChatGLMEmbed     = "transformer.word_embeddings.weight"
	ChatGLMFinalNorm = "transformer.final_layernorm"
	ChatGLMLMHead    = "lm_head.weight"
	chatglmLayer     = "transformer.layers.%d."
)

// KeyChatGLMAlphaLayers is the config.json key llmpruner writes for ChatGLM: the N of the DeepNorm
// residual scale alpha = sqrt(2·N) the weights were trained with. It stays when layers are
// removed; without it N is chatglmAlphaLayers.
const KeyChatGLMAlphaLayers = "residual_alpha_num_layers"

// chatglmAlphaLayers is N in ChatGLM-6B's alpha = sqrt(2·N): THUDM's modeling_chatglm.py builds
// every GLMBlock with its default num_layers=28 (ChatGLMModel never passes config.num_layers), so
// alpha = sqrt(56) whatever num_layers a config.json states.
const chatglmAlphaLayers = 28

// ChatGLMLayerTensor names a tensor of layer l, e.g. ChatGLMLayerTensor(3, "attention.dense.weight").
func ChatGLMLayerTensor(l int, rest string) string { return layerName(chatglmLayer, l, rest) }

type chatglm struct{}

var chatglmFamily Family = chatglm{}

func (chatglm) Name() config.Arch { return ChatGLM }
func (chatglm) Title() string     { return "ChatGLM" }
func (chatglm) Layout() string    { return "chatglm" }

func (chatglm) matches(modelType string, archs []string) bool {
	return modelType == "chatglm" || modelType == "" &&
		(slices.Contains(archs, "ChatGLMModel") || slices.Contains(archs, "ChatGLMForConditionalGeneration"))
}

// chatglmFields are the ChatGLM config.json fields the reader uses.
type chatglmFields struct {
	HiddenSize         int      `json:"hidden_size"`
	NumLayers          int      `json:"num_layers"`
	NumAttentionHeads  int      `json:"num_attention_heads"`
	InnerHiddenSize    *int     `json:"inner_hidden_size"`
	HeadDim            *int     `json:"head_dim"`
	VocabSize          int      `json:"vocab_size"`
	LayerNormEps       *float64 `json:"layernorm_epsilon"`
	PositionEncoding2D *bool    `json:"position_encoding_2d"`
	MaxSequenceLength  int      `json:"max_sequence_length"`
	BOSTokenID         *int     `json:"bos_token_id"`
	EOSTokenID         *int     `json:"eos_token_id"`
	MaskTokenID        *int     `json:"mask_token_id"`
	GMaskTokenID       *int     `json:"gmask_token_id"`
	TieWordEmbeddings  *bool    `json:"tie_word_embeddings"`
	PreSeqLen          *int     `json:"pre_seq_len"`
	QuantizationBit    int      `json:"quantization_bit"`
	AlphaLayers        *int     `json:"residual_alpha_num_layers"`
	HeadsPerLayer      []int    `json:"num_attention_heads_per_layer"`
	KVHeadsPerLayer    []int    `json:"num_key_value_heads_per_layer"`
	InterPerLayer      []int    `json:"intermediate_size_per_layer"`
}

func (chatglm) parseConfig(data []byte, raw map[string]json.RawMessage, source string) (*config.Config, error) {
	var f chatglmFields
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, errors.Wrapf(err, "%s: invalid ChatGLM config fields", source)
	}
	if f.PositionEncoding2D != nil && !*f.PositionEncoding2D {
		return nil, errors.Errorf("%s: position_encoding_2d=false is not supported (ChatGLM-6B uses 2D rotary positions)", source)
	}
	if f.PreSeqLen != nil && *f.PreSeqLen > 0 {
		return nil, errors.Errorf("%s: pre_seq_len %d (P-tuning v2 prefix) is not supported", source, *f.PreSeqLen)
	}
	if f.QuantizationBit != 0 {
		return nil, errors.Errorf("%s: quantization_bit %d: quantized ChatGLM checkpoints are not supported; use the float16 weights", source, f.QuantizationBit)
	}
	if f.HiddenSize <= 0 || f.VocabSize <= 0 || f.NumLayers <= 0 || f.NumAttentionHeads <= 0 {
		return nil, errors.Errorf("%s: hidden_size (%d), vocab_size (%d), num_layers (%d) and num_attention_heads (%d) must be positive",
			source, f.HiddenSize, f.VocabSize, f.NumLayers, f.NumAttentionHeads)
	}
	for _, id := range []struct {
		name string
		v    *int
	}{{"bos_token_id", f.BOSTokenID}, {"eos_token_id", f.EOSTokenID}, {"mask_token_id", f.MaskTokenID}, {"gmask_token_id", f.GMaskTokenID}} {
		if id.v == nil {
			return nil, errors.Errorf("%s: ChatGLM config lacks %s (needed for the prefix mask and 2D positions)", source, id.name)
		}
	}
	L := f.NumLayers
	inter := 4 * f.HiddenSize // ChatGLM's default when inner_hidden_size is absent
	if f.InnerHiddenSize != nil {
		inter = *f.InnerHiddenSize
	}
	c := &config.Config{
		Arch:         ChatGLM,
		Hidden:       f.HiddenSize,
		Vocab:        f.VocabSize,
		RMSNormEps:   1e-5,
		RopeTheta:    10000,
		MaxPositions: f.MaxSequenceLength,
		TieEmbed:     true,
		AttnBias:     true,
		MLPBias:      true,
		BOS:          *f.BOSTokenID,
		EOS:          []int{*f.EOSTokenID},
		Raw:          raw,
	}
	if f.LayerNormEps != nil {
		c.RMSNormEps = *f.LayerNormEps
	}
	if f.TieWordEmbeddings != nil {
		c.TieEmbed = *f.TieWordEmbeddings
	}
	err := config.LayerShapes{
		HeadDim: f.HeadDim, Heads: f.NumAttentionHeads, KVHeads: f.NumAttentionHeads, Inter: inter,
		HeadsList: f.HeadsPerLayer, KVList: f.KVHeadsPerLayer, InterList: f.InterPerLayer,
		Layers: L, LayersKey: "num_layers",
	}.Resolve(c, source)
	if err != nil {
		return nil, err
	}
	alpha := chatglmAlphaLayers
	if f.AlphaLayers != nil {
		alpha = *f.AlphaLayers
	}
	if alpha <= 0 {
		return nil, errors.Errorf("%s: %s = %d must be positive", source, KeyChatGLMAlphaLayers, alpha)
	}
	c.Raw[KeyChatGLMAlphaLayers] = json.RawMessage(strconv.Itoa(alpha))
	return c, nil
}

// validate: multi-head attention only, and a head dimension divisible by 4 (2D rotary:
// rotate_half on each half of the head).
func (chatglm) validate(c *config.Config) error {
	if c.HeadDim%4 != 0 {
		return errors.Errorf("head_dim %d must be a multiple of 4 for ChatGLM's 2D rotary encoding", c.HeadDim)
	}
	for i := range c.Heads {
		if c.Heads[i] != c.KVHeads[i] {
			return errors.Errorf("layer %d: ChatGLM has no grouped key/value heads, but heads %d != kv-heads %d", i, c.Heads[i], c.KVHeads[i])
		}
	}
	return nil
}

func (chatglm) configFields(c *config.Config) map[string]any {
	out := map[string]any{
		"model_type":           string(ChatGLM),
		"hidden_size":          c.Hidden,
		"vocab_size":           c.Vocab,
		"num_layers":           c.NumLayers(),
		"num_attention_heads":  slices.Max(c.Heads),
		"inner_hidden_size":    slices.Max(c.Inter),
		"head_dim":             c.HeadDim,
		"layernorm_epsilon":    c.RMSNormEps,
		"max_sequence_length":  c.MaxPositions,
		"position_encoding_2d": true,
		"tie_word_embeddings":  c.TieEmbed,
		"bos_token_id":         c.BOS,
	}
	if _, ok := c.Raw["architectures"]; !ok {
		out["architectures"] = []string{"ChatGLMModel"}
	}
	if len(c.EOS) > 0 {
		out["eos_token_id"] = c.EOS[0]
	}
	return out
}

// ChatGLMSpecial holds ChatGLM's special token ids.
type ChatGLMSpecial struct {
	BOS   int // <sop>: ends the bidirectional context
	EOS   int // <eop>
	Mask  int // [MASK]
	GMask int // [gMASK]
}

// ChatGLMTokens returns the special token ids of a ChatGLM config (from config.json).
func ChatGLMTokens(c *config.Config) ChatGLMSpecial {
	s := ChatGLMSpecial{BOS: c.BOS, EOS: -1, Mask: -1, GMask: -1}
	if len(c.EOS) > 0 {
		s.EOS = c.EOS[0]
	}
	var f struct {
		Mask  *int `json:"mask_token_id"`
		GMask *int `json:"gmask_token_id"`
	}
	if v, ok := c.Raw["mask_token_id"]; ok {
		_ = json.Unmarshal(v, &f.Mask)
	}
	if v, ok := c.Raw["gmask_token_id"]; ok {
		_ = json.Unmarshal(v, &f.GMask)
	}
	if f.Mask != nil {
		s.Mask = *f.Mask
	}
	if f.GMask != nil {
		s.GMask = *f.GMask
	}
	return s
}

// ChatGLMAlpha is the DeepNorm residual scale sqrt(2·N): N = KeyChatGLMAlphaLayers when the
// config has it, else 28 as in the original code (chatglmAlphaLayers).
func ChatGLMAlpha(c *config.Config) float64 {
	n := chatglmAlphaLayers
	if v, ok := c.Raw[KeyChatGLMAlphaLayers]; ok {
		var k int
		if json.Unmarshal(v, &k) == nil && k > 0 {
			n = k
		}
	}
	return math.Sqrt(2 * float64(n))
}

func (chatglm) Embedding() string   { return ChatGLMEmbed }
func (chatglm) LMHead() string      { return ChatGLMLMHead }
func (chatglm) LayerPrefix() string { return chatglmLayer }

// chatglmModules are a layer's modules, each with a weight and a bias, in checkpoint order.
var chatglmModules = []string{"input_layernorm", "attention.query_key_value", "attention.dense", "post_attention_layernorm",
	"mlp.dense_h_to_4h", "mlp.dense_4h_to_h"}

func (chatglm) LayerTensors(c *config.Config, l int) []string {
	var out []string
	for _, n := range chatglmModules {
		out = append(out, ChatGLMLayerTensor(l, n+".weight"), ChatGLMLayerTensor(l, n+".bias"))
	}
	return out
}

func (chatglm) Tensors(c *config.Config) []Tensor {
	D, V, HD := c.Hidden, c.Vocab, c.HeadDim
	out := []Tensor{{ChatGLMEmbed, []int{V, D}}}
	for l := range c.NumLayers() {
		q, F := c.Heads[l]*HD, c.Inter[l]
		shapes := map[string][2][]int{ // module → weight, bias shapes
			"input_layernorm": {{D}, {D}}, "post_attention_layernorm": {{D}, {D}},
			"attention.query_key_value": {{3 * q, D}, {3 * q}}, "attention.dense": {{D, q}, {D}},
			"mlp.dense_h_to_4h": {{F, D}, {F}}, "mlp.dense_4h_to_h": {{D, F}, {D}},
		}
		for _, n := range chatglmModules {
			s := shapes[n]
			out = append(out, Tensor{ChatGLMLayerTensor(l, n+".weight"), s[0]}, Tensor{ChatGLMLayerTensor(l, n+".bias"), s[1]})
		}
	}
	out = append(out, Tensor{ChatGLMFinalNorm + ".weight", []int{D}}, Tensor{ChatGLMFinalNorm + ".bias", []int{D}})
	if !c.TieEmbed {
		out = append(out, Tensor{ChatGLMLMHead, []int{V, D}})
	}
	return out
}

// HeadBlocks: one group per head. Worked example (head_dim 2, 4 heads, layer 0): the group of
// head 1 is
//
//	query_key_value.weight axis 0 [6 7]   // root: head 1's query rows (rows 6·1 … 6·1+1)
//	query_key_value.weight axis 0 [8 9]   // its key rows
//	query_key_value.weight axis 0 [10 11] // its value rows
//	dense.weight           axis 1 [2 3]   // dense input columns of head 1
//	query_key_value.bias   axis 0 [6 … 11] (bias, not scored)
//
// so q, k, v and dense are four members of head_dim indices each, as LLaMA's q_proj, k_proj,
// v_proj and o_proj: every importance reduction means the same thing for both families.
func (chatglm) HeadBlocks(c *config.Config, l int) []Block {
	HD := c.HeadDim
	qkv := ChatGLMLayerTensor(l, "attention.query_key_value.weight")
	return []Block{
		{Tensor: qkv, Stride: 3 * HD, Offset: 0, Width: HD},
		{Tensor: qkv, Stride: 3 * HD, Offset: HD, Width: HD},
		{Tensor: qkv, Stride: 3 * HD, Offset: 2 * HD, Width: HD},
		{Tensor: ChatGLMLayerTensor(l, "attention.dense.weight"), Axis: 1, Stride: HD, Width: HD},
		{Tensor: ChatGLMLayerTensor(l, "attention.query_key_value.bias"), Stride: 3 * HD, Width: 3 * HD, Bias: true},
	}
}

// MLPBlocks: dense_h_to_4h row c (root), dense_4h_to_h column c, dense_h_to_4h's bias element c.
func (chatglm) MLPBlocks(c *config.Config, l int) []Block {
	return []Block{
		{Tensor: ChatGLMLayerTensor(l, "mlp.dense_h_to_4h.weight"), Stride: 1, Width: 1},
		{Tensor: ChatGLMLayerTensor(l, "mlp.dense_4h_to_h.weight"), Axis: 1, Stride: 1, Width: 1},
		{Tensor: ChatGLMLayerTensor(l, "mlp.dense_h_to_4h.bias"), Stride: 1, Width: 1, Bias: true},
	}
}

// HiddenTensors: element d of every LayerNorm weight (root: layer 0's input_layernorm) and bias,
// column d of the word embeddings, of query_key_value and dense_h_to_4h in every layer and of an
// untied lm_head, row d of dense and dense_4h_to_h and element d of their biases.
//
// LayerNorm subtracts the mean over the hidden size before normalising, so unlike LLaMA's RMSNorm
// removing hidden channels is not a re-weighting of zeroed channels; lib/groups' tests check the
// sliced model against an independent PyTorch slicing instead.
func (chatglm) HiddenTensors(c *config.Config) Hidden {
	var h Hidden
	var normBiases, biases []string
	for l := range c.NumLayers() {
		t := func(rest string) string { return ChatGLMLayerTensor(l, rest) }
		h.Elems = append(h.Elems, t("input_layernorm.weight"), t("post_attention_layernorm.weight"))
		normBiases = append(normBiases, t("input_layernorm.bias"), t("post_attention_layernorm.bias"))
		h.Cols = append(h.Cols, t("attention.query_key_value.weight"), t("mlp.dense_h_to_4h.weight"))
		h.Rows = append(h.Rows, t("attention.dense.weight"), t("mlp.dense_4h_to_h.weight"))
		biases = append(biases, t("attention.dense.bias"), t("mlp.dense_4h_to_h.bias"))
	}
	h.Elems = append(h.Elems, ChatGLMFinalNorm+".weight")
	normBiases = append(normBiases, ChatGLMFinalNorm+".bias")
	h.Cols = append([]string{ChatGLMEmbed}, h.Cols...)
	if !c.TieEmbed {
		h.Cols = append(h.Cols, ChatGLMLMHead)
	}
	h.Biases = append(normBiases, biases...)
	return h
}

// LayerParams: two LayerNorms (weight+bias), query_key_value [3·H·hd, D] with bias, dense
// [D, H·hd] with bias, dense_h_to_4h [F, D] with bias, dense_4h_to_h [D, F] with bias.
func (chatglm) LayerParams(c *config.Config, l int) int64 {
	D, HD := int64(c.Hidden), int64(c.HeadDim)
	q := int64(c.Heads[l]) * HD
	f := int64(c.Inter[l])
	n := 4 * D
	n += 3*q*D + 3*q
	n += q*D + D
	n += f*D + f + D*f + D
	return n
}

// NumParams: word embeddings, every layer, the final LayerNorm (weight and bias) and lm_head
// unless tied.
func (f chatglm) NumParams(c *config.Config) int64 { return countTensors(f.Tensors(c)) }

// MACs counts ChatGLM like LLaMA (test_speedup.py's hooks) with its own parts: the fused
// query_key_value (3·H·hd outputs) and dense with biases, the 2D rotary on q and k (both halves,
// so the same count as RoPE), a two-matrix GELU MLP with biases, and LayerNorms.
func (chatglm) MACs(c *config.Config, S int) MACBreakdown {
	var b MACBreakdown
	s, D := int64(S), int64(c.Hidden)
	for l := range c.NumLayers() {
		layerMACs{S: s, D: D, HD: int64(c.HeadDim), H: int64(c.Heads[l]), KV: int64(c.KVHeads[l]), F: int64(c.Inter[l]),
			mlpMats: 2, qkvBias: true, oBias: true, mlpBias: true}.add(&b)
	}
	b.Norm += 2 * s * D
	b.LMHead = s * D * int64(c.Vocab)
	return b
}

// LoRA: the four projections of a layer (the fused query_key_value, the attention output dense,
// and the two MLP projections), named as in PEFT's ChatGLM recipes.
func (chatglm) LoRA() LoRATargets {
	return LoRATargets{LayerPrefix: chatglmLayer, Targets: []LoRATarget{
		{"query_key_value", "attention.query_key_value"}, {"dense", "attention.dense"},
		{"dense_h_to_4h", "mlp.dense_h_to_4h"}, {"dense_4h_to_h", "mlp.dense_4h_to_h"},
	}}
}

// ResidualOutputs: none. A ChatGLM layer computes x' = LN(x)·alpha + attn (and the same for the
// MLP): the residual carries the *normalized* input scaled by alpha, so no weight gate turns it
// into the identity.
func (chatglm) ResidualOutputs(*config.Config, int) ([]string, error) {
	return nil, errors.New("layer-skip importance (ranked layer pruning) is not available for ChatGLM: its DeepNorm residual (LN(x)·alpha + f(LN(x))) cannot be made the identity by zeroing weights; prune the first layers instead (no layer ranking)")
}

// OutputProjections: attention.dense (its input columns are the heads' outputs, head_dim each)
// and mlp.dense_4h_to_h.
func (chatglm) OutputProjections(c *config.Config, l int) (attn, mlp string) {
	return ChatGLMLayerTensor(l, "attention.dense"), ChatGLMLayerTensor(l, "mlp.dense_4h_to_h")
}

func (f chatglm) OutputBiases(c *config.Config, l int) (attn, mlp string) {
	attn, mlp = f.OutputProjections(c, l)
	return attn + ".bias", mlp + ".bias"
}

// EnableBiases: every ChatGLM projection has a bias already.
func (chatglm) EnableBiases(*config.Config, bool, bool) error { return nil }

// GGUF: llama.cpp has no ChatGLM-6B (v1) architecture.
func (chatglm) GGUF() *GGUFNames {
	return &GGUFNames{Unsupported: "llama.cpp has no ChatGLM-6B (v1) architecture (its chatglm architecture is ChatGLM2/3 and GLM-4)"}
}
