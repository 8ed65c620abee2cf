package importance

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
)

// TestStreamedPeakIndependentOfDepth streams Taylor importance of random LLaMAs of 2 and 8 layers
// of the same shapes, three times, each in its own process (TestTaylor7BChild), and checks that the deeper
// model's peak RSS (the lowest of its three runs: the garbage collector's timing adds up to ~35 MB
// here) exceeds the shallower one's by less than one layer's float32 weights: the streamed peak is
// one step's working set, whatever the depth (buffers released between half layers; before that,
// pooled buffers made the peak grow with every half layer).
func TestStreamedPeakIndependentOfDepth(t *testing.T) {
	if testing.Short() {
		t.Skip("writes checkpoints of 0.14 and 0.44 GB and scores each three times in child processes")
	}
	peak := map[int]float64{}
	var layerBytes float64
	for _, layers := range []int{2, 8} {
		cfg := groupstest.Config(t, map[string]any{"hidden_size": 1024, "intermediate_size": 2816,
			"num_hidden_layers": layers, "num_attention_heads": 8, "num_key_value_heads": 8, "vocab_size": 4096})
		layerBytes = float64(4 * arch.LayerParams(cfg, 0))
		r, err := newRandomCheckpoint(cfg, dtypes.Float32)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "model")
		if err := checkpoint.SaveHFFromReader(dir, cfg, r, checkpoint.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
		for run := range 3 {
			cmd := exec.Command(os.Args[0], "-test.run=^TestTaylor7BChild$", "-test.v")
			cmd.Env = append(os.Environ(), benchChildEnv+"=stream", "LLMPRUNER_BENCH_DIR="+dir, "LLMPRUNER_BENCH_CALIB=2x32")
			res, ok := runBenchChild(t, "stream", cmd)
			if !ok {
				t.Fatalf("%d-layer child failed", layers)
			}
			if run == 0 || res.peak < peak[layers] {
				peak[layers] = res.peak
			}
		}
		t.Logf("%d layers: peak %.0f MB, the lowest of three runs (one layer's float32 weights %.0f MB)", layers, peak[layers]/1e6, layerBytes/1e6)
	}
	if growth := peak[8] - peak[2]; growth > layerBytes {
		t.Errorf("streamed peak grew by %.0f MB from 2 to 8 layers, more than one layer's %.0f MB of float32 weights", growth/1e6, layerBytes/1e6)
	}
}
