package main

import (
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend" // the pure-Go backend (default "go")
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
		backendVal, backendErr = compute.New()
		if backendErr != nil {
			backendErr = errors.WithMessage(backendErr, "starting the GoMLX backend (check GOMLX_BACKEND)")
		}
	})
	return backendVal, backendErr
}

// loadModel loads --model (with --tokenizer when given), logging to stderr.
func (e *env) loadModel() (*models.Model, error) {
	if err := e.requireModel(); err != nil {
		return nil, err
	}
	return e.loadModelAt(e.model, e.tokenizer)
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
	e.logf("loaded %s (%d parameters) in %s", path, m.Config.NumParams(), time.Since(start).Round(time.Millisecond))
	return m, nil
}

// modelTokenizer returns the tokenizer of m, or an error telling how to give one.
func modelTokenizer(m *models.Model) (tokenizer.Tokenizer, error) {
	if m.Tokenizer == nil {
		return nil, errors.Errorf("model %s has no tokenizer beside it: pass --tokenizer FILE (tokenizer.model, tokenizer.bin or tok512.bin)", m.Source)
	}
	return m.Tokenizer, nil
}
