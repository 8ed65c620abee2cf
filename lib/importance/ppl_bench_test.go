package importance

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/eval"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/models"
)

// The eval ppl counterpart of BenchmarkTaylor7BShaped, on the same random LLaMA-7B-shaped
// checkpoint (LLMPRUNER_BENCH_LAYERS, LLMPRUNER_BENCH_DTYPE): perplexity of random token windows,
// LLMPRUNER_BENCH_PPL windows × length (default 8x128), streamed layer by layer (models.Streamed,
// one sweep) or loaded whole, each in its own process for its own peak RSS.
const pplBenchChildEnv = "LLMPRUNER_BENCH_PPL7B_CHILD"

// TestPPL7BChild is the job a BenchmarkPPL7BShaped child runs (skipped otherwise).
func TestPPL7BChild(t *testing.T) {
	job := os.Getenv(pplBenchChildEnv)
	if job == "" {
		t.Skip("run by BenchmarkPPL7BShaped")
	}
	dir := os.Getenv("LLMPRUNER_BENCH_DIR")
	var n, l int
	if _, err := fmt.Sscanf(benchEnv("LLMPRUNER_BENCH_PPL", "8x128"), "%dx%d", &n, &l); err != nil {
		t.Fatal(err)
	}
	cfg, err := arch.LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	ids := groupstest.Tokens(1, n*l, cfg.Vocab, 7)[0]
	be := groupstest.Backend(t)
	t0 := time.Now()
	var res eval.PPLResult
	switch job {
	case "stream":
		r, err := checkpoint.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		s, err := models.NewStreamed(&models.Model{Config: cfg, Backend: be}, r)
		if err != nil {
			t.Fatal(err)
		}
		s.Batch = eval.DefaultPPLBatch
		res, err = eval.PerplexityOfIDs(s, ids, eval.PPLOptions{SeqLen: l, Batch: n}) // one sweep
		if err != nil {
			t.Fatal(err)
		}
	case "memory":
		m, err := models.Load(be, dir, models.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res, err = eval.PerplexityOfIDs(m, ids, eval.PPLOptions{SeqLen: l}); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("unknown job %q", job)
	}
	fmt.Printf("RESULT seconds=%.3f peak=%d nll=%.9g\n", time.Since(t0).Seconds(), peakRSS(), res.NLL)
}

// BenchmarkPPL7BShaped compares eval ppl of the random LLaMA-7B-shaped checkpoint streamed layer by
// layer and loaded whole (open or load + forward + log-softmax over all windows), each in its own
// process. Metrics (peak = the process's VmHWM): stream_x_memory_time, stream_peak_x_weights and
// memory_peak_x_weights (peak RSS / float32 weight bytes), stream_x_memory_peak; the two NLLs must
// agree to 1e-5.
func BenchmarkPPL7BShaped(b *testing.B) {
	layers, err := strconv.Atoi(benchEnv("LLMPRUNER_BENCH_LAYERS", "8"))
	if err != nil || layers < 1 {
		b.Fatalf("LLMPRUNER_BENCH_LAYERS: %v", err)
	}
	cfg := bench7BConfig(b, layers)
	dtype := benchEnv("LLMPRUNER_BENCH_DTYPE", "f32")
	dir := benchCheckpoint(b, cfg, dtype)
	weights := float64(4 * arch.NumParams(cfg))
	res := map[string]benchResult{}
	nll := map[string]float64{}
	jobs := strings.Split(benchEnv("LLMPRUNER_BENCH_JOBS", "stream,memory"), ",")
	for range b.N {
		for _, job := range jobs {
			cmd := exec.Command(os.Args[0], "-test.run=^TestPPL7BChild$", "-test.v")
			cmd.Env = append(os.Environ(), pplBenchChildEnv+"="+job, "LLMPRUNER_BENCH_DIR="+dir)
			out, err := cmd.CombinedOutput()
			if err != nil {
				b.Logf("%s: %v\n%s", job, err, tail(string(out), 2000))
				continue
			}
			var r benchResult
			var x float64
			for _, line := range strings.Split(string(out), "\n") {
				if i := strings.Index(line, "RESULT "); i >= 0 {
					fmt.Sscanf(line[i:], "RESULT seconds=%g peak=%g nll=%g", &r.seconds, &r.peak, &x)
					fmt.Fprintf(os.Stderr, "%s: %s\n", job, line[i:])
					res[job], nll[job] = r, x
				}
			}
		}
	}
	b.Logf("%d layers (%s on disk), float32 weights %.2f GB, windows %s", layers, dtype, weights/1e9, benchEnv("LLMPRUNER_BENCH_PPL", "8x128"))
	s, okS := res["stream"]
	m, okM := res["memory"]
	if okS {
		b.ReportMetric(s.peak/weights, "stream_peak_x_weights")
		b.ReportMetric(s.seconds, "stream_s")
	}
	if okM {
		b.ReportMetric(m.peak/weights, "memory_peak_x_weights")
		b.ReportMetric(m.seconds, "memory_s")
	}
	if okS && okM {
		b.ReportMetric(s.seconds/m.seconds, "stream_x_memory_time")
		b.ReportMetric(s.peak/m.peak, "stream_x_memory_peak")
		if d := math.Abs(nll["stream"]-nll["memory"]) / nll["memory"]; d > 1e-5 {
			b.Errorf("NLL streamed %.9g, loaded %.9g: relative difference %.3g", nll["stream"], nll["memory"], d)
		}
	}
}
