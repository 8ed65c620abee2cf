package lora

import (
	"context"
	"math"
	"testing"

	"github.com/llmpruner/llmpruner/lib/data"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/internal/testdata"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/llmpruner/llmpruner/lib/tokenizer"
)

// TestAlpacaFinetune runs the Alpaca path end to end on real data: stories260K (tok512) on the
// first records of alpaca-cleaned with prompt masking, variable-length padded micro-batches,
// validation loss and the perplexity of an extra text set at every evaluation.
func TestAlpacaFinetune(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: Alpaca fine-tuning compiles several graph shapes")
	}
	m, err := models.Load(groupstest.Backend(t), testdata.Path(t, "models/stories260K/stories260K.bin"), models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	records, err := data.ReadAlpaca(testdata.Path(t, "text/alpaca/alpaca_cleaned_first5000.json"))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := PrepareAlpaca(m.Tokenizer, records[:40], DataOptions{CutoffLen: 256, ValSize: 4, Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	masked, lengths := 0, map[int]bool{}
	for _, ex := range ds.Train {
		lengths[(len(ex.IDs)+7)/8] = true
		for _, l := range ex.Labels {
			if l == data.IgnoreLabel {
				masked++
			}
		}
	}
	if len(ds.Train)+len(ds.Val)+ds.Skipped != 40 || masked == 0 || len(lengths) < 3 {
		t.Fatalf("%d train + %d val + %d skipped; %d masked labels; %d padded lengths", len(ds.Train), len(ds.Val), ds.Skipped, masked, len(lengths))
	}
	story, err := data.ReadText(testdata.Path(t, "text/tinystories/tinystories_val_head.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := tokenizer.ModelInputs(m.Tokenizer, story[:3000])
	if err != nil {
		t.Fatal(err)
	}
	res, err := Finetune(context.Background(), m, ds, TrainOptions{MaxSteps: 2, LearningRate: 1e-3, BatchSize: 4, MicroBatch: 4,
		WarmupSteps: 1, EvalEvery: 1, ExtraEval: []EvalSet{{Name: "tinystories", IDs: ids}}, OutDir: t.TempDir(), SaveEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Evals) != 2 {
		t.Fatalf("evals %+v", res.Evals)
	}
	for _, e := range res.Evals {
		if p := e.PPL["tinystories"]; math.IsNaN(e.ValLoss) || !(p > 1 && p < 100) {
			t.Errorf("evaluation %+v", e)
		}
	}
	t.Logf("Alpaca: %d train, %d val, %d skipped (prompt > 256 tokens); losses %.3f…%.3f; evals %+v",
		len(ds.Train), len(ds.Val), ds.Skipped, res.Losses[0], res.Losses[1], res.Evals)
}
