package checkpoint

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/llmpruner/llmpruner/lib/internal/testdata"
)

// TestPyTorchBinOfRealModel: torch re-saves golden/tiny-llama-mha as pytorch_model.bin (zip,
// legacy, and bfloat16); each must read back equal to the safetensors original (bfloat16: equal to
// its rounding of the float32 weights). Skipped without a python3 that has torch.
func TestPyTorchBinOfRealModel(t *testing.T) {
	src := testdata.GoldenPath(t, "tiny-llama-mha/model.safetensors")
	py := pythonWithTorch(t)
	dir := t.TempDir()
	variants := []struct {
		file, opts string
		dt         dtypes.DType
	}{
		{"zip.bin", "", dtypes.InvalidDType},
		{"legacy.bin", ":legacy", dtypes.InvalidDType},
		{"bf16.bin", ":bfloat16", dtypes.BFloat16},
	}
	args := []string{"../../scripts/checkpoint_st_to_bin.py", src}
	for _, v := range variants {
		args = append(args, filepath.Join(dir, v.file)+v.opts)
	}
	if out, err := exec.Command(py, args...).CombinedOutput(); err != nil {
		t.Fatalf("torch.save failed: %v\n%s", err, out)
	}
	ref, err := Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	for _, v := range variants {
		r, err := Open(filepath.Join(dir, v.file))
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Tensors()) != len(ref.Tensors()) {
			t.Fatalf("%s: %d tensors, want %d", v.file, len(r.Tensors()), len(ref.Tensors()))
		}
		for _, ti := range ref.Tensors() {
			want, _ := ref.Read(ti.Name)
			if v.dt != dtypes.InvalidDType {
				if want, err = convertFloat(want, v.dt); err != nil {
					t.Fatal(err)
				}
			}
			got, err := r.Read(ti.Name)
			if err != nil {
				t.Fatal(err)
			}
			if !bitsEqual(t, got, want) {
				t.Errorf("%s: %s differs from the safetensors original", v.file, ti.Name)
			}
		}
		_ = r.Close()
	}
}
