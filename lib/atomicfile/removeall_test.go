package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRemoveAll: a directory tree is gone afterwards, a missing path is no error, and a removal
// cut short (simulated: the renamed entry is still there) leaves only a temporary entry that
// RemoveStale clears, never the target with some of its files missing.
func TestRemoveAll(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "checkpoint-3")
	if err := os.MkdirAll(filepath.Join(target, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"a.json", "sub/b.safetensors"} {
		if err := os.WriteFile(filepath.Join(target, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A leftover of an earlier killed removal of the same name.
	leftover := filepath.Join(dir, ".checkpoint-3.tmp-removing")
	if err := os.Mkdir(leftover, 0o755); err != nil {
		t.Fatal(err)
	}
	if !IsTemp(filepath.Base(leftover)) {
		t.Fatalf("%s is not recognised as a temporary entry", leftover)
	}
	if err := RemoveAll(target); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("left %v", entries)
	}
	if err := RemoveAll(target); err != nil {
		t.Fatalf("missing path: %v", err)
	}
}
