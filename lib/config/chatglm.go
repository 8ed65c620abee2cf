package config

// ChatGLM-6B (v1, THUDM/chatglm-6b) config.json:
//
//	hidden_size 4096, num_layers 28, num_attention_heads 32, inner_hidden_size 16384,
//	vocab_size 130528, layernorm_epsilon 1e-5, position_encoding_2d true, max_sequence_length 2048,
//	bos_token_id 130004 (<sop>), eos_token_id 130005 (<eop>), mask_token_id 130000 ([MASK]),
//	gmask_token_id 130001 ([gMASK]), pad_token_id 3
//
// resolved into a Config: Heads = KVHeads (plain multi-head attention), Inter = inner_hidden_size,
// HeadDim = hidden/heads unless "head_dim" is given, RMSNormEps holds layernorm_epsilon (the
// LayerNorm epsilon), MaxPositions = max_sequence_length, AttnBias and MLPBias are true (every
// ChatGLM projection has a bias). Pruned configs carry the same per-layer lists as LLaMA's
// (num_attention_heads_per_layer, num_key_value_heads_per_layer, intermediate_size_per_layer) and
// KeyChatGLMAlphaLayers: the layer count of the DeepNorm residual scale alpha = sqrt(2·N), which
// stays the unpruned model's when layers are removed (the trained weights assume it).
//
// tie_word_embeddings is absent from ChatGLM-6B's config; Hugging Face's default (true) ties
// lm_head to the word embeddings, so NumParams counts them once: ≈6.17B for ChatGLM-6B.

import (
	"encoding/json"
	"math"
	"slices"

	"github.com/pkg/errors"
)

// KeyChatGLMAlphaLayers is the config.json key llmpruner writes for ChatGLM: the number of layers
// of the unpruned model, which fixes the residual scale alpha = sqrt(2·N).
const KeyChatGLMAlphaLayers = "residual_alpha_num_layers"

// chatglmFields are the ChatGLM config.json fields parseChatGLM reads.
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

// parseChatGLM resolves a ChatGLM-6B config.json (raw is its top-level object).
func parseChatGLM(data []byte, raw map[string]json.RawMessage, source string) (*Config, error) {
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
	c := &Config{
		Arch:         ArchChatGLM,
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
	err := layerShapes{
		headDim: f.HeadDim, heads: f.NumAttentionHeads, kvHeads: f.NumAttentionHeads, inter: inter,
		headsList: f.HeadsPerLayer, kvList: f.KVHeadsPerLayer, interList: f.InterPerLayer,
		layers: L, layersKey: "num_layers",
	}.resolve(c, source)
	if err != nil {
		return nil, err
	}
	alpha := L
	if f.AlphaLayers != nil {
		alpha = *f.AlphaLayers
	}
	if alpha <= 0 {
		return nil, errors.Errorf("%s: %s = %d must be positive", source, KeyChatGLMAlphaLayers, alpha)
	}
	c.Raw[KeyChatGLMAlphaLayers] = json.RawMessage(itoa(alpha))
	if err := c.Validate(); err != nil {
		return nil, errors.WithMessage(err, source)
	}
	return c, nil
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// validateChatGLM adds ChatGLM's own constraints to Validate: multi-head attention only, and a
// head dimension divisible by 4 (2D rotary: rotate_half on each half of the head).
func (c *Config) validateChatGLM() error {
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

// ChatGLMSpecial holds ChatGLM's special token ids.
type ChatGLMSpecial struct {
	BOS   int // <sop>: ends the bidirectional context
	EOS   int // <eop>
	Mask  int // [MASK]
	GMask int // [gMASK]
}

// ChatGLMTokens returns the special token ids of a ChatGLM config (from config.json).
func (c *Config) ChatGLMTokens() ChatGLMSpecial {
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

// ChatGLMAlpha is the DeepNorm residual scale sqrt(2·N), N the unpruned model's layer count.
func (c *Config) ChatGLMAlpha() float64 {
	n := c.NumLayers()
	if v, ok := c.Raw[KeyChatGLMAlphaLayers]; ok {
		var k int
		if json.Unmarshal(v, &k) == nil && k > 0 {
			n = k
		}
	}
	return math.Sqrt(2 * float64(n))
}

// marshalChatGLM renders a ChatGLM config.json: Raw's fields with the resolved ChatGLM fields
// written over them, plus head_dim and the per-layer lists.
func (c *Config) marshalChatGLM() ([]byte, error) {
	out := make(map[string]any, len(c.Raw)+8)
	for k, v := range c.Raw {
		out[k] = v
	}
	if _, ok := out["architectures"]; !ok {
		out["architectures"] = []string{"ChatGLMModel"}
	}
	out["model_type"] = string(ArchChatGLM)
	out["hidden_size"] = c.Hidden
	out["vocab_size"] = c.Vocab
	out["num_layers"] = c.NumLayers()
	out["num_attention_heads"] = slices.Max(c.Heads)
	out["inner_hidden_size"] = slices.Max(c.Inter)
	out["head_dim"] = c.HeadDim
	out["layernorm_epsilon"] = c.RMSNormEps
	out["max_sequence_length"] = c.MaxPositions
	out["position_encoding_2d"] = true
	out["tie_word_embeddings"] = c.TieEmbed
	out["bos_token_id"] = c.BOS
	if len(c.EOS) > 0 {
		out["eos_token_id"] = c.EOS[0]
	}
	out[KeyHeadsPerLayer] = c.Heads
	out[KeyKVHeadsPerLayer] = c.KVHeads
	out[KeyInterPerLayer] = c.Inter
	return json.MarshalIndent(out, "", "  ")
}

// chatglmNumParams counts ChatGLM's parameters: word embeddings, every layer, the final LayerNorm
// (weight and bias) and lm_head unless tied.
func (c *Config) chatglmNumParams() int64 {
	D, V := int64(c.Hidden), int64(c.Vocab)
	n := V*D + 2*D
	if !c.TieEmbed {
		n += V * D
	}
	for i := range c.Heads {
		n += c.chatglmLayerParams(i)
	}
	return n
}

// chatglmLayerParams counts layer i: two LayerNorms (weight+bias), query_key_value [3·H·HD, D] with
// bias, dense [D, H·HD] with bias, dense_h_to_4h [I, D] with bias, dense_4h_to_h [D, I] with bias.
func (c *Config) chatglmLayerParams(i int) int64 {
	D, HD := int64(c.Hidden), int64(c.HeadDim)
	q := int64(c.Heads[i]) * HD
	f := int64(c.Inter[i])
	n := 4 * D
	n += 3*q*D + 3*q
	n += q*D + D
	n += f*D + f + D*f + D
	return n
}
