package prune

import (
	"math"
	"slices"
	"strconv"
	"testing"

	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/importance"
	"github.com/llmpruner/llmpruner/lib/internal/testdata"
	"github.com/llmpruner/llmpruner/lib/models"
)

func span(r []int) *Range { return &Range{slices.Min(r), slices.Max(r) + 1} }

// TestGoldenPrune runs block-wise pruning as the original's golden cases did and checks the kept
// heads and MLP channels, parameter counts, and the pruned model's loss and logits on eval_ids.
func TestGoldenPrune(t *testing.T) {
	g, dir := testdata.LoadImportanceGolden(t)
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			m, err := models.Load(groupstest.Backend(t), dir, models.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			imp := importance.Options{}
			imp.Criterion, _ = importance.ParseCriterion(c.PrunerType)
			if c.Taylor != nil {
				imp.Taylor, _ = importance.ParseTaylorMode(*c.Taylor)
			}
			imp.Reduction, _ = importance.ParseReduction(c.Grouping)
			rep, err := Prune(m, Options{Strategy: Block, Ratio: c.Ratio, AttnLayers: span(c.AttnLayers), MLPLayers: span(c.MLPLayers),
				Importance: imp, Sampler: func(int) ([][]int, error) { return g.Calibration.InputIDs, nil }})
			if err != nil {
				t.Fatal(err)
			}
			if rep.ParamsBefore != c.ParamsBefore || rep.ParamsAfter != c.ParamsAfter {
				t.Errorf("params %d → %d, golden %d → %d", rep.ParamsBefore, rep.ParamsAfter, c.ParamsBefore, c.ParamsAfter)
			}
			if n := int64(m.Store.NumParameters()); n != c.ParamsAfter {
				t.Errorf("store holds %d parameters, golden %d", n, c.ParamsAfter)
			}
			for _, lr := range rep.Layers {
				gl, ok := c.Layers[strconv.Itoa(lr.Layer)]
				if !ok {
					if len(lr.KVHeadScores) != 0 || len(lr.HeadsKept) != 8 || len(lr.MLPChannelsKept) != 172 {
						t.Errorf("layer %d is outside the ranges but was changed: %+v", lr.Layer, lr)
					}
					continue
				}
				if !slices.Equal(lr.HeadsKept, gl.Attention.KeptQHeads) || !slices.Equal(lr.KVHeadsKept, gl.Attention.KeptKVHeads) {
					t.Errorf("layer %d: kept heads %v / kv %v, golden %v / %v", lr.Layer, lr.HeadsKept, lr.KVHeadsKept, gl.Attention.KeptQHeads, gl.Attention.KeptKVHeads)
				}
				if !slices.Equal(lr.MLPChannelsKept, gl.MLP.KeptChannels) {
					t.Errorf("layer %d: kept MLP channels differ from the golden ones", lr.Layer)
				}
			}
			loss, err := m.Loss([][]int{g.EvalIDs})
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(loss-c.PostPrune.Loss) > 1e-4 {
				t.Errorf("pruned model loss on eval_ids %.7f, golden %.7f", loss, c.PostPrune.Loss)
			}
			logits, err := m.Logits([][]int{g.EvalIDs})
			if err != nil {
				t.Fatal(err)
			}
			last := logits[0][len(g.EvalIDs)-1]
			worst := 0.0
			for i, w := range c.PostPrune.LogitsFirst {
				worst = math.Max(worst, math.Abs(float64(last[i])-w))
			}
			if worst > 1e-4 {
				t.Errorf("pruned model last-position logits differ from the golden ones by up to %.3g", worst)
			}
			t.Logf("%s: params %d → %d, eval loss %.7f (golden %.7f), max |Δlogit| %.2g", c.Name, rep.ParamsBefore, rep.ParamsAfter, loss, c.PostPrune.Loss, worst)
		})
	}
}
