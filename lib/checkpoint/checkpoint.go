// Package checkpoint reads and writes model weights: Hugging Face safetensors (single or sharded),
// PyTorch pytorch_model.bin (zip+pickle, single or sharded; no code execution) and llama2.c .bin
// files, and writes Hugging Face layout directories. It holds no GoMLX graph code.
//
// Reading: Open (or OpenWithConfig, which also returns the config.Config) recognises a model
// directory, a shard index or a single file by its content, and returns a Reader whose Read
// loads one tensor at a time straight into a fresh host tensor, so a model load holds about one
// copy of the weights (BenchmarkLoadPeakRSS: peak RSS ≈ 1.0× the file size). Headers are
// validated strictly; every error names the file and, where there is one, the tensor.
//
// Writing: WriteSafetensors / WriteSafetensorsSharded write safetensors files atomically;
// SaveHF / SaveHFFromReader write a whole Hugging Face directory atomically (config.json,
// weights with optional dtype conversion and sharding, tokenizer files).
package checkpoint

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
)

// TensorInfo describes one stored tensor.
type TensorInfo struct {
	Name  string       // Hugging Face tensor name, e.g. "model.layers.0.self_attn.q_proj.weight"
	DType dtypes.DType // stored dtype (Float32, BFloat16, Float16, ...)
	Shape []int
	File  string // file holding it (for error messages)
}

// Reader gives access to the tensors of a checkpoint, one at a time, so that loading never holds
// two full copies of the weights. Read may be called from several goroutines at once; Close
// must not race with them. Each Read returns a new tensor owned by the caller.
type Reader interface {
	// Tensors lists every tensor, sorted by name.
	Tensors() []TensorInfo
	// Read returns the named tensor as a host tensor in its stored dtype and shape.
	Read(name string) (*tensors.Tensor, error)
	// Close releases files and mappings.
	Close() error
}

// Allocator creates the tensor of a shape that a Reader then fills, e.g. with
// tensors.FromShapeForBackend so that weights live in a backend's shared buffers from the start
// and are not copied again on first use.
type Allocator func(shape shapes.Shape) (*tensors.Tensor, error)

// ReadWith reads the named tensor of r into a tensor made by alloc when r supports it (every
// Reader of this package does), else it is r.Read(name). A nil alloc means tensors.FromShape.
func ReadWith(r Reader, name string, alloc Allocator) (*tensors.Tensor, error) {
	if ar, ok := r.(interface {
		readWith(name string, alloc Allocator) (*tensors.Tensor, error)
	}); ok {
		return ar.readWith(name, alloc)
	}
	return r.Read(name)
}
