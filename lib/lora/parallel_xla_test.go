//go:build xla

package lora

import (
	"context"
	"math"
	"testing"

	_ "github.com/llmpruner/llmpruner/lib/backend"
)

// TestTensorParallelMatchesOneDevice runs LoRA recovery with the model split over the backend's
// devices (GOMLX_BACKEND=xla:cuda, or xla:cpu with several host devices) and compares it with the
// run without a mesh: the partitioner changes where tensors live and adds all-reduces, so the
// losses agree to float32 rounding of the reordered sums. It skips without a partitioning backend
// (CI has no PJRT plugin); `go vet -tags xla` keeps it compiling.
func TestTensorParallelMatchesOneDevice(t *testing.T) {
	probe := tinyModel(t, 21)
	n := probe.Backend.NumDevices()
	if err := canPartition(probe.Backend, 1); err != nil {
		t.Skipf("backend %s: %v", probe.Backend.Name(), err)
	}
	n = min(n, 2) // the tiny model has 2 kv heads per layer
	run := func(tp int) *Result {
		m := tinyModel(t, 21)
		res, err := Finetune(context.Background(), m, patternData(30, 12), TrainOptions{
			LoRA: Config{R: 4, Alpha: 8, Targets: AllTargets}, MaxSteps: 6, LearningRate: 1e-2,
			BatchSize: 8, MicroBatch: 4, WarmupSteps: 2, EvalEvery: 3, SaveEvery: -1, TensorParallel: tp,
		})
		if err != nil {
			t.Fatalf("TensorParallel %d: %v", tp, err)
		}
		return res
	}
	plain := run(0)
	for _, tp := range []int{1, n} {
		got := run(tp)
		for i := range plain.Losses {
			if d := math.Abs(got.Losses[i] - plain.Losses[i]); d > 1e-4*math.Abs(plain.Losses[i]) {
				t.Errorf("%d devices, step %d: loss %v, without a mesh %v", tp, i+1, got.Losses[i], plain.Losses[i])
			}
		}
		t.Logf("%d devices: losses %v (no mesh %v)", tp, got.Losses, plain.Losses)
	}
}
