package importance

import (
	"math"
	"testing"

	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/internal/testdata"
	"github.com/llmpruner/llmpruner/lib/models"
)

// relDiff is the largest |got − want| / max(|want|, floor) over the elements.
func relDiff(got, want []float64, floor float64) float64 {
	worst := 0.0
	for i := range want {
		worst = math.Max(worst, math.Abs(got[i]-want[i])/math.Max(math.Abs(want[i]), floor))
	}
	return worst
}

// compareStreamedForward checks the streamed layer ranking (Block Influence, layer-skip loss) and
// activation statistics of the checkpoint at dir against the loaded model m's: ≤ 1e-5 relative.
func compareStreamedForward(t *testing.T, m *models.Model, dir string, calib [][]int) {
	t.Helper()
	r, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	src := &StreamSource{Backend: m.Backend, Config: m.Config, Reader: r}
	check := func(what string, got, want []float64, floor float64) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d values streamed, %d loaded", what, len(got), len(want))
		}
		if d := relDiff(got, want, floor); d > 1e-5 {
			t.Errorf("%s: max relative difference streamed vs loaded %.3g", what, d)
		} else if d > 0 {
			t.Logf("%s: max relative difference %.2g", what, d)
		}
	}

	wantBI, err := BlockInfluence(m, calib)
	if err != nil {
		t.Fatal(err)
	}
	gotBI, err := StreamBlockInfluence(src, calib)
	if err != nil {
		t.Fatal(err)
	}
	check("block influence", gotBI, wantBI, 0)

	wantBase, wantDelta, err := LayerSkipLoss(m, calib)
	if err != nil {
		t.Fatal(err)
	}
	gotBase, gotDelta, err := StreamLayerSkipLoss(src, calib)
	if err != nil {
		t.Fatal(err)
	}
	check("layer-skip base loss", []float64{gotBase}, []float64{wantBase}, 0)
	check("layer-skip delta", gotDelta, wantDelta, 1e-3*wantBase) // deltas near 0: relative to the loss

	want, err := CollectInputStats(m, calib)
	if err != nil {
		t.Fatal(err)
	}
	got, err := StreamInputStats(src, calib)
	if err != nil {
		t.Fatal(err)
	}
	if got.Samples != want.Samples || got.Tokens != want.Tokens {
		t.Errorf("statistics of %d×%d tokens streamed, %d×%d loaded", got.Samples, got.Tokens, want.Samples, want.Tokens)
	}
	for l := range m.Config.NumLayers() {
		for k, pair := range [][2]ChannelStats{{got.Attn[l], want.Attn[l]}, {got.MLP[l], want.MLP[l]}} {
			g, w := pair[0], pair[1]
			scale := 0.0
			for _, v := range w.Fluc {
				scale = math.Max(scale, math.Abs(v))
			}
			name := []string{"attention", "mlp"}[k]
			check(name+" mean", g.Mean, w.Mean, 1e-6)
			check(name+" fluctuation", g.Fluc, w.Fluc, 1e-6*scale)
			check(name+" sum of squares", g.SumSq, w.SumSq, 1e-6)
		}
	}
}

// TestStreamedForwardStatsEqualLoaded: Block Influence, the layer-skip losses and FLAP/Wanda-sp's
// activation statistics computed layer by layer from the checkpoint equal the loaded model's on
// random LLaMAs (GQA layers of different sizes; f32, tied with attention biases, bf16) with more
// calibration samples than one graph batch.
func TestStreamedForwardStatsEqualLoaded(t *testing.T) {
	be := groupstest.Backend(t)
	for _, tc := range []struct {
		name   string
		fields map[string]any
		dtype  string
	}{
		{"untied-f32", nil, "f32"},
		{"tied-bias-f32", map[string]any{"tie_word_embeddings": true, "attention_bias": true}, "f32"},
		{"untied-bf16", nil, "bf16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := groupstest.Tiny4(t, tc.fields)
			dir := t.TempDir()
			if err := groupstest.RandomModel(t, cfg, 4, 0.3).Save(dir, tc.dtype); err != nil {
				t.Fatal(err)
			}
			m, err := models.Load(be, dir, models.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Store.Finalize()
			compareStreamedForward(t, m, dir, groupstest.Tokens(11, 6, cfg.Vocab, 5))
		})
	}
}

// TestStreamedForwardStatsStories260K: the same on stories260K (GQA, tied embeddings) with text.
func TestStreamedForwardStatsStories260K(t *testing.T) {
	dir := testdata.GoldenPath(t, "stories260K-hf")
	m, err := models.Load(groupstest.Backend(t), dir, models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Store.Finalize()
	ids, err := m.Tokenizer.Encode("Once upon a time, there was a little girl named Lily. She loved to play outside in the sun with her dog.")
	if err != nil {
		t.Fatal(err)
	}
	compareStreamedForward(t, m, dir, [][]int{ids[:16], ids[4:20], ids[8:24]})
}
