package main

// eval ppl / eval zeroshot --stream / --max-memory: evaluating a model without loading it
// (models.Streamed: the text goes through one decoder layer at a time, read from the checkpoint).

import (
	"math/bits"

	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/eval"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/pkg/errors"
)

// defaultSweepBytes bounds the boundary activations of one sweep when --stream has no --max-memory.
const defaultSweepBytes = 1 << 30

// evalStreamFlags are --stream and --max-memory of the eval commands.
type evalStreamFlags struct {
	stream    bool
	maxMemory string
}

func (e *env) addEvalStream() *evalStreamFlags {
	f := &evalStreamFlags{}
	e.fs.BoolVar(&f.stream, "stream", false, "never load the whole model: run the text through one decoder layer at a time, read from the checkpoint (LLaMA family; not with --adapter or GGUF)")
	e.fs.StringVar(&f.maxMemory, "max-memory", "", "memory `limit` (e.g. 8GB): stream when the loaded model would not fit; streamed, as many tokens pass each layer together as the limit allows (1 GiB of activations without it); refuse when one batch does not fit")
	return f
}

// evalModel is a model to evaluate: loaded whole, or streamed from its checkpoint.
type evalModel struct {
	*models.Model                   // the loaded model, or the streamed model's config and tokenizer
	streamed      *models.Streamed  // nil when loaded
	reader        checkpoint.Reader // the streamed model's checkpoint
}

// scorer is what eval scores: the loaded or the streamed model.
func (m *evalModel) scorer() eval.Scorer {
	if m.streamed != nil {
		return m.streamed
	}
	return m.Model
}

func (m *evalModel) close() {
	if m.streamed != nil {
		m.streamed.Finalize()
		_ = m.reader.Close()
	}
}

// openEval loads the model at path (with the LoRA adapter, if any), or opens it streamed — with
// --stream, or with --max-memory when loading it would exceed the limit — for graph batches of
// batch sequences of up to length tokens (0: the model's context plus one target token).
func (e *env) openEval(path, adapter string, f *evalStreamFlags, batch, length int) (*evalModel, error) {
	if !f.stream && f.maxMemory == "" {
		return e.loadEval(path, adapter)
	}
	var limit int64
	if f.maxMemory != "" {
		var err error
		if limit, err = parseByteSize(f.maxMemory); err != nil {
			return nil, usageErrorf("--max-memory: %v", err)
		}
	}
	be, err := backend()
	if err != nil {
		return nil, err
	}
	m, r, err := models.OpenStreamed(be, path, models.LoadOptions{Tokenizer: e.tokenizer, Quiet: true})
	if err != nil {
		return nil, errors.WithMessagef(err, "--model %s", path)
	}
	fail := func(err error) (*evalModel, error) {
		_ = r.Close()
		return nil, err
	}
	if length <= 0 {
		length = eval.DefaultMaxLength
		if m.Config.MaxPositions > 0 {
			length = m.Config.MaxPositions
		}
		length++
	}
	stored := storedDType(r)
	rows := 1 << bits.Len(uint(min(batch, 32)-1)) // padded rows of a graph batch
	need := models.LoadedForwardBytes(m.Config, stored, rows, length)
	if !f.stream && need <= limit {
		e.logf("loading the model: about %s needed, --max-memory %s", humanBytes(need), f.maxMemory)
		_ = r.Close()
		return e.loadEval(path, adapter)
	}
	perToken := int64(4 * m.Config.Hidden) // one float32 boundary activation
	fixed := models.SweepBytes(m.Config, stored, 0, rows, length)
	sweep := int64(defaultSweepBytes) / perToken
	if limit > 0 {
		if fixed+perToken*int64(rows*length) > limit {
			return fail(errors.Errorf("--max-memory %s is too small for %s even streamed one layer at a time with %d sequences of %d tokens per batch: that needs about %s (loaded whole: %s)",
				f.maxMemory, path, rows, length, humanBytes(fixed+perToken*int64(rows*length)), humanBytes(need)))
		}
		sweep = (limit - fixed) / perToken
	}
	if adapter != "" {
		return fail(usageErrorf("--adapter cannot be applied to a streamed model (about %s needed to load it): merge it first (llmpruner convert --adapter), then evaluate the merged model", humanBytes(need)))
	}
	s, err := models.NewStreamed(m, r)
	if err != nil {
		return fail(errors.WithMessagef(err, "--stream (model %s, about %s needed to load it)", path, humanBytes(need)))
	}
	e.setMatMul(m)
	s.Batch, s.SweepTokens = batch, sweep
	e.logf("streaming %s layer by layer: up to %d tokens per sweep, at most about %s needed (loaded whole: %s)",
		path, sweep, humanBytes(models.SweepBytes(m.Config, stored, sweep, rows, length)), humanBytes(need))
	return &evalModel{Model: m, streamed: s, reader: r}, nil
}

// loadEval loads the model at path and applies the adapter (unmerged).
func (e *env) loadEval(path, adapter string) (*evalModel, error) {
	m, err := e.loadModelAt(path, e.tokenizer)
	if err != nil {
		return nil, err
	}
	if adapter != "" {
		saved := e.adapter
		e.adapter = adapter
		err := e.applyAdapter(m)
		e.adapter = saved
		if err != nil {
			return nil, err
		}
	}
	return &evalModel{Model: m}, nil
}
