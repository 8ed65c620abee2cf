//go:build xla

package backend

import (
	"slices"
	"testing"
)

// With -tags xla the XLA backend is registered; starting it without a PJRT plugin must give an
// error, not a crash (CI has no plugin and no GPU).
func TestXLARegistered(t *testing.T) {
	if !slices.Contains(Available(), "xla") {
		t.Fatalf("xla backend not registered: %v", Available())
	}
	t.Setenv("GOMLX_BACKEND", "xla:nosuchplugin")
	t.Setenv("GOMLX_NO_AUTO_INSTALL", "1")
	if b, err := New(); err == nil {
		b.Finalize()
		t.Skip("a PJRT plugin named nosuchplugin exists here")
	} else {
		t.Logf("expected error: %v", err)
	}
}
