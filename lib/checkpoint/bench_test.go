package checkpoint

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
)

// rssChildEnv makes the test binary act as the loading child of BenchmarkLoadPeakRSS.
const rssChildEnv = "LLMPRUNER_CHECKPOINT_RSS_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(rssChildEnv); path != "" {
		os.Exit(rssChild(path))
	}
	os.Exit(m.Run())
}

// rssChild loads every tensor of the checkpoint at path and keeps them alive, as a model load
// does, then prints its peak RSS (VmHWM) in bytes and the load time.
func rssChild(path string) int {
	start := time.Now()
	r, err := Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var kept []*tensors.Tensor
	var total int64
	for _, ti := range r.Tensors() {
		t, err := r.Read(ti.Name)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		kept = append(kept, t)
		total += t.ByteSize()
	}
	_ = r.Close()
	elapsed := time.Since(start)
	hwm, err := vmHWM()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("VmHWM %d loaded %d tensors %d seconds %f\n", hwm, len(kept), total, elapsed.Seconds())
	return 0
}

// vmHWM reads the peak resident set size from /proc/self/status.
func vmHWM() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("VmHWM not found in /proc/self/status")
}

// BenchmarkLoadPeakRSS writes a ~2 GB safetensors checkpoint (LLMPRUNER_BENCH_GB overrides the
// size) to a temporary directory, then loads every tensor in a child process and reports its
// peak RSS divided by the file size ("peakRSS/file"; target ≤ 1.2) and the load throughput.
func BenchmarkLoadPeakRSS(b *testing.B) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		b.Skip("needs /proc/self/status (Linux)")
	}
	gb := 2.0
	if s := os.Getenv("LLMPRUNER_BENCH_GB"); s != "" {
		if v, err := strconv.ParseFloat(s, 64); err == nil && v > 0 {
			gb = v
		}
	}
	dir, err := os.MkdirTemp("", "llmpruner-rss-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.safetensors")
	if err := writeBenchCheckpoint(path, int64(gb*(1<<30))); err != nil {
		b.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var ratio, gbps float64
	for range b.N {
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), rssChildEnv+"="+path)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("child: %v", err)
		}
		var hwm, loaded int64
		var n int
		var secs float64
		if _, err := fmt.Sscanf(string(out), "VmHWM %d loaded %d tensors %d seconds %f", &hwm, &n, &loaded, &secs); err != nil {
			b.Fatalf("parsing child output %q: %v", out, err)
		}
		ratio = float64(hwm) / float64(st.Size())
		gbps = float64(loaded) / secs / 1e9
		b.Logf("file %.2f GB, %d tensors, child peak RSS %.2f GB, ratio %.3f, load %.2f GB/s", float64(st.Size())/1e9, n, float64(hwm)/1e9, ratio, gbps)
	}
	b.ReportMetric(ratio, "peakRSS/file")
	b.ReportMetric(float64(st.Size())/1e9, "fileGB")
	b.ReportMetric(gbps, "loadGB/s")
}

// writeBenchCheckpoint writes LLaMA-like tensors (float32 and bfloat16 matrices of 32 MiB) until
// about size bytes, generating one tensor at a time.
func writeBenchCheckpoint(path string, size int64) error {
	const rows, cols = 2048, 4096 // 32 MiB in float32
	var infos []TensorInfo
	var total int64
	for i := 0; total < size; i++ {
		dt := dtypes.Float32
		if i%4 == 3 {
			dt = dtypes.BFloat16
		}
		infos = append(infos, TensorInfo{Name: fmt.Sprintf("model.layers.%d.weight", i), DType: dt, Shape: []int{rows, cols}})
		total += int64(rows * cols * dt.Size())
	}
	dtOf := map[string]dtypes.DType{}
	for _, ti := range infos {
		dtOf[ti.Name] = ti.DType
	}
	return writeSafetensors(path, infos, func(name string) (*tensors.Tensor, func(), error) {
		t := tensors.FromShape(shapes.Make(dtOf[name], rows, cols))
		_ = t.MutableBytes(func(b []byte) {
			for i := range b {
				b[i] = byte(i*7 + len(name))
			}
		})
		return t, func() { _ = t.FinalizeAll() }, nil
	}, map[string]string{"format": "pt"})
}
