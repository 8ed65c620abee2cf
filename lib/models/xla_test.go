//go:build xla

package models

// With -tags xla the benchmarks can run on the XLA backend (GOMLX_BACKEND=xla:cuda with a PJRT
// CUDA plugin): go test -tags xla -bench 7BLayer ./lib/models
import _ "github.com/llmpruner/llmpruner/lib/backend"
