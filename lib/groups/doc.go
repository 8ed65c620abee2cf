// Package groups describes the coupled structures of a model that must be pruned together
// ("groups", in DepGraph / Torch-Pruning terms): removing one attention head means removing rows of
// q_proj, k_proj and v_proj and the matching columns of o_proj, or the model no longer computes
// anything sensible.
//
// A Group is a documented list of Members, each a (tensor, axis, indices) triple naming the Hugging
// Face tensor, the axis that is cut and the indices along it. Removing a group deletes every member's
// indices from its tensor; the property test in this package proves, for every group kind, that this
// is exactly equivalent to zeroing the group's weights in the unpruned model (hidden channels: see
// HiddenChannel).
//
// Architecture-specific definitions live in one file per architecture (llama.go); the types here are
// generic, so ChatGLM can add chatglm.go.
//
// # Worked example
//
// LLaMA with hidden 8, head_dim 2, 4 query heads, 2 key/value heads (GQA, n_rep = 2), layer 0.
// The attention group of kv head 1 serves query heads 2 and 3 (HF repeat_kv: query head h reads kv
// head h / n_rep), so it is
//
//	model.layers.0.self_attn.k_proj.weight  axis 0  [2 3]          // root: kv head 1's rows
//	model.layers.0.self_attn.q_proj.weight  axis 0  [4 5 6 7]      // query heads 2, 3
//	model.layers.0.self_attn.v_proj.weight  axis 0  [2 3]
//	model.layers.0.self_attn.o_proj.weight  axis 1  [4 5 6 7]      // o_proj columns of heads 2, 3
//
// Removing it leaves q_proj [4, 8], k_proj/v_proj [2, 8], o_proj [8, 4] and the config's layer 0 with
// 2 heads and 1 kv head. With MHA (n_rep = 1) the root is q_proj and each member has head_dim indices.
//
// An MLP channel c of layer l is gate_proj row c, up_proj row c and down_proj column c (plus the
// gate/up bias element c when mlp_bias is set).
//
// Members are listed root first; importance's "first" reduction uses the root member, and member
// scores of different lengths are folded onto the shortest by summing consecutive blocks, in the
// member's index order. Listing a GQA group's query rows head by head therefore folds each kv channel
// with the query channels that really read it (see package importance).
package groups
