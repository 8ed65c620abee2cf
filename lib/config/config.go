// Package config holds the resolved model configuration, family-neutral: explicit per-layer
// dimensions and the fields every forward pass reads. lib/arch reads and writes each family's
// config.json into and out of a Config.
//
// Pruned models are non-uniform: every decoder layer may keep a different number of attention heads,
// key/value heads and MLP channels. Config therefore stores those sizes per layer from the start, and
// the head dimension explicitly (it is never derived as hidden/heads after loading).
//
// The config.json llmpruner writes keeps every Hugging Face field (unknown ones are preserved verbatim) and
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
	"slices"

	"github.com/pkg/errors"
)

// Arch names a model family (see lib/arch).
type Arch string

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
	QKVBiasOnly  bool // with AttnBias: only q/k/v have biases, o has none (Qwen2)
	MLPBias      bool // gate/up/down have biases
	// SlidingWindow > 0 lets position i attend only to positions j with i−j < SlidingWindow
	// (Mistral); 0 = all previous positions.
	SlidingWindow int
	BOS           int // -1 if unknown
	EOS           []int

	// Raw keeps every field of the source config.json so that writing it back preserves what we
	// do not model. Resolved fields above override it on write.
	Raw map[string]json.RawMessage
}

// NumLayers is the number of decoder layers.
func (c *Config) NumLayers() int { return len(c.Heads) }

// OBias reports whether the attention output projection has a bias.
func (c *Config) OBias() bool { return c.AttnBias && !c.QKVBiasOnly }

// ParseIDs reads a token id field of config.json: an integer, a list of integers, or null.
func ParseIDs(raw json.RawMessage) ([]int, error) {
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

// LayerShapes is what a config file states about the attention and MLP sizes: model-wide scalars
// and, for pruned models, the per-layer lists llmpruner writes.
type LayerShapes struct {
	HeadDim                      *int // explicit head_dim, when the file has one
	Heads, KVHeads, Inter        int  // model-wide values
	HeadsList, KVList, InterList []int
	Layers                       int
	LayersKey                    string // the file's name for the layer count, for errors
}

// Resolve sets c.HeadDim and the per-layer c.Heads, c.KVHeads and c.Inter. head_dim is derived as
// hidden/heads only when the file omits it (an unpruned HF config); llmpruner always writes it.
func (s LayerShapes) Resolve(c *Config, source string) error {
	if s.Layers > MaxLayers {
		return errors.Errorf("%s: %s = %d is implausible (more than %d)", source, s.LayersKey, s.Layers, MaxLayers)
	}
	switch {
	case s.HeadDim != nil:
		c.HeadDim = *s.HeadDim
	case c.Hidden%s.Heads == 0:
		c.HeadDim = c.Hidden / s.Heads
	default:
		return errors.Errorf("%s: head_dim missing and hidden_size %d is not a multiple of num_attention_heads %d",
			source, c.Hidden, s.Heads)
	}
	for _, l := range []struct {
		key  string
		list []int
	}{{KeyHeadsPerLayer, s.HeadsList}, {KeyKVHeadsPerLayer, s.KVList}, {KeyInterPerLayer, s.InterList}} {
		if l.list != nil && len(l.list) != s.Layers {
			return errors.Errorf("%s: %s has %d entries, %s is %d", source, l.key, len(l.list), s.LayersKey, s.Layers)
		}
	}
	c.Heads = perLayer(s.HeadsList, s.Heads, s.Layers)
	c.KVHeads = perLayer(s.KVList, s.KVHeads, s.Layers)
	c.Inter = perLayer(s.InterList, s.Inter, s.Layers)
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
// the MaxLayers / MaxDim bounds; arch.Validate adds the family's own constraints.
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
	if c.SlidingWindow < 0 {
		return errors.Errorf("sliding window %d must not be negative", c.SlidingWindow)
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
