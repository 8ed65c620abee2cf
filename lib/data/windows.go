package data

import (
	"github.com/llmpruner/llmpruner/lib/tokenizer"
	"github.com/pkg/errors"
)

// TokenWindows cuts ids into consecutive non-overlapping windows of size tokens, dropping the
// last partial window (LLM-Pruner's `ids[i*L:(i+1)*L] for i in range(len(ids)//L)`). The windows
// share ids' backing array.
func TokenWindows(ids []int, size int) [][]int {
	if size <= 0 {
		return nil
	}
	n := len(ids) / size
	windows := make([][]int, n)
	for i := range windows {
		windows[i] = ids[i*size : (i+1)*size : (i+1)*size]
	}
	return windows
}

// TextWindows tokenizes text once with one BOS at the start (HF LlamaTokenizer's default) and
// cuts it into non-overlapping windows of cutoff tokens, dropping the last partial window: the
// plain-text training data of `finetune --data-format text`, and the same stream that
// perplexity is measured on. It fails when text is empty or shorter than one window.
func TextWindows(tok tokenizer.Tokenizer, text string, cutoff int) ([][]int, error) {
	if cutoff < 2 {
		return nil, errors.Errorf("window length %d: want at least 2 tokens", cutoff)
	}
	if text == "" {
		return nil, errors.New("text is empty")
	}
	ids, err := tokenizer.ModelInputs(tok, text)
	if err != nil {
		return nil, errors.Wrap(err, "tokenizing text")
	}
	if len(ids) < cutoff {
		return nil, errors.Errorf("text is %d tokens long, shorter than one window of %d tokens", len(ids), cutoff)
	}
	return TokenWindows(ids, cutoff), nil
}
