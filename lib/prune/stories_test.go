package prune

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/importance"
	"github.com/llmpruner/llmpruner/lib/internal/testdata"
	"github.com/llmpruner/llmpruner/lib/models"
)

// TestStories260K prunes a real GQA model with tied embeddings (stories260K in HF layout: 8 query
// heads over 4 kv heads) block-wise with Taylor param_first, saves and reloads it, and checks its
// logits against the unpruned model with the same kv-head groups and MLP channels zeroed.
func TestStories260K(t *testing.T) {
	dir := testdata.GoldenPath(t, "stories260K-hf")
	data, err := os.ReadFile(testdata.GoldenPath(t, "stories260K_greedy.json"))
	if err != nil {
		t.Fatal(err)
	}
	var greedy struct {
		IDs []int `json:"greedy_ids_after_bos_64"`
	}
	if err := json.Unmarshal(data, &greedy); err != nil {
		t.Fatal(err)
	}
	story := append([]int{1}, greedy.IDs...) // real text: BOS + 64 tokens
	sampler := func(step int) ([][]int, error) {
		var rows [][]int
		for j := range 4 {
			s := (7*step + 11*j) % (len(story) - 24)
			rows = append(rows, story[s:s+24])
		}
		return rows, nil
	}
	load := func() *models.Model {
		m, err := models.Load(groupstest.Backend(t), dir, models.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m, ref := load(), load()
	denseLoss, err := ref.Loss([][]int{story})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Prune(m, Options{Strategy: Block, Ratio: 0.5, AttnLayers: &Range{1, 4}, MLPLayers: &Range{1, 4},
		Importance: importance.Options{Criterion: importance.Taylor}, Sampler: sampler})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.Config.KVHeads, []int{4, 2, 2, 2, 4}) || !slices.Equal(m.Config.Heads, []int{8, 4, 4, 4, 8}) || m.Config.Inter[2] != 86 {
		t.Errorf("pruned config %v", m.Config)
	}
	out := filepath.Join(t.TempDir(), "pruned")
	if err := m.Save(out, ""); err != nil {
		t.Fatal(err)
	}
	back, err := models.Load(groupstest.Backend(t), out, models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := back.Logits([][]int{story})
	if err != nil {
		t.Fatal(err)
	}
	zeroRemoved(t, ref, rep)
	want, err := ref.Logits([][]int{story})
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(got, want); d > 1e-4 {
		t.Errorf("reloaded pruned stories260K vs zeroed unpruned: logits differ by %.3g", d)
	}
	prunedLoss, err := back.Loss([][]int{story})
	if err != nil {
		t.Fatal(err)
	}
	if math.IsNaN(prunedLoss) || prunedLoss <= denseLoss {
		t.Errorf("loss on the story: dense %.4f, pruned %.4f", denseLoss, prunedLoss)
	}
	t.Logf("stories260K block 0.5 on layers 1:4 (Taylor): params %d → %d, loss on the greedy story %.4f → %.4f",
		rep.ParamsBefore, rep.ParamsAfter, denseLoss, prunedLoss)
}
