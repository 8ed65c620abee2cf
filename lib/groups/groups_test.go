package groups_test

import (
	"math"
	"slices"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/groups"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/llmpruner/llmpruner/lib/prune"
)

// logits runs the forward pass of cfg over store: [B·S·V] flat.
func logits(t *testing.T, store *model.Store, cfg *config.Config, tokens [][]int) []float32 {
	t.Helper()
	exec, err := model.NewExec(groupstest.Backend(t), store, func(scope *model.Scope, tok *Node) *Node {
		return models.Logits(scope, cfg, tok, nil, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()
	flat := make([]int32, 0)
	for _, r := range tokens {
		for _, x := range r {
			flat = append(flat, int32(x))
		}
	}
	out, err := exec.Call(tensors.FromFlatDataAndDimensions(flat, len(tokens), len(tokens[0])))
	if err != nil {
		t.Fatal(err)
	}
	return tensors.MustCopyFlatData[float32](out[0])
}

// zeroMembers sets every member slice of the groups to zero (whole tensors for Axis -1).
func zeroMembers(t *testing.T, store *model.Store, gs []groups.Group) {
	t.Helper()
	for _, g := range gs {
		for _, m := range g.Members {
			v := store.GetVariable(models.VarPath(m.Tensor))
			val := v.MustValue()
			dims := val.Shape().Dimensions
			z := tensors.MustCopyFlatData[float32](val)
			for flat := range z {
				switch {
				case m.Axis < 0:
					z[flat] = 0
				case len(dims) == 1 && slices.Contains(m.Indices, flat):
					z[flat] = 0
				case len(dims) == 2 && m.Axis == 0 && slices.Contains(m.Indices, flat/dims[1]):
					z[flat] = 0
				case len(dims) == 2 && m.Axis == 1 && slices.Contains(m.Indices, flat%dims[1]):
					z[flat] = 0
				}
			}
			if err := v.SetValue(tensors.FromFlatDataAndDimensions(z, dims...)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

func clone(t *testing.T, s *model.Store) *model.Store {
	t.Helper()
	c, err := s.Clone()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRemovalEqualsZeroing proves the groups are exactly coupled: slicing a group out gives the same
// logits (1e-5) as zeroing its members in the unpruned model. Tiny config: layer 0 MHA, layers 1-2
// GQA, non-uniform widths, with and without biases.
func TestRemovalEqualsZeroing(t *testing.T) {
	for _, bias := range []bool{false, true} {
		cfg := groupstest.Tiny(t)
		cfg.AttnBias, cfg.MLPBias = bias, bias
		m := groupstest.RandomModel(t, cfg, 1, 0.3)
		tokens := groupstest.Tokens(2, 7, cfg.Vocab, 3)
		heads0, _ := groups.AttentionHeads(cfg, 0)
		heads1, _ := groups.AttentionHeads(cfg, 1)
		mlp0, _ := groups.MLPChannels(cfg, 0)
		mlp2, _ := groups.MLPChannels(cfg, 2)
		cases := map[string][]groups.Group{
			"MHA heads 1,3 of layer 0":          {heads0.Groups[1], heads0.Groups[3]},
			"GQA kv head 0 (q heads 0,1) of l1": {heads1.Groups[0]},
			"MLP channels 0,5,11 of layer 0":    {mlp0.Groups[0], mlp0.Groups[5], mlp0.Groups[11]},
			"MLP channel 7 of layer 2 + heads":  {mlp2.Groups[7], heads1.Groups[1], heads0.Groups[0]},
		}
		for name, gs := range cases {
			zeroed := clone(t, m.Store)
			zeroMembers(t, zeroed, gs)
			want := logits(t, zeroed, cfg, tokens)
			sliced := clone(t, m.Store)
			next, err := prune.RemoveGroups(sliced, cfg, gs)
			if err != nil {
				t.Fatal(err)
			}
			got := logits(t, sliced, next, tokens)
			if d := maxDiff(got, want); d > 1e-5 {
				t.Errorf("bias=%v %s: sliced vs zeroed logits differ by %.3g", bias, name, d)
			}
			if d := maxDiff(got, logits(t, m.Store, cfg, tokens)); d < 1e-4 {
				t.Errorf("bias=%v %s: removing the group did not change the logits (%.3g): test cannot fail", bias, name, d)
			}
		}

		// A layer whose o_proj and down_proj (and their biases) are zero is the identity: removing it
		// equals zeroing those.
		layers, _ := groups.DecoderLayers(cfg)
		zeroed := clone(t, m.Store)
		var residualOut []groups.Group
		for _, mem := range layers.Groups[1].Members {
			switch mem.Tensor {
			case "model.layers.1.self_attn.o_proj.weight", "model.layers.1.mlp.down_proj.weight",
				"model.layers.1.self_attn.o_proj.bias", "model.layers.1.mlp.down_proj.bias":
				residualOut = append(residualOut, groups.Group{Members: []groups.Member{mem}})
			}
		}
		zeroMembers(t, zeroed, residualOut)
		want := logits(t, zeroed, cfg, tokens)
		sliced := clone(t, m.Store)
		next, kept, err := prune.RemoveLayers(sliced, cfg, []int{1})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(kept, []int{0, 2}) || next.NumLayers() != 2 || next.Heads[1] != 2 {
			t.Fatalf("RemoveLayers: kept %v, config %v", kept, next)
		}
		if d := maxDiff(logits(t, sliced, next, tokens), want); d > 1e-5 {
			t.Errorf("bias=%v: removing layer 1 vs zeroing its residual outputs: logits differ by %.3g", bias, d)
		}
	}
}

// TestHiddenChannelRemoval states what holds for hidden channels. Removing channels leaves D' of D;
// RMSNorm then averages x² over D' instead of D. With the removed channels zeroed everywhere (so the
// residual stream is 0 there), x/sqrt(Σx²/D' + ε) = sqrt(D'/D)·x/sqrt(Σx²/D + ε·D'/D): the sliced
// model equals the zeroed model whose RMSNorm weights are multiplied by sqrt(D'/D) and whose ε is
// ε·D'/D.
// (Zeroing alone is not equivalent; the test checks that too.)
func TestHiddenChannelRemoval(t *testing.T) {
	for _, tied := range []bool{false, true} {
		cfg := groupstest.Tiny(t)
		cfg.TieEmbed = tied
		cfg.AttnBias, cfg.MLPBias = !tied, !tied
		m := groupstest.RandomModel(t, cfg, 5, 0.3)
		tokens := groupstest.Tokens(2, 6, cfg.Vocab, 9)
		hidden, err := groups.HiddenChannels(cfg)
		if err != nil {
			t.Fatal(err)
		}
		gs := []groups.Group{hidden.Groups[2], hidden.Groups[9], hidden.Groups[10], hidden.Groups[15]}
		D, Dp := float64(cfg.Hidden), float64(cfg.Hidden-len(gs))

		sliced := clone(t, m.Store)
		next, err := prune.RemoveGroups(sliced, cfg, gs)
		if err != nil {
			t.Fatal(err)
		}
		got := logits(t, sliced, next, tokens)

		zeroed := clone(t, m.Store)
		zeroMembers(t, zeroed, gs)
		if d := maxDiff(got, logits(t, zeroed, cfg, tokens)); d < 1e-4 {
			t.Errorf("tied=%v: zeroing alone matched slicing (%.3g); RMSNorm should renormalise", tied, d)
		}
		scale := float32(math.Sqrt(Dp / D))
		for v := range zeroed.IterVariables() {
			name := models.HFName(v.Path())
			if v.Shape().Rank() != 1 || !(slices.Contains([]string{"model.norm.weight"}, name) || isLayerNorm(name)) {
				continue
			}
			w := tensors.MustCopyFlatData[float32](v.MustValue())
			for i := range w {
				w[i] *= scale
			}
			if err := v.SetValue(tensors.FromFlatDataAndDimensions(w, len(w))); err != nil {
				t.Fatal(err)
			}
		}
		adj := cfg.Clone()
		adj.RMSNormEps = cfg.RMSNormEps * Dp / D
		if d := maxDiff(got, logits(t, zeroed, adj, tokens)); d > 1e-5 {
			t.Errorf("tied=%v: sliced vs zeroed-and-renormalised logits differ by %.3g", tied, d)
		}
	}
}

func isLayerNorm(name string) bool {
	return len(name) > 0 && (hasSuffix(name, "input_layernorm.weight") || hasSuffix(name, "post_attention_layernorm.weight"))
}

func hasSuffix(s, suf string) bool { return len(s) >= len(suf) && s[len(s)-len(suf):] == suf }

// TestGroupMembers checks the worked example of the package doc (GQA kv head 1 of layer 0).
func TestGroupMembers(t *testing.T) {
	cfg := groupstest.Config(t, map[string]any{"hidden_size": 8, "intermediate_size": 6, "num_hidden_layers": 1,
		"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 2, "vocab_size": 10})
	f, err := groups.AttentionHeads(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	g := f.Groups[1]
	want := []groups.Member{
		{Tensor: "model.layers.0.self_attn.k_proj.weight", Axis: 0, Indices: []int{2, 3}},
		{Tensor: "model.layers.0.self_attn.q_proj.weight", Axis: 0, Indices: []int{4, 5, 6, 7}},
		{Tensor: "model.layers.0.self_attn.v_proj.weight", Axis: 0, Indices: []int{2, 3}},
		{Tensor: "model.layers.0.self_attn.o_proj.weight", Axis: 1, Indices: []int{4, 5, 6, 7}},
	}
	if len(g.Members) != len(want) {
		t.Fatalf("members %+v", g.Members)
	}
	for i := range want {
		if g.Members[i].Tensor != want[i].Tensor || g.Members[i].Axis != want[i].Axis || !slices.Equal(g.Members[i].Indices, want[i].Indices) {
			t.Errorf("member %d = %+v, want %+v", i, g.Members[i], want[i])
		}
	}
	if q := groups.QueryHeadsOf(cfg, 0, 1); !slices.Equal(q, []int{2, 3}) {
		t.Errorf("QueryHeadsOf(kv 1) = %v", q)
	}
	if _, err := groups.AttentionHeads(cfg, 1); err == nil {
		t.Error("layer out of range: no error")
	}
}

// TestQwen2RemovalEqualsZeroing: Qwen2's head groups carry their q/k/v bias slices (o_proj has no
// bias), so removing a head group equals zeroing its members, biases included; the same for MLP
// channels.
func TestQwen2RemovalEqualsZeroing(t *testing.T) {
	cfg := groupstest.Tiny(t)
	cfg.Arch, cfg.AttnBias, cfg.QKVBiasOnly = arch.Qwen2, true, true
	m := groupstest.RandomModel(t, cfg, 5, 0.3)
	if m.Store.GetVariable(models.VarPath("model.layers.0.self_attn.k_proj.bias")) == nil ||
		m.Store.GetVariable(models.VarPath("model.layers.0.self_attn.o_proj.bias")) != nil {
		t.Fatal("Qwen2 model without k_proj bias or with an o_proj bias")
	}
	tokens := groupstest.Tokens(2, 7, cfg.Vocab, 9)
	heads0, _ := groups.AttentionHeads(cfg, 0)
	heads1, _ := groups.AttentionHeads(cfg, 1)
	mlp1, _ := groups.MLPChannels(cfg, 1)
	for name, gs := range map[string][]groups.Group{
		"MHA head 2 of layer 0":          {heads0.Groups[2]},
		"GQA kv head 1 of layer 1 + MLP": {heads1.Groups[1], mlp1.Groups[3]},
	} {
		for _, g := range gs {
			if g.Kind == groups.Head && len(g.Members) != 7 { // q, k, v, o + q/k/v biases
				t.Fatalf("%s: %d members", name, len(g.Members))
			}
		}
		zeroed := clone(t, m.Store)
		zeroMembers(t, zeroed, gs)
		want := logits(t, zeroed, cfg, tokens)
		sliced := clone(t, m.Store)
		next, err := prune.RemoveGroups(sliced, cfg, gs)
		if err != nil {
			t.Fatal(err)
		}
		got := logits(t, sliced, next, tokens)
		if d := maxDiff(got, want); d > 1e-5 {
			t.Errorf("%s: sliced vs zeroed logits differ by %.3g", name, d)
		}
		if d := maxDiff(got, logits(t, m.Store, cfg, tokens)); d < 1e-4 {
			t.Errorf("%s: removing the group did not change the logits (%.3g): test cannot fail", name, d)
		}
	}
}
