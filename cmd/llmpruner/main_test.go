package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/internal/fuzzcheck"
)

// cliBinary is the llmpruner executable built once by TestMain; the tests run it as a
// subprocess, exactly as a user would.
var cliBinary string

func TestMain(m *testing.M) {
	flag.Parse()
	if fuzzcheck.Fuzzing() {
		os.Exit(m.Run()) // fuzz targets call the parsers directly: no binary to build
	}
	dir, err := os.MkdirTemp("", "llmpruner-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cliBinary = filepath.Join(dir, "llmpruner")
	build := exec.Command("go", "build", "-o", cliBinary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building llmpruner:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one run of the binary produced.
type result struct {
	stdout, stderr string
	code           int
}

// runCLI runs the binary with args (in a fresh temporary working directory) and returns its output.
func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	return runCLIEnv(t, nil, args...)
}

// runCLIEnv is runCLI with extra environment variables ("K=V").
func runCLIEnv(t *testing.T, extraEnv []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(cliBinary, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	if exitErr, ok := err.(*exec.ExitError); ok {
		res.code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("running llmpruner %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// mustSucceed runs the binary and fails the test unless it exits 0.
func mustSucceed(t *testing.T, args ...string) result {
	t.Helper()
	res := runCLI(t, args...)
	if res.code != 0 {
		t.Fatalf("llmpruner %s: exit %d\nstderr: %s", strings.Join(args, " "), res.code, res.stderr)
	}
	return res
}

// expectFailure checks that a run failed with the given exit code and a clear error: the last
// line of stderr is the only "llmpruner: " line (log lines may come before it) and contains every
// one of wants, and no panic trace leaked.
func expectFailure(t *testing.T, res result, code int, wants ...string) {
	t.Helper()
	if res.code != code {
		t.Errorf("exit code %d, want %d\nstderr: %s", res.code, code, res.stderr)
	}
	lines := strings.Split(strings.TrimRight(res.stderr, "\n"), "\n")
	msg := lines[len(lines)-1]
	if code == 2 && !strings.Contains(msg, "llmpruner help") && !strings.Contains(msg, "--help')") {
		t.Errorf("usage error %q does not point to the help", msg)
	}
	if !strings.HasPrefix(msg, "llmpruner: ") || strings.Count(res.stderr, "llmpruner: ") != 1 {
		t.Errorf("stderr does not end with one \"llmpruner: \" error line: %q", res.stderr)
	}
	for _, bad := range []string{"goroutine ", "panic", "runtime error", "internal error"} {
		if strings.Contains(res.stderr, bad) {
			t.Errorf("stderr leaks %q: %s", bad, res.stderr)
		}
	}
	for _, want := range wants {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
}
