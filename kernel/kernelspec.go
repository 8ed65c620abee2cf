package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"

	"github.com/llmpruner/llmpruner/lib/atomicfile"
	"github.com/pkg/errors"
)

// kernelSpec is Jupyter's kernel.json.
type kernelSpec struct {
	Argv          []string          `json:"argv"`
	DisplayName   string            `json:"display_name"`
	Language      string            `json:"language"`
	InterruptMode string            `json:"interrupt_mode,omitempty"`
	Env           map[string]string `json:"env"`
}

// specEnv is what the llmpruner kernel's environment is made of.
type specEnv struct {
	Repo    string // LLMPRUNER_REPO: the working tree notebooks import
	Bin     string // gonb, gopls, goimports
	GoDir   string // directory of the user's go command
	Backend string // GOMLX_BACKEND
	DataDir string // LLMPRUNER_DATA (absolute), "" to leave unset
}

// readGonbSpec reads the kernel.json and logo written by "gonb --install".
func readGonbSpec(dir string) (kernelSpec, []byte, error) {
	var spec kernelSpec
	p := filepath.Join(dir, "kernel.json")
	data, err := os.ReadFile(p)
	if err != nil {
		return spec, nil, errors.Wrapf(err, "reading GoNB's kernelspec")
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		return spec, nil, errors.Wrapf(err, "parsing %s", p)
	}
	if len(spec.Argv) == 0 {
		return spec, nil, errors.Errorf("%s has an empty argv", p)
	}
	logo, _ := os.ReadFile(filepath.Join(dir, "logo-svg.svg")) // optional
	return spec, logo, nil
}

// projectSpec turns GoNB's kernelspec into the llmpruner one: argv[0] is the installed gonb binary
// (GoNB may have pointed it at a copy in its staging directory), and the environment selects the
// project's toolchain, backend, data and working tree.
func projectSpec(gonbSpec kernelSpec, gonbBinary string, e specEnv) kernelSpec {
	spec := gonbSpec
	spec.Argv = append([]string{gonbBinary}, gonbSpec.Argv[1:]...)
	spec.DisplayName = kernelDisplay
	spec.Language = "go"
	env := map[string]string{}
	for k, v := range gonbSpec.Env {
		env[k] = v
	}
	env["GOTOOLCHAIN"] = goToolchain
	env["GOEXPERIMENT"] = "simd"
	env["GOFLAGS"] = ""
	env["GOMLX_BACKEND"] = e.Backend
	env["LLMPRUNER_REPO"] = e.Repo
	if e.DataDir != "" {
		env["LLMPRUNER_DATA"] = e.DataDir
	}
	// jupyter_client substitutes ${PATH} with the server's PATH when it starts the kernel.
	env["PATH"] = strings.Join([]string{e.Bin, e.GoDir, "${PATH}"}, string(os.PathListSeparator))
	spec.Env = env
	return spec
}

// writeSpec writes kernel.json (and the logo, when known) into dir atomically.
func writeSpec(dir string, spec kernelSpec, logo []byte) error {
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return errors.Wrap(err, "encoding kernel.json")
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "kernel.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	if len(logo) > 0 {
		return atomicfile.WriteFile(filepath.Join(dir, "logo-svg.svg"), logo, 0o644)
	}
	return nil
}

// readSpec reads an installed kernel.json.
func readSpec(dir string) (kernelSpec, error) {
	var spec kernelSpec
	p := filepath.Join(dir, "kernel.json")
	data, err := os.ReadFile(p)
	if err != nil {
		return spec, errors.Wrapf(err, "kernel %q is not installed (run 'go run ./kernel install')", kernelName)
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		return spec, errors.Wrapf(err, "parsing %s", p)
	}
	return spec, nil
}
