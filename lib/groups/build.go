package groups

// Building the families of a model from its architecture's description (lib/arch): every family
// is built the same way for every architecture.

import (
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/pkg/errors"
)

// LayerTensors lists the tensors of decoder layer l (what removing the layer deletes).
func LayerTensors(cfg *config.Config, l int) []string { return arch.Of(cfg).LayerTensors(cfg, l) }

func checkLayer(cfg *config.Config, l int) error {
	if _, err := arch.ByName(cfg.Arch); err != nil {
		return errors.WithMessage(err, "groups")
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

// blockFamily builds the n groups of kind k in layer l from their blocks (arch.Block): group u
// holds each block's indices of unit u, the first block being the root.
func blockFamily(k Kind, l, n int, blocks []arch.Block) *Family {
	fam := &Family{Kind: k, Layer: l, Groups: make([]Group, n)}
	for u := range n {
		members := make([]Member, len(blocks))
		for i, b := range blocks {
			members[i] = Member{Tensor: b.Tensor, Axis: b.Axis, Indices: b.Indices(u), Bias: b.Bias}
		}
		fam.Groups[u] = Group{Kind: k, Layer: l, Unit: u, Members: members}
	}
	return fam
}

// AttentionHeads returns the head groups of layer l: one group per key/value head (see the
// architecture's arch.Family.HeadBlocks for the members; LLaMA: with MHA one query head, root
// q_proj, as hf_prune.py; with GQA a key/value head plus the n_rep query heads that read it, root
// k_proj, as llama3.py).
func AttentionHeads(cfg *config.Config, l int) (*Family, error) {
	if err := checkLayer(cfg, l); err != nil {
		return nil, err
	}
	return blockFamily(Head, l, cfg.KVHeads[l], arch.Of(cfg).HeadBlocks(cfg, l)), nil
}

// MLPChannels returns the intermediate-channel groups of layer l (LLaMA: gate_proj row c as root,
// up_proj row c, down_proj column c, and the gate/up bias element c when mlp_bias is set).
func MLPChannels(cfg *config.Config, l int) (*Family, error) {
	if err := checkLayer(cfg, l); err != nil {
		return nil, err
	}
	return blockFamily(MLPChannel, l, cfg.Inter[l], arch.Of(cfg).MLPBlocks(cfg, l)), nil
}

// HiddenChannels returns the residual-stream channel groups (arch.Family.HiddenTensors). LLaMA's
// channel d is element d of every RMSNorm weight (root: layer 0's input_layernorm, as the
// original's RMSNorm roots), column d of the embedding, of q/k/v/gate/up in every layer and of
// lm_head, row d of o_proj and down_proj, and element d of the o/down biases when present.
//
// Unlike the other kinds, removing a hidden channel is not the same as zeroing it: RMSNorm divides
// by the root mean square over the hidden size, which becomes D' < D. What holds exactly (package
// test): the sliced model equals the unpruned model with the removed channels zeroed, every RMSNorm
// weight multiplied by sqrt(D'/D) and ε replaced by ε·D'/D. ChatGLM's LayerNorm subtracts the mean
// first, so its test compares with an independent PyTorch slicing instead.
func HiddenChannels(cfg *config.Config) (*Family, error) {
	if err := checkLayer(cfg, 0); err != nil {
		return nil, err
	}
	t := arch.Of(cfg).HiddenTensors(cfg)
	fam := &Family{Kind: HiddenChannel, Layer: -1, Groups: make([]Group, cfg.Hidden)}
	for d := range cfg.Hidden {
		idx := []int{d}
		members := make([]Member, 0, len(t.Elems)+len(t.Cols)+len(t.Rows)+len(t.Biases))
		for _, n := range t.Elems {
			members = append(members, Member{Tensor: n, Axis: 0, Indices: idx})
		}
		for _, n := range t.Cols {
			members = append(members, Member{Tensor: n, Axis: 1, Indices: idx})
		}
		for _, n := range t.Rows {
			members = append(members, Member{Tensor: n, Axis: 0, Indices: idx})
		}
		for _, n := range t.Biases {
			members = append(members, Member{Tensor: n, Axis: 0, Indices: idx, Bias: true})
		}
		fam.Groups[d] = Group{Kind: HiddenChannel, Layer: -1, Unit: d, Members: members}
	}
	return fam, nil
}

// DecoderLayers returns one group per decoder layer: every tensor of the layer, whole (Axis -1).
// Removing layer l renumbers the layers after it (ChatGLM's residual scale keeps the unpruned
// depth, arch.KeyChatGLMAlphaLayers).
func DecoderLayers(cfg *config.Config) (*Family, error) {
	if err := checkLayer(cfg, 0); err != nil {
		return nil, err
	}
	fam := &Family{Kind: Layer, Layer: -1, Groups: make([]Group, cfg.NumLayers())}
	for l := range cfg.NumLayers() {
		var members []Member
		for _, n := range LayerTensors(cfg, l) {
			members = append(members, Member{Tensor: n, Axis: -1})
		}
		fam.Groups[l] = Group{Kind: Layer, Layer: l, Unit: l, Members: members}
	}
	return fam, nil
}
