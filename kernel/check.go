package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/pkg/errors"
)

// check verifies an installed kernel: kernelspec and its environment, the pinned tools, and the
// Jupyter commands used to run notebooks. It prints one line per item and fails listing problems.
func check(o options, w io.Writer) error {
	var problems []string
	report := func(item string, err error, ok string) {
		if err != nil {
			problems = append(problems, item+": "+err.Error())
			fmt.Fprintf(w, "  FAIL %-12s %v\n", item, err)
			return
		}
		fmt.Fprintf(w, "  ok   %-12s %s\n", item, ok)
	}
	fmt.Fprintf(w, "checking kernel %q in %s\n", kernelName, o.kernelDir())

	spec, err := readSpec(o.kernelDir())
	report("kernelspec", err, filepath.Join(o.kernelDir(), "kernel.json"))
	if err == nil {
		report("kernel env", checkSpecEnv(spec), fmt.Sprintf("GOTOOLCHAIN=%s GOMLX_BACKEND=%s LLMPRUNER_REPO=%s LLMPRUNER_DATA=%s",
			spec.Env["GOTOOLCHAIN"], spec.Env["GOMLX_BACKEND"], spec.Env["LLMPRUNER_REPO"], orNone(spec.Env["LLMPRUNER_DATA"])))
	}
	bin := o.binDir()
	for _, t := range []struct{ name, mod, want string }{
		{"gonb", gonbPkg, ""}, // version comes from go.mod's tool pin
		{"gopls", goplsModule, goplsVersion},
		{"goimports", goimportsMod, goimportsVer},
	} {
		v, err := binaryModuleVersion(filepath.Join(bin, t.name), t.mod)
		if err == nil && t.want != "" && v != t.want {
			err = errors.Errorf("version %s, want %s", v, t.want)
		}
		report(t.name, err, v)
	}
	for _, sub := range []string{"nbconvert", "kernelspec"} {
		out, err := exec.Command("jupyter", sub, "--version").CombinedOutput()
		if err != nil {
			err = errors.Errorf("'jupyter %s' not available (Debian: apt-get install jupyter-nbconvert jupyter-client): %v",
				sub, strings.TrimSpace(lastLine(string(out))))
		}
		report("jupyter "+sub, err, strings.TrimSpace(lastLine(string(out))))
	}
	if len(problems) > 0 {
		return errors.Errorf("%d problem(s):\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
	return nil
}

// checkSpecEnv verifies the environment entries notebooks rely on.
func checkSpecEnv(spec kernelSpec) error {
	if spec.Env["GOTOOLCHAIN"] != goToolchain {
		return errors.Errorf("GOTOOLCHAIN=%q, want %q", spec.Env["GOTOOLCHAIN"], goToolchain)
	}
	if spec.Env["GOEXPERIMENT"] != "simd" {
		return errors.Errorf("GOEXPERIMENT=%q, want simd", spec.Env["GOEXPERIMENT"])
	}
	repo := spec.Env["LLMPRUNER_REPO"]
	if _, err := os.Stat(filepath.Join(repo, "kernel", "notebook-setup.sh")); err != nil {
		return errors.Errorf("LLMPRUNER_REPO=%q is not an llmpruner working tree", repo)
	}
	if d := spec.Env["LLMPRUNER_DATA"]; d != "" {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			return errors.Errorf("LLMPRUNER_DATA=%q is not a directory", d)
		}
	}
	if len(spec.Argv) == 0 {
		return errors.New("empty argv")
	}
	if _, err := os.Stat(spec.Argv[0]); err != nil {
		return errors.Errorf("kernel binary %s is missing", spec.Argv[0])
	}
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
