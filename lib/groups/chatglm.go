package groups

// ChatGLM-6B groups. The tensor names are THUDM/chatglm-6b's:
//
//	transformer.layers.{l}.attention.query_key_value.{weight,bias}  [3·H·HD, D], rows per head [q | k | v]
//	transformer.layers.{l}.attention.dense.{weight,bias}            [D, H·HD]
//	transformer.layers.{l}.mlp.dense_h_to_4h.{weight,bias}          [I, D]
//	transformer.layers.{l}.mlp.dense_4h_to_h.{weight,bias}          [D, I]
//	transformer.layers.{l}.{input,post_attention}_layernorm.{weight,bias} [D]
//	transformer.word_embeddings.weight, transformer.final_layernorm.{weight,bias}, lm_head.weight (untied only)
//
// Worked example (head_dim 2, 4 heads, layer 0): the group of head 1 is
//
//	query_key_value.weight axis 0 [6 7]   // root: head 1's query rows (rows 6·1 … 6·1+1)
//	query_key_value.weight axis 0 [8 9]   // its key rows
//	query_key_value.weight axis 0 [10 11] // its value rows
//	dense.weight           axis 1 [2 3]   // dense input columns of head 1
//	query_key_value.bias   axis 0 [6 … 11] (bias, not scored)
//
// so q, k, v and dense are four members of head_dim indices each, as LLaMA's q_proj, k_proj,
// v_proj and o_proj: every importance reduction means the same thing for both architectures.

import (
	"fmt"

	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/pkg/errors"
)

// ChatGLMLayerTensor names a tensor of ChatGLM layer l, e.g. ChatGLMLayerTensor(3, "attention.dense.weight").
func ChatGLMLayerTensor(l int, rest string) string {
	return fmt.Sprintf("transformer.layers.%d.%s", l, rest)
}

const (
	chatglmEmbed  = "transformer.word_embeddings.weight"
	chatglmFinal  = "transformer.final_layernorm."
	chatglmLMHead = "lm_head.weight"
)

// ChatGLMLayerTensors lists the tensors of ChatGLM layer l.
func ChatGLMLayerTensors(l int) []string {
	var out []string
	for _, n := range []string{"input_layernorm", "attention.query_key_value", "attention.dense", "post_attention_layernorm",
		"mlp.dense_h_to_4h", "mlp.dense_4h_to_h"} {
		out = append(out, ChatGLMLayerTensor(l, n+".weight"), ChatGLMLayerTensor(l, n+".bias"))
	}
	return out
}

// LayerTensors lists the tensors of decoder layer l for cfg's architecture (what removing the
// layer deletes).
func LayerTensors(cfg *config.Config, l int) []string {
	if cfg.Arch == config.ArchChatGLM {
		return ChatGLMLayerTensors(l)
	}
	return LlamaLayerTensors(cfg, l)
}

func checkChatGLMLayer(cfg *config.Config, l int) error {
	if l < 0 || l >= cfg.NumLayers() {
		return errors.Errorf("groups: layer %d out of range [0, %d)", l, cfg.NumLayers())
	}
	return nil
}

// chatglmAttentionHeads returns one group per head of layer l: the head's query, key and value
// rows of query_key_value (root: the query rows), the dense input columns, and the head's
// query_key_value bias elements.
func chatglmAttentionHeads(cfg *config.Config, l int) (*Family, error) {
	if err := checkChatGLMLayer(cfg, l); err != nil {
		return nil, err
	}
	HD := cfg.HeadDim
	qkv, qkvBias := ChatGLMLayerTensor(l, "attention.query_key_value.weight"), ChatGLMLayerTensor(l, "attention.query_key_value.bias")
	dense := ChatGLMLayerTensor(l, "attention.dense.weight")
	fam := &Family{Kind: Head, Layer: l, Groups: make([]Group, cfg.Heads[l])}
	for h := range cfg.Heads[l] {
		base := 3 * HD * h
		fam.Groups[h] = Group{Kind: Head, Layer: l, Unit: h, Members: []Member{
			{Tensor: qkv, Axis: 0, Indices: span(base, HD)},
			{Tensor: qkv, Axis: 0, Indices: span(base+HD, HD)},
			{Tensor: qkv, Axis: 0, Indices: span(base+2*HD, HD)},
			{Tensor: dense, Axis: 1, Indices: span(h*HD, HD)},
			{Tensor: qkvBias, Axis: 0, Indices: span(base, 3*HD), Bias: true},
		}}
	}
	return fam, nil
}

// chatglmMLPChannels returns the MLP channel groups of layer l: dense_h_to_4h row c (root),
// dense_4h_to_h column c, and dense_h_to_4h's bias element c.
func chatglmMLPChannels(cfg *config.Config, l int) (*Family, error) {
	if err := checkChatGLMLayer(cfg, l); err != nil {
		return nil, err
	}
	up, down := ChatGLMLayerTensor(l, "mlp.dense_h_to_4h.weight"), ChatGLMLayerTensor(l, "mlp.dense_4h_to_h.weight")
	upBias := ChatGLMLayerTensor(l, "mlp.dense_h_to_4h.bias")
	fam := &Family{Kind: MLPChannel, Layer: l, Groups: make([]Group, cfg.Inter[l])}
	for c := range cfg.Inter[l] {
		idx := []int{c}
		fam.Groups[c] = Group{Kind: MLPChannel, Layer: l, Unit: c, Members: []Member{
			{Tensor: up, Axis: 0, Indices: idx},
			{Tensor: down, Axis: 1, Indices: idx},
			{Tensor: upBias, Axis: 0, Indices: idx, Bias: true},
		}}
	}
	return fam, nil
}

// chatglmHiddenChannels returns the residual-stream channel groups. Channel d is element d of every
// LayerNorm weight (root: layer 0's input_layernorm) and bias, column d of the word embeddings, of
// query_key_value and dense_h_to_4h in every layer and of an untied lm_head, row d of dense and
// dense_4h_to_h and element d of their biases.
//
// LayerNorm subtracts the mean over the hidden size before normalising, so unlike the other kinds
// (and unlike LLaMA's RMSNorm) removing hidden channels is not a re-weighting of zeroed channels;
// the package tests check the sliced model against an independent PyTorch slicing instead.
func chatglmHiddenChannels(cfg *config.Config) (*Family, error) {
	var norms, normBiases, cols, rows, biases []string
	for l := range cfg.NumLayers() {
		t := func(rest string) string { return ChatGLMLayerTensor(l, rest) }
		norms = append(norms, t("input_layernorm.weight"), t("post_attention_layernorm.weight"))
		normBiases = append(normBiases, t("input_layernorm.bias"), t("post_attention_layernorm.bias"))
		cols = append(cols, t("attention.query_key_value.weight"), t("mlp.dense_h_to_4h.weight"))
		rows = append(rows, t("attention.dense.weight"), t("mlp.dense_4h_to_h.weight"))
		biases = append(biases, t("attention.dense.bias"), t("mlp.dense_4h_to_h.bias"))
	}
	norms = append(norms, chatglmFinal+"weight")
	normBiases = append(normBiases, chatglmFinal+"bias")
	cols = append([]string{chatglmEmbed}, cols...)
	if !cfg.TieEmbed {
		cols = append(cols, chatglmLMHead)
	}
	fam := &Family{Kind: HiddenChannel, Layer: -1, Groups: make([]Group, cfg.Hidden)}
	for d := range cfg.Hidden {
		idx := []int{d}
		members := make([]Member, 0, len(norms)+len(normBiases)+len(cols)+len(rows)+len(biases))
		for _, n := range norms {
			members = append(members, Member{Tensor: n, Axis: 0, Indices: idx})
		}
		for _, n := range cols {
			members = append(members, Member{Tensor: n, Axis: 1, Indices: idx})
		}
		for _, n := range rows {
			members = append(members, Member{Tensor: n, Axis: 0, Indices: idx})
		}
		for _, n := range append(normBiases, biases...) {
			members = append(members, Member{Tensor: n, Axis: 0, Indices: idx, Bias: true})
		}
		fam.Groups[d] = Group{Kind: HiddenChannel, Layer: -1, Unit: d, Members: members}
	}
	return fam, nil
}

// chatglmDecoderLayers returns one group per layer: every tensor of the layer, whole. The residual
// scale alpha = sqrt(2·N) keeps the unpruned N (config.KeyChatGLMAlphaLayers).
func chatglmDecoderLayers(cfg *config.Config) (*Family, error) {
	fam := &Family{Kind: Layer, Layer: -1, Groups: make([]Group, cfg.NumLayers())}
	for l := range cfg.NumLayers() {
		var members []Member
		for _, n := range ChatGLMLayerTensors(l) {
			members = append(members, Member{Tensor: n, Axis: -1})
		}
		fam.Groups[l] = Group{Kind: Layer, Layer: l, Unit: l, Members: members}
	}
	return fam, nil
}
