package arch

// MACBreakdown splits a forward pass's multiply-accumulates the way LLM-Pruner's test_speedup.py
// counts them with ptflops and its custom hooks (for a sequence of S tokens, per decoder layer with
// H query heads, KV key/value heads of size hd, hidden size D, MLP width F, vocabulary V):
//
//	AttentionLinear  S·D·hd·(2H + 2KV)          q, k, v, o projections (the hook's 4·S·D·H·hd for MHA)
//	Attention        H·(S·S·hd + S·S + S·S·hd)  QKᵀ, softmax, attention·V
//	Rotary           2·S·hd·(H + KV)            RoPE on q and k (the hook's 2·(S·H·hd)·2 for MHA)
//	MLPLinear        M·S·D·F                    the MLP's M projections (3 for SwiGLU, 2 for GELU)
//	Activation       S·F                        SiLU / GELU (ptflops' pool hook: one per input element)
//	Norm             2·S·D per norm             two per layer plus the final norm
//	LMHead           S·D·V                      the output projection (also when tied)
//
// Embedding lookups, the SwiGLU product and residual additions count zero, as in ptflops.
// test_speedup.py's attention hook assumes multi-head attention (k and v as wide as q); for GQA
// the k/v projections and the rotary of k are counted at their real width, which gives the same
// numbers for MHA. Bias additions count S per output feature. LLaMA-7B at S=64 gives 424.02 G (the
// paper's dense #MACs), its block-pruned 20% model 339.60 G.
type MACBreakdown struct {
	AttentionLinear, Attention, Rotary, MLPLinear, Activation, Norm, LMHead int64
}

// Total sums the breakdown.
func (b MACBreakdown) Total() int64 {
	return b.AttentionLinear + b.Attention + b.Rotary + b.MLPLinear + b.Activation + b.Norm + b.LMHead
}

// layerMACs is the count of one decoder layer for S tokens: attention projections of q (H·hd
// outputs), k and v (KV·hd each) and o (D outputs) with qkvBias/oBias biases, mlpMats projections
// of width F with mlpBias biases on their F-wide (mlpMats−1 of them) and D-wide outputs, two norms.
type layerMACs struct {
	S, D, HD, H, KV, F, mlpMats int64
	qkvBias, oBias, mlpBias     bool
}

func (m layerMACs) add(b *MACBreakdown) {
	S, D, HD, H, KV, F := m.S, m.D, m.HD, m.H, m.KV, m.F
	b.AttentionLinear += S * D * HD * (2*H + 2*KV)
	if m.qkvBias {
		b.AttentionLinear += S * (H*HD + 2*KV*HD)
	}
	if m.oBias {
		b.AttentionLinear += S * D
	}
	b.Attention += H * (S*S*HD + S*S + S*S*HD)
	b.Rotary += 2 * S * HD * (H + KV)
	b.MLPLinear += m.mlpMats * S * D * F
	if m.mlpBias {
		b.MLPLinear += S * ((m.mlpMats-1)*F + D)
	}
	b.Activation += S * F
	b.Norm += 2 * (2 * S * D)
}
