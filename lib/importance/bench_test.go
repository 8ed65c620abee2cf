package importance

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/groups"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/models"
)

// peakRSS returns VmHWM (peak resident set size) in bytes; resetPeak restarts it (Linux).
func peakRSS() int64 {
	data, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// currentRSS returns VmRSS in bytes.
func currentRSS() int64 {
	data, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func resetPeak() {
	runtime.GC()
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// BenchmarkTaylor measures block-wise Taylor importance (all heads and MLP channels of every layer)
// on a random 4-layer LLaMA (hidden 1024, 16 heads, MLP 2752, vocab 8192: 67.4M parameters, 270 MB
// in fp32) with the original's calibration batch (10 × 64 tokens), against one forward+backward of
// the same batch that returns every weight gradient (what loss.backward() produces). Metrics:
//
//	x_fwdbwd:        Taylor Scores time / forward+backward time (both compiled and warm)
//	x_fwdbwd_cold:   the same, including graph compilation on both sides (Scores compiles per call)
//	x_weights_peak:  peak RSS during Scores / fp32 weight bytes (weights, Go runtime and test binary included)
//	x_weights_extra: (peak RSS during Scores − RSS before) / fp32 weight bytes
//	base_extra:      the same for the forward+backward baseline
func BenchmarkTaylor(b *testing.B) {
	cfg := groupstest.Config(b, map[string]any{"hidden_size": 1024, "intermediate_size": 2752, "num_hidden_layers": 4,
		"num_attention_heads": 16, "vocab_size": 8192})
	m := groupstest.RandomModel(b, cfg, 1, 0.02)
	calib := groupstest.Tokens(10, 64, cfg.Vocab, 2)
	weightBytes := float64(4 * arch.NumParams(cfg))
	var fams []*groups.Family
	for l := range cfg.NumLayers() {
		h, _ := groups.AttentionHeads(cfg, l)
		f, _ := groups.MLPChannels(cfg, l)
		fams = append(fams, h, f)
	}
	for _, mode := range []TaylorMode{ParamFirst, ParamMix} {
		b.Run(mode.String(), func(b *testing.B) {
			var names []string
			for v := range m.Store.IterVariables() {
				names = append(names, models.HFName(v.Path()))
			}
			newBaseline := func() *model.Exec {
				e, err := model.NewExec(m.Backend, m.Store, func(scope *model.Scope, tok *Node) []*Node {
					loss, _, grads := lossAndGrads(scope, m, tok, names)
					return append([]*Node{loss}, grads...)
				})
				if err != nil {
					b.Fatal(err)
				}
				return e
			}
			runBaseline := func(e *model.Exec) {
				out, err := e.Call(tokensTensor(calib))
				if err != nil {
					b.Fatal(err)
				}
				for _, o := range out {
					o.FinalizeAll()
				}
			}
			resetPeak()
			before := float64(currentRSS())
			t0 := time.Now()
			base := newBaseline()
			runBaseline(base)
			coldBase := time.Since(t0)
			baseExtra := float64(peakRSS()) - before
			t0 = time.Now()
			runBaseline(base)
			warmBase := time.Since(t0)
			base.Finalize()

			est, _ := New(Options{Criterion: Taylor, Taylor: mode, Calibration: calib})
			if _, err := est.Scores(m, fams); err != nil { // warm-up (allocator, thread pools)
				b.Fatal(err)
			}
			resetPeak()
			before = float64(currentRSS())
			b.ResetTimer()
			var total time.Duration
			for range b.N {
				t0 := time.Now()
				if _, err := est.Scores(m, fams); err != nil {
					b.Fatal(err)
				}
				total += time.Since(t0)
			}
			b.StopTimer()
			peak := float64(peakRSS())
			per := total / time.Duration(b.N)
			// Scores compiles its graphs on every call: subtract the baseline's compile share for the warm ratio.
			compile := coldBase - warmBase
			b.ReportMetric(float64(per-compile)/float64(warmBase), "x_fwdbwd")
			b.ReportMetric(float64(per)/float64(coldBase), "x_fwdbwd_cold")
			b.ReportMetric(peak/weightBytes, "x_weights_peak")
			b.ReportMetric((peak-before)/weightBytes, "x_weights_extra")
			b.ReportMetric(baseExtra/weightBytes, "base_extra")
			b.Logf("%s: Scores %v/call, fwd+bwd warm %v, cold %v; peak RSS %.0f MB (%.0f MB before), fp32 weights %.0f MB",
				mode, per, warmBase, coldBase, peak/1e6, before/1e6, weightBytes/1e6)
		})
	}
}
