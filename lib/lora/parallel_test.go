package lora

import (
	"context"
	"strings"
	"testing"
)

// On the Go backend (one device, no partitioner) asking for tensor parallelism gets one line
// naming the device count and the backend, before any graph is built — not GoMLX's panic inside
// graph building.
func TestTensorParallelNeedsAPartitioningBackend(t *testing.T) {
	m := tinyModel(t, 21)
	if m.Backend.NumDevices() > 1 {
		t.Skipf("backend %s has %d devices: TestTensorParallelMatchesOneDevice (-tags xla) covers it", m.Backend.Name(), m.Backend.NumDevices())
	}
	for _, tc := range []struct {
		n    int
		want []string
	}{
		{4, []string{"over 4 devices", "has 1"}},
		{1, []string{"over 1 devices", "cannot partition"}},
		{-1, []string{"-1 devices", "must not be negative"}},
	} {
		_, err := Finetune(context.Background(), m, patternData(30, 12), TrainOptions{
			LoRA: Config{R: 4, Alpha: 8, Targets: AllTargets}, MaxSteps: 1, BatchSize: 8, MicroBatch: 4, SaveEvery: -1, TensorParallel: tc.n,
		})
		if err == nil || strings.Contains(err.Error(), "\n") {
			t.Fatalf("TensorParallel %d: want a one-line error, got %v", tc.n, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("TensorParallel %d: error %q lacks %q", tc.n, err, w)
			}
		}
		Detach(m)
	}
}
