// Package config reads and writes Hugging Face config.json files for the LLaMA family (LLaMA-1/2/3/3.1,
// Vicuna, TinyLlama) and resolves them into a Config with explicit per-layer dimensions.
//
// Pruned models are non-uniform: every decoder layer may keep a different number of attention heads,
// key/value heads and MLP channels. Config therefore stores those sizes per layer from the start, and
// the head dimension explicitly (it is never derived as hidden/heads after loading).
//
// The config.json we write keeps every Hugging Face field (unknown ones are preserved verbatim) and
// adds, when the layers differ, three documented per-layer lists:
//
//	"num_attention_heads_per_layer": [32, 24, ...]   // query heads of layer i
//	"num_key_value_heads_per_layer": [32, 24, ...]   // key/value heads of layer i
//	"intermediate_size_per_layer":   [11008, 8256, ...] // MLP width of layer i
//
// plus "head_dim". The scalar HF fields (num_attention_heads, num_key_value_heads, intermediate_size)
// hold the per-layer maximum, so tools that only know the scalars see an upper bound.
// This package holds no GoMLX graph code.
package config

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"

	"github.com/llmpruner/llmpruner/lib/atomicfile"
	"github.com/pkg/errors"
)

// Arch names a supported architecture family.
type Arch string

const (
	// ArchLlama is the LLaMA family (LlamaForCausalLM): RMSNorm, RoPE (rotate_half), SwiGLU, GQA.
	ArchLlama Arch = "llama"
	// ArchChatGLM is ChatGLM-6B (v1).
	ArchChatGLM Arch = "chatglm"
)

// Keys of the per-layer lists llmpruner adds to config.json.
const (
	KeyHeadsPerLayer   = "num_attention_heads_per_layer"
	KeyKVHeadsPerLayer = "num_key_value_heads_per_layer"
	KeyInterPerLayer   = "intermediate_size_per_layer"
)

// RopeScaling is HF's "rope_scaling" object. Only RopeType "llama3" changes the frequencies;
// "default"/"" (or a nil RopeScaling) means plain RoPE.
type RopeScaling struct {
	RopeType                      string  `json:"rope_type,omitempty"`
	Type                          string  `json:"type,omitempty"` // older spelling of rope_type
	Factor                        float64 `json:"factor,omitempty"`
	LowFreqFactor                 float64 `json:"low_freq_factor,omitempty"`
	HighFreqFactor                float64 `json:"high_freq_factor,omitempty"`
	OriginalMaxPositionEmbeddings int     `json:"original_max_position_embeddings,omitempty"`
}

// Kind returns the scaling type ("llama3", "linear", ...), "" for none.
func (r *RopeScaling) Kind() string {
	if r == nil {
		return ""
	}
	if r.RopeType != "" {
		return r.RopeType
	}
	return r.Type
}

// Config is a resolved model configuration with explicit per-layer sizes.
type Config struct {
	Arch         Arch
	Hidden       int   // d_model (hidden_size)
	Vocab        int   // vocab_size
	HeadDim      int   // per-head dimension, explicit
	Heads        []int // [layer] query heads
	KVHeads      []int // [layer] key/value heads; Heads[i] % KVHeads[i] == 0
	Inter        []int // [layer] MLP width (intermediate size)
	RMSNormEps   float64
	RopeTheta    float64
	RopeScaling  *RopeScaling
	MaxPositions int // max_position_embeddings (context length)
	TieEmbed     bool
	AttnBias     bool // q/k/v/o have biases
	MLPBias      bool // gate/up/down have biases
	BOS          int  // -1 if unknown
	EOS          []int

	// Raw keeps every field of the source config.json so that writing it back preserves what we
	// do not model. Resolved fields above override it on write.
	Raw map[string]json.RawMessage
}

// NumLayers is the number of decoder layers.
func (c *Config) NumLayers() int { return len(c.Heads) }

// hfFields are the config.json fields Resolve reads.
type hfFields struct {
	Architectures         []string        `json:"architectures"`
	ModelType             string          `json:"model_type"`
	HiddenSize            int             `json:"hidden_size"`
	IntermediateSize      int             `json:"intermediate_size"`
	NumHiddenLayers       int             `json:"num_hidden_layers"`
	NumAttentionHeads     int             `json:"num_attention_heads"`
	NumKeyValueHeads      *int            `json:"num_key_value_heads"`
	HeadDim               *int            `json:"head_dim"`
	VocabSize             int             `json:"vocab_size"`
	MaxPositionEmbeddings int             `json:"max_position_embeddings"`
	RMSNormEps            *float64        `json:"rms_norm_eps"`
	RopeTheta             *float64        `json:"rope_theta"`
	RopeScaling           *RopeScaling    `json:"rope_scaling"`
	TieWordEmbeddings     *bool           `json:"tie_word_embeddings"`
	AttentionBias         bool            `json:"attention_bias"`
	MLPBias               bool            `json:"mlp_bias"`
	HiddenAct             string          `json:"hidden_act"`
	BOSTokenID            json.RawMessage `json:"bos_token_id"`
	EOSTokenID            json.RawMessage `json:"eos_token_id"`
	HeadsPerLayer         []int           `json:"num_attention_heads_per_layer"`
	KVHeadsPerLayer       []int           `json:"num_key_value_heads_per_layer"`
	InterPerLayer         []int           `json:"intermediate_size_per_layer"`
}

// Parse resolves config.json bytes. source names the file in error messages.
func Parse(data []byte, source string) (*Config, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, errors.Wrapf(err, "%s: invalid JSON", source)
	}
	var f hfFields
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, errors.Wrapf(err, "%s: invalid config fields", source)
	}
	arch, err := detectArch(f.ModelType, f.Architectures)
	if err != nil {
		return nil, errors.WithMessage(err, source)
	}
	if arch == ArchChatGLM {
		return parseChatGLM(data, raw, source) // chatglm.go
	}
	if arch != ArchLlama {
		return nil, errors.Errorf("%s: architecture %q is not handled by the LLaMA config reader", source, arch)
	}
	if f.HiddenAct != "" && f.HiddenAct != "silu" {
		return nil, errors.Errorf("%s: hidden_act %q is not supported (LLaMA uses silu)", source, f.HiddenAct)
	}
	c := &Config{
		Arch:         arch,
		Hidden:       f.HiddenSize,
		Vocab:        f.VocabSize,
		MaxPositions: f.MaxPositionEmbeddings,
		RMSNormEps:   1e-6,
		RopeTheta:    10000,
		RopeScaling:  f.RopeScaling,
		TieEmbed:     false,
		AttnBias:     f.AttentionBias,
		MLPBias:      f.MLPBias,
		BOS:          -1,
		Raw:          raw,
	}
	if f.RMSNormEps != nil {
		c.RMSNormEps = *f.RMSNormEps
	}
	if f.RopeTheta != nil {
		c.RopeTheta = *f.RopeTheta
	}
	if f.TieWordEmbeddings != nil {
		c.TieEmbed = *f.TieWordEmbeddings
	}
	if ids, err := parseIDs(f.BOSTokenID); err != nil {
		return nil, errors.WithMessagef(err, "%s: bos_token_id", source)
	} else if len(ids) > 0 {
		c.BOS = ids[0]
	}
	if c.EOS, err = parseIDs(f.EOSTokenID); err != nil {
		return nil, errors.WithMessagef(err, "%s: eos_token_id", source)
	}
	if c.Hidden <= 0 || c.Vocab <= 0 || f.NumHiddenLayers <= 0 || f.NumAttentionHeads <= 0 {
		return nil, errors.Errorf("%s: hidden_size (%d), vocab_size (%d), num_hidden_layers (%d) and num_attention_heads (%d) must be positive",
			source, c.Hidden, c.Vocab, f.NumHiddenLayers, f.NumAttentionHeads)
	}
	L := f.NumHiddenLayers
	kv := f.NumAttentionHeads
	if f.NumKeyValueHeads != nil {
		kv = *f.NumKeyValueHeads
	}
	err = layerShapes{
		headDim: f.HeadDim, heads: f.NumAttentionHeads, kvHeads: kv, inter: f.IntermediateSize,
		headsList: f.HeadsPerLayer, kvList: f.KVHeadsPerLayer, interList: f.InterPerLayer,
		layers: L, layersKey: "num_hidden_layers",
	}.resolve(c, source)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, errors.WithMessage(err, source)
	}
	return c, nil
}

// Load reads and resolves a config.json file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errors.Wrapf(err, "reading model config")
	}
	return Parse(data, path)
}

func detectArch(modelType string, archs []string) (Arch, error) {
	switch modelType {
	case "llama", "mistral":
		if modelType == "mistral" {
			return "", errors.Errorf("model_type %q is not supported (supported: llama, chatglm)", modelType)
		}
		return ArchLlama, nil
	case "chatglm":
		return ArchChatGLM, nil
	case "":
		for _, a := range archs {
			switch a {
			case "LlamaForCausalLM":
				return ArchLlama, nil
			case "ChatGLMModel", "ChatGLMForConditionalGeneration":
				return ArchChatGLM, nil
			}
		}
	}
	return "", errors.Errorf("unknown architecture (model_type %q, architectures %v); supported: llama, chatglm", modelType, archs)
}

// DetectArch reads only the architecture of a config.json file.
func DetectArch(data []byte, source string) (Arch, error) {
	var f struct {
		ModelType     string   `json:"model_type"`
		Architectures []string `json:"architectures"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return "", errors.Wrapf(err, "%s: invalid JSON", source)
	}
	a, err := detectArch(f.ModelType, f.Architectures)
	return a, errors.WithMessage(err, source)
}

func parseIDs(raw json.RawMessage) ([]int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one int
	if err := json.Unmarshal(raw, &one); err == nil {
		return []int{one}, nil
	}
	var many []int
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, errors.Errorf("expected an integer or a list of integers, got %s", raw)
	}
	return many, nil
}

// layerShapes is what a config file states about the attention and MLP sizes: model-wide scalars
// and, for pruned models, the per-layer lists llmpruner writes.
type layerShapes struct {
	headDim                      *int // explicit head_dim, when the file has one
	heads, kvHeads, inter        int  // model-wide values
	headsList, kvList, interList []int
	layers                       int
	layersKey                    string // the file's name for the layer count, for errors
}

// resolve sets c.HeadDim and the per-layer c.Heads, c.KVHeads and c.Inter. head_dim is derived as
// hidden/heads only when the file omits it (an unpruned HF config); llmpruner always writes it.
func (s layerShapes) resolve(c *Config, source string) error {
	if s.layers > MaxLayers {
		return errors.Errorf("%s: %s = %d is implausible (more than %d)", source, s.layersKey, s.layers, MaxLayers)
	}
	switch {
	case s.headDim != nil:
		c.HeadDim = *s.headDim
	case c.Hidden%s.heads == 0:
		c.HeadDim = c.Hidden / s.heads
	default:
		return errors.Errorf("%s: head_dim missing and hidden_size %d is not a multiple of num_attention_heads %d",
			source, c.Hidden, s.heads)
	}
	for _, l := range []struct {
		key  string
		list []int
	}{{KeyHeadsPerLayer, s.headsList}, {KeyKVHeadsPerLayer, s.kvList}, {KeyInterPerLayer, s.interList}} {
		if l.list != nil && len(l.list) != s.layers {
			return errors.Errorf("%s: %s has %d entries, %s is %d", source, l.key, len(l.list), s.layersKey, s.layers)
		}
	}
	c.Heads = perLayer(s.headsList, s.heads, s.layers)
	c.KVHeads = perLayer(s.kvList, s.kvHeads, s.layers)
	c.Inter = perLayer(s.interList, s.inter, s.layers)
	return nil
}

func perLayer(list []int, scalar, n int) []int {
	if list != nil {
		return slices.Clone(list)
	}
	out := make([]int, n)
	for i := range out {
		out[i] = scalar
	}
	return out
}

// MaxLayers and MaxDim bound the sizes a config may claim: far above any real model (LLaMA-3
// 405B has 126 layers and hidden size 16384; vocabularies stay below 10⁶), low enough that the
// per-layer tables and RoPE tables built from a hostile config.json stay small.
const (
	MaxLayers = 1 << 12
	MaxDim    = 1 << 22
)

// Validate checks internal consistency (positive sizes, GQA divisibility, RoPE scaling kind) and
// the MaxLayers / MaxDim bounds.
func (c *Config) Validate() error {
	L := len(c.Heads)
	if L == 0 {
		return errors.New("config has no layers")
	}
	if L > MaxLayers {
		return errors.Errorf("%d layers is implausible (more than %d)", L, MaxLayers)
	}
	if c.Hidden > MaxDim || c.Vocab > MaxDim || c.HeadDim > MaxDim {
		return errors.Errorf("hidden_size %d, vocab_size %d or head_dim %d is implausible (more than %d)", c.Hidden, c.Vocab, c.HeadDim, MaxDim)
	}
	if len(c.KVHeads) != L || len(c.Inter) != L {
		return errors.Errorf("per-layer lists disagree: %d heads, %d kv-heads, %d intermediate entries",
			len(c.Heads), len(c.KVHeads), len(c.Inter))
	}
	if c.Hidden <= 0 || c.Vocab <= 0 || c.HeadDim <= 0 {
		return errors.Errorf("hidden_size %d, vocab_size %d and head_dim %d must be positive", c.Hidden, c.Vocab, c.HeadDim)
	}
	if c.HeadDim%2 != 0 {
		return errors.Errorf("head_dim %d must be even for RoPE", c.HeadDim)
	}
	for i := range L {
		h, kv, in := c.Heads[i], c.KVHeads[i], c.Inter[i]
		if h <= 0 || kv <= 0 || in <= 0 {
			return errors.Errorf("layer %d: heads %d, kv-heads %d and intermediate size %d must be positive", i, h, kv, in)
		}
		if h > MaxDim || in > MaxDim {
			return errors.Errorf("layer %d: heads %d or intermediate size %d is implausible (more than %d)", i, h, in, MaxDim)
		}
		if h%kv != 0 {
			return errors.Errorf("layer %d: %d attention heads is not a multiple of %d key/value heads", i, h, kv)
		}
	}
	switch k := c.RopeScaling.Kind(); k {
	case "", "default":
	case "llama3":
		r := c.RopeScaling
		if r.Factor <= 0 || r.LowFreqFactor <= 0 || r.HighFreqFactor <= r.LowFreqFactor || r.OriginalMaxPositionEmbeddings <= 0 {
			return errors.Errorf("rope_scaling llama3 needs factor>0, 0<low_freq_factor<high_freq_factor and original_max_position_embeddings>0, got %+v", *r)
		}
	default:
		return errors.Errorf("rope_scaling type %q is not supported (supported: llama3)", k)
	}
	if c.Arch == ArchChatGLM {
		return c.validateChatGLM() // chatglm.go
	}
	return nil
}

// Clone returns a deep copy.
func (c *Config) Clone() *Config {
	d := *c
	d.Heads, d.KVHeads, d.Inter, d.EOS = slices.Clone(c.Heads), slices.Clone(c.KVHeads), slices.Clone(c.Inter), slices.Clone(c.EOS)
	if c.RopeScaling != nil {
		rs := *c.RopeScaling
		d.RopeScaling = &rs
	}
	d.Raw = make(map[string]json.RawMessage, len(c.Raw))
	for k, v := range c.Raw {
		d.Raw[k] = slices.Clone(v)
	}
	return &d
}

// Uniform reports whether all layers have the same sizes (an unpruned, HF-standard model).
func (c *Config) Uniform() bool {
	for i := range c.Heads {
		if c.Heads[i] != c.Heads[0] || c.KVHeads[i] != c.KVHeads[0] || c.Inter[i] != c.Inter[0] {
			return false
		}
	}
	return true
}

// Marshal renders config.json: Raw's fields with the resolved values written over them and head_dim
// always present; the per-layer lists only when the layers differ (a uniform model gets a stock
// config.json that transformers and vLLM load).
func (c *Config) Marshal() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Arch == ArchChatGLM {
		return c.marshalChatGLM() // chatglm.go
	}
	out := make(map[string]any, len(c.Raw)+8)
	for k, v := range c.Raw {
		out[k] = v
	}
	if _, ok := out["architectures"]; !ok {
		out["architectures"] = []string{"LlamaForCausalLM"}
	}
	out["model_type"] = string(c.Arch)
	out["hidden_size"] = c.Hidden
	out["vocab_size"] = c.Vocab
	out["num_hidden_layers"] = c.NumLayers()
	out["num_attention_heads"] = slices.Max(c.Heads)
	out["num_key_value_heads"] = slices.Max(c.KVHeads)
	out["intermediate_size"] = slices.Max(c.Inter)
	out["head_dim"] = c.HeadDim
	out["rms_norm_eps"] = c.RMSNormEps
	out["rope_theta"] = c.RopeTheta
	if c.RopeScaling != nil {
		out["rope_scaling"] = c.RopeScaling
	} else {
		out["rope_scaling"] = nil
	}
	out["max_position_embeddings"] = c.MaxPositions
	out["tie_word_embeddings"] = c.TieEmbed
	out["attention_bias"] = c.AttnBias
	out["mlp_bias"] = c.MLPBias
	out["hidden_act"] = "silu"
	if c.BOS >= 0 {
		out["bos_token_id"] = c.BOS
	}
	switch len(c.EOS) {
	case 0:
	case 1:
		out["eos_token_id"] = c.EOS[0]
	default:
		out["eos_token_id"] = c.EOS
	}
	if c.Uniform() {
		// A stock config.json (transformers, vLLM): the scalars say it all.
		delete(out, KeyHeadsPerLayer)
		delete(out, KeyKVHeadsPerLayer)
		delete(out, KeyInterPerLayer)
	} else {
		out[KeyHeadsPerLayer] = c.Heads
		out[KeyKVHeadsPerLayer] = c.KVHeads
		out[KeyInterPerLayer] = c.Inter
	}
	return json.MarshalIndent(out, "", "  ")
}

// Save writes config.json atomically.
func (c *Config) Save(path string) error {
	data, err := c.Marshal()
	if err != nil {
		return errors.WithMessagef(err, "saving %s", path)
	}
	return atomicfile.WriteFile(path, append(data, '\n'), 0o644)
}

// NumParams counts the parameters of the model described by the config (embeddings, all decoder
// layers, final norm, and the LM head unless tied).
func (c *Config) NumParams() int64 {
	if c.Arch == ArchChatGLM {
		return c.chatglmNumParams() // chatglm.go
	}
	D, V := int64(c.Hidden), int64(c.Vocab)
	n := V * D // embed_tokens
	if !c.TieEmbed {
		n += V * D // lm_head
	}
	n += D // final norm
	for i := range c.Heads {
		n += c.LayerParams(i)
	}
	return n
}

// LayerParams counts the parameters of decoder layer i.
func (c *Config) LayerParams(i int) int64 {
	if c.Arch == ArchChatGLM {
		return c.chatglmLayerParams(i) // chatglm.go
	}
	D, HD := int64(c.Hidden), int64(c.HeadDim)
	q := int64(c.Heads[i]) * HD
	kv := int64(c.KVHeads[i]) * HD
	f := int64(c.Inter[i])
	n := 2 * D              // input_layernorm, post_attention_layernorm
	n += D*q + 2*D*kv + q*D // q, k, v, o
	n += 3 * D * f          // gate, up, down
	if c.AttnBias {
		n += q + 2*kv + D
	}
	if c.MLPBias {
		n += 2*f + D
	}
	return n
}

// InvFrequencies returns the RoPE inverse frequencies [HeadDim/2], applying "llama3" scaling when
// configured (as HF's _compute_llama3_parameters).
func (c *Config) InvFrequencies() []float64 {
	half := c.HeadDim / 2
	inv := make([]float64, half)
	for i := range inv {
		inv[i] = 1 / math.Pow(c.RopeTheta, float64(2*i)/float64(c.HeadDim))
	}
	if c.RopeScaling.Kind() != "llama3" {
		return inv
	}
	r := c.RopeScaling
	oldCtx := float64(r.OriginalMaxPositionEmbeddings)
	lowWavelen := oldCtx / r.LowFreqFactor
	highWavelen := oldCtx / r.HighFreqFactor
	for i, f := range inv {
		wavelen := 2 * math.Pi / f
		switch {
		case wavelen < highWavelen:
			// high frequency: unchanged
		case wavelen > lowWavelen:
			inv[i] = f / r.Factor
		default:
			smooth := (oldCtx/wavelen - r.LowFreqFactor) / (r.HighFreqFactor - r.LowFreqFactor)
			inv[i] = (1-smooth)*f/r.Factor + smooth*f
		}
	}
	return inv
}

// String summarises the config on one line.
func (c *Config) String() string {
	return fmt.Sprintf("%s: %d layers, hidden %d, head_dim %d, vocab %d, heads %v, kv-heads %v, intermediate %v, tied=%v",
		c.Arch, c.NumLayers(), c.Hidden, c.HeadDim, c.Vocab, c.Heads, c.KVHeads, c.Inter, c.TieEmbed)
}
