package checkpoint

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/internal/testdata"
	"github.com/pkg/errors"
)

func TestSaveHFRoundTripLlama2C(t *testing.T) {
	bin := testdata.Path(t, "models/stories260K/stories260K.bin")
	tok := testdata.Path(t, "models/stories260K/tok512.bin")
	cfg, src, err := LoadLlama2C(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	parent := t.TempDir()
	dir := filepath.Join(parent, "hf")
	if err := SaveHFFromReader(dir, cfg, src, SaveOptions{TokenizerFiles: []string{tok}, GenerationConfig: true}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 1 {
		t.Errorf("parent holds %d entries after the save, want only the model dir", len(entries))
	}
	for _, f := range []string{"config.json", SafetensorsFile, "tok512.bin", "generation_config.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	a, _ := os.ReadFile(tok)
	b, _ := os.ReadFile(filepath.Join(dir, "tok512.bin"))
	if !bytes.Equal(a, b) {
		t.Error("tokenizer file not copied verbatim")
	}
	back, err := arch.LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if back.String() != cfg.String() || back.RMSNormEps != cfg.RMSNormEps || back.MaxPositions != cfg.MaxPositions || back.BOS != 1 {
		t.Errorf("config changed: %s, want %s", back, cfg)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(r.Tensors()) != len(src.Tensors()) {
		t.Fatalf("%d tensors saved, %d in the source", len(r.Tensors()), len(src.Tensors()))
	}
	for _, ti := range src.Tensors() {
		x, _ := src.Read(ti.Name)
		y, err := r.Read(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !bitsEqual(t, x, y) {
			t.Errorf("%s: not bit-identical after SaveHF", ti.Name)
		}
	}
}

func tinyConfig() *config.Config {
	return &config.Config{Arch: arch.Llama, Hidden: 8, Vocab: 16, HeadDim: 4, Heads: []int{2}, KVHeads: []int{1},
		Inter: []int{12}, RMSNormEps: 1e-6, RopeTheta: 10000, MaxPositions: 32, BOS: 1, EOS: []int{2}}
}

// TestSaveHFConversion checks float32 → bfloat16 / float16 on write against torch's rounding.
func TestSaveHFConversion(t *testing.T) {
	conv := loadExpected(t)["conversions"]
	src32 := make([]float32, len(conv["float32"].Values))
	for i, v := range conv["float32"].Values {
		src32[i] = float32(float64(v))
	}
	x := tensors.FromFlatDataAndDimensions(src32, len(src32))
	ids := tensors.FromFlatDataAndDimensions([]int64{1, 2, 3}, 3)
	get := func(name string) (*tensors.Tensor, error) {
		if name == "ids" {
			return ids, nil
		}
		return x, nil
	}
	for _, tc := range []struct {
		dt   dtypes.DType
		name string
	}{{dtypes.BFloat16, "bfloat16"}, {dtypes.Float16, "float16"}, {dtypes.Float32, "float32"}} {
		dir := filepath.Join(t.TempDir(), tc.name)
		if err := SaveHF(dir, tinyConfig(), []string{"w", "ids"}, get, SaveOptions{DType: tc.dt}); err != nil {
			t.Fatal(err)
		}
		r, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		checkAgainst(t, r, map[string]expectedTensor{
			"w":   conv[tc.name],
			"ids": {DType: "int64", Shape: []int{3}, Values: []jsonFloat{1, 2, 3}},
		})
		_ = r.Close()
		cfgJSON, _ := os.ReadFile(filepath.Join(dir, "config.json"))
		if !strings.Contains(string(cfgJSON), `"torch_dtype": "`+tc.name+`"`) {
			t.Errorf("config.json does not say torch_dtype %s", tc.name)
		}
	}
	// Widening back to float32 is exact.
	bf := tensors.FromFlatDataAndDimensions(bfloat16.FromFloat32s(1.5, -2.25e-3, 3e38), 3)
	h := tensors.FromFlatDataAndDimensions(float16.FromFloat32s(1.5, -2.25e-3, 6e4), 3)
	for _, in := range []*tensors.Tensor{bf, h} {
		out, err := convertFloat(in, dtypes.Float32)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(float64s(t, out), float64s(t, in)) {
			t.Errorf("widening %s changed values", in.DType())
		}
	}
}

func TestSaveHFShardedAndAtomic(t *testing.T) {
	set := roundTripSet(rand.New(rand.NewPCG(5, 6)))
	get := func(name string) (*tensors.Tensor, error) { return set[name], nil }
	dir := filepath.Join(t.TempDir(), "model")
	if err := SaveHF(dir, tinyConfig(), keys(set), get, SaveOptions{MaxShardBytes: 300}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, SafetensorsIndexFile)); err != nil {
		t.Fatalf("no index written: %v", err)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range set {
		x, err := r.Read(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bitsEqual(t, x, want) {
			t.Errorf("%s: not bit-identical", name)
		}
	}
	_ = r.Close()

	// A failing save leaves the existing directory as it was, and no temporary directory behind.
	before, _ := os.ReadDir(dir)
	calls := 0
	failing := func(name string) (*tensors.Tensor, error) {
		calls++
		if calls > len(set)+3 { // fail while writing data
			return nil, errors.New("disk on fire")
		}
		return set[name], nil
	}
	err = SaveHF(dir, tinyConfig(), keys(set), failing, SaveOptions{})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("expected the get error, got %v", err)
	}
	after, _ := os.ReadDir(dir)
	if len(after) != len(before) {
		t.Errorf("existing directory changed by a failed save: %d → %d entries", len(before), len(after))
	}
	siblings, _ := os.ReadDir(filepath.Dir(dir))
	if len(siblings) != 1 {
		t.Errorf("failed save left %d entries beside the model dir", len(siblings)-1)
	}
}

// pythonWithTorch returns a python3 interpreter that can import torch, or skips.
func pythonWithTorch(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping the tests that start Python")
	}
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(py, "-c", "import torch").Run() == nil {
			return py
		}
	}
	t.Skip("no python3 with torch (Debian: apt-get install -y python3-torch); skipping the Python read-back")
	return ""
}

// TestPythonReadsOurFiles: files written by SaveHF load in Python (the safetensors library when
// installed, else json + torch.frombuffer) with identical values.
func TestPythonReadsOurFiles(t *testing.T) {
	py := pythonWithTorch(t)
	rng := rand.New(rand.NewPCG(7, 8))
	vals := func(n int) []float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = float32(rng.NormFloat64() * 3)
		}
		return out
	}
	set := map[string]*tensors.Tensor{
		"a.weight": tensors.FromFlatDataAndDimensions(vals(24), 4, 6),
		"b.weight": tensors.FromFlatDataAndDimensions(vals(5), 5),
		"c.ids":    tensors.FromFlatDataAndDimensions([]int64{-3, 1 << 40}, 2),
	}
	get := func(name string) (*tensors.Tensor, error) { return set[name], nil }
	var dirs []string
	for _, opts := range []SaveOptions{{DType: dtypes.BFloat16}, {DType: dtypes.Float16, MaxShardBytes: 64}, {}} {
		dir := filepath.Join(t.TempDir(), "m")
		if err := SaveHF(dir, tinyConfig(), keys(set), get, opts); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	out, err := exec.Command(py, append([]string{"../../scripts/checkpoint_readback.py"}, dirs...)...).Output()
	if err != nil {
		t.Fatalf("python read-back failed: %v", err)
	}
	var results map[string]struct {
		Reader  string                    `json:"reader"`
		Tensors map[string]expectedTensor `json:"tensors"`
	}
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		got := results[dir]
		t.Logf("%s: read by python %s", dir, got.Reader)
		r, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Tensors) != len(set) {
			t.Errorf("python saw %d tensors, want %d", len(got.Tensors), len(set))
		}
		for name, w := range got.Tensors {
			x, err := r.Read(name)
			if err != nil {
				t.Fatal(err)
			}
			if torchDTypes[w.DType] != x.DType() || !slices.Equal(w.Shape, x.Shape().Dimensions) {
				t.Errorf("%s: python sees %s%v, we wrote %s", name, w.DType, w.Shape, x.Shape())
			}
			mine := float64s(t, x)
			for i := range mine {
				if want := float64(w.Values[i]); mine[i] != want && !(math.IsNaN(mine[i]) && math.IsNaN(want)) {
					t.Errorf("%s[%d]: python %v, ours %v", name, i, w.Values[i], mine[i])
					break
				}
			}
		}
		_ = r.Close()
	}
}
