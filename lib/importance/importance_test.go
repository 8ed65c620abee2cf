package importance

import (
	"math"
	"strings"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/llmpruner/llmpruner/lib/groups"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/models"
)

// TestGroupScoresFold checks folding and every reduction on a GQA head group by hand: hidden 8,
// head_dim 2, 4 query heads, 2 kv heads. Kv head 1 serves query heads 2 and 3 (q rows 4..7); its
// kv channel c must be folded with q rows 4+c and 6+c (not 2+c, 6+c as llama3.py's layer-wide fold).
func TestGroupScoresFold(t *testing.T) {
	cfg := groupstest.Config(t, map[string]any{"hidden_size": 8, "intermediate_size": 4, "num_hidden_layers": 1,
		"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 2, "vocab_size": 10})
	fam, err := groups.AttentionHeads(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := "model.layers.0.self_attn."
	q := []float64{1, 2, 3, 4, 5, 6, 7, 8}
	o := []float64{10, 20, 30, 40, 50, 60, 70, 80}
	k := []float64{0.5, 1.5, 2.5, 3.5}
	v := []float64{9, 0.25, 11, 0.75}
	sal := Salience{
		{Tensor: p + "q_proj.weight", Axis: 0}: q, {Tensor: p + "o_proj.weight", Axis: 1}: o,
		{Tensor: p + "k_proj.weight", Axis: 0}: k, {Tensor: p + "v_proj.weight", Axis: 0}: v,
	}
	// kv head 1: folded q = [5+7, 6+8] = [12, 14]; o = [50+70, 60+80] = [120, 140]; k = [2.5, 3.5]; v = [11, 0.75]
	want := map[Reduction]float64{
		ReductionSum:   (12 + 120 + 2.5 + 11) + (14 + 140 + 3.5 + 0.75),
		ReductionMean:  ((12 + 120 + 2.5 + 11) + (14 + 140 + 3.5 + 0.75)) / 4,
		ReductionMax:   120 + 140,
		ReductionProd:  12*120*2.5*11 + 14*140*3.5*0.75,
		ReductionFirst: 2.5 + 3.5, // root = k_proj for GQA
	}
	for red, w := range want {
		got, err := GroupScores([]*groups.Family{fam}, sal, red)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got[0][1]-w) > 1e-9 {
			t.Errorf("%s: kv head 1 score %g, want %g", red, got[0][1], w)
		}
	}
}

// refSalience computes the Taylor member saliences on the host from full gradients returned by a
// separate graph: per-sample gradients (batch of 1) for A = (1/N) Σ g_j², the batched gradient for g.
func refSalience(t *testing.T, m *models.Model, calib [][]int, mode TaylorMode, axes []groups.TensorAxis) Salience {
	t.Helper()
	var names []string
	for v := range m.Store.IterVariables() {
		names = append(names, models.HFName(v.Path()))
	}
	exec, err := model.NewExec(m.Backend, m.Store, func(scope *model.Scope, tok *Node) []*Node {
		nodes := map[string]*Node{}
		hooks := &models.Hooks{Weight: func(g *Graph, n string) *Node {
			if nodes[n] == nil {
				nodes[n] = models.VariableF32(scope.Store(), g, n)
			}
			return nodes[n]
		}}
		loss := models.LMLoss(models.Logits(scope, m.Config, tok, nil, hooks), tok, nil)
		ws := make([]*Node, len(names))
		for i, n := range names {
			ws[i] = hooks.Weight(tok.Graph(), n)
		}
		return Gradient(loss, ws...)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()
	grads := func(rows [][]int) map[string][]float64 {
		out, err := exec.Call(tokensTensor(rows))
		if err != nil {
			t.Fatal(err)
		}
		res := map[string][]float64{}
		for i, n := range names {
			for _, x := range tensors.MustCopyFlatData[float32](out[i]) {
				res[n] = append(res[n], float64(x))
			}
		}
		return res
	}
	g := grads(calib)
	A := map[string][]float64{}
	for _, row := range calib {
		gj := grads([][]int{row})
		for n, v := range gj {
			if A[n] == nil {
				A[n] = make([]float64, len(v))
			}
			for i, x := range v {
				A[n][i] += x * x / float64(len(calib))
			}
		}
	}
	sal := Salience{}
	for _, ta := range axes {
		v := m.Store.GetVariable(models.VarPath(ta.Tensor))
		dims := v.Shape().Dimensions
		w := tensors.MustCopyFlatData[float32](v.MustValue())
		s := make([]float64, len(w))
		for i := range w {
			W := float64(w[i])
			switch mode {
			case ParamFirst, Vectorize:
				s[i] = W * g[ta.Tensor][i]
			case ParamSecond:
				s[i] = W * A[ta.Tensor][i] * W
			case ParamMix:
				s[i] = W*g[ta.Tensor][i] - 0.5*W*A[ta.Tensor][i]*W
			}
		}
		if len(dims) == 1 {
			for i := range s {
				s[i] = math.Abs(s[i])
			}
			sal[ta] = s
			continue
		}
		out := make([]float64, dims[ta.Axis])
		for i, x := range s {
			idx := i / dims[1]
			if ta.Axis == 1 {
				idx = i % dims[1]
			}
			if mode == Vectorize {
				out[idx] += x
			} else {
				out[idx] += math.Abs(x)
			}
		}
		if mode == Vectorize {
			for i := range out {
				out[i] = math.Abs(out[i])
			}
		}
		sal[ta] = out
	}
	return sal
}

// TestTaylorModes compares every Taylor mode (in-graph gradients, in-graph second-order
// accumulators, in-graph reductions) with the host-side reference, on heads, MLP and hidden groups.
func TestTaylorModes(t *testing.T) {
	cfg := groupstest.Tiny(t)
	m := groupstest.RandomModel(t, cfg, 4, 0.3)
	calib := groupstest.Tokens(3, 6, cfg.Vocab, 5)
	var fams []*groups.Family
	for l := range cfg.NumLayers() {
		h, _ := groups.AttentionHeads(cfg, l)
		f, _ := groups.MLPChannels(cfg, l)
		fams = append(fams, h, f)
	}
	hidden, _ := groups.HiddenChannels(cfg)
	fams = append(fams, hidden)
	axes := NeededAxes(fams)
	for _, mode := range []TaylorMode{ParamFirst, Vectorize, ParamSecond, ParamMix} {
		est, err := New(Options{Criterion: Taylor, Taylor: mode, Reduction: ReductionMax, Calibration: calib})
		if err != nil {
			t.Fatal(err)
		}
		got, err := est.Scores(m, fams)
		if err != nil {
			t.Fatal(err)
		}
		want, err := GroupScores(fams, refSalience(t, m, calib, mode, axes), ReductionMax)
		if err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		for f := range fams {
			for i := range want[f] {
				rel := math.Abs(got[f][i]-want[f][i]) / (math.Abs(want[f][i]) + 1e-12)
				worst = math.Max(worst, rel)
			}
		}
		if worst > 1e-4 {
			t.Errorf("%s: max relative difference to the host reference %.3g", mode, worst)
		}
		for v := range m.Store.IterVariables() {
			if strings.HasPrefix(v.Path(), fisherScope) {
				t.Fatalf("%s: accumulator %s left in the store", mode, v.Path())
			}
		}
	}
}

// TestMagnitudeAndRandom checks l1 against host sums and that random scores are seeded.
func TestMagnitudeAndRandom(t *testing.T) {
	cfg := groupstest.Tiny(t)
	m := groupstest.RandomModel(t, cfg, 4, 0.3)
	f, _ := groups.MLPChannels(cfg, 1)
	est, _ := New(Options{Criterion: L1})
	got, err := est.Scores(m, []*groups.Family{f})
	if err != nil {
		t.Fatal(err)
	}
	read := func(n string) []float32 {
		return tensors.MustCopyFlatData[float32](m.Store.GetVariable(models.VarPath(n)).MustValue())
	}
	gate, up, down := read("model.layers.1.mlp.gate_proj.weight"), read("model.layers.1.mlp.up_proj.weight"), read("model.layers.1.mlp.down_proj.weight")
	D, I := cfg.Hidden, cfg.Inter[1]
	for c := range I {
		var sg, su, sd float64
		for j := range D {
			sg += math.Abs(float64(gate[c*D+j]))
			su += math.Abs(float64(up[c*D+j]))
			sd += math.Abs(float64(down[j*I+c]))
		}
		if want := (sg + su + sd) / 3; math.Abs(got[0][c]-want) > 1e-5*want {
			t.Errorf("channel %d: l1 mean %g, want %g", c, got[0][c], want)
		}
	}
	r1, _ := (&RandomEstimator{Seed: 3}).Scores(nil, []*groups.Family{f})
	r2, _ := (&RandomEstimator{Seed: 3}).Scores(nil, []*groups.Family{f})
	r3, _ := (&RandomEstimator{Seed: 4}).Scores(nil, []*groups.Family{f})
	if r1[0][0] != r2[0][0] || r1[0][0] == r3[0][0] {
		t.Errorf("random scores not seeded: %v %v %v", r1[0][:2], r2[0][:2], r3[0][:2])
	}
	if _, err := ParseReduction("median"); err == nil {
		t.Error("ParseReduction(median): no error")
	}
	if _, err := New(Options{Criterion: Taylor}); err == nil {
		t.Error("Taylor without calibration: no error")
	}
}
