package models

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/llmpruner/llmpruner/lib/internal/testdata"
)

// TestGoldenTinyLlamaSafetensors: PyTorch reference logits and loss of golden/tiny-llama-mha.
func TestGoldenTinyLlamaSafetensors(t *testing.T) {
	m := mustLoad(t, testdata.GoldenPath(t, "tiny-llama-mha"), LoadOptions{})
	checkForwardGolden(t, m, 1e-4, 1e-5)
}

// torchBinDir writes golden/tiny-llama-mha as a PyTorch pytorch_model.bin directory with
// scripts/models_torch_bin.py, or skips when PyTorch is not installed.
func torchBinDir(t *testing.T, dtype string) string {
	t.Helper()
	python := torchPython()
	if python == "" {
		if os.Getenv("LLMPRUNER_REQUIRE_TORCH") == "1" {
			t.Fatal("python3 with torch is required (LLMPRUNER_REQUIRE_TORCH=1)")
		}
		t.Skip("python3 with torch is not installed (Debian: apt-get install python3-torch); skipping the PyTorch .bin check")
	}
	dst := filepath.Join(t.TempDir(), "tiny-llama-mha-"+dtype)
	script := filepath.Join("..", "..", "scripts", "models_torch_bin.py")
	out, err := exec.Command(python, script, testdata.GoldenPath(t, "tiny-llama-mha"), dst, "--dtype", dtype).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return dst
}

// torchPython returns a Python interpreter that can import torch ($PYTHON, python3, or Debian's
// /usr/bin/python3 when another python3 shadows it), or "".
func torchPython() string {
	for _, p := range []string{os.Getenv("PYTHON"), "python3", "/usr/bin/python3"} {
		if p != "" && exec.Command(p, "-c", "import torch").Run() == nil {
			return p
		}
	}
	return ""
}

// TestGoldenTinyLlamaPyTorchBin: the same golden values from a pytorch_model.bin written by
// torch.save.
func TestGoldenTinyLlamaPyTorchBin(t *testing.T) {
	m := mustLoad(t, torchBinDir(t, "float32"), LoadOptions{})
	checkForwardGolden(t, m, 1e-4, 1e-5)
}

// TestPyTorchBF16AgreesWithUpcast: a bf16 pytorch_model.bin computes what the same weights
// upcast to float32 compute.
func TestPyTorchBF16AgreesWithUpcast(t *testing.T) {
	bf := mustLoad(t, torchBinDir(t, "bfloat16"), LoadOptions{})
	upDir := filepath.Join(t.TempDir(), "upcast")
	if err := bf.Save(upDir, "f32"); err != nil {
		t.Fatal(err)
	}
	up := mustLoad(t, upDir, LoadOptions{})
	ids := loadForwardGolden(t).Results["seq8"].InputIDs
	a, err := bf.Logits([][]int{ids})
	if err != nil {
		t.Fatal(err)
	}
	b, err := up.Logits([][]int{ids})
	if err != nil {
		t.Fatal(err)
	}
	for p := range a[0] {
		if e := relErr(a[0][p], b[0][p]); e > 1e-6 {
			t.Errorf("position %d: relative error %.2e", p, e)
		}
	}
}
