package importance

import (
	"math"
	"slices"
	"testing"

	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/groups"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/internal/testdata"
	"github.com/llmpruner/llmpruner/lib/models"
)

// allFamilies returns the head and MLP families of every layer, plus the hidden channels when hidden.
func allFamilies(t testing.TB, cfg *config.Config, hidden bool) []*groups.Family {
	t.Helper()
	var fams []*groups.Family
	for l := range cfg.NumLayers() {
		h, err := groups.AttentionHeads(cfg, l)
		if err != nil {
			t.Fatal(err)
		}
		f, err := groups.MLPChannels(cfg, l)
		if err != nil {
			t.Fatal(err)
		}
		fams = append(fams, h, f)
	}
	if hidden {
		h, err := groups.HiddenChannels(cfg)
		if err != nil {
			t.Fatal(err)
		}
		fams = append(fams, h)
	}
	return fams
}

// compareStreamed checks StreamScores from the checkpoint at dir against Scores of the loaded
// model m for every Taylor mode and reduction: relative difference ≤ 1e-5 per group and the same
// kept half of every family.
func compareStreamed(t *testing.T, m *models.Model, dir string, fams []*groups.Family, calib [][]int) {
	t.Helper()
	r, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	src := &StreamSource{Backend: m.Backend, Config: m.Config, Reader: r}
	for _, mode := range []TaylorMode{ParamFirst, Vectorize, ParamSecond, ParamMix} {
		for _, red := range []Reduction{ReductionSum, ReductionMean, ReductionMax, ReductionProd, ReductionFirst} {
			est := &TaylorEstimator{Mode: mode, Reduction: red, Calibration: calib}
			want, err := est.Scores(m, fams)
			if err != nil {
				t.Fatal(err)
			}
			got, err := est.StreamScores(src, fams)
			if err != nil {
				t.Fatalf("%s/%s: %v", mode, red, err)
			}
			worst := 0.0
			for f := range fams {
				for i := range want[f] {
					rel := math.Abs(got[f][i]-want[f][i]) / (math.Abs(want[f][i]) + 1e-30)
					worst = math.Max(worst, rel)
				}
				n := len(want[f]) / 2
				if w, g := lowestSet(want[f], n), lowestSet(got[f], n); !slices.Equal(w, g) {
					t.Errorf("%s/%s %s: streamed removes %v, in-memory %v", mode, red, fams[f].Name(), g, w)
				}
			}
			if worst > 1e-5 {
				t.Errorf("%s/%s: max relative difference streamed vs in-memory %.3g", mode, red, worst)
			}
			if red == ReductionSum {
				t.Logf("%s: max relative difference %.2g", mode, worst)
			}
		}
	}
}

// lowestSet returns the indices of the n lowest scores, sorted.
func lowestSet(s []float64, n int) []int {
	idx := make([]int, len(s))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case s[a] < s[b]:
			return -1
		case s[a] > s[b]:
			return 1
		}
		return 0
	})
	out := slices.Clone(idx[:n])
	slices.Sort(out)
	return out
}

// TestStreamedTaylorEqualsInMemory: layer-streamed Taylor scores equal the whole-model ones on
// random LLaMAs (MHA and GQA layers of different sizes, untied and tied embeddings with attention
// biases, f32 and bf16 checkpoints) for heads, MLP channels and hidden channels.
func TestStreamedTaylorEqualsInMemory(t *testing.T) {
	be := groupstest.Backend(t)
	for _, tc := range []struct {
		name   string
		fields map[string]any
		dtype  string
	}{
		{"untied-f32", nil, "f32"},
		{"tied-bias-f32", map[string]any{"tie_word_embeddings": true, "attention_bias": true}, "f32"},
		{"untied-bf16", nil, "bf16"},
		{"mistral-sliding-window", map[string]any{"model_type": "mistral", "sliding_window": 3}, "f32"},
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
			calib := groupstest.Tokens(3, 6, cfg.Vocab, 5)
			fams := allFamilies(t, m.Config, true)
			compareStreamed(t, m, dir, fams, calib)
			if tc.dtype == "f32" { // layers 2–3 only: the backward sweep stops at layer 2
				compareStreamed(t, m, dir, fams[4:len(fams)-1], calib)
			}
		})
	}
}

// TestStreamedTaylorStories260K: the same equality on a real checkpoint (stories260K: GQA, tied
// embeddings) with real text as calibration.
func TestStreamedTaylorStories260K(t *testing.T) {
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
	calib := [][]int{ids[:16], ids[4:20]}
	compareStreamed(t, m, dir, allFamilies(t, m.Config, true), calib)
}

// TestStreamedTaylorErrors: a ChatGLM config and a checkpoint that does not match the config are
// refused with errors naming the problem.
func TestStreamedTaylorErrors(t *testing.T) {
	cfg := groupstest.Tiny(t)
	dir := t.TempDir()
	if err := groupstest.RandomModel(t, cfg, 1, 0.1).Save(dir, ""); err != nil {
		t.Fatal(err)
	}
	r, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	est := &TaylorEstimator{Mode: ParamFirst, Reduction: ReductionSum, Calibration: groupstest.Tokens(2, 4, cfg.Vocab, 1)}
	other := cfg.Clone()
	other.Inter[1]++
	if _, err := est.StreamScores(&StreamSource{Backend: groupstest.Backend(t), Config: other, Reader: r}, allFamilies(t, other, false)); err == nil {
		t.Error("a checkpoint that does not match the config was accepted")
	} else {
		t.Log(err)
	}
	glm := cfg.Clone()
	glm.Arch = arch.ChatGLM
	if _, err := est.StreamScores(&StreamSource{Backend: groupstest.Backend(t), Config: glm, Reader: r}, nil); err == nil {
		t.Error("chatglm was accepted")
	} else {
		t.Log(err)
	}
}
