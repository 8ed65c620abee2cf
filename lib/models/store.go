package models

// Strict loading of checkpoint tensors into a GoMLX store.

import (
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/pkg/errors"
)

// ignoredTensor reports checkpoint entries that carry no weights (buffers old HF versions saved).
func ignoredTensor(name string) bool { return strings.HasSuffix(name, "rotary_emb.inv_freq") }

// CheckTensors compares a checkpoint's tensor list with what cfg implies and returns an error
// listing every missing, unexpected, wrong-shape and non-float tensor (nil if they all agree).
func CheckTensors(cfg *config.Config, infos []checkpoint.TensorInfo) error {
	want, err := ExpectedTensors(cfg)
	if err != nil {
		return err
	}
	have := make(map[string]checkpoint.TensorInfo, len(infos))
	for _, ti := range infos {
		have[ti.Name] = ti
	}
	var missing, unexpected, wrongShape, wrongDType []string
	wanted := make(map[string]bool, len(want))
	for _, spec := range want {
		wanted[spec.Name] = true
		ti, ok := have[spec.Name]
		switch {
		case !ok:
			missing = append(missing, spec.Name)
		case !slices.Equal(ti.Shape, spec.Shape):
			wrongShape = append(wrongShape, fmt.Sprintf("%s: checkpoint %v, config implies %v", spec.Name, ti.Shape, spec.Shape))
		case !storableDType(ti.DType):
			wrongDType = append(wrongDType, fmt.Sprintf("%s: %s", spec.Name, ti.DType))
		}
	}
	for _, ti := range infos {
		if !wanted[ti.Name] && !ignoredTensor(ti.Name) {
			unexpected = append(unexpected, ti.Name)
		}
	}
	if len(missing)+len(unexpected)+len(wrongShape)+len(wrongDType) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("checkpoint does not match the model config")
	b.WriteString(archMismatchHint(cfg, infos))
	list := func(what string, names []string) {
		if len(names) == 0 {
			return
		}
		sort.Strings(names)
		const maxShown = 20
		fmt.Fprintf(&b, "\n  %d %s:", len(names), what)
		for i, n := range names {
			if i == maxShown {
				fmt.Fprintf(&b, "\n    ... and %d more", len(names)-maxShown)
				break
			}
			b.WriteString("\n    " + n)
		}
	}
	list("missing tensors", missing)
	list("unexpected tensors", unexpected)
	list("tensors with the wrong shape", wrongShape)
	list("tensors with an unsupported dtype (want F32, BF16 or F16)", wrongDType)
	if cfg.TieEmbed && slices.Contains(unexpected, "lm_head.weight") {
		b.WriteString("\n  (config says tie_word_embeddings=true, so lm_head.weight must be absent)")
	}
	if !cfg.TieEmbed && slices.Contains(missing, "lm_head.weight") {
		b.WriteString("\n  (config says tie_word_embeddings=false, so lm_head.weight must be present)")
	}
	return errors.New(b.String())
}

func storableDType(dt dtypes.DType) bool {
	return dt == dtypes.Float32 || dt == dtypes.BFloat16 || dt == dtypes.Float16
}

// LoadStore checks the checkpoint strictly against cfg (see CheckTensors) and reads its tensors
// into a new store, keeping their stored dtype (bf16/f16 stay so; the forward pass converts
// in-graph). source names the checkpoint in error messages.
//
// With a backend that shares host memory (the pure-Go one), every tensor is read straight into a
// shared buffer of that backend, so the first graph execution does not copy the weights (which
// would hold them twice, briefly, at the peak). backend may be nil.
//
// Tensors are read by up to loadWorkers goroutines at once (checkpoint.Reader allows concurrent
// Reads): from a warm page cache the cost of a load is the kernel faulting in and zeroing the new
// buffers' pages and copying the file's bytes into them, which scales with cores. Readers that
// fill the buffers directly (safetensors, contiguous PyTorch storages) need no more memory than
// reading one at a time; readers that convert (GGUF dequantization) hold one temporary per worker.
func LoadStore(backend compute.Backend, cfg *config.Config, r checkpoint.Reader, source string) (*model.Store, error) {
	if err := CheckTensors(cfg, r.Tensors()); err != nil {
		return nil, errors.WithMessage(err, source)
	}
	var alloc checkpoint.Allocator
	if backend != nil && backend.HasSharedBuffers() {
		alloc = func(shape shapes.Shape) (*tensors.Tensor, error) {
			return tensors.FromShapeForBackend(backend, 0, shape)
		}
	}
	specs, _ := ExpectedTensors(cfg)
	read := make([]*tensors.Tensor, len(specs))
	finalizeAll := func() {
		for _, t := range read {
			if t != nil {
				_ = t.FinalizeAll()
			}
		}
	}
	if err := readConcurrently(len(specs), loadWorkers(), func(i int) error {
		spec := specs[i]
		t, err := checkpoint.ReadWith(r, spec.Name, alloc)
		if err != nil {
			return errors.WithMessagef(err, "%s: reading tensor %s", source, spec.Name)
		}
		read[i] = t
		if !slices.Equal(t.Shape().Dimensions, spec.Shape) || !storableDType(t.DType()) {
			return errors.Errorf("%s: tensor %s read as %s, its header said %v", source, spec.Name, t.Shape(), spec.Shape)
		}
		return nil
	}); err != nil {
		finalizeAll()
		return nil, err
	}
	store := model.NewStore()
	for i, spec := range specs {
		if _, err := store.CreateVariable(VarPath(spec.Name), read[i]); err != nil {
			store.Finalize()
			read = read[i+1:] // the store owns (and has finalized) the others
			finalizeAll()
			return nil, errors.Wrapf(err, "%s: storing tensor %s", source, spec.Name)
		}
	}
	return store, nil
}

// archMismatchHint explains a checkpoint whose tensor names belong to another layout than
// config.json's family ("" when they do not).
func archMismatchHint(cfg *config.Config, infos []checkpoint.TensorInfo) string {
	want, err := arch.ByName(cfg.Arch)
	if err != nil {
		return ""
	}
	names := make([]string, len(infos))
	for i, ti := range infos {
		names[i] = ti.Name
	}
	got := arch.NamedLike(want, names)
	if got == nil || got.Layout() == want.Layout() {
		return ""
	}
	prefix, _, _ := strings.Cut(got.LayerPrefix(), "%d")
	return fmt.Sprintf(" (config.json says %s, but the weights are named like a %s checkpoint: %s*)", want.Title(), got.Title(), prefix)
}

// loadWorkers is how many tensors LoadStore reads at once: one per CPU the Go runtime uses, at
// most 8 (beyond that the memory bus, not the cores, bounds a load).
func loadWorkers() int { return max(1, min(runtime.GOMAXPROCS(0), 8)) }

// readConcurrently calls read(i) for i in [0, n) on up to workers goroutines, lowest i first, and
// returns the error of the lowest failing i (after every started call has returned; no call starts
// after a failure).
func readConcurrently(n, workers int, read func(i int) error) error {
	errs := make([]error, n)
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if errs[i] = read(i); errs[i] != nil {
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
