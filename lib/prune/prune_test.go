package prune

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/groups"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/importance"
	"github.com/llmpruner/llmpruner/lib/models"
)

func sampler(cfg *config.Config) Sampler {
	return func(step int) ([][]int, error) { return groupstest.Tokens(3, 8, cfg.Vocab, uint64(100+step)), nil }
}

// zeroRemoved zeroes, in an unpruned model, every head/MLP group the report says was removed.
func zeroRemoved(t *testing.T, m *models.Model, rep *Plan) {
	t.Helper()
	var gs []groups.Group
	for _, lr := range rep.Layers {
		h, _ := groups.AttentionHeads(m.Config, lr.Layer)
		for _, u := range groups.Kept(len(h.Groups), lr.KVHeadsKept) {
			gs = append(gs, h.Groups[u])
		}
		f, _ := groups.MLPChannels(m.Config, lr.Layer)
		for _, u := range groups.Kept(len(f.Groups), lr.MLPChannelsKept) {
			gs = append(gs, f.Groups[u])
		}
	}
	for _, g := range gs {
		for _, mem := range g.Members {
			v := m.Store.GetVariable(models.VarPath(mem.Tensor))
			dims := v.Shape().Dimensions
			z := tensors.MustCopyFlatData[float32](v.MustValue())
			for _, i := range mem.Indices {
				switch {
				case len(dims) == 1:
					z[i] = 0
				case mem.Axis == 0:
					clear(z[i*dims[1] : (i+1)*dims[1]])
				default:
					for r := range dims[0] {
						z[r*dims[1]+i] = 0
					}
				}
			}
			v.MustSetValue(tensors.FromFlatDataAndDimensions(z, dims...))
		}
	}
	m.ResetExecs()
}

func maxAbsDiff(a, b [][][]float32) float64 {
	d := 0.0
	for i := range a {
		for j := range a[i] {
			for k := range a[i][j] {
				d = math.Max(d, math.Abs(float64(a[i][j][k]-b[i][j][k])))
			}
		}
	}
	return d
}

// TestBlockPruneSaveReload prunes a random non-uniform MHA/GQA model block-wise with Taylor
// importance in 2 iterative steps, saves it, reloads it, and checks that its logits equal the
// unpruned model with the removed groups zeroed, and that the file size matches the parameters.
func TestBlockPruneSaveReload(t *testing.T) {
	for _, global := range []bool{false, true} {
		cfg := groupstest.Tiny(t)
		m := groupstest.RandomModel(t, cfg, 21, 0.3)
		ref := groupstest.RandomModel(t, cfg, 21, 0.3)
		rep, err := Prune(m, Options{Strategy: Block, Ratio: 0.5, Global: global, IterativeSteps: 2, MLPLayers: &Range{1, 3},
			Importance: importance.Options{Criterion: importance.Taylor, Taylor: importance.ParamMix}, Sampler: sampler(cfg)})
		if err != nil {
			t.Fatal(err)
		}
		if !global {
			// kv heads [4 2 1]: int(16·0.5)=8 ch → 2 of 4 heads; int(8·0.5)=4 ch → 1 of 2 kv groups; layer 2: 1 kv
			// head of 4 channels: int(4·0.5)=2 → 2 pruned channels < one head → kept. MLP only in 1:3.
			if !slices.Equal(m.Config.KVHeads, []int{2, 1, 1}) || !slices.Equal(m.Config.Heads, []int{2, 2, 2}) || !slices.Equal(m.Config.Inter, []int{12, 5, 4}) {
				t.Errorf("local: pruned config %v", m.Config)
			}
		}
		if rep.ParamsAfter != arch.NumParams(m.Config) || rep.ParamsBefore != arch.NumParams(cfg) || int64(m.Store.NumParameters()) != rep.ParamsAfter {
			t.Errorf("report params %d→%d, config %d, store %d", rep.ParamsBefore, rep.ParamsAfter, arch.NumParams(m.Config), m.Store.NumParameters())
		}
		if len(rep.Layers) != 3 || len(rep.Layers[1].HeadScores) != 4 || len(rep.Layers[1].KVHeadScores) != 2 || len(rep.Layers[0].MLPScores) != 0 {
			t.Errorf("report layout: %+v", rep.Layers)
		}
		dir := filepath.Join(t.TempDir(), "pruned")
		if err := m.Save(dir, "f32"); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(filepath.Join(dir, "model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		if header := st.Size() - 4*rep.ParamsAfter; header < 8 || header > 16384 {
			t.Errorf("model.safetensors is %d bytes for %d f32 parameters (header %d)", st.Size(), rep.ParamsAfter, header)
		}
		back, err := models.Load(groupstest.Backend(t), dir, models.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(back.Config.Heads, m.Config.Heads) || !slices.Equal(back.Config.Inter, m.Config.Inter) {
			t.Errorf("reloaded config %v, pruned %v", back.Config, m.Config)
		}
		tokens := groupstest.Tokens(2, 9, cfg.Vocab, 77)
		got, err := back.Logits(tokens)
		if err != nil {
			t.Fatal(err)
		}
		dense, _ := ref.Logits(tokens)
		zeroRemoved(t, ref, rep)
		want, err := ref.Logits(tokens)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(got, want); d > 1e-5 {
			t.Errorf("global=%v: reloaded pruned logits vs zeroed unpruned differ by %.3g", global, d)
		}
		if d := maxAbsDiff(got, dense); d < 1e-4 {
			t.Errorf("global=%v: pruning did not change the logits", global)
		}
	}
}

// TestGlobalCount checks MetaPruner's global count: units (heads + MLP channels) removed overall =
// current − int(initial·(1 − ratio)), ranked on one scale.
func TestGlobalCount(t *testing.T) {
	cfg := groupstest.Tiny(t)
	m := groupstest.RandomModel(t, cfg, 3, 0.3)
	rep, err := Prune(m, Options{Strategy: Block, Ratio: 0.4, Global: true, Importance: importance.Options{Criterion: importance.L1}})
	if err != nil {
		t.Fatal(err)
	}
	init := 4 + 2 + 1 + 12 + 10 + 8
	kept := 0
	var all []float64
	for _, lr := range rep.Layers {
		kept += len(lr.KVHeadsKept) + len(lr.MLPChannelsKept)
		all = append(all, lr.KVHeadScores...)
		all = append(all, lr.MLPScores...)
	}
	if want := int(float64(init) * 0.6); kept != want {
		t.Errorf("kept %d units, want %d", kept, want)
	}
	slices.Sort(all)
	thr := all[init-int(float64(init)*0.6)-1]
	for _, lr := range rep.Layers {
		for u, s := range lr.MLPScores {
			if slices.Contains(lr.MLPChannelsKept, u) == (s <= thr) {
				t.Errorf("layer %d channel %d (score %g, threshold %g): wrong side", lr.Layer, u, s, thr)
			}
		}
	}
}

// TestChannelAndLayerPrune: channel-wise pruning shrinks the hidden size everywhere and the model
// still runs and saves; ranked layer-wise pruning removes the layer whose skipping costs least.
func TestChannelAndLayerPrune(t *testing.T) {
	cfg := groupstest.Tiny(t)
	m := groupstest.RandomModel(t, cfg, 8, 0.3)
	rep, err := Prune(m, Options{Strategy: Channel, Ratio: 0.25, RoundTo: 4, Importance: importance.Options{Criterion: importance.Taylor, Taylor: importance.ParamSecond}, Sampler: sampler(cfg)})
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.Hidden != 12 || len(rep.HiddenChannelsKept) != 12 || len(rep.HiddenScores) != 16 {
		t.Errorf("channel 0.25: hidden %d, kept %v, %d scores", m.Config.Hidden, rep.HiddenChannelsKept, len(rep.HiddenScores))
	}
	if _, err := m.Loss(groupstest.Tokens(1, 5, cfg.Vocab, 1)); err != nil {
		t.Fatal(err)
	}
	if err := m.Save(filepath.Join(t.TempDir(), "ch"), ""); err != nil {
		t.Fatal(err)
	}

	// Reference layer scores: loss with layer l's o_proj/down_proj zeroed (identity layer) minus the
	// dense loss, through the models package's own Loss on host-zeroed copies.
	calib, _ := sampler(cfg)(1)
	dense := groupstest.RandomModel(t, cfg, 8, 0.3)
	base, err := dense.Loss(calib)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]float64, cfg.NumLayers())
	for l := range want {
		z := groupstest.RandomModel(t, cfg, 8, 0.3)
		for _, n := range []string{"self_attn.o_proj.weight", "mlp.down_proj.weight"} {
			v := z.Store.GetVariable(models.VarPath(arch.LlamaLayerTensor(l, n)))
			v.MustSetValue(tensors.FromFlatDataAndDimensions(make([]float32, v.Shape().Size()), v.Shape().Dimensions...))
		}
		loss, err := z.Loss(calib)
		if err != nil {
			t.Fatal(err)
		}
		want[l] = loss - base
	}
	m = groupstest.RandomModel(t, cfg, 8, 0.3)
	rep, err = Prune(m, Options{Strategy: Layer, KeepLayers: 2, RankLayers: true, Sampler: sampler(cfg)})
	if err != nil {
		t.Fatal(err)
	}
	drop := lowest(want, 1)[0]
	if slices.Contains(rep.LayersKept, drop) || len(rep.LayersKept) != 2 || m.Config.NumLayers() != 2 {
		t.Errorf("ranked layer pruning kept %v; reference deltas %v say drop %d", rep.LayersKept, want, drop)
	}
	for _, lr := range rep.Layers {
		if lr.LayerScore == nil || math.Abs(*lr.LayerScore-want[lr.Layer]) > 1e-5 {
			t.Errorf("layer %d score %v, reference %g", lr.Layer, lr.LayerScore, want[lr.Layer])
		}
	}
	if _, err := m.Loss(groupstest.Tokens(1, 5, cfg.Vocab, 1)); err != nil {
		t.Fatal(err)
	}
}

// TestPruneBadInput: errors come before anything is changed.
func TestPruneBadInput(t *testing.T) {
	cfg := groupstest.Tiny(t)
	m := groupstest.RandomModel(t, cfg, 8, 0.3)
	before := m.Store.NumParameters()
	for name, o := range map[string]Options{
		"taylor without samples": {Strategy: Block, Ratio: 0.2, Importance: importance.Options{Criterion: importance.Taylor}},
		"ranked without samples": {Strategy: Layer, KeepLayers: 2, RankLayers: true},
		"ratio 1.5":              {Strategy: Block, Ratio: 1.5},
		"too few channels left":  {Strategy: Block, Ratio: 0.95},
		"sampler error": {Strategy: Block, Ratio: 0.2, Importance: importance.Options{Criterion: importance.Taylor},
			Sampler: func(int) ([][]int, error) { return nil, os.ErrNotExist }},
		"ragged samples": {Strategy: Block, Ratio: 0.2, Importance: importance.Options{Criterion: importance.Taylor},
			Sampler: func(int) ([][]int, error) { return [][]int{{1, 2, 3}, {1, 2}}, nil }},
	} {
		if _, err := Prune(m, o); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
		if m.Store.NumParameters() != before || m.Config.Hidden != cfg.Hidden || !slices.Equal(m.Config.Inter, cfg.Inter) {
			t.Fatalf("%s: the model changed", name)
		}
	}
}
