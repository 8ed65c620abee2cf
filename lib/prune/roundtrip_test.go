package prune

import (
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/importance"
	"github.com/llmpruner/llmpruner/lib/models"
)

// sameModel fails unless a and b hold the same tensors (names, shapes, dtypes, values bit for bit)
// and the same config sizes.
func sameModel(t *testing.T, what string, a, b *models.Model) {
	t.Helper()
	if a.Config.String() != b.Config.String() || a.Config.AttnBias != b.Config.AttnBias || a.Config.MLPBias != b.Config.MLPBias {
		t.Errorf("%s: config %v, want %v", what, b.Config, a.Config)
		return
	}
	names := func(m *models.Model) []string {
		var out []string
		for v := range m.Store.IterVariables() {
			out = append(out, v.Path())
		}
		sort.Strings(out)
		return out
	}
	na, nb := names(a), names(b)
	if !slices.Equal(na, nb) {
		t.Errorf("%s: tensors %v, want %v", what, nb, na)
		return
	}
	for _, n := range na {
		ta, tb := a.Store.GetVariable(n).MustValue(), b.Store.GetVariable(n).MustValue()
		if !ta.Shape().Equal(tb.Shape()) {
			t.Errorf("%s: %s shape %s, want %s", what, n, tb.Shape(), ta.Shape())
			continue
		}
		var ba, bb []byte
		_ = ta.ConstBytes(func(d []byte) { ba = slices.Clone(d) })
		_ = tb.ConstBytes(func(d []byte) { bb = slices.Clone(d) })
		if !slices.Equal(ba, bb) {
			t.Errorf("%s: %s values differ", what, n)
		}
	}
}

// TestPlanRoundTrip prunes with several strategies, saves the plan as JSON, loads it, applies it to
// a fresh copy of the unpruned model and requires the identical model, tensor for tensor.
func TestPlanRoundTrip(t *testing.T) {
	cfg := groupstest.Tiny(t)
	cases := map[string]Options{
		"block taylor 2 steps": {Strategy: Block, Ratio: 0.5, IterativeSteps: 2, MLPLayers: &Range{1, 3},
			Importance: importance.Options{Criterion: importance.Taylor}, Sampler: sampler(cfg)},
		"block global l2": {Strategy: Block, Ratio: 0.4, Global: true, Importance: importance.Options{Criterion: importance.L2}},
		"channel l1":      {Strategy: Channel, Ratio: 0.25, Importance: importance.Options{Criterion: importance.L1}},
		"layer ranked":    {Strategy: Layer, KeepLayers: 2, RankLayers: true, Sampler: sampler(cfg)},
	}
	for name, o := range cases {
		m := groupstest.RandomModel(t, cfg, 5, 0.3)
		plan, err := Prune(m, o)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		path := filepath.Join(t.TempDir(), "plan.json")
		if err := plan.Save(path); err != nil {
			t.Fatal(err)
		}
		back, err := LoadPlan(path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		fresh := groupstest.RandomModel(t, cfg, 5, 0.3)
		if err := Apply(fresh, back); err != nil {
			t.Fatalf("%s: apply: %v", name, err)
		}
		sameModel(t, name, m, fresh)
		if back.ParamsAfter != arch.NumParams(fresh.Config) || back.MACsAfter != MACs(fresh.Config, back.SeqLen) {
			t.Errorf("%s: plan says %d params / %d MACs, applied model has %d / %d", name, back.ParamsAfter, back.MACsAfter,
				arch.NumParams(fresh.Config), MACs(fresh.Config, back.SeqLen))
		}
		// Applying to a model of another shape fails with the shapes named.
		if err := Apply(m, back); err == nil {
			t.Errorf("%s: applying the plan to the pruned model: no error", name)
		}
	}
}

// TestSelectThenApply checks that Score + Select + Apply is Prune, and that a plan with bias
// compensation round-trips through JSON and the Hugging Face directory (attention_bias/mlp_bias
// with zero biases on q/k/v and gate/up).
func TestSelectThenApply(t *testing.T) {
	cfg := groupstest.Tiny(t)
	o := Options{Strategy: Block, Ratio: 0.5, Importance: importance.Options{Criterion: importance.L2}}
	m := groupstest.RandomModel(t, cfg, 8, 0.3)
	s, err := Score(m, o)
	if err != nil {
		t.Fatal(err)
	}
	comp := func(l int, kv, mlp []int) ([]float64, []float64, error) {
		ob, db := make([]float64, cfg.Hidden), make([]float64, cfg.Hidden)
		for i := range ob {
			ob[i] = float64(l*100+len(kv)) + float64(i)/8
			db[i] = -float64(l*10+len(mlp)) - float64(i)/16
		}
		return ob, db, nil
	}
	s.Compensate = comp
	plan, err := Select(m.Config, s, o)
	if err != nil {
		t.Fatal(err)
	}
	ref := groupstest.RandomModel(t, cfg, 8, 0.3)
	if _, err := Prune(ref, o); err != nil {
		t.Fatal(err)
	}
	s.Compensate = nil
	plain, _ := Select(m.Config, s, o)
	if err := Apply(m, plain); err != nil {
		t.Fatal(err)
	}
	sameModel(t, "select+apply vs prune", ref, m)

	path := filepath.Join(t.TempDir(), "plan.json")
	if err := plan.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := LoadPlan(path)
	if err != nil {
		t.Fatal(err)
	}
	a := groupstest.RandomModel(t, cfg, 8, 0.3)
	if err := Apply(a, back); err != nil {
		t.Fatal(err)
	}
	if !a.Config.AttnBias || !a.Config.MLPBias {
		t.Fatalf("biases not enabled: %+v", a.Config)
	}
	for _, lp := range plan.Layers {
		got := tensors.MustCopyFlatData[float32](a.Store.GetVariable(models.VarPath("model.layers." + strconv.Itoa(lp.Layer) + ".self_attn.o_proj.bias")).MustValue())
		for i, w := range lp.OProjBias {
			if float64(got[i]) != float64(float32(w)) {
				t.Fatalf("layer %d o_proj bias[%d] = %g, plan %g", lp.Layer, i, got[i], w)
			}
		}
		q := tensors.MustCopyFlatData[float32](a.Store.GetVariable(models.VarPath("model.layers." + strconv.Itoa(lp.Layer) + ".self_attn.q_proj.bias")).MustValue())
		if slices.ContainsFunc(q, func(x float32) bool { return x != 0 }) || len(q) != a.Config.Heads[lp.Layer]*cfg.HeadDim {
			t.Errorf("layer %d q_proj bias %v, want %d zeros", lp.Layer, q, a.Config.Heads[lp.Layer]*cfg.HeadDim)
		}
	}
	dir := filepath.Join(t.TempDir(), "hf")
	if err := a.Save(dir, ""); err != nil {
		t.Fatal(err)
	}
	re, err := models.Load(groupstest.Backend(t), dir, models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameModel(t, "saved and reloaded with biases", a, re)
	tokens := groupstest.Tokens(2, 7, cfg.Vocab, 3)
	la, _ := a.Logits(tokens)
	lr, _ := re.Logits(tokens)
	if d := maxAbsDiff(la, lr); d != 0 {
		t.Errorf("reloaded logits differ by %g", d)
	}
}
