package groups

import (
	"fmt"
	"slices"
	"sort"
)

// Kind is the kind of structure a group removes.
type Kind int

const (
	// Head is an attention head group: one head (MHA) or one key/value head together with the query
	// heads that read it (GQA).
	Head Kind = iota
	// MLPChannel is one intermediate channel of a SwiGLU MLP.
	MLPChannel
	// HiddenChannel is one channel of the residual stream, shared by every layer.
	HiddenChannel
	// Layer is a whole decoder layer.
	Layer
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case Head:
		return "head"
	case MLPChannel:
		return "mlp_channel"
	case HiddenChannel:
		return "hidden_channel"
	case Layer:
		return "layer"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Member is one coupled slice of a group: indices along one axis of one tensor.
type Member struct {
	// Tensor is the Hugging Face tensor name, e.g. "model.layers.0.self_attn.q_proj.weight".
	Tensor string
	// Axis is the axis cut: 0 = rows (output features of a [out, in] projection, or elements of a
	// 1-D tensor), 1 = columns (input features). -1 means the whole tensor (layer groups).
	Axis int
	// Indices along Axis, in scoring order (see package doc). Nil when Axis is -1.
	Indices []int
	// Bias marks bias vectors: removed with the group but not scored (as in the original, whose
	// importance functions read only weights).
	Bias bool
}

// Group is a set of members that are removed together.
type Group struct {
	Kind Kind
	// Layer is the decoder layer (-1 for hidden channels, which span all layers).
	Layer int
	// Unit is the index of the removed unit in the unpruned structure: the head (MHA) or key/value
	// head (GQA), the MLP or hidden channel, or the layer.
	Unit int
	// Members lists the coupled slices, root first.
	Members []Member
}

// Family is all groups of one kind rooted in one place (e.g. every head of layer 3): the set the
// per-layer pruning ratio applies to. Groups[i].Unit == i.
type Family struct {
	Kind   Kind
	Layer  int // -1 for hidden channels and the layer family
	Groups []Group
}

// Name describes the family for reports and errors, e.g. "layer 3 heads".
func (f *Family) Name() string {
	if f.Layer < 0 {
		return f.Kind.String() + "s"
	}
	return fmt.Sprintf("layer %d %ss", f.Layer, f.Kind)
}

// TensorAxis identifies one axis of one tensor.
type TensorAxis struct {
	Tensor string
	Axis   int
}

// Removal collects, per tensor axis, the sorted unique indices that removing the given groups
// deletes. Whole-tensor members (Axis -1) are returned in whole (their tensors disappear).
func Removal(remove []Group) (cut map[TensorAxis][]int, whole []string) {
	sets := map[TensorAxis]map[int]bool{}
	seen := map[string]bool{}
	for _, g := range remove {
		for _, m := range g.Members {
			if m.Axis < 0 {
				if !seen[m.Tensor] {
					seen[m.Tensor] = true
					whole = append(whole, m.Tensor)
				}
				continue
			}
			ta := TensorAxis{m.Tensor, m.Axis}
			if sets[ta] == nil {
				sets[ta] = map[int]bool{}
			}
			for _, i := range m.Indices {
				sets[ta][i] = true
			}
		}
	}
	cut = make(map[TensorAxis][]int, len(sets))
	for ta, s := range sets {
		idx := make([]int, 0, len(s))
		for i := range s {
			idx = append(idx, i)
		}
		sort.Ints(idx)
		cut[ta] = idx
	}
	sort.Strings(whole)
	return cut, whole
}

// Kept returns 0..n-1 without the sorted indices in removed.
func Kept(n int, removed []int) []int {
	kept := make([]int, 0, n-len(removed))
	for i := range n {
		if _, found := slices.BinarySearch(removed, i); !found {
			kept = append(kept, i)
		}
	}
	return kept
}

// span returns [start, start+n).
func span(start, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = start + i
	}
	return out
}
