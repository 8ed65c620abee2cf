// Command loadtime measures how long a fresh process takes to load a checkpoint with
// models.Load — what every GoNB notebook cell pays, since each cell runs as a new program — and
// compares it with reading the same files from the page cache.
//
//	go run ./kernel/loadtime -write DIR [-layers 2] [-dtype f32|bf16]   # LLaMA-7B-shaped checkpoint
//	go run ./kernel/loadtime [-runs 5] DIR                              # measure
//
// -write makes a Hugging Face directory (config.json, model.safetensors, the LLaMA-2 tokenizer from
// $LLMPRUNER_DATA when present) with LLaMA-7B's shapes (hidden 4096, 32 heads, MLP 11008, vocab
// 32000) and -layers decoder layers; the weights are a cheap deterministic pattern (load time does
// not depend on the values). Write it outside the repository (e.g. under /tmp): 2 layers are
// 2.7 GB in F32.
//
// The measurement warms the page cache by reading the files once, then reports, over -runs runs:
//   - page cache read: the files read into one reused 1 MiB buffer (as `cat DIR/* >/dev/null`);
//   - page cache → new memory: the files read into freshly allocated buffers, the floor for any
//     loader that copies (the kernel zero-fills new pages, then the data is copied in);
//   - process start → model ready: a child process (this binary with -child) from exec until
//     models.Load has returned, including Go runtime start, backend creation and the tokenizer.
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	_ "github.com/gomlx/compute/gobackend"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/pkg/errors"
)

func main() {
	write := flag.String("write", "", "write a LLaMA-7B-shaped checkpoint into this directory and exit")
	layers := flag.Int("layers", 2, "decoder layers of the written checkpoint")
	dtype := flag.String("dtype", "f32", "dtype of the written checkpoint: f32 or bf16")
	runs := flag.Int("runs", 5, "measured runs of each kind")
	child := flag.Bool("child", false, "load DIR once in this process, print \"ready\" and the phases")
	cpuProfile := flag.String("cpuprofile", "", "with -child: write a CPU profile of the load here")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtime:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	var err error
	switch {
	case *write != "":
		err = writeCheckpoint(*write, *layers, *dtype)
	case flag.NArg() != 1:
		fmt.Fprintln(os.Stderr, "usage: loadtime -write DIR [-layers N] [-dtype f32|bf16] | loadtime [-runs N] DIR")
		os.Exit(2)
	case *child:
		err = loadOnce(flag.Arg(0))
	default:
		err = measure(flag.Arg(0), *runs)
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "loadtime:", err)
		os.Exit(1)
	}
}

// config7B is LLaMA-7B's config.json with the layer count and dtype changed.
func config7B(layers int, torchDType string) string {
	return fmt.Sprintf(`{
  "architectures": ["LlamaForCausalLM"], "model_type": "llama",
  "hidden_size": 4096, "intermediate_size": 11008, "num_attention_heads": 32, "num_key_value_heads": 32,
  "num_hidden_layers": %d, "vocab_size": 32000, "max_position_embeddings": 2048,
  "rms_norm_eps": 1e-06, "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": false,
  "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": %q
}
`, layers, torchDType)
}

func writeCheckpoint(dir string, layers int, dtype string) error {
	var dt dtypes.DType
	var torchDType string
	switch dtype {
	case "f32":
		dt, torchDType = dtypes.Float32, "float32"
	case "bf16":
		dt, torchDType = dtypes.BFloat16, "bfloat16"
	default:
		return errors.Errorf("-dtype %q: want f32 or bf16", dtype)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cfgJSON := config7B(layers, torchDType)
	cfg, err := arch.ParseConfig([]byte(cfgJSON), "config.json")
	if err != nil {
		return err
	}
	specs, err := models.ExpectedTensors(cfg)
	if err != nil {
		return err
	}
	shapeOf := map[string][]int{}
	var names []string
	for _, s := range specs {
		names, shapeOf[s.Name] = append(names, s.Name), s.Shape
	}
	// One tensor at a time: the writer asks for each name twice (shape, then bytes).
	var last *tensors.Tensor
	var lastName string
	get := func(name string) (*tensors.Tensor, error) {
		if name == lastName {
			return last, nil
		}
		if last != nil {
			_ = last.FinalizeAll()
		}
		t := tensors.FromShape(shapes.Make(dt, shapeOf[name]...))
		t.MutableBytes(func(b []byte) { fillPattern(b, dt) })
		last, lastName = t, name
		return t, nil
	}
	if err := checkpoint.WriteSafetensors(filepath.Join(dir, "model.safetensors"), names, get, nil); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfgJSON), 0o644); err != nil {
		return err
	}
	if data := os.Getenv("LLMPRUNER_DATA"); data != "" {
		tok, err := os.ReadFile(filepath.Join(data, "tokenizers", "llama2", "tokenizer.model"))
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "tokenizer.model"), tok, 0o644)
		}
		if err != nil {
			return errors.Wrap(err, "copying the LLaMA-2 tokenizer")
		}
	}
	fmt.Printf("wrote %s: %d layers of LLaMA-7B shapes, %s\n", dir, layers, dt)
	return nil
}

// fillPattern writes small values (|x| < 0.02) that vary along the buffer.
func fillPattern(b []byte, dt dtypes.DType) {
	switch dt {
	case dtypes.Float32:
		for i := 0; i+4 <= len(b); i += 4 {
			binary.LittleEndian.PutUint32(b[i:], math.Float32bits(float32(int(i/4)%2001-1000)*2e-5))
		}
	case dtypes.BFloat16:
		for i := 0; i+2 <= len(b); i += 2 {
			binary.LittleEndian.PutUint16(b[i:], bfloat16.FromFloat32(float32(int(i/2)%2001-1000)*2e-5).Bits())
		}
	}
}

// loadOnce is the child: load the model the way a notebook cell does, report phases, exit.
func loadOnce(dir string) error {
	t0 := time.Now()
	backend, err := compute.New()
	if err != nil {
		return err
	}
	t1 := time.Now()
	m, err := models.Load(backend, dir, models.LoadOptions{})
	if err != nil {
		return err
	}
	t2 := time.Now()
	fmt.Printf("ready backend=%.3f load=%.3f tokenizer=%v\n", t1.Sub(t0).Seconds(), t2.Sub(t1).Seconds(), m.Tokenizer != nil)
	return nil
}

func checkpointFiles(dir string) ([]string, int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, err
	}
	var files []string
	var total int64
	for _, e := range entries {
		if e.Type().IsRegular() {
			info, err := e.Info()
			if err != nil {
				return nil, 0, err
			}
			files, total = append(files, filepath.Join(dir, e.Name())), total+info.Size()
		}
	}
	return files, total, nil
}

// readAll reads every file, into one reused buffer (fresh=false) or into a new buffer per file.
func readAll(files []string, fresh bool) error {
	small := make([]byte, 1<<20)
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		if fresh {
			st, _ := f.Stat()
			buf := make([]byte, st.Size())
			_, err = io.ReadFull(f, buf)
		} else {
			_, err = io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, small)
		}
		_ = f.Close()
		if err != nil {
			return errors.Wrap(err, p)
		}
	}
	return nil
}

// selfCPU is this process's user+system CPU time in seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func measure(dir string, runs int) error {
	files, total, err := checkpointFiles(dir)
	if err != nil {
		return err
	}
	gb := float64(total) / 1e9
	if err := readAll(files, false); err != nil { // warm the page cache
		return err
	}
	var cpu []float64 // CPU seconds (user+sys) of each timed run
	timeIt := func(f func() error) ([]float64, error) {
		var ts []float64
		cpu = cpu[:0]
		for range runs {
			c0 := selfCPU()
			t := time.Now()
			if err := f(); err != nil {
				return nil, err
			}
			ts = append(ts, time.Since(t).Seconds())
			if c := selfCPU() - c0; c > 0 {
				cpu = append(cpu, c)
			}
		}
		return ts, nil
	}
	report := func(what string, ts []float64) {
		m := median(ts)
		fmt.Printf("%-30s wall median %6.3f s (min %.3f, max %.3f) %5.2f GB/s; CPU median %.3f s %5.2f GB/s\n",
			what, m, slices.Min(ts), slices.Max(ts), gb/m, median(cpu), gb/median(cpu))
	}
	fmt.Printf("%s: %.2f GB in %d files, %d runs each\n", dir, gb, len(files), runs)
	cat, err := timeIt(func() error { return readAll(files, false) })
	if err != nil {
		return err
	}
	report("page cache read (cat)", cat)
	fresh, err := timeIt(func() error { return readAll(files, true) })
	if err != nil {
		return err
	}
	report("page cache -> new memory", fresh)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var childCPU []float64
	var phaseText []string
	load, err := timeIt(func() error {
		cmd := exec.Command(self, "-child", dir)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if !strings.HasPrefix(line, "ready") {
			_ = cmd.Wait()
			return errors.Errorf("child: %q %v", line, err)
		}
		phaseText = append(phaseText, strings.TrimSpace(strings.TrimPrefix(line, "ready")))
		_, _ = io.Copy(io.Discard, out)
		err = cmd.Wait()
		childCPU = append(childCPU, (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds())
		return err
	})
	if err != nil {
		return err
	}
	cpu = childCPU
	report("process start -> model ready", load)
	fmt.Printf("  child phases (s): %s\n", strings.Join(phaseText, " | "))
	return nil
}
