package groups

import (
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/pkg/errors"
)

// LlamaLayerTensors lists the tensors of decoder layer l (weights, then biases present in cfg).
func LlamaLayerTensors(cfg *config.Config, l int) []string {
	names := []string{"input_layernorm.weight", "post_attention_layernorm.weight",
		"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight",
		"mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"}
	if cfg.AttnBias {
		names = append(names, "self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias", "self_attn.o_proj.bias")
	}
	if cfg.MLPBias {
		names = append(names, "mlp.gate_proj.bias", "mlp.up_proj.bias", "mlp.down_proj.bias")
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = config.LlamaLayerTensor(l, n)
	}
	return out
}

func checkLayer(cfg *config.Config, l int) error {
	if cfg.Arch != config.ArchLlama {
		return errors.Errorf("groups: architecture %q has no group definitions yet", cfg.Arch)
	}
	if l < 0 || l >= cfg.NumLayers() {
		return errors.Errorf("groups: layer %d out of range [0, %d)", l, cfg.NumLayers())
	}
	return nil
}

// QueryHeadsOf returns the query heads that read key/value head kv in layer l: kv·n_rep … kv·n_rep+n_rep−1
// (HF repeat_kv order).
func QueryHeadsOf(cfg *config.Config, l, kv int) []int {
	nRep := cfg.Heads[l] / cfg.KVHeads[l]
	return span(kv*nRep, nRep)
}

// AttentionHeads returns the head groups of layer l: one group per key/value head. With MHA that is
// one query head each (root q_proj, as hf_prune.py); with GQA a key/value head plus the n_rep query
// heads that read it (root k_proj, as llama3.py).
//
// Members: q_proj rows of the query heads (head by head), k_proj and v_proj rows of the kv head,
// o_proj columns of the query heads, and the q/k/v bias elements when attention_bias is set.
func AttentionHeads(cfg *config.Config, l int) (*Family, error) {
	if cfg.Arch == config.ArchChatGLM {
		return chatglmAttentionHeads(cfg, l) // chatglm.go
	}
	if err := checkLayer(cfg, l); err != nil {
		return nil, err
	}
	HD, nKV := cfg.HeadDim, cfg.KVHeads[l]
	nRep := cfg.Heads[l] / nKV
	t := func(rest string) string { return config.LlamaLayerTensor(l, "self_attn."+rest) }
	fam := &Family{Kind: Head, Layer: l, Groups: make([]Group, nKV)}
	for kv := range nKV {
		qRows := span(kv*nRep*HD, nRep*HD) // query heads kv*nRep ..., head by head
		kvRows := span(kv*HD, HD)
		q := Member{Tensor: t("q_proj.weight"), Axis: 0, Indices: qRows}
		k := Member{Tensor: t("k_proj.weight"), Axis: 0, Indices: kvRows}
		v := Member{Tensor: t("v_proj.weight"), Axis: 0, Indices: kvRows}
		o := Member{Tensor: t("o_proj.weight"), Axis: 1, Indices: qRows}
		members := []Member{q, k, v, o}
		if nRep > 1 {
			members = []Member{k, q, v, o}
		}
		if cfg.AttnBias {
			members = append(members,
				Member{Tensor: t("q_proj.bias"), Axis: 0, Indices: qRows, Bias: true},
				Member{Tensor: t("k_proj.bias"), Axis: 0, Indices: kvRows, Bias: true},
				Member{Tensor: t("v_proj.bias"), Axis: 0, Indices: kvRows, Bias: true})
		}
		fam.Groups[kv] = Group{Kind: Head, Layer: l, Unit: kv, Members: members}
	}
	return fam, nil
}

// MLPChannels returns the intermediate-channel groups of layer l: gate_proj row c (root), up_proj
// row c, down_proj column c, and the gate/up bias element c when mlp_bias is set.
func MLPChannels(cfg *config.Config, l int) (*Family, error) {
	if cfg.Arch == config.ArchChatGLM {
		return chatglmMLPChannels(cfg, l) // chatglm.go
	}
	if err := checkLayer(cfg, l); err != nil {
		return nil, err
	}
	t := func(rest string) string { return config.LlamaLayerTensor(l, "mlp."+rest) }
	fam := &Family{Kind: MLPChannel, Layer: l, Groups: make([]Group, cfg.Inter[l])}
	for c := range cfg.Inter[l] {
		idx := []int{c}
		members := []Member{
			{Tensor: t("gate_proj.weight"), Axis: 0, Indices: idx},
			{Tensor: t("up_proj.weight"), Axis: 0, Indices: idx},
			{Tensor: t("down_proj.weight"), Axis: 1, Indices: idx},
		}
		if cfg.MLPBias {
			members = append(members,
				Member{Tensor: t("gate_proj.bias"), Axis: 0, Indices: idx, Bias: true},
				Member{Tensor: t("up_proj.bias"), Axis: 0, Indices: idx, Bias: true})
		}
		fam.Groups[c] = Group{Kind: MLPChannel, Layer: l, Unit: c, Members: members}
	}
	return fam, nil
}

// HiddenChannels returns the residual-stream channel groups. Channel d is: element d of every
// RMSNorm weight (root: layer 0's input_layernorm, as the original's RMSNorm roots), column d of the
// embedding, of q/k/v/gate/up in every layer and of lm_head, row d of o_proj and down_proj, and
// element d of the o/down biases when present.
//
// Unlike the other kinds, removing a hidden channel is not the same as zeroing it: RMSNorm divides
// by the root mean square over the hidden size, which becomes D' < D. What holds exactly (package
// test): the sliced model equals the unpruned model with the removed channels zeroed, every RMSNorm
// weight multiplied by sqrt(D'/D) and ε replaced by ε·D'/D.
func HiddenChannels(cfg *config.Config) (*Family, error) {
	if cfg.Arch == config.ArchChatGLM {
		return chatglmHiddenChannels(cfg) // chatglm.go
	}
	if err := checkLayer(cfg, 0); err != nil {
		return nil, err
	}
	var cols, rows, elems, biases []string
	for l := range cfg.NumLayers() {
		t := func(rest string) string { return config.LlamaLayerTensor(l, rest) }
		elems = append(elems, t("input_layernorm.weight"), t("post_attention_layernorm.weight"))
		cols = append(cols, t("self_attn.q_proj.weight"), t("self_attn.k_proj.weight"), t("self_attn.v_proj.weight"),
			t("mlp.gate_proj.weight"), t("mlp.up_proj.weight"))
		rows = append(rows, t("self_attn.o_proj.weight"), t("mlp.down_proj.weight"))
		if cfg.AttnBias {
			biases = append(biases, t("self_attn.o_proj.bias"))
		}
		if cfg.MLPBias {
			biases = append(biases, t("mlp.down_proj.bias"))
		}
	}
	elems = append(elems, config.LlamaFinalNorm)
	cols = append([]string{config.LlamaEmbed}, cols...)
	if !cfg.TieEmbed {
		cols = append(cols, config.LlamaLMHead)
	}
	return hiddenChannelFamily(cfg.Hidden, hiddenTensors{elems: elems, cols: cols, rows: rows, biases: biases}), nil
}

// DecoderLayers returns one group per decoder layer: every tensor of the layer, whole (Axis -1).
// Removing layer l renumbers the layers after it (ChatGLM's residual scale alpha = sqrt(2·N) keeps
// the unpruned N, config.KeyChatGLMAlphaLayers).
func DecoderLayers(cfg *config.Config) (*Family, error) {
	if cfg.Arch != config.ArchChatGLM {
		if err := checkLayer(cfg, 0); err != nil {
			return nil, err
		}
	}
	return layerFamily(cfg, LayerTensors), nil
}

// hiddenTensors lists the tensors a hidden channel d runs through: elems (norm weights) and rows
// are indexed on axis 0, cols on axis 1, biases (not scored) on axis 0.
type hiddenTensors struct {
	elems, cols, rows, biases []string
}

// hiddenChannelFamily builds the hidden-channel family of a model with hidden size D from the
// tensors each channel runs through; the first elems entry is the root.
func hiddenChannelFamily(D int, t hiddenTensors) *Family {
	fam := &Family{Kind: HiddenChannel, Layer: -1, Groups: make([]Group, D)}
	for d := range D {
		idx := []int{d}
		members := make([]Member, 0, len(t.elems)+len(t.cols)+len(t.rows)+len(t.biases))
		for _, n := range t.elems {
			members = append(members, Member{Tensor: n, Axis: 0, Indices: idx})
		}
		for _, n := range t.cols {
			members = append(members, Member{Tensor: n, Axis: 1, Indices: idx})
		}
		for _, n := range t.rows {
			members = append(members, Member{Tensor: n, Axis: 0, Indices: idx})
		}
		for _, n := range t.biases {
			members = append(members, Member{Tensor: n, Axis: 0, Indices: idx, Bias: true})
		}
		fam.Groups[d] = Group{Kind: HiddenChannel, Layer: -1, Unit: d, Members: members}
	}
	return fam
}

// layerFamily builds one group per decoder layer holding every tensor of the layer, whole (Axis -1).
func layerFamily(cfg *config.Config, tensors func(cfg *config.Config, l int) []string) *Family {
	fam := &Family{Kind: Layer, Layer: -1, Groups: make([]Group, cfg.NumLayers())}
	for l := range cfg.NumLayers() {
		var members []Member
		for _, n := range tensors(cfg, l) {
			members = append(members, Member{Tensor: n, Axis: -1})
		}
		fam.Groups[l] = Group{Kind: Layer, Layer: l, Unit: l, Members: members}
	}
	return fam
}
