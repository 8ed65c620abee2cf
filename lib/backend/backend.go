// Package backend starts the GoMLX backend llmpruner computes on.
//
// The pure-Go backend ("go") is always compiled in and is the default: it runs everywhere, with
// AVX-512 matmuls when built with GOEXPERIMENT=simd. The XLA backend (PJRT plugins: CUDA GPUs, TPUs,
// XLA CPU) is compiled in only with the build tag "xla" (it needs cgo), e.g.
//
//	go build -tags xla ./cmd/llmpruner
//	GOMLX_BACKEND=xla:cuda ./llmpruner ...
//
// and finds its PJRT plugin as go-xla documents (a pjrt_c_api_cuda_plugin.so on the library path or
// in a standard plugin directory; see README.md, "GPU").
package backend

import (
	"os"
	"slices"
	"strings"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend" // the pure-Go backend, registered as "go"
	"github.com/pkg/errors"
)

// DefaultConfig is used when GOMLX_BACKEND is unset.
const DefaultConfig = "go"

// Config returns the backend configuration in effect: $GOMLX_BACKEND, or DefaultConfig.
func Config() string {
	if c := os.Getenv(compute.ConfigEnvVar); c != "" {
		return c
	}
	return DefaultConfig
}

// Available lists the backends compiled into this binary.
func Available() []string { return compute.List() }

// New starts the backend named by Config(). Tensors are bound to the backend instance that made
// them, so a process should start one backend and share it.
func New() (compute.Backend, error) {
	cfg := Config()
	name, _, _ := strings.Cut(cfg, ":")
	if !slices.Contains(Available(), name) {
		hint := ""
		if name == "xla" || name == "stablehlo" {
			hint = "; the XLA backend (GPU) is compiled in with the build tag \"xla\": go build -tags xla ./cmd/llmpruner"
		}
		return nil, errors.Errorf("GOMLX_BACKEND=%q: backend %q is not in this binary (available: %s)%s",
			cfg, name, strings.Join(Available(), ", "), hint)
	}
	b, err := compute.NewWithConfig(cfg)
	if err != nil {
		return nil, errors.Wrapf(err, "starting the GoMLX backend %q (GOMLX_BACKEND)", cfg)
	}
	return b, nil
}
