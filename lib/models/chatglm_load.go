package models

// Loading ChatGLM checkpoints: the tied lm_head copy, and prompt checks.

import (
	"slices"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/pkg/errors"
)

// chatglmReader hides lm_head.weight when the config ties it to the word embeddings (HF's default
// for ChatGLM-6B, whose checkpoints may still store the tied copy). A stored copy of the wrong
// shape is left visible so that CheckTensors reports it.
func chatglmReader(cfg *config.Config, r checkpoint.Reader) checkpoint.Reader {
	if !cfg.TieEmbed {
		return r
	}
	var kept []checkpoint.TensorInfo
	for _, ti := range r.Tensors() {
		if ti.Name == arch.ChatGLMLMHead && slices.Equal(ti.Shape, []int{cfg.Vocab, cfg.Hidden}) {
			continue
		}
		kept = append(kept, ti)
	}
	return &filteredReader{Reader: r, infos: kept}
}

// filteredReader is a Reader listing only some of its tensors.
type filteredReader struct {
	checkpoint.Reader
	infos []checkpoint.TensorInfo
}

// Tensors lists the visible tensors.
func (f *filteredReader) Tensors() []checkpoint.TensorInfo { return f.infos }

// Read reads a visible tensor.
func (f *filteredReader) Read(name string) (*tensors.Tensor, error) {
	if !slices.ContainsFunc(f.infos, func(ti checkpoint.TensorInfo) bool { return ti.Name == name }) {
		return nil, errors.Errorf("tensor %s is not part of the model", name)
	}
	return f.Reader.Read(name)
}

// checkChatGLMPrompt requires a ChatGLM generation prompt to hold <sop> and a [gMASK] or [MASK]
// before it, as the reference's generation does (it fails without them). The tokenizer's
// EncodeInputs appends "[gMASK] <sop>".
func checkChatGLMPrompt(cfg *config.Config, prompt []int) error {
	sp := arch.ChatGLMTokens(cfg)
	ctx := slices.Index(prompt, sp.BOS)
	if ctx < 0 {
		return errors.Errorf("a ChatGLM prompt must contain <sop> (id %d) where generation starts, e.g. text ids + [gMASK] (%d) + <sop> (the tokenizer's model inputs)", sp.BOS, sp.GMask)
	}
	if !slices.Contains(prompt, sp.GMask) && !slices.Contains(prompt, sp.Mask) {
		return errors.Errorf("a ChatGLM prompt must contain [gMASK] (id %d) or [MASK] (id %d) before <sop>", sp.GMask, sp.Mask)
	}
	return nil
}
