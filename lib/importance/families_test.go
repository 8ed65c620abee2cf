package importance

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/llmpruner/llmpruner/lib/groups"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/models"
)

// TestFamiliesTaylorMatchReference: first-order Taylor scores (param_first, sum) of every head
// group and MLP channel of the tiny Qwen2 (q/k/v biases, GQA, tied), Mistral (sliding window) and
// Llama-3.2 (llama3 rope scaling, tied) models equal PyTorch autograd's through
// scripts/llama_family_ref.py, within 1e-4 relative; so does the loss.
func TestFamiliesTaylorMatchReference(t *testing.T) {
	for _, name := range []string{"qwen2_tiny", "mistral_tiny", "llama32_tiny"} {
		checkTaylorReference(t, name)
	}
}

// checkTaylorReference compares the Taylor scores (param_first) of every head group and MLP channel
// of the tiny checkpoint lib/models/testdata/<name>, and its loss on the calibration batch, with
// the PyTorch autograd values its expected.json holds, within 1e-4 relative.
func checkTaylorReference(t *testing.T, name string) {
	t.Helper()
	dir := "../models/testdata/" + name
	data, err := os.ReadFile(dir + "/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Taylor struct {
			Calibration [][]int     `json:"calibration"`
			Loss        float64     `json:"loss"`
			HeadScores  [][]float64 `json:"head_scores"`
			MLPScores   [][]float64 `json:"mlp_scores"`
		} `json:"taylor"`
	}
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatal(err)
	}
	m, err := models.Load(groupstest.Backend(t), dir, models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	loss, err := m.Loss(e.Taylor.Calibration)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(loss-e.Taylor.Loss) > 1e-4*e.Taylor.Loss {
		t.Errorf("%s: loss %.7f, reference %.7f", name, loss, e.Taylor.Loss)
	}
	var fams []*groups.Family
	var want [][]float64
	for l := range m.Config.NumLayers() {
		h, _ := groups.AttentionHeads(m.Config, l)
		f, _ := groups.MLPChannels(m.Config, l)
		fams = append(fams, h, f)
		want = append(want, e.Taylor.HeadScores[l], e.Taylor.MLPScores[l])
	}
	est, err := New(Options{Criterion: Taylor, Taylor: ParamFirst, Calibration: e.Taylor.Calibration})
	if err != nil {
		t.Fatal(err)
	}
	got, err := est.Scores(m, fams)
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for i := range fams {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("%s family %d: %d scores, reference %d", name, i, len(got[i]), len(want[i]))
		}
		var d, ref float64
		for j := range want[i] {
			d = math.Max(d, math.Abs(got[i][j]-want[i][j]))
			ref = math.Max(ref, math.Abs(want[i][j]))
		}
		worst = math.Max(worst, d/ref)
	}
	t.Logf("%s: loss %.6f (reference %.6f); worst Taylor score relative error %.2e over %d families", name, loss, e.Taylor.Loss, worst, len(fams))
	if worst > 1e-4 {
		t.Errorf("%s: Taylor scores differ from the reference by %.3g relative", name, worst)
	}
}
