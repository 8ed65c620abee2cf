package models

// Finding and loading the tokenizer that belongs to a model.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/llmpruner/llmpruner/lib/tokenizer"
	"github.com/pkg/errors"
)

// llama2cTokenizers are the tokenizer files looked for beside a llama2.c checkpoint; the first
// whose vocabulary size equals the model's is used (stories260K uses tok512.bin, the larger
// TinyStories models llama2.c's tokenizer.bin).
var llama2cTokenizers = []string{"tok512.bin", "tokenizer.bin"}

// attachTokenizer sets m.Tokenizer: from override when given (failure is an error), else from
// the model directory (HF: tokenizer.Load(dir)) or, for a llama2.c file, from the llama2.c
// tokenizer beside it. When none is usable the model still loads: m.Tokenizer stays nil and
// m.TokenizerErr says why.
func (m *Model) attachTokenizer(dir string, llama2c bool, override string) error {
	if override != "" {
		tok, files, err := tokenizer.Load(override)
		if err == nil {
			err = m.checkTokenizer(tok, override)
		}
		if err != nil {
			return errors.WithMessagef(err, "loading tokenizer %s for model %s", override, m.Source)
		}
		m.Tokenizer, m.TokenizerFiles = tok, files
		return nil
	}
	if !llama2c {
		tok, files, err := tokenizer.Load(dir)
		if err == nil {
			err = m.checkTokenizer(tok, dir)
		}
		if err != nil {
			m.TokenizerErr = errors.WithMessagef(err, "model %s has no usable tokenizer (pass one explicitly)", m.Source)
			return nil
		}
		m.Tokenizer, m.TokenizerFiles = tok, files
		return nil
	}
	var tried []string
	for _, name := range llama2cTokenizers {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		tok, files, err := tokenizer.Load(p)
		if err == nil && tok.VocabSize() == m.Config.Vocab {
			m.Tokenizer, m.TokenizerFiles = tok, files
			return nil
		}
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", p, err))
		} else {
			tried = append(tried, fmt.Sprintf("%s has %d tokens", p, tok.VocabSize()))
		}
	}
	m.TokenizerErr = errors.Errorf("no tokenizer with %d tokens beside llama2.c checkpoint %s (looked for %s; %s); pass one explicitly",
		m.Config.Vocab, m.Source, strings.Join(llama2cTokenizers, ", "), strings.Join(tried, "; "))
	return nil
}

// checkTokenizer rejects a tokenizer whose ids do not fit the model's vocabulary.
func (m *Model) checkTokenizer(tok tokenizer.Tokenizer, path string) error {
	if tok.VocabSize() > m.Config.Vocab {
		return errors.Errorf("tokenizer %s has %d tokens but the model's vocabulary has %d", path, tok.VocabSize(), m.Config.Vocab)
	}
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
