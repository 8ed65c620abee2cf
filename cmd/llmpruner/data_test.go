package main

import (
	"os"
	"path/filepath"
	"testing"
)

// The test-data locator of lib/internal/testdata, which cmd/ cannot import (Go's internal rule):
// LLMPRUNER_DATA holds the data, LLMPRUNER_GOLDEN (default: "golden" beside it) the golden
// outputs; tests skip when they are absent unless LLMPRUNER_REQUIRE_DATA=1, where they fail.

// dataPath returns $LLMPRUNER_DATA/rel, or skips/fails the test when it is missing.
func dataPath(t *testing.T, rel string) string {
	t.Helper()
	root := os.Getenv("LLMPRUNER_DATA")
	if root == "" {
		missingData(t, "LLMPRUNER_DATA is not set: point it at the llmpruner data folder (e.g. ../shared/data)")
	}
	return existingPath(t, filepath.Join(root, rel))
}

// goldenPath returns $LLMPRUNER_GOLDEN/rel (default golden beside LLMPRUNER_DATA).
func goldenPath(t *testing.T, rel string) string {
	t.Helper()
	g := os.Getenv("LLMPRUNER_GOLDEN")
	if g == "" && os.Getenv("LLMPRUNER_DATA") != "" {
		g = filepath.Join(filepath.Dir(filepath.Clean(os.Getenv("LLMPRUNER_DATA"))), "golden")
	}
	if g == "" {
		missingData(t, "LLMPRUNER_GOLDEN and LLMPRUNER_DATA are not set")
	}
	return existingPath(t, filepath.Join(g, rel))
}

func existingPath(t *testing.T, p string) string {
	t.Helper()
	if _, err := os.Stat(p); err != nil {
		missingData(t, "test data "+p+" is missing")
	}
	return p
}

func missingData(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("LLMPRUNER_REQUIRE_DATA") == "1" {
		t.Fatal(msg + " (LLMPRUNER_REQUIRE_DATA=1)")
	}
	t.Skip(msg)
}

// stories260K returns the llama2.c checkpoint path of stories260K.
func stories260K(t *testing.T) string {
	t.Helper()
	return dataPath(t, "models/stories260K/stories260K.bin")
}
