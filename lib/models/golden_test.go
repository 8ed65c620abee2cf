package models

import (
	"testing"

	"github.com/llmpruner/llmpruner/lib/internal/testdata"
)

// TestGoldenTinyLlamaSafetensors: PyTorch reference logits and loss of golden/tiny-llama-mha.
func TestGoldenTinyLlamaSafetensors(t *testing.T) {
	m := mustLoad(t, testdata.GoldenPath(t, "tiny-llama-mha"), LoadOptions{})
	checkForwardGolden(t, m, 1e-4, 1e-5)
}
