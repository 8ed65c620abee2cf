package lora

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/llmpruner/llmpruner/lib/data"
	"github.com/llmpruner/llmpruner/lib/eval"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/importance"
	"github.com/llmpruner/llmpruner/lib/internal/testdata"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/llmpruner/llmpruner/lib/prune"
)

// recoveryRun is the outcome of the stories260K prune → LoRA → evaluate experiment.
type recoveryRun struct {
	dense, pruned, recovered float64 // held-out perplexity
	paramsDense, paramsPrune int64
	steps                    int
	trainTime                time.Duration
	tokensPerSec             float64
}

// recoverStories260K prunes stories260K 50% block-wise (Taylor, layers 1:5, i.e. every layer but
// the first), trains LoRA on the first part of the TinyStories text and measures perplexity
// (128-token windows, LLM-Pruner's protocol) on the held-out last part.
func recoverStories260K(t *testing.T, steps, batch, heldOutChars int) recoveryRun {
	t.Helper()
	m, err := models.Load(groupstest.Backend(t), testdata.Path(t, "models/stories260K/stories260K.bin"), models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	text, err := data.ReadText(testdata.Path(t, "text/tinystories/tinystories_val_head.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// Hold out the last stories (cut at a story boundary) for evaluation.
	cut := strings.Index(text[len(text)-heldOutChars:], "\n\n") + len(text) - heldOutChars
	trainText, heldOut := text[:cut], text[cut+2:]
	ppl := func() float64 {
		r, err := eval.Perplexity(m, m.Tokenizer, heldOut, eval.PPLOptions{SeqLen: 128})
		if err != nil {
			t.Fatal(err)
		}
		return r.PPL
	}
	var run recoveryRun
	run.dense = ppl()
	calib, err := data.CalibrationSamples(m.Tokenizer, trainText, 10, 64, 42)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := prune.Prune(m, prune.Options{Strategy: prune.Block, Ratio: 0.5,
		AttnLayers: &prune.Range{Start: 1, End: 5}, MLPLayers: &prune.Range{Start: 1, End: 5},
		Importance: importance.Options{Criterion: importance.Taylor},
		Sampler:    func(int) ([][]int, error) { return calib, nil }})
	if err != nil {
		t.Fatal(err)
	}
	run.paramsDense, run.paramsPrune = rep.ParamsBefore, rep.ParamsAfter
	run.pruned = ppl()
	ds, err := PrepareText(m.Tokenizer, trainText, DataOptions{CutoffLen: 128, ValSize: 32, Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := Finetune(context.Background(), m, ds, TrainOptions{
		LoRA:     Config{R: 8, Alpha: 16, Dropout: 0.05, Targets: AllTargets},
		MaxSteps: steps, LearningRate: 3e-3, BatchSize: batch, MicroBatch: min(batch, 16), WarmupSteps: steps / 10,
		EvalEvery: max(steps/4, 1), SaveEvery: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	run.trainTime = time.Since(start)
	run.steps, run.tokensPerSec = res.Steps, res.TokensPerSec
	run.recovered = ppl()
	t.Logf("stories260K: params %d → %d; held-out PPL dense %.3f, pruned %.3f, LoRA-recovered %.3f (%d steps × %d × 128 tokens, %.1fs, %.0f tokens/s; val loss %v)",
		run.paramsDense, run.paramsPrune, run.dense, run.pruned, run.recovered, run.steps, batch, run.trainTime.Seconds(), run.tokensPerSec, res.Evals)
	return run
}

// TestStories260KRecovery is the acceptance experiment (minutes): LoRA recovers at least half of
// the perplexity lost by pruning. Run it with LLMPRUNER_LONG=1.
func TestStories260KRecovery(t *testing.T) {
	if os.Getenv("LLMPRUNER_LONG") != "1" || testing.Short() {
		t.Skip("set LLMPRUNER_LONG=1 to run the stories260K recovery experiment (a few CPU minutes)")
	}
	r := recoverStories260K(t, 200, 16, 80000)
	if lost, regained := r.pruned-r.dense, r.pruned-r.recovered; !(regained >= lost/2) {
		t.Errorf("LoRA regained %.3f of the %.3f PPL lost by pruning (want ≥ half)", regained, lost)
	}
}

// TestStories260KRecoveryQuick is the short version: a few dozen steps must already lower the
// pruned model's held-out perplexity.
func TestStories260KRecoveryQuick(t *testing.T) {
	r := recoverStories260K(t, 16, 8, 12000)
	if !(r.recovered < r.pruned-0.05*(r.pruned-r.dense)) || !(r.pruned > r.dense) {
		t.Errorf("PPL dense %.3f, pruned %.3f, after 16 LoRA steps %.3f: expected pruned > dense and a recovery", r.dense, r.pruned, r.recovered)
	}
}
