package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/pkg/errors"
)

// repoRoot returns the directory of this module's go.mod (the working tree notebooks import).
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", errors.Wrap(err, "running 'go env GOMOD'")
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the llmpruner module: run 'go run ./kernel install' from the repository root")
	}
	data, err := os.ReadFile(gomod)
	if err != nil {
		return "", errors.Wrapf(err, "reading %s", gomod)
	}
	if !bytes.Contains(data, []byte("module github.com/llmpruner/llmpruner\n")) {
		return "", errors.Errorf("%s is not the llmpruner module: run from the llmpruner repository root", gomod)
	}
	return filepath.Dir(gomod), nil
}

// goCommandDir returns the directory of the user's go command, skipping toolchains that the go
// command itself downloaded into the module cache (GOTOOLCHAIN switching puts them on PATH).
func goCommandDir() (string, error) {
	var fallback string
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		p := filepath.Join(dir, "go")
		if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			continue
		}
		if strings.Contains(dir, "golang.org/toolchain@") {
			if fallback == "" {
				fallback = dir
			}
			continue
		}
		return dir, nil
	}
	if fallback != "" {
		return fallback, nil
	}
	return "", errors.New("no go command on PATH: install Go (any version >= 1.21) and set GOTOOLCHAIN=" + goToolchain)
}

// goEnv returns the environment for go subcommands: the project's toolchain settings on top of ours.
func goEnv(extra ...string) []string {
	env := append(os.Environ(), "GOTOOLCHAIN="+goToolchain, "GOFLAGS=")
	return append(env, extra...)
}

// goInstall runs "go install target" in dir with GOBIN=binDir, streaming output to the log.
func goInstall(dir, binDir, target string, log *logger) error {
	cmd := exec.Command("go", "install", target)
	cmd.Dir = dir
	cmd.Env = goEnv("GOBIN=" + binDir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return errors.Wrapf(err, "go install %s (in %s):\n%s", target, dir, out.String())
	}
	return nil
}

// binaryModuleVersion returns the version of module mod that the Go binary at path was built with
// (its main module or one of its dependencies, per "go version -m"), or an error when the file is
// missing, is not a Go binary, or does not contain mod.
func binaryModuleVersion(path, mod string) (string, error) {
	out, err := exec.Command("go", "version", "-m", path).Output()
	if err != nil {
		return "", errors.Wrapf(err, "go version -m %s", path)
	}
	v := moduleVersion(string(out), mod)
	if v == "" {
		return "", errors.Errorf("%s was not built from module %s", path, mod)
	}
	return v, nil
}

// moduleVersion extracts the version of module mod from the "mod" or "dep" lines of
// "go version -m" output ("" when absent).
func moduleVersion(out, mod string) string {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && (f[0] == "mod" || f[0] == "dep") && f[1] == mod {
			return f[2]
		}
	}
	return ""
}
