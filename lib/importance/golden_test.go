package importance

import (
	"math"
	"strconv"
	"testing"

	"github.com/llmpruner/llmpruner/lib/groups"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/internal/testdata"
	"github.com/llmpruner/llmpruner/lib/models"
)

func loadGolden(t *testing.T) (*testdata.ImportanceGolden, *models.Model) {
	t.Helper()
	g, dir := testdata.LoadImportanceGolden(t)
	m, err := models.Load(groupstest.Backend(t), dir, models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return g, m
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
				gl := c.Layers[strconv.Itoa(f.Layer)]
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
