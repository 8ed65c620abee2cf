package arch

// The LLaMA tensor layout (LlamaForCausalLM):
//
//	model.embed_tokens.weight                          [V, D]
//	model.layers.{l}.input_layernorm.weight            [D]
//	model.layers.{l}.self_attn.{q,k,v}_proj.weight     [H·hd, D], [KV·hd, D], [KV·hd, D]
//	model.layers.{l}.self_attn.o_proj.weight           [D, H·hd]
//	model.layers.{l}.post_attention_layernorm.weight   [D]
//	model.layers.{l}.mlp.{gate,up}_proj.weight         [F, D]
//	model.layers.{l}.mlp.down_proj.weight              [D, F]
//	model.norm.weight                                  [D]
//	lm_head.weight                                     [V, D] (absent when tied)
//
// plus .bias vectors on the attention projections (attention_bias; Qwen2: q, k and v always, o
// never) and the MLP projections (mlp_bias).
//
// The families with this layout differ only in their config.json:
//
//	llama    LlamaForCausalLM   LLaMA-1/2/3/3.1/3.2, Vicuna, TinyLlama (Llama-3.2: tied embeddings,
//	                            llama3 rope_scaling)
//	mistral  MistralForCausalLM sliding_window: position i attends to j only when i−j < window
//	qwen2    Qwen2ForCausalLM   q/k/v biases; use_sliding_window must be false (the shipped configs);
//	                            sliding_window and max_window_layers then have no effect

import (
	"encoding/json"
	"slices"

	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/pkg/errors"
)

// LLaMA tensor names outside the layers, and the layer prefix.
const (
	LlamaEmbed     = "model.embed_tokens.weight"
	LlamaFinalNorm = "model.norm.weight"
	LlamaLMHead    = "lm_head.weight"
	llamaLayer     = "model.layers.%d."
)

// LlamaLayerTensor names a tensor of decoder layer l, e.g. LlamaLayerTensor(3, "self_attn.q_proj.weight").
func LlamaLayerTensor(l int, rest string) string { return layerName(llamaLayer, l, rest) }

// llama is a family with the LLaMA tensor layout.
type llama struct {
	name        config.Arch // also config.json's model_type
	title       string
	hfArch      string // config.json's architectures entry
	qkvBias     bool   // q/k/v always have biases, o never (Qwen2)
	window      bool   // reads sliding_window (Mistral)
	qwenWindows bool   // has use_sliding_window / max_window_layers (Qwen2)
}

var (
	llamaFamily   Family = llama{name: Llama, title: "LLaMA", hfArch: "LlamaForCausalLM"}
	mistralFamily Family = llama{name: Mistral, title: "Mistral", hfArch: "MistralForCausalLM", window: true}
	qwen2Family   Family = llama{name: Qwen2, title: "Qwen2", hfArch: "Qwen2ForCausalLM", qkvBias: true, qwenWindows: true}
)

func (f llama) Name() config.Arch { return f.name }
func (f llama) Title() string     { return f.title }
func (llama) Layout() string      { return "llama" }

func (f llama) matches(modelType string, archs []string) bool {
	return modelType == string(f.name) || modelType == "" && slices.Contains(archs, f.hfArch)
}

// llamaFields are the config.json fields the LLaMA reader uses.
type llamaFields struct {
	HiddenSize            int                 `json:"hidden_size"`
	IntermediateSize      int                 `json:"intermediate_size"`
	NumHiddenLayers       int                 `json:"num_hidden_layers"`
	NumAttentionHeads     int                 `json:"num_attention_heads"`
	NumKeyValueHeads      *int                `json:"num_key_value_heads"`
	HeadDim               *int                `json:"head_dim"`
	VocabSize             int                 `json:"vocab_size"`
	MaxPositionEmbeddings int                 `json:"max_position_embeddings"`
	RMSNormEps            *float64            `json:"rms_norm_eps"`
	RopeTheta             *float64            `json:"rope_theta"`
	RopeScaling           *config.RopeScaling `json:"rope_scaling"`
	TieWordEmbeddings     *bool               `json:"tie_word_embeddings"`
	AttentionBias         bool                `json:"attention_bias"`
	MLPBias               bool                `json:"mlp_bias"`
	HiddenAct             string              `json:"hidden_act"`
	BOSTokenID            json.RawMessage     `json:"bos_token_id"`
	EOSTokenID            json.RawMessage     `json:"eos_token_id"`
	SlidingWindow         *int                `json:"sliding_window"`
	UseSlidingWindow      bool                `json:"use_sliding_window"`
	HeadsPerLayer         []int               `json:"num_attention_heads_per_layer"`
	KVHeadsPerLayer       []int               `json:"num_key_value_heads_per_layer"`
	InterPerLayer         []int               `json:"intermediate_size_per_layer"`
}

func (fam llama) parseConfig(data []byte, raw map[string]json.RawMessage, source string) (*config.Config, error) {
	var f llamaFields
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, errors.Wrapf(err, "%s: invalid config fields", source)
	}
	if f.HiddenAct != "" && f.HiddenAct != "silu" {
		return nil, errors.Errorf("%s: hidden_act %q is not supported (%s uses silu)", source, f.HiddenAct, fam.title)
	}
	if fam.qwenWindows && f.UseSlidingWindow {
		return nil, errors.Errorf("%s: use_sliding_window true is not supported (the released Qwen2/Qwen2.5 configs have false)", source)
	}
	c := &config.Config{
		Arch:         fam.name,
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
	if fam.qkvBias {
		c.AttnBias, c.QKVBiasOnly = true, true
	}
	if fam.window && f.SlidingWindow != nil {
		c.SlidingWindow = *f.SlidingWindow
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
	if ids, err := config.ParseIDs(f.BOSTokenID); err != nil {
		return nil, errors.WithMessagef(err, "%s: bos_token_id", source)
	} else if len(ids) > 0 {
		c.BOS = ids[0]
	}
	var err error
	if c.EOS, err = config.ParseIDs(f.EOSTokenID); err != nil {
		return nil, errors.WithMessagef(err, "%s: eos_token_id", source)
	}
	if c.Hidden <= 0 || c.Vocab <= 0 || f.NumHiddenLayers <= 0 || f.NumAttentionHeads <= 0 {
		return nil, errors.Errorf("%s: hidden_size (%d), vocab_size (%d), num_hidden_layers (%d) and num_attention_heads (%d) must be positive",
			source, c.Hidden, c.Vocab, f.NumHiddenLayers, f.NumAttentionHeads)
	}
	kv := f.NumAttentionHeads
	if f.NumKeyValueHeads != nil {
		kv = *f.NumKeyValueHeads
	}
	err = config.LayerShapes{
		HeadDim: f.HeadDim, Heads: f.NumAttentionHeads, KVHeads: kv, Inter: f.IntermediateSize,
		HeadsList: f.HeadsPerLayer, KVList: f.KVHeadsPerLayer, InterList: f.InterPerLayer,
		Layers: f.NumHiddenLayers, LayersKey: "num_hidden_layers",
	}.Resolve(c, source)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (f llama) configFields(c *config.Config) map[string]any {
	out := map[string]any{
		"model_type":              string(c.Arch),
		"hidden_size":             c.Hidden,
		"vocab_size":              c.Vocab,
		"num_hidden_layers":       c.NumLayers(),
		"num_attention_heads":     slices.Max(c.Heads),
		"num_key_value_heads":     slices.Max(c.KVHeads),
		"intermediate_size":       slices.Max(c.Inter),
		"head_dim":                c.HeadDim,
		"rms_norm_eps":            c.RMSNormEps,
		"rope_theta":              c.RopeTheta,
		"rope_scaling":            c.RopeScaling,
		"max_position_embeddings": c.MaxPositions,
		"tie_word_embeddings":     c.TieEmbed,
		"attention_bias":          c.AttnBias,
		"mlp_bias":                c.MLPBias,
		"hidden_act":              "silu",
	}
	if c.RopeScaling == nil {
		out["rope_scaling"] = nil
	}
	var rawType string
	_ = json.Unmarshal(c.Raw["model_type"], &rawType)
	if _, ok := c.Raw["architectures"]; !ok || rawType != "" && rawType != string(c.Arch) { // absent, or another family's
		out["architectures"] = []string{f.hfArch}
	}
	if f.qkvBias { // fixed by the family, not a config.json field
		delete(out, "attention_bias")
		delete(out, "mlp_bias")
	}
	if f.window {
		out["sliding_window"] = nil
		if c.SlidingWindow > 0 {
			out["sliding_window"] = c.SlidingWindow
		}
	}
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
	return out
}

func (f llama) validate(c *config.Config) error {
	if c.QKVBiasOnly != f.qkvBias || f.qkvBias && !c.AttnBias {
		return errors.Errorf("%s: q/k/v biases without an o_proj bias are %s's layout only", f.title, Qwen2)
	}
	if c.SlidingWindow > 0 && !f.window {
		return errors.Errorf("%s has no sliding-window attention", f.title)
	}
	return nil
}

func (llama) Embedding() string   { return LlamaEmbed }
func (llama) LMHead() string      { return LlamaLMHead }
func (llama) LayerPrefix() string { return llamaLayer }

// llamaLayerParts are a layer's tensors relative to its prefix, with their shapes, in checkpoint
// order.
func llamaLayerParts(c *config.Config, l int) []Tensor {
	D, q, kv, F := c.Hidden, c.Heads[l]*c.HeadDim, c.KVHeads[l]*c.HeadDim, c.Inter[l]
	t := []Tensor{{"input_layernorm.weight", []int{D}},
		{"self_attn.q_proj.weight", []int{q, D}}, {"self_attn.k_proj.weight", []int{kv, D}},
		{"self_attn.v_proj.weight", []int{kv, D}}, {"self_attn.o_proj.weight", []int{D, q}}}
	if c.AttnBias {
		t = append(t, Tensor{"self_attn.q_proj.bias", []int{q}}, Tensor{"self_attn.k_proj.bias", []int{kv}},
			Tensor{"self_attn.v_proj.bias", []int{kv}})
	}
	if c.OBias() {
		t = append(t, Tensor{"self_attn.o_proj.bias", []int{D}})
	}
	t = append(t, Tensor{"post_attention_layernorm.weight", []int{D}},
		Tensor{"mlp.gate_proj.weight", []int{F, D}}, Tensor{"mlp.up_proj.weight", []int{F, D}}, Tensor{"mlp.down_proj.weight", []int{D, F}})
	if c.MLPBias {
		t = append(t, Tensor{"mlp.gate_proj.bias", []int{F}}, Tensor{"mlp.up_proj.bias", []int{F}}, Tensor{"mlp.down_proj.bias", []int{D}})
	}
	return t
}

// LayerTensors: the weights (norms first), then the biases present.
func (llama) LayerTensors(c *config.Config, l int) []string {
	names := []string{"input_layernorm.weight", "post_attention_layernorm.weight",
		"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight",
		"mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"}
	if c.AttnBias {
		names = append(names, "self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias")
	}
	if c.OBias() {
		names = append(names, "self_attn.o_proj.bias")
	}
	if c.MLPBias {
		names = append(names, "mlp.gate_proj.bias", "mlp.up_proj.bias", "mlp.down_proj.bias")
	}
	for i, n := range names {
		names[i] = LlamaLayerTensor(l, n)
	}
	return names
}

func (llama) Tensors(c *config.Config) []Tensor {
	V, D := c.Vocab, c.Hidden
	out := []Tensor{{LlamaEmbed, []int{V, D}}}
	for l := range c.NumLayers() {
		for _, t := range llamaLayerParts(c, l) {
			out = append(out, Tensor{LlamaLayerTensor(l, t.Name), t.Shape})
		}
	}
	out = append(out, Tensor{LlamaFinalNorm, []int{D}})
	if !c.TieEmbed {
		out = append(out, Tensor{LlamaLMHead, []int{V, D}})
	}
	return out
}

// HeadBlocks: one group per key/value head. With MHA that is one query head (root q_proj, as
// hf_prune.py); with GQA the key/value head plus the n_rep query heads that read it (root k_proj,
// as llama3.py, HF repeat_kv order). Members: q_proj rows of the query heads, k_proj and v_proj
// rows of the kv head, o_proj columns of the query heads, the q/k/v bias elements.
func (llama) HeadBlocks(c *config.Config, l int) []Block {
	HD := c.HeadDim
	nRep := c.Heads[l] / c.KVHeads[l]
	t := func(rest string) string { return LlamaLayerTensor(l, "self_attn."+rest) }
	q := Block{Tensor: t("q_proj.weight"), Stride: nRep * HD, Width: nRep * HD}
	k := Block{Tensor: t("k_proj.weight"), Stride: HD, Width: HD}
	v := Block{Tensor: t("v_proj.weight"), Stride: HD, Width: HD}
	o := Block{Tensor: t("o_proj.weight"), Axis: 1, Stride: nRep * HD, Width: nRep * HD}
	blocks := []Block{q, k, v, o}
	if nRep > 1 {
		blocks = []Block{k, q, v, o}
	}
	if c.AttnBias {
		qb, kb, vb := q, k, v
		qb.Tensor, kb.Tensor, vb.Tensor = t("q_proj.bias"), t("k_proj.bias"), t("v_proj.bias")
		qb.Bias, kb.Bias, vb.Bias = true, true, true
		blocks = append(blocks, qb, kb, vb)
	}
	return blocks
}

// MLPBlocks: gate_proj row c (root), up_proj row c, down_proj column c, and the gate/up bias
// element c when mlp_bias is set.
func (llama) MLPBlocks(c *config.Config, l int) []Block {
	t := func(rest string) string { return LlamaLayerTensor(l, "mlp."+rest) }
	blocks := []Block{
		{Tensor: t("gate_proj.weight"), Stride: 1, Width: 1},
		{Tensor: t("up_proj.weight"), Stride: 1, Width: 1},
		{Tensor: t("down_proj.weight"), Axis: 1, Stride: 1, Width: 1},
	}
	if c.MLPBias {
		blocks = append(blocks,
			Block{Tensor: t("gate_proj.bias"), Stride: 1, Width: 1, Bias: true},
			Block{Tensor: t("up_proj.bias"), Stride: 1, Width: 1, Bias: true})
	}
	return blocks
}

// HiddenTensors: element d of every RMSNorm weight (root: layer 0's input_layernorm, as the
// original's RMSNorm roots), column d of the embedding, of q/k/v/gate/up in every layer and of
// lm_head, row d of o_proj and down_proj, element d of the o/down biases when present.
func (llama) HiddenTensors(c *config.Config) Hidden {
	var h Hidden
	for l := range c.NumLayers() {
		t := func(rest string) string { return LlamaLayerTensor(l, rest) }
		h.Elems = append(h.Elems, t("input_layernorm.weight"), t("post_attention_layernorm.weight"))
		h.Cols = append(h.Cols, t("self_attn.q_proj.weight"), t("self_attn.k_proj.weight"), t("self_attn.v_proj.weight"),
			t("mlp.gate_proj.weight"), t("mlp.up_proj.weight"))
		h.Rows = append(h.Rows, t("self_attn.o_proj.weight"), t("mlp.down_proj.weight"))
		if c.OBias() {
			h.Biases = append(h.Biases, t("self_attn.o_proj.bias"))
		}
		if c.MLPBias {
			h.Biases = append(h.Biases, t("mlp.down_proj.bias"))
		}
	}
	h.Elems = append(h.Elems, LlamaFinalNorm)
	h.Cols = append([]string{LlamaEmbed}, h.Cols...)
	if !c.TieEmbed {
		h.Cols = append(h.Cols, LlamaLMHead)
	}
	return h
}

func (llama) LayerParams(c *config.Config, l int) int64 {
	var n int64
	for _, t := range llamaLayerParts(c, l) {
		n += numel(t.Shape)
	}
	return n
}

// NumParams: embeddings, every layer, the final norm, and lm_head unless tied.
func (f llama) NumParams(c *config.Config) int64 { return countTensors(f.Tensors(c)) }

func (llama) MACs(c *config.Config, S int) MACBreakdown {
	var b MACBreakdown
	s, D := int64(S), int64(c.Hidden)
	for l := range c.NumLayers() {
		layerMACs{S: s, D: D, HD: int64(c.HeadDim), H: int64(c.Heads[l]), KV: int64(c.KVHeads[l]), F: int64(c.Inter[l]),
			mlpMats: 3, qkvBias: c.AttnBias, oBias: c.OBias(), mlpBias: c.MLPBias}.add(&b)
	}
	b.Norm += 2 * s * D
	b.LMHead = s * D * int64(c.Vocab)
	return b
}

// LoRA: the seven projections of a decoder layer (post_training.py's default).
func (llama) LoRA() LoRATargets {
	return LoRATargets{LayerPrefix: llamaLayer, Targets: []LoRATarget{
		{"q", "self_attn.q_proj"}, {"k", "self_attn.k_proj"}, {"v", "self_attn.v_proj"}, {"o", "self_attn.o_proj"},
		{"gate", "mlp.gate_proj"}, {"up", "mlp.up_proj"}, {"down", "mlp.down_proj"},
	}}
}

// ResidualOutputs: o_proj and down_proj (weights and biases) write into the residual stream.
func (llama) ResidualOutputs(c *config.Config, l int) ([]string, error) {
	var out []string
	for _, rest := range []string{"self_attn.o_proj.weight", "self_attn.o_proj.bias", "mlp.down_proj.weight", "mlp.down_proj.bias"} {
		out = append(out, LlamaLayerTensor(l, rest))
	}
	return out, nil
}

// OutputProjections: o_proj and down_proj.
func (llama) OutputProjections(c *config.Config, l int) (attn, mlp string) {
	return LlamaLayerTensor(l, "self_attn.o_proj"), LlamaLayerTensor(l, "mlp.down_proj")
}

func (f llama) OutputBiases(c *config.Config, l int) (attn, mlp string) {
	attn, mlp = f.OutputProjections(c, l)
	return attn + ".bias", mlp + ".bias"
}

// EnableBiases: Hugging Face's attention_bias puts a bias on all of q, k, v and o, mlp_bias on
// gate, up and down. Qwen2's modeling code has no o_proj and no MLP biases (whatever config.json
// says), so a Qwen2 model that needs them becomes what it then is: a LLaMA model with
// attention_bias (its q/k/v biases kept, o_proj's added) and mlp_bias as asked —
// LlamaForCausalLM computes exactly Qwen2's forward pass plus those biases (same RMSNorm, RoPE,
// SwiGLU and GQA; Qwen2's sliding window is inactive in every config llmpruner accepts).
func (f llama) EnableBiases(c *config.Config, attn, mlp bool) error {
	if !attn && !mlp {
		return nil
	}
	if f.qkvBias {
		c.Arch, c.QKVBiasOnly = Llama, false
	}
	c.AttnBias = c.AttnBias || attn
	c.MLPBias = c.MLPBias || mlp
	return nil
}

// llamaGGUF are llama.cpp's names for the LLaMA layout.
var llamaGGUF = GGUFNames{
	Arch: "llama", PerLayerArch: "deci", Pre: "llama-bpe",
	Global: map[string]string{LlamaEmbed: "token_embd.weight", LlamaFinalNorm: "output_norm.weight", LlamaLMHead: "output.weight"},
	Layer: map[string]string{
		"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
		"self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
		"mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
	},
}

// GGUF: LLaMA, Llama-3.x and Mistral are llama.cpp's "llama" (Mistral without its sliding window,
// which llama.cpp's llama graph does not have: the same outputs for contexts up to the window);
// Qwen2 is its "qwen2" (rope neox, q/k/v biases, q_proj and o_proj [hidden, hidden]). Models whose
// layers differ are "deci", which adds q/k/v biases when present (create_tensor_qkv, build_qkv).
func (f llama) GGUF() *GGUFNames {
	if f.qkvBias {
		g := llamaGGUF
		g.Arch, g.Pre, g.HalfSplitRoPE, g.SquareAttention = "qwen2", "qwen2", true, true
		return &g
	}
	return &llamaGGUF
}

// qkvBiasOnlyFamily reports whether f's layers have q/k/v biases and no o_proj bias (Qwen2).
func qkvBiasOnlyFamily(f Family) bool {
	l, ok := f.(llama)
	return ok && l.qkvBias
}

func numel(shape []int) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= int64(d)
	}
	return n
}

func countTensors(ts []Tensor) int64 {
	var n int64
	for _, t := range ts {
		n += numel(t.Shape)
	}
	return n
}
