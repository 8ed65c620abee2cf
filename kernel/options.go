package main

import (
	"os"
	"path/filepath"
)

// Pinned tool versions. GoNB itself is pinned as a tool in go.mod ("tool github.com/janpfeifer/gonb").
const (
	goToolchain    = "go1.27.3"
	goplsModule    = "golang.org/x/tools/gopls"
	goplsVersion   = "v0.24.0"
	goimportsPkg   = "golang.org/x/tools/cmd/goimports"
	goimportsMod   = "golang.org/x/tools"
	goimportsVer   = "v0.52.0"
	gonbPkg        = "github.com/janpfeifer/gonb"
	kernelName     = "llmpruner"
	kernelDisplay  = "Go (llmpruner)"
	defaultBackend = "go"
)

// options configure install and check.
type options struct {
	JupyterDataDir string // receives kernels/<kernelName>
	Backend        string // GOMLX_BACKEND for the kernel
	DataDir        string // LLMPRUNER_DATA for the kernel ("" leaves it unset)
}

func defaultOptions() options {
	o := options{
		JupyterDataDir: os.Getenv("JUPYTER_DATA_DIR"),
		Backend:        os.Getenv("GOMLX_BACKEND"),
		DataDir:        os.Getenv("LLMPRUNER_DATA"),
	}
	if o.JupyterDataDir == "" {
		if home, err := os.UserHomeDir(); err == nil {
			o.JupyterDataDir = filepath.Join(home, ".local", "share", "jupyter")
		}
	}
	if o.Backend == "" {
		o.Backend = defaultBackend
	}
	return o
}

// kernelDir is where the kernelspec (kernel.json, logo) is written.
func (o options) kernelDir() string { return filepath.Join(o.JupyterDataDir, "kernels", kernelName) }

// binDir holds gonb, gopls and goimports; the kernel's PATH starts with it.
func (o options) binDir() string { return filepath.Join(o.kernelDir(), "bin") }
