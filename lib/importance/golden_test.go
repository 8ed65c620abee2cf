package importance

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/llmpruner/llmpruner/lib/groups"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/internal/testdata"
	"github.com/llmpruner/llmpruner/lib/models"
)

// goldenFile is the part of golden/importance_tiny_llama_mha.json the tests read: scores produced
// by the original LLM-Pruner code (MetaPruner + hf_llama_pruner) on golden/tiny-llama-mha.
type goldenFile struct {
	Calibration struct {
		InputIDs [][]int `json:"input_ids"`
	} `json:"calibration"`
	EvalIDs []int `json:"eval_ids"`
	Cases   []struct {
		Name         string  `json:"name"`
		PrunerType   string  `json:"pruner_type"`
		Taylor       *string `json:"taylor"`
		Grouping     string  `json:"grouping_strategy"`
		Ratio        float64 `json:"pruning_ratio"`
		ParamsBefore int64   `json:"params_before"`
		ParamsAfter  int64   `json:"params_after"`
		AttnLayers   []int   `json:"block_attention_layers"`
		Layers       map[string]struct {
			Attention struct {
				HeadImportance []float64 `json:"head_importance"`
				KeptQHeads     []int     `json:"kept_q_heads"`
			} `json:"attention"`
			MLP struct {
				ChannelImportance []float64 `json:"channel_importance"`
				KeptChannels      []int     `json:"kept_channels"`
			} `json:"mlp"`
		} `json:"layers"`
	} `json:"cases"`
}

func loadGolden(t *testing.T) (*goldenFile, *models.Model) {
	t.Helper()
	path := testdata.GoldenPath(t, "importance_tiny_llama_mha.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var g goldenFile
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	m, err := models.Load(groupstest.Backend(t), filepath.Join(filepath.Dir(path), "tiny-llama-mha"), models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &g, m
}

// TestGoldenScores compares head and MLP-channel group scores with the original's, for both cases
// (l2 with mean reduction; Taylor param_first with sum reduction), within 1e-4 relative.
func TestGoldenScores(t *testing.T) {
	g, m := loadGolden(t)
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			opts := Options{Calibration: g.Calibration.InputIDs}
			var err error
			if opts.Criterion, err = ParseCriterion(c.PrunerType); err != nil {
				t.Fatal(err)
			}
			if c.Taylor != nil {
				if opts.Taylor, err = ParseTaylorMode(*c.Taylor); err != nil {
					t.Fatal(err)
				}
			}
			if opts.Reduction, err = ParseReduction(c.Grouping); err != nil {
				t.Fatal(err)
			}
			est, err := New(opts)
			if err != nil {
				t.Fatal(err)
			}
			var fams []*groups.Family
			for _, l := range c.AttnLayers {
				h, err := groups.AttentionHeads(m.Config, l)
				if err != nil {
					t.Fatal(err)
				}
				mlp, err := groups.MLPChannels(m.Config, l)
				if err != nil {
					t.Fatal(err)
				}
				fams = append(fams, h, mlp)
			}
			scores, err := est.Scores(m, fams)
			if err != nil {
				t.Fatal(err)
			}
			worst := 0.0
			for i, f := range fams {
				gl := c.Layers[itoa(f.Layer)]
				want := gl.Attention.HeadImportance
				if f.Kind == groups.MLPChannel {
					want = gl.MLP.ChannelImportance
				}
				if len(want) != len(scores[i]) {
					t.Fatalf("%s: %d scores, golden has %d", f.Name(), len(scores[i]), len(want))
				}
				for j, w := range want {
					rel := math.Abs(scores[i][j]-w) / math.Abs(w)
					worst = math.Max(worst, rel)
					if rel > 1e-4 {
						t.Errorf("%s group %d: score %.9g, golden %.9g (rel %.2g)", f.Name(), j, scores[i][j], w, rel)
					}
				}
			}
			t.Logf("%s: max relative difference to the original's scores %.3g", c.Name, worst)
		})
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }
