// Command kernel installs and checks the GoNB Jupyter kernel for this repository.
//
// Usage (from the repository root):
//
//	go run ./kernel install [--jupyter-data-dir D] [--backend go] [--data DIR]
//	go run ./kernel check   [--jupyter-data-dir D]
//	go run ./kernel fmt     [-w] [NOTEBOOK.ipynb | DIR ...]
//
// "install" builds GoNB from the version pinned as a tool in go.mod, installs the pinned gopls and
// goimports next to it, runs GoNB's own installer and rewrites the resulting kernelspec as the
// "llmpruner" kernel, whose environment carries GOTOOLCHAIN, GOEXPERIMENT=simd, GOMLX_BACKEND,
// LLMPRUNER_DATA and LLMPRUNER_REPO. Notebooks then wire themselves to this working tree with one
// first cell (see kernel/README.md):
//
//	!*bash "$LLMPRUNER_REPO/kernel/notebook-setup.sh"
//
// "check" verifies an installation and exits with status 1 listing what is missing. "fmt" checks that
// notebooks (default: tutorials/ and notebooks/) are valid nbformat 4.5 stored as Jupyter writes them,
// without outputs; "fmt -w" rewrites them so (markdown cells, ids, Jupyter's JSON layout).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: go run ./kernel <command> [flags]

commands:
  install   build GoNB, gopls and goimports (pinned versions) and install the "llmpruner" kernel
  check     verify the installed kernel, its tools and Jupyter
  fmt       check notebooks are valid nbformat 4.5 without outputs (-w: rewrite them so)

Run "go run ./kernel <command> --help" for the flags of one command.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "install", "check":
	case "fmt":
		return runFmt(rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "kernel: unknown command %q\n\n%s", cmd, usage)
		return 2
	}

	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	opts := defaultOptions()
	fs.StringVar(&opts.JupyterDataDir, "jupyter-data-dir", opts.JupyterDataDir,
		"Jupyter data directory receiving kernels/"+kernelName+" (default: $JUPYTER_DATA_DIR, else ~/.local/share/jupyter)")
	if cmd == "install" {
		fs.StringVar(&opts.Backend, "backend", opts.Backend,
			`GOMLX_BACKEND written into the kernel's environment ("go", "go:ops_sequential", "xla:cuda", ...)`)
		fs.StringVar(&opts.DataDir, "data", opts.DataDir,
			"LLMPRUNER_DATA written into the kernel's environment (default: $LLMPRUNER_DATA; made absolute)")
	}
	if err := fs.Parse(rest); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kernel %s: unexpected arguments %q\n", cmd, fs.Args())
		return 2
	}

	var err error
	if cmd == "install" {
		err = install(opts, stdout)
		if err == nil {
			err = check(opts, stdout)
		}
	} else {
		err = check(opts, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "kernel %s: %v\n", cmd, err)
		return 1
	}
	return 0
}
