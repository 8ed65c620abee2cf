package main

import (
	"github.com/gomlx/compute/dtypes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gomlx/compute"
	"github.com/llmpruner/llmpruner/lib/arch"
	libbackend "github.com/llmpruner/llmpruner/lib/backend"
	"github.com/llmpruner/llmpruner/lib/lora"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/llmpruner/llmpruner/lib/tokenizer"
	"github.com/pkg/errors"
)

// The process uses one backend: tensors are bound to the backend instance that made them.
var (
	backendOnce sync.Once
	backendVal  compute.Backend
	backendErr  error
)

// backend returns the process-wide GoMLX backend (GOMLX_BACKEND, default "go").
func backend() (compute.Backend, error) {
	backendOnce.Do(func() {
		backendVal, backendErr = libbackend.New()
	})
	return backendVal, backendErr
}

// loadModel loads --model (with --tokenizer when given) and applies --adapter (merged into the
// weights when e.mergeAdapter), logging to stderr.
func (e *env) loadModel() (*models.Model, error) {
	if err := e.requireModel(); err != nil {
		return nil, err
	}
	if err := e.checkAdapterDir(); err != nil {
		return nil, err
	}
	m, err := e.loadModelAt(e.model, e.tokenizer)
	if err != nil {
		return nil, err
	}
	if err := e.applyAdapter(m); err != nil {
		return nil, err
	}
	return m, nil
}

// checkAdapterDir fails fast, before a model is loaded, when --adapter is not an adapter directory.
func (e *env) checkAdapterDir() error {
	if e.adapter == "" {
		return nil
	}
	st, err := os.Stat(e.adapter)
	switch {
	case err != nil:
		return errors.Errorf("--adapter %s: no such directory", e.adapter)
	case !st.IsDir():
		return errors.Errorf("--adapter %s: not a directory (want a LoRA adapter directory with %s)", e.adapter, lora.ConfigFile)
	}
	if _, err := os.Stat(filepath.Join(e.adapter, lora.ConfigFile)); err != nil {
		return errors.Errorf("--adapter %s: no %s in it (not a LoRA adapter directory)", e.adapter, lora.ConfigFile)
	}
	return nil
}

// applyAdapter loads --adapter onto m (and merges it when e.mergeAdapter).
func (e *env) applyAdapter(m *models.Model) error {
	if e.adapter == "" {
		return nil
	}
	a, err := lora.LoadAdapter(m, e.adapter)
	if err != nil {
		return errors.WithMessage(err, "--adapter")
	}
	e.logf("applied LoRA adapter %s (r %d, alpha %g, %d modules, %d parameters)",
		e.adapter, a.Config.R, a.Config.Alpha, len(a.Modules), a.NumParams(m))
	if e.mergeAdapter {
		merge := lora.Merge
		if e.mergeFloat32 {
			merge = lora.MergeFloat32
		}
		if err := merge(m); err != nil {
			return errors.WithMessage(err, "--adapter")
		}
		e.logf("merged the adapter into the weights: W + (alpha/r)·B·A")
	}
	return nil
}

// loadModelAt loads the model at path (HF directory, llama2.c .bin or hub repo id).
func (e *env) loadModelAt(path, tokenizerPath string) (*models.Model, error) {
	if _, err := os.Stat(path); err != nil && !models.LooksLikeRepoID(path) {
		return nil, errors.Errorf("--model %s: no such file or directory", path)
	}
	if tokenizerPath != "" {
		if _, err := os.Stat(tokenizerPath); err != nil {
			return nil, errors.Errorf("--tokenizer %s: no such file", tokenizerPath)
		}
	}
	be, err := backend()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	stop := e.spinner("loading " + path)
	m, err := models.Load(be, path, models.LoadOptions{Tokenizer: tokenizerPath, Quiet: true})
	stop()
	if err != nil {
		if !strings.Contains(err.Error(), path) {
			err = errors.WithMessagef(err, "loading model %s", path)
		}
		return nil, err
	}
	e.logf("loaded %s (%d parameters) in %s", path, arch.NumParams(m.Config), time.Since(start).Round(time.Millisecond))
	e.setMatMul(m)
	return m, nil
}

// setMatMul applies --matmul-dtype to m's hooks.
func (e *env) setMatMul(m *models.Model) {
	if dt, _ := e.matmul(); dt != dtypes.Float32 {
		hooks := models.Hooks{}
		if m.Hooks != nil {
			hooks = *m.Hooks
		}
		hooks.MatMulDType = dt
		m.Hooks = &hooks
		e.logf("matrix products in %s (--matmul-dtype), the rest in float32", dt)
	}
}

// modelTokenizer returns the tokenizer of m, or an error telling how to give one.
func modelTokenizer(m *models.Model) (tokenizer.Tokenizer, error) {
	if m.Tokenizer == nil {
		return nil, errors.Errorf("model %s has no tokenizer beside it: pass --tokenizer FILE (tokenizer.model, tokenizer.bin or tok512.bin)", m.Source)
	}
	return m.Tokenizer, nil
}
