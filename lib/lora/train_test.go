package lora

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/llmpruner/llmpruner/lib/models"
)

// patternData is a learnable toy task: sequences i, i+d, i+2d, … (mod 40) for various starts and
// strides; labels mask the first 3 positions of half the examples, like Alpaca prompts.
func patternData(n, length int) *Dataset {
	ds := &Dataset{}
	for k := range n {
		start, stride := (7*k)%40, 1+k%3
		ids := make([]int, length-k%3)
		for i := range ids {
			ids[i] = (start + i*stride) % 40
		}
		ex := Example{IDs: ids}
		if k%2 == 1 {
			ex.Labels = slices.Clone(ids)
			for i := range 3 {
				ex.Labels[i] = -100
			}
		}
		if k%5 == 4 {
			ds.Val = append(ds.Val, ex)
		} else {
			ds.Train = append(ds.Train, ex)
		}
	}
	return ds
}

func baseWeights(t *testing.T, m *models.Model) map[string][]float32 {
	out := map[string][]float32{}
	for v := range m.Store.IterVariables() {
		if !isAdapterVar(v.Path()) {
			d, err := variableFloats(v, v.Shape().Size())
			if err != nil {
				t.Fatal(err)
			}
			out[v.Path()] = d
		}
	}
	return out
}

func TestFinetuneLearnsAndOnlyAdaptersMove(t *testing.T) {
	m := tinyModel(t, 21)
	before := baseWeights(t, m)
	ds := patternData(50, 12)
	var progress []Progress
	res, err := Finetune(context.Background(), m, ds, TrainOptions{
		LoRA: Config{R: 4, Alpha: 8, Dropout: 0.05, Targets: AllTargets}, MaxSteps: 40, LearningRate: 1e-2,
		BatchSize: 8, MicroBatch: 4, WarmupSteps: 5, EvalEvery: 10, SaveEvery: -1,
		Progress: func(p Progress) { progress = append(progress, p) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Losses) != 40 || len(progress) != 40 || res.Steps != 40 {
		t.Fatalf("%d losses, %d progress calls, %d steps", len(res.Losses), len(progress), res.Steps)
	}
	if progress[0].LearningRate != 0 || math.Abs(progress[5].LearningRate-1e-2) > 1e-12 || progress[39].LearningRate <= 0 {
		t.Errorf("schedule: lr %g, %g, %g", progress[0].LearningRate, progress[5].LearningRate, progress[39].LearningRate)
	}
	if len(res.Evals) != 4 || !(res.Evals[3].ValLoss < res.Evals[0].ValLoss-0.2) {
		t.Errorf("validation losses %+v: expected a clear decrease", res.Evals)
	}
	first, last := mean(res.Losses[:5]), mean(res.Losses[35:])
	if !(last < first-0.3) {
		t.Errorf("training loss %.3f → %.3f: expected a clear decrease", first, last)
	}
	if want := 2 * res.Adapter.NumParams(m); res.OptimizerState != want {
		t.Errorf("optimizer state %d values, want 2 × %d adapter parameters", res.OptimizerState, want/2)
	}
	after := baseWeights(t, m)
	for p, d := range before {
		if !slices.Equal(d, after[p]) {
			t.Errorf("base weight %s changed during LoRA training", p)
		}
	}
	t.Logf("loss %.3f → %.3f, val %.3f → %.3f (best step %d), %.0f tokens/s",
		first, last, res.Evals[0].ValLoss, res.Evals[3].ValLoss, res.BestStep, res.TokensPerSec)
}

func mean(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// TestResumeIsExact stops a run after step 8 (as a kill would, after checkpoint-8 was written),
// resumes it in a fresh model and compares the loss curve, evaluations and final adapter with an
// uninterrupted run, bit for bit. Dropout is on, and 12 steps cross an epoch boundary.
func TestResumeIsExact(t *testing.T) {
	ds := patternData(30, 10) // 24 training examples: 4 steps of 6 per epoch
	opts := TrainOptions{LoRA: Config{R: 2, Alpha: 4, Dropout: 0.1, Targets: []string{"q", "v", "down"}},
		MaxSteps: 12, LearningRate: 5e-3, BatchSize: 6, MicroBatch: 2, WarmupSteps: 3, EvalEvery: 4, SaveEvery: 4, KeepCheckpoints: 2}

	full := opts
	full.OutDir = t.TempDir()
	mFull := tinyModel(t, 31)
	want, err := Finetune(context.Background(), mFull, ds, full)
	if err != nil {
		t.Fatal(err)
	}
	wantDir := full.OutDir

	part := opts
	part.OutDir = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	part.Progress = func(p Progress) {
		if p.Step == 8 {
			cancel()
		}
	}
	if _, err := Finetune(ctx, tinyModel(t, 31), ds, part); err != context.Canceled {
		t.Fatalf("interrupted run: err %v, want context.Canceled", err)
	}
	steps, _ := checkpointSteps(part.OutDir)
	if !slices.Equal(steps, []int{4, 8}) {
		t.Fatalf("checkpoints %v, want [4 8]", steps)
	}
	resumed := opts
	resumed.OutDir = part.OutDir
	resumed.Resume = part.OutDir
	var ran []int
	resumed.Progress = func(p Progress) { ran = append(ran, p.Step) }
	mRes := tinyModel(t, 31)
	got, err := Finetune(context.Background(), mRes, ds, resumed)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ran, []int{9, 10, 11, 12}) {
		t.Errorf("resumed run did steps %v, want 9..12", ran)
	}
	if !slices.Equal(got.Losses, want.Losses) {
		t.Errorf("loss curves differ:\n resumed %v\n full    %v", got.Losses, want.Losses)
	}
	if len(got.Evals) != len(want.Evals) {
		t.Fatalf("evals %v vs %v", got.Evals, want.Evals)
	}
	for i := range got.Evals {
		if got.Evals[i].ValLoss != want.Evals[i].ValLoss {
			t.Errorf("eval %d: %v vs %v", i, got.Evals[i], want.Evals[i])
		}
	}
	if got.BestStep != want.BestStep {
		t.Errorf("best step %d vs %d", got.BestStep, want.BestStep)
	}
	for _, name := range []string{WeightsFile, ConfigFile} {
		a, _ := os.ReadFile(filepath.Join(wantDir, name))
		b, _ := os.ReadFile(filepath.Join(part.OutDir, name))
		if len(a) == 0 || string(a) != string(b) {
			t.Errorf("final %s differs between the resumed and the uninterrupted run", name)
		}
	}
	if steps, _ := checkpointSteps(part.OutDir); !slices.Equal(steps, []int{8, 12}) {
		t.Errorf("kept checkpoints %v, want the last 2 [8 12]", steps)
	}
	// The written adapter loads into a fresh model and reproduces the trained model's logits.
	seqs := [][]int{ds.Val[0].IDs, ds.Val[1].IDs}
	fresh := tinyModel(t, 31)
	if _, err := LoadAdapter(fresh, wantDir); err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(logitsOf(t, mFull, seqs), logitsOf(t, fresh, seqs)); d != 0 {
		t.Errorf("adapter written by Finetune reloads with logits differing by %g", d)
	}
}
