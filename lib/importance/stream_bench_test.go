package importance

import (
	"bufio"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/pkg/errors"
)

// The LLaMA-7B-shaped benchmark: a random checkpoint with LLaMA-7B's sizes (d 4096, 32 heads of
// 128, MLP 11008, vocab 32000) and fewer layers, generated once into the temporary directory
// (never the repository; ~7.5 GB for 8 float32 layers) and scored in child processes so that each
// job's peak RSS is its own. Env:
//
//	LLMPRUNER_BENCH_LAYERS   decoder layers (default 8)
//	LLMPRUNER_BENCH_DTYPE    stored dtype f32 (default) or bf16
//	LLMPRUNER_BENCH_JOBS     comma list of stream, memory, torch (default all three)
//	LLMPRUNER_BENCH_CALIB    calibration N×T (default 2x64)
const (
	benchChildEnv = "LLMPRUNER_BENCH_TAYLOR7B_CHILD"
)

func benchEnv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// bench7BConfig is LLaMA-7B's config with layers decoder layers.
func bench7BConfig(t testing.TB, layers int) *config.Config {
	return groupstest.Config(t, map[string]any{"hidden_size": 4096, "intermediate_size": 11008,
		"num_hidden_layers": layers, "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32000,
		"rms_norm_eps": 1e-6, "max_position_embeddings": 2048})
}

// randomCheckpoint is a checkpoint.Reader whose tensors are generated on demand in the stored
// dtype (float32 or bfloat16): uniform with standard deviation 0.02, norm weights around 1. The
// values are a function of the tensor name and the chunk index only, so they are reproducible
// whatever the number of workers; chunks are filled in parallel (one PCG stream each), so the 32-layer
// bf16 checkpoint (6.7G values) is generated at disk speed.
type randomCheckpoint struct {
	infos []checkpoint.TensorInfo
}

func newRandomCheckpoint(cfg *config.Config, dtype dtypes.DType) (*randomCheckpoint, error) {
	specs, err := models.ExpectedTensors(cfg)
	if err != nil {
		return nil, err
	}
	r := &randomCheckpoint{}
	for _, s := range specs {
		r.infos = append(r.infos, checkpoint.TensorInfo{Name: s.Name, DType: dtype, Shape: s.Shape, File: "random"})
	}
	return r, nil
}

func (r *randomCheckpoint) Tensors() []checkpoint.TensorInfo { return r.infos }
func (r *randomCheckpoint) Close() error                     { return nil }

// randomChunk is the number of values generated from one PCG stream.
const randomChunk = 1 << 20

func (r *randomCheckpoint) Read(name string) (*tensors.Tensor, error) {
	for _, ti := range r.infos {
		if ti.Name != name {
			continue
		}
		h := fnv.New64a()
		h.Write([]byte(name))
		seed := h.Sum64()
		base := float32(0)
		if len(ti.Shape) == 1 {
			base = 1
		}
		t := tensors.FromShape(shapes.Make(ti.DType, ti.Shape...))
		n := t.Shape().Size()
		var f32 []float32
		var bf16 []bfloat16.BFloat16
		switch ti.DType {
		case dtypes.Float32:
			tensors.MutableFlatData(t, func(d []float32) { f32 = d })
		case dtypes.BFloat16:
			tensors.MutableFlatData(t, func(d []bfloat16.BFloat16) { bf16 = d })
		default:
			return nil, errors.Errorf("random checkpoint: dtype %s not supported", ti.DType)
		}
		chunks := (n + randomChunk - 1) / randomChunk
		var next atomic.Int64
		var wg sync.WaitGroup
		for range min(runtime.GOMAXPROCS(0), chunks) {
			wg.Go(func() {
				for c := int(next.Add(1) - 1); c < chunks; c = int(next.Add(1) - 1) {
					rng := rand.New(rand.NewPCG(seed, uint64(c)))
					lo, hi := c*randomChunk, min((c+1)*randomChunk, n)
					// Uniform with standard deviation 0.02, two values per random word.
					const half = 0.02 * 1.7320508 // √3·σ
					for i := lo; i < hi; i += 2 {
						u := rng.Uint64()
						v0 := base + half*(2*float32(uint32(u))/(1<<32)-1)
						v1 := base + half*(2*float32(uint32(u>>32))/(1<<32)-1)
						if f32 != nil {
							f32[i] = v0
							if i+1 < hi {
								f32[i+1] = v1
							}
						} else { // truncated to bfloat16
							bf16[i] = bfloat16.BFloat16(math.Float32bits(v0) >> 16)
							if i+1 < hi {
								bf16[i+1] = bfloat16.BFloat16(math.Float32bits(v1) >> 16)
							}
						}
					}
				}
			})
		}
		wg.Wait()
		return t, nil
	}
	return nil, errors.Errorf("random checkpoint: no tensor %s", name)
}

// benchCheckpoint returns the directory of the random LLaMA-7B-shaped checkpoint, writing it first
// when missing (atomically: an existing directory is complete).
func benchCheckpoint(b testing.TB, cfg *config.Config, dtype string) string {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("llmpruner-bench-llama7b-%dl-%s", cfg.NumLayers(), dtype))
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err == nil {
		return dir
	}
	dt := dtypes.Float32
	if dtype == "bf16" {
		dt = dtypes.BFloat16
	}
	r, err := newRandomCheckpoint(cfg, dt)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	if err := checkpoint.SaveHFFromReader(dir, cfg, r, checkpoint.SaveOptions{DType: dt}); err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote %s in %s", dir, time.Since(t0).Round(time.Second))
	return dir
}

// benchCalib parses LLMPRUNER_BENCH_CALIB ("2x64").
func benchCalib(t testing.TB) (n, l int) {
	s := benchEnv("LLMPRUNER_BENCH_CALIB", "2x64")
	if _, err := fmt.Sscanf(s, "%dx%d", &n, &l); err != nil || n < 1 || l < 2 {
		t.Fatalf("LLMPRUNER_BENCH_CALIB=%q: want NxT, e.g. 2x64", s)
	}
	return n, l
}

// TestTaylor7BChild is the job a BenchmarkTaylor7BShaped child runs (skipped otherwise): Taylor
// param_first importance of every head and MLP channel of the checkpoint in $LLMPRUNER_BENCH_DIR,
// streamed or loaded whole; it prints the wall time (opening/loading included) and the peak RSS.
func TestTaylor7BChild(t *testing.T) {
	job := os.Getenv(benchChildEnv)
	if job == "" {
		t.Skip("run by BenchmarkTaylor7BShaped")
	}
	dir := os.Getenv("LLMPRUNER_BENCH_DIR")
	n, l := benchCalib(t)
	be := groupstest.Backend(t)
	t0 := time.Now()
	r, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := arch.LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	calib := groupstest.Tokens(n, l, cfg.Vocab, 3)
	est := &TaylorEstimator{Mode: ParamFirst, Reduction: ReductionSum, Calibration: calib}
	fams := allFamilies(t, cfg, false)
	var scores [][]float64
	switch job {
	case "stream":
		scores, err = est.StreamScores(&StreamSource{Backend: be, Config: cfg, Reader: r}, fams)
	case "memory":
		var m *models.Model
		if m, err = models.Load(be, dir, models.LoadOptions{}); err == nil {
			scores, err = est.Scores(m, fams)
		}
	default:
		t.Fatalf("unknown job %q", job)
	}
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(t0)
	fmt.Printf("RESULT seconds=%.3f peak=%d groups=%d\n", elapsed.Seconds(), peakRSS(), len(scores))
}

// benchResult is one child's measurement.
type benchResult struct {
	seconds float64
	peak    float64
}

// runBenchChild runs cmd and parses its "RESULT seconds=… peak=…" line.
func runBenchChild(b testing.TB, name string, cmd *exec.Cmd) (benchResult, bool) {
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Logf("%s: %v\n%s", name, err, tail(string(out), 2000))
		return benchResult{}, false
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, "RESULT ")
		if i < 0 {
			continue
		}
		var r benchResult
		for _, f := range strings.Fields(line[i+7:]) {
			k, v, _ := strings.Cut(f, "=")
			x, _ := strconv.ParseFloat(v, 64)
			switch k {
			case "seconds":
				r.seconds = x
			case "peak":
				r.peak = x
			}
		}
		fmt.Fprintf(os.Stderr, "%s: %s\n", name, line[i:]) // at once: the jobs take minutes
		return r, true
	}
	b.Logf("%s: no RESULT line\n%s", name, tail(string(out), 2000))
	return benchResult{}, false
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// BenchmarkTaylor7BShaped compares, on the random LLaMA-7B-shaped checkpoint (8 layers by default),
// one full Taylor importance job — open or load + forward + backward + |W·G| reductions for every
// head and MLP channel, calibration 2 × 64 tokens — three ways, each in its own process:
// layer-streamed (StreamScores), in memory (Load + Scores) and PyTorch (scripts/bench_torch_taylor.py,
// float32, weights read from the same file). Metrics (peak = the process's VmHWM):
//
//	stream_x_memory_time   streamed time / in-memory time
//	stream_peak_x_weights  streamed peak RSS / float32 weight bytes
//	memory_peak_x_weights  in-memory peak RSS / float32 weight bytes
//	memory_x_torch_time    in-memory time / PyTorch time
//	torch_peak_x_weights   PyTorch peak RSS / float32 weight bytes
func BenchmarkTaylor7BShaped(b *testing.B) {
	layers, err := strconv.Atoi(benchEnv("LLMPRUNER_BENCH_LAYERS", "8"))
	if err != nil || layers < 1 {
		b.Fatalf("LLMPRUNER_BENCH_LAYERS: %v", err)
	}
	cfg := bench7BConfig(b, layers)
	dtype := benchEnv("LLMPRUNER_BENCH_DTYPE", "f32")
	dir := benchCheckpoint(b, cfg, dtype)
	n, l := benchCalib(b)
	weights := float64(4 * arch.NumParams(cfg))
	jobs := strings.Split(benchEnv("LLMPRUNER_BENCH_JOBS", "stream,memory,torch"), ",")
	res := map[string]benchResult{}
	for range b.N {
		for _, job := range jobs {
			var cmd *exec.Cmd
			if job == "torch" {
				script, _ := filepath.Abs("../../scripts/bench_torch_taylor.py")
				cmd = exec.Command("/usr/bin/python3", script, "--model", dir, "--samples", strconv.Itoa(n),
					"--seq", strconv.Itoa(l), "--threads", strconv.Itoa(max(1, runtime.NumCPU())))
			} else {
				cmd = exec.Command(os.Args[0], "-test.run=^TestTaylor7BChild$", "-test.v")
				cmd.Env = append(os.Environ(), benchChildEnv+"="+job, "LLMPRUNER_BENCH_DIR="+dir)
			}
			if r, ok := runBenchChild(b, job, cmd); ok {
				res[job] = r
			}
		}
	}
	b.Logf("%d layers (%s on disk), float32 weights %.2f GB, calibration %d×%d", layers, dtype, weights/1e9, n, l)
	report := func(num, den benchResult, okN, okD bool, f func(a, b benchResult) float64, unit string) {
		if okN && okD {
			b.ReportMetric(f(num, den), unit)
		}
	}
	s, okS := res["stream"]
	m, okM := res["memory"]
	tr, okT := res["torch"]
	report(s, m, okS, okM, func(a, b benchResult) float64 { return a.seconds / b.seconds }, "stream_x_memory_time")
	report(s, s, okS, okS, func(a, _ benchResult) float64 { return a.peak / weights }, "stream_peak_x_weights")
	report(m, m, okM, okM, func(a, _ benchResult) float64 { return a.peak / weights }, "memory_peak_x_weights")
	report(m, tr, okM, okT, func(a, b benchResult) float64 { return a.seconds / b.seconds }, "memory_x_torch_time")
	report(tr, tr, okT, okT, func(a, _ benchResult) float64 { return a.peak / weights }, "torch_peak_x_weights")
	for _, job := range jobs {
		if r, ok := res[job]; ok {
			b.ReportMetric(r.seconds, job+"_s")
		}
	}
}
