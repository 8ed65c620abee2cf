package models

import (
	"encoding/json"
	"math"
	"os"
	"sync"
	"testing"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"
	"github.com/llmpruner/llmpruner/lib/internal/testdata"
)

var (
	backendOnce sync.Once
	testBackend compute.Backend
)

// backend returns the process-wide test backend (tensors are bound to one backend instance).
func backend(t testing.TB) compute.Backend {
	t.Helper()
	backendOnce.Do(func() {
		if os.Getenv("GOMLX_BACKEND") == "" {
			_ = os.Setenv("GOMLX_BACKEND", "go:ops_sequential")
		}
		b, err := compute.New()
		if err != nil {
			t.Fatalf("creating backend: %+v", err)
		}
		testBackend = b
	})
	if testBackend == nil {
		t.Fatal("no backend")
	}
	return testBackend
}

// mustLoad loads a model or fails the test.
func mustLoad(t testing.TB, path string, opts LoadOptions) *Model {
	t.Helper()
	m, err := Load(backend(t), path, opts)
	if err != nil {
		t.Fatalf("Load(%s): %+v", path, err)
	}
	return m
}

// forwardGolden is golden/forward_tiny_llama_mha.json.
type forwardGolden struct {
	Results map[string]struct {
		InputIDs   []int     `json:"input_ids"`
		LogitsPos0 []float64 `json:"logits_pos0"`
		LogitsLast []float64 `json:"logits_last"`
		ArgmaxLast int       `json:"argmax_last"`
		Loss       float64   `json:"loss"`
		Greedy32   []int     `json:"greedy_32"`
	} `json:"results"`
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func loadForwardGolden(t testing.TB) forwardGolden {
	var g forwardGolden
	readJSON(t, testdata.GoldenPath(t, "forward_tiny_llama_mha.json"), &g)
	if _, ok := g.Results["seq8"]; !ok {
		t.Fatal("golden file has no seq8 case")
	}
	return g
}

// relErr is max|got-want| / max|want|.
func relErr[A, B float32 | float64](got []A, want []B) float64 {
	var maxDiff, maxRef float64
	for i := range want {
		maxDiff = math.Max(maxDiff, math.Abs(float64(got[i])-float64(want[i])))
		maxRef = math.Max(maxRef, math.Abs(float64(want[i])))
	}
	return maxDiff / maxRef
}

// checkForwardGolden checks a loaded tiny-llama-mha against the PyTorch golden values.
func checkForwardGolden(t *testing.T, m *Model, tolLogits, tolLoss float64) {
	t.Helper()
	gold := loadForwardGolden(t).Results["seq8"]
	logits, err := m.Logits([][]int{gold.InputIDs})
	if err != nil {
		t.Fatalf("Logits: %+v", err)
	}
	if len(logits[0]) != len(gold.InputIDs) || len(logits[0][0]) != len(gold.LogitsPos0) {
		t.Fatalf("logits shape [%d][%d], want [%d][%d]", len(logits[0]), len(logits[0][0]), len(gold.InputIDs), len(gold.LogitsPos0))
	}
	e0 := relErr(logits[0][0], gold.LogitsPos0)
	eL := relErr(logits[0][len(gold.InputIDs)-1], gold.LogitsLast)
	loss, err := m.Loss([][]int{gold.InputIDs})
	if err != nil {
		t.Fatalf("Loss: %+v", err)
	}
	t.Logf("%s: logits rel err pos0 %.2e, last %.2e; loss %.9f (golden %.9f, |Δ| %.2e)", m.Source, e0, eL, loss, gold.Loss, math.Abs(loss-gold.Loss))
	if e0 > tolLogits || eL > tolLogits {
		t.Errorf("logits relative error %.3e / %.3e exceeds %.0e", e0, eL, tolLogits)
	}
	if math.Abs(loss-gold.Loss) > tolLoss {
		t.Errorf("loss %.9f, golden %.9f (tolerance %.0e)", loss, gold.Loss, tolLoss)
	}
}
