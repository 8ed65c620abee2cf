package models

// GGUF (llama.cpp) files: writing a model as one, and loading one.

import (
	"path/filepath"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/tokenizer"
	"github.com/pkg/errors"
)

// SaveGGUF writes the model as a llama.cpp GGUF file (see checkpoint.SaveGGUF: the family's
// architecture — "llama", "qwen2" — when every layer has the same sizes, "deci" with per-layer
// sizes otherwise), with its tokenizer's metadata when it has a tokenizer, atomically.
func (m *Model) SaveGGUF(path string, opts checkpoint.GGUFOptions) (*checkpoint.GGUFResult, error) {
	fam, err := arch.ByName(m.Config.Arch)
	if err != nil {
		return nil, errors.WithMessagef(err, "saving %s", path)
	}
	if g := fam.GGUF(); g.Arch == "" {
		return nil, errors.Errorf("saving %s: %s, so %s models cannot be written as GGUF", path, g.Unsupported, fam.Title())
	}
	specs, err := ExpectedTensors(m.Config)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
		if m.Store.GetVariable(VarPath(s.Name)) == nil {
			return nil, errors.Errorf("saving %s: the store has no variable %s", path, VarPath(s.Name))
		}
	}
	if opts.Vocab == nil && m.Tokenizer != nil {
		v, err := tokenizer.GGUFVocabOf(m.Tokenizer)
		if err != nil {
			return nil, errors.WithMessagef(err, "saving %s: tokenizer", path)
		}
		opts.Vocab = v
	}
	if opts.Name == "" {
		opts.Name = filepath.Base(m.Source)
	}
	get := func(name string) (*tensors.Tensor, error) { return m.Store.GetVariable(VarPath(name)).Value() }
	return checkpoint.SaveGGUF(path, m.Config, names, get, opts)
}

// loadGGUF loads a GGUF file: configuration and tokenizer from its metadata (unless opts names
// another tokenizer), weights dequantized to float32.
func loadGGUF(backend compute.Backend, path string, opts LoadOptions) (*Model, error) {
	r, err := checkpoint.OpenGGUF(path)
	if err != nil {
		return nil, errors.WithMessagef(err, "loading model %s", path)
	}
	defer r.Close()
	cfg := r.(checkpoint.ConfigSource).Config()
	store, err := LoadStore(backend, cfg, r, path)
	if err != nil {
		return nil, err
	}
	m := &Model{Config: cfg, Store: store, Backend: backend, Source: path}
	if opts.Tokenizer != "" {
		if err := m.attachTokenizer(filepath.Dir(path), false, opts.Tokenizer); err != nil {
			store.Finalize()
			return nil, err
		}
		return m, nil
	}
	v := r.(checkpoint.GGUFSource).GGUFVocab()
	if v == nil {
		m.TokenizerErr = errors.Errorf("GGUF file %s has no tokenizer metadata (pass one explicitly)", path)
		return m, nil
	}
	tok, err := tokenizer.FromGGUFVocab(v)
	if err == nil {
		err = m.checkTokenizer(tok, path)
	}
	if err != nil {
		m.TokenizerErr = errors.WithMessagef(err, "model %s has no usable tokenizer (pass one explicitly)", path)
		return m, nil
	}
	m.Tokenizer = tok
	return m, nil
}
