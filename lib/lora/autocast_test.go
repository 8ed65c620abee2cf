package lora

import (
	"context"
	"math"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/llmpruner/llmpruner/lib/models"
)

// TestFinetuneMixedPrecision: LoRA training with bf16 matrix products (models.Hooks.MatMulDType,
// adapters and optimizer in float32) follows the float32 run's loss curve closely and learns as
// much; the hook survives Attach.
func TestFinetuneMixedPrecision(t *testing.T) {
	run := func(dt dtypes.DType) *Result {
		m := tinyModel(t, 21)
		if dt != dtypes.Float32 {
			m.Hooks = &models.Hooks{MatMulDType: dt}
		}
		res, err := Finetune(context.Background(), m, patternData(50, 12), TrainOptions{
			LoRA: Config{R: 4, Alpha: 8, Targets: AllTargets}, MaxSteps: 30, LearningRate: 1e-2,
			BatchSize: 8, MicroBatch: 8, WarmupSteps: 3, EvalEvery: 30, SaveEvery: -1,
		})
		if err != nil {
			t.Fatalf("%s: %+v", dt, err)
		}
		if dt != dtypes.Float32 && (m.Hooks == nil || m.Hooks.MatMulDType != dt) {
			t.Fatalf("the adapter's hooks dropped MatMulDType")
		}
		return res
	}
	f32, bf16 := run(dtypes.Float32), run(dtypes.BFloat16)
	var maxDiff float64
	for i := range f32.Losses {
		maxDiff = math.Max(maxDiff, math.Abs(f32.Losses[i]-bf16.Losses[i]))
	}
	first, last := mean(bf16.Losses[:5]), mean(bf16.Losses[25:])
	t.Logf("bf16 loss %.3f → %.3f; max |Δ| from float32's curve %.3f (float32 ends at %.3f)", first, last, maxDiff, mean(f32.Losses[25:]))
	if maxDiff == 0 || maxDiff > 0.1 || !(last < first-0.3) {
		t.Errorf("bf16 training: max |Δ loss| %.4f vs float32 (want (0, 0.1]), loss %.3f → %.3f", maxDiff, first, last)
	}
}
