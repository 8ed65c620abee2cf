package checkpoint

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/internal/testdata"
	"github.com/pkg/errors"
)

func TestSafetensorsWrittenByPython(t *testing.T) {
	want := loadExpected(t)["st_python.safetensors"]
	r, err := Open("testdata/st_python.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	checkAgainst(t, r, want)
	md := r.(MetadataSource).Metadata()
	if md["written_by"] != "checkpoint_fixtures.py" || md["format"] != "pt" {
		t.Errorf("metadata = %v", md)
	}
}

func TestSafetensorsHFCheckpoint(t *testing.T) {
	// Written by HF transformers / the Python safetensors library.
	p := testdata.Path(t, "models/tiny-random-llama")
	r, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	infos := r.Tensors()
	if len(infos) != 2*9+3 {
		t.Errorf("got %d tensors, want 21", len(infos))
	}
	for _, ti := range infos {
		x, err := r.Read(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		if ti.Name == "model.embed_tokens.weight" && (x.Shape().Dimensions[0] != 32000 || x.Shape().Dimensions[1] != 16) {
			t.Errorf("embed shape %s", x.Shape())
		}
		if strings.HasSuffix(ti.Name, "layernorm.weight") {
			// RMSNorm weights are initialised to ones in HF's random models.
			for i, v := range float64s(t, x) {
				if v != 1 {
					t.Errorf("%s[%d] = %v, want 1", ti.Name, i, v)
					break
				}
			}
		}
	}
}

// randomTensor makes a tensor of dtype dt with random bit patterns (all bits matter for the
// round trip, NaNs included).
func randomTensor(rng *rand.Rand, dt dtypes.DType, dims ...int) *tensors.Tensor {
	x := tensors.FromShape(shapes.Make(dt, dims...))
	_ = x.MutableBytes(func(b []byte) {
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		if dt == dtypes.Bool {
			for i := range b {
				b[i] &= 1
			}
		}
	})
	return x
}

func roundTripSet(rng *rand.Rand) map[string]*tensors.Tensor {
	return map[string]*tensors.Tensor{
		"model.layers.0.self_attn.q_proj.weight": randomTensor(rng, dtypes.Float32, 8, 8),
		"model.layers.0.mlp.up_proj.weight":      randomTensor(rng, dtypes.BFloat16, 12, 8),
		"model.norm.weight":                      randomTensor(rng, dtypes.Float16, 8),
		"f64":                                    randomTensor(rng, dtypes.Float64, 3),
		"i64":                                    randomTensor(rng, dtypes.Int64, 2, 2),
		"i32":                                    randomTensor(rng, dtypes.Int32, 5),
		"i8":                                     randomTensor(rng, dtypes.Int8, 7),
		"u8":                                     randomTensor(rng, dtypes.Uint8, 1, 3),
		"bool":                                   randomTensor(rng, dtypes.Bool, 4),
		"scalar":                                 randomTensor(rng, dtypes.Float32),
		"empty":                                  randomTensor(rng, dtypes.Float32, 0, 5),
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestSafetensorsRoundTrip(t *testing.T) {
	set := roundTripSet(rand.New(rand.NewPCG(1, 2)))
	path := filepath.Join(t.TempDir(), "x.safetensors")
	get := func(name string) (*tensors.Tensor, error) { return set[name], nil }
	if err := WriteSafetensors(path, keys(set), get, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	hlen := int(data[0]) | int(data[1])<<8 | int(data[2])<<16
	if hlen%8 != 0 || data[8] != '{' {
		t.Errorf("header length %d not a multiple of 8 or header does not start with '{'", hlen)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	infos := r.Tensors()
	if len(infos) != len(set) {
		t.Fatalf("read back %d tensors, wrote %d", len(infos), len(set))
	}
	for _, ti := range infos {
		x, err := r.Read(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !bitsEqual(t, x, set[ti.Name]) {
			t.Errorf("%s: not bit-identical after the round trip", ti.Name)
		}
	}
}

func TestSafetensorsShardedRoundTrip(t *testing.T) {
	set := roundTripSet(rand.New(rand.NewPCG(3, 4)))
	var infos []TensorInfo
	for name, x := range set {
		infos = append(infos, TensorInfo{Name: name, DType: x.DType(), Shape: x.Shape().Dimensions})
	}
	dir := t.TempDir()
	get := func(name string) (*tensors.Tensor, error) { return set[name], nil }
	files, err := WriteSafetensorsSharded(dir, infos, get, map[string]string{"format": "pt"}, 200)
	if err != nil {
		t.Fatal(err)
	}
	if files.Index != SafetensorsIndexFile || len(files.Files) < 2 {
		t.Fatalf("expected shards and an index, got %+v", files)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := len(r.Tensors()); got != len(set) {
		t.Fatalf("read back %d tensors, wrote %d", got, len(set))
	}
	for name, want := range set {
		x, err := r.Read(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bitsEqual(t, x, want) {
			t.Errorf("%s: not bit-identical after the sharded round trip", name)
		}
	}
}

// TestDetectSafetensorsLookingLikePickle: a 640-byte header makes the file start with 0x80 0x02,
// the bytes of a pickle's PROTO 2 opcode; detection must still say safetensors.
func TestDetectSafetensorsLookingLikePickle(t *testing.T) {
	hdr := `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	hdr += strings.Repeat(" ", 640-len(hdr))
	p := writeTemp(t, t.TempDir(), "model.bin", stFile(hdr, make([]byte, 8)))
	if f, err := DetectFormat(p); err != nil || f != FormatSafetensors {
		t.Fatalf("DetectFormat = %q, %v; want safetensors", f, err)
	}
	r, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Close()
}

func TestOpenWithConfig(t *testing.T) {
	cfg, r, err := OpenWithConfig(testdata.Path(t, "models/tiny-random-llama"))
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Close()
	if cfg.Hidden != 16 || cfg.NumLayers() != 2 || cfg.Vocab != 32000 || cfg.TieEmbed {
		t.Errorf("config %s", cfg)
	}
	cfg, r, err = OpenWithConfig(testdata.Path(t, "models/stories260K/stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Close()
	if cfg.Hidden != 64 || !cfg.TieEmbed {
		t.Errorf("config %s", cfg)
	}
	// Weights without a config.json beside them.
	if _, _, err := OpenWithConfig("testdata/st_python.safetensors"); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("missing config.json: %v", err)
	}
}

// TestConcurrentReads: Read may be called from several goroutines (run with -race).
func TestConcurrentReads(t *testing.T) {
	for _, p := range []string{"testdata/st_python.safetensors", "testdata/pt_views.bin", "testdata/l2c_v2_untied.bin"} {
		r, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		first := map[string]*tensors.Tensor{}
		for _, ti := range r.Tensors() {
			if first[ti.Name], err = r.Read(ti.Name); err != nil {
				t.Fatal(err)
			}
		}
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				for _, ti := range r.Tensors() {
					x, err := r.Read(ti.Name)
					if err == nil && !bitsEqual(t, x, first[ti.Name]) {
						err = errors.Errorf("%s: %s differs between reads", p, ti.Name)
					}
					if err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		_ = r.Close()
	}
}
