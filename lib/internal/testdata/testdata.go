// Package testdata locates the real models, tokenizers and datasets used by tests.
//
// They are not part of the repository: LLMPRUNER_DATA points at a folder laid out like
// ../shared/data (models/, tokenizers/, text/, zeroshot/). Golden outputs of independent
// references live in LLMPRUNER_GOLDEN (default: "golden" beside LLMPRUNER_DATA).
// Tests skip with a clear message when the data is absent, unless LLMPRUNER_REQUIRE_DATA=1
// (as in CI), where they fail instead.
package testdata

import (
	"os"
	"path/filepath"
	"testing"
)

// Required reports whether missing data must fail tests (LLMPRUNER_REQUIRE_DATA=1).
func Required() bool { return os.Getenv("LLMPRUNER_REQUIRE_DATA") == "1" }

// DataDir returns $LLMPRUNER_DATA, or skips/fails the test when it is unset or missing.
func DataDir(t testing.TB) string {
	t.Helper()
	return dir(t, "LLMPRUNER_DATA", os.Getenv("LLMPRUNER_DATA"))
}

// GoldenDir returns $LLMPRUNER_GOLDEN, defaulting to "golden" beside $LLMPRUNER_DATA.
func GoldenDir(t testing.TB) string {
	t.Helper()
	g := os.Getenv("LLMPRUNER_GOLDEN")
	if g == "" && os.Getenv("LLMPRUNER_DATA") != "" {
		g = filepath.Join(filepath.Dir(filepath.Clean(os.Getenv("LLMPRUNER_DATA"))), "golden")
	}
	return dir(t, "LLMPRUNER_GOLDEN", g)
}

// Path joins rel onto DataDir and checks that it exists.
func Path(t testing.TB, rel string) string {
	t.Helper()
	return exists(t, filepath.Join(DataDir(t), rel))
}

// GoldenPath joins rel onto GoldenDir and checks that it exists.
func GoldenPath(t testing.TB, rel string) string {
	t.Helper()
	return exists(t, filepath.Join(GoldenDir(t), rel))
}

func dir(t testing.TB, env, d string) string {
	t.Helper()
	if d == "" {
		missing(t, env+" is not set: point it at the llmpruner data folder (e.g. ../shared/data)")
	}
	if st, err := os.Stat(d); err != nil || !st.IsDir() {
		missing(t, env+"="+d+" is not a directory")
	}
	return d
}

func exists(t testing.TB, p string) string {
	t.Helper()
	if _, err := os.Stat(p); err != nil {
		missing(t, "test data "+p+" is missing")
	}
	return p
}

func missing(t testing.TB, msg string) {
	t.Helper()
	if Required() {
		t.Fatal(msg + " (LLMPRUNER_REQUIRE_DATA=1)")
	}
	t.Skip(msg)
}
