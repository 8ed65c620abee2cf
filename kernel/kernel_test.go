package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestModuleVersion(t *testing.T) {
	out := `/x/bin/gonb: go1.27.3
	path	github.com/janpfeifer/gonb
	mod	github.com/llmpruner/llmpruner	(devel)
	dep	github.com/janpfeifer/gonb	v0.11.5	h1:abc=
	dep	golang.org/x/tools	v0.52.0	h1:def=
`
	for mod, want := range map[string]string{
		"github.com/janpfeifer/gonb":     "v0.11.5",
		"github.com/llmpruner/llmpruner": "(devel)",
		"golang.org/x/tools":             "v0.52.0",
		"golang.org/x/tools/gopls":       "",
	} {
		if got := moduleVersion(out, mod); got != want {
			t.Errorf("moduleVersion(%q) = %q, want %q", mod, got, want)
		}
	}
}

func TestProjectSpecEnv(t *testing.T) {
	gonb := kernelSpec{
		Argv:        []string{"/tmp/staging/kernels/gonb/gonb", "--kernel", "{connection_file}", "-v=0"},
		DisplayName: "Go (gonb)",
		Env:         map[string]string{"KEEP": "1", "GOFLAGS": "-mod=vendor"},
	}
	spec := projectSpec(gonb, "/k/bin/gonb", specEnv{
		Repo: "/src/llmpruner", Bin: "/k/bin", GoDir: "/usr/local/go/bin", Backend: "go", DataDir: "/data",
	})
	wantArgv := []string{"/k/bin/gonb", "--kernel", "{connection_file}", "-v=0"}
	if strings.Join(spec.Argv, " ") != strings.Join(wantArgv, " ") {
		t.Errorf("argv = %q, want %q", spec.Argv, wantArgv)
	}
	want := map[string]string{
		"KEEP": "1", "GOFLAGS": "", "GOTOOLCHAIN": "go1.27.3", "GOEXPERIMENT": "simd", "GOMLX_BACKEND": "go",
		"LLMPRUNER_REPO": "/src/llmpruner", "LLMPRUNER_DATA": "/data", "PATH": "/k/bin:/usr/local/go/bin:${PATH}",
	}
	for k, v := range want {
		if spec.Env[k] != v {
			t.Errorf("env[%s] = %q, want %q", k, spec.Env[k], v)
		}
	}
	if spec.DisplayName != kernelDisplay || gonb.Argv[0] != "/tmp/staging/kernels/gonb/gonb" || gonb.Env["GOFLAGS"] != "-mod=vendor" {
		t.Errorf("projectSpec modified its input or kept the display name: %+v / %+v", spec, gonb)
	}
	noData := projectSpec(gonb, "/k/bin/gonb", specEnv{Repo: "/r", Bin: "/b", GoDir: "/g", Backend: "xla:cuda"})
	if _, ok := noData.Env["LLMPRUNER_DATA"]; ok || noData.Env["GOMLX_BACKEND"] != "xla:cuda" {
		t.Errorf("without a data dir: env = %v", noData.Env)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"frobnicate"}, {"install", "extra"}, {"check", "--no-such-flag"}} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 2 {
			t.Errorf("run(%q) = %d, want 2 (stderr %q)", args, code, errOut.String())
		}
	}
}

func TestCheckReportsMissingKernel(t *testing.T) {
	o := options{JupyterDataDir: t.TempDir()}
	var out bytes.Buffer
	err := check(o, &out)
	if err == nil || !strings.Contains(err.Error(), "is not installed") {
		t.Fatalf("check on an empty data dir: err = %v, want 'is not installed'", err)
	}
}

// TestNotebookSetup runs kernel/notebook-setup.sh on a scratch module the way a notebook's first
// cell does, then builds a program importing lib/config from the working tree with -mod=mod off:
// no network is needed because every requirement is pinned from go.mod/go.sum.
func TestNotebookSetup(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	runIn := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "LLMPRUNER_REPO="+repo, "GOFLAGS=-mod=readonly", "GOPROXY=off", "GOWORK=off")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %q: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	runIn("go", "mod", "init", "gonb_test")
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(`package main

import (
	"fmt"

	"github.com/llmpruner/llmpruner/lib/config"
)

func main() { fmt.Printf("%T\n", config.Config{}) }
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := runIn("bash", filepath.Join(repo, "kernel", "notebook-setup.sh"), dir)
	if !strings.Contains(out, "notebook wired to "+repo) {
		t.Errorf("setup output %q", out)
	}
	runIn("bash", filepath.Join(repo, "kernel", "notebook-setup.sh"), dir) // idempotent
	if got := runIn("go", "run", "."); strings.TrimSpace(got) != "config.Config" {
		t.Errorf("program printed %q, want config.Config", got)
	}
}

// TestFmt: "fmt" fails on a notebook with an "md" cell, "fmt -w" repairs it, and "fmt" then passes.
func TestFmt(t *testing.T) {
	dir := t.TempDir()
	nb := filepath.Join(dir, "sub", "x.ipynb")
	if err := os.MkdirAll(filepath.Dir(nb), 0o755); err != nil {
		t.Fatal(err)
	}
	md := `{"cells": [{"cell_type": "md", "metadata": {}, "source": "# T"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}`
	if err := os.WriteFile(nb, []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"fmt", dir}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), `cells[0].cell_type: "md"`) {
		t.Fatalf("fmt on an md cell: code %d, stderr %q", code, errOut.String())
	}
	if code := run([]string{"fmt", "-w", dir}, &out, &errOut); code != 0 {
		t.Fatalf("fmt -w: code %d, stderr %q", code, errOut.String())
	}
	if code := run([]string{"fmt", nb}, &out, &errOut); code != 0 {
		t.Fatalf("fmt after -w: code %d, stderr %q", code, errOut.String())
	}
	if data, _ := os.ReadFile(nb); !strings.Contains(string(data), `"cell_type": "markdown"`) {
		t.Errorf("after fmt -w:\n%s", data)
	}
	if code := run([]string{"fmt", filepath.Join(dir, "missing")}, &out, &errOut); code != 1 {
		t.Errorf("fmt on a missing path: code %d", code)
	}
}
