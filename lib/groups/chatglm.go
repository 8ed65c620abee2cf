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
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/pkg/errors"
)

// ChatGLMLayerTensors lists the tensors of ChatGLM layer l.
func ChatGLMLayerTensors(l int) []string {
	var out []string
	for _, n := range []string{"input_layernorm", "attention.query_key_value", "attention.dense", "post_attention_layernorm",
		"mlp.dense_h_to_4h", "mlp.dense_4h_to_h"} {
		out = append(out, config.ChatGLMLayerTensor(l, n+".weight"), config.ChatGLMLayerTensor(l, n+".bias"))
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
	qkv, qkvBias := config.ChatGLMLayerTensor(l, "attention.query_key_value.weight"), config.ChatGLMLayerTensor(l, "attention.query_key_value.bias")
	dense := config.ChatGLMLayerTensor(l, "attention.dense.weight")
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
	up, down := config.ChatGLMLayerTensor(l, "mlp.dense_h_to_4h.weight"), config.ChatGLMLayerTensor(l, "mlp.dense_4h_to_h.weight")
	upBias := config.ChatGLMLayerTensor(l, "mlp.dense_h_to_4h.bias")
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
		t := func(rest string) string { return config.ChatGLMLayerTensor(l, rest) }
		norms = append(norms, t("input_layernorm.weight"), t("post_attention_layernorm.weight"))
		normBiases = append(normBiases, t("input_layernorm.bias"), t("post_attention_layernorm.bias"))
		cols = append(cols, t("attention.query_key_value.weight"), t("mlp.dense_h_to_4h.weight"))
		rows = append(rows, t("attention.dense.weight"), t("mlp.dense_4h_to_h.weight"))
		biases = append(biases, t("attention.dense.bias"), t("mlp.dense_4h_to_h.bias"))
	}
	norms = append(norms, config.ChatGLMFinalNorm+".weight")
	normBiases = append(normBiases, config.ChatGLMFinalNorm+".bias")
	cols = append([]string{config.ChatGLMEmbed}, cols...)
	if !cfg.TieEmbed {
		cols = append(cols, config.ChatGLMLMHead)
	}
	return hiddenChannelFamily(cfg.Hidden, hiddenTensors{elems: norms, cols: cols, rows: rows, biases: append(normBiases, biases...)}), nil
}
