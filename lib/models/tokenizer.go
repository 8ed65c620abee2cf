package models

// Finding and loading the tokenizer that belongs to a model.

import (
	"os"
	"path/filepath"

	"github.com/llmpruner/llmpruner/lib/tokenizer"
	"github.com/pkg/errors"
)

// tokenizerCandidates are the tokenizer files looked for beside a model, in order of preference:
// SentencePiece / tiktoken tokenizer.model (HF directories), then llama2.c tokenizer files.
var tokenizerCandidates = []string{"tokenizer.model", "tok512.bin", "tokenizer.bin"}

// attachTokenizer loads the tokenizer named by override, else the first candidate found in dir.
// Having none is not an error (m.Tokenizer stays nil); a tokenizer file that fails to load is.
func (m *Model) attachTokenizer(dir, override string) error {
	path := override
	if path == "" {
		for _, name := range tokenizerCandidates {
			p := filepath.Join(dir, name)
			if _, err := os.Stat(p); err == nil {
				path = p
				break
			}
		}
	}
	if path == "" {
		return nil
	}
	tok, files, err := tokenizer.Load(path)
	if err != nil {
		return errors.WithMessagef(err, "loading the tokenizer of model %s", m.Source)
	}
	if tok.VocabSize() > m.Config.Vocab {
		return errors.Errorf("tokenizer %s has %d tokens but model %s has a vocabulary of %d", path, tok.VocabSize(), m.Source, m.Config.Vocab)
	}
	m.Tokenizer, m.TokenizerFiles = tok, files
	return nil
}

// EOSTokens returns the ids that end generation: the config's eos_token_id(s) and the tokenizer's
// EOS.
func (m *Model) EOSTokens() []int {
	eos := append([]int(nil), m.Config.EOS...)
	if m.Tokenizer != nil && m.Tokenizer.EOS() >= 0 {
		eos = append(eos, m.Tokenizer.EOS())
	}
	return eos
}
