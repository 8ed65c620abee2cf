package data

import (
	"github.com/llmpruner/llmpruner/lib/option"
	"github.com/llmpruner/llmpruner/lib/tokenizer"
	"github.com/pkg/errors"
)

// IgnoreLabel marks label positions excluded from the loss (PyTorch's ignore_index).
const IgnoreLabel = -100

// ErrPromptTooLong is wrapped by TokenizeAlpaca's error when the user prompt fills the whole
// cutoff, leaving no response token to train on (test with errors.Is; callers may skip the record).
var ErrPromptTooLong = errors.New("prompt leaves no response token under the cutoff")

// OptCutoff is TokenizeAlpaca's cutoff as error messages name it (option.Error).
const OptCutoff option.Name = "data.TokenizeAlpaca cutoff"

// TokenizeAlpaca tokenizes one Alpaca record for training as LLM-Pruner's post_training.py
// (Alpaca-LoRA's generate_and_tokenize_prompt) does:
//
//   - ids: the full prompt (AlpacaPrompt with output) with BOS, truncated to cutoff tokens; EOS is
//     appended when the result is shorter than cutoff and does not already end in EOS;
//   - labels: a copy of ids where, unless trainOnInputs, the first len(user prompt ids) positions
//     are IgnoreLabel (-100); the user prompt is tokenized separately, with BOS, truncated to cutoff,
//     without EOS (the original's default --add_eos_token=False).
//
// The original silently trains on nothing when the prompt is longer than the cutoff; here that is
// an error wrapping ErrPromptTooLong.
func TokenizeAlpaca(tok tokenizer.Tokenizer, rec AlpacaRecord, cutoff int, trainOnInputs bool) (ids, labels []int, err error) {
	if cutoff < 2 {
		return nil, nil, errors.Errorf("cutoff length %d: want at least 2 tokens", cutoff)
	}
	ids, err = tokenizeTruncated(tok, AlpacaPrompt(rec, true), cutoff, true)
	if err != nil {
		return nil, nil, err
	}
	labels = append([]int(nil), ids...)
	if trainOnInputs {
		return ids, labels, nil
	}
	user, err := tokenizeTruncated(tok, AlpacaPrompt(rec, false), cutoff, false)
	if err != nil {
		return nil, nil, err
	}
	masked := min(len(user), len(labels))
	for i := range masked {
		labels[i] = IgnoreLabel
	}
	if masked >= len(labels) {
		return nil, nil, option.Errorf("prompt is %d tokens, %s %d: %w", len(user), OptCutoff, cutoff, ErrPromptTooLong)
	}
	return ids, labels, nil
}

// tokenizeTruncated is HF's `tokenizer(text, truncation=True, max_length=cutoff)` for a LLaMA
// tokenizer (BOS + ids, cut to cutoff tokens) followed, when addEOS, by post_training.py's EOS rule.
func tokenizeTruncated(tok tokenizer.Tokenizer, text string, cutoff int, addEOS bool) ([]int, error) {
	ids, err := tokenizer.ModelInputs(tok, text)
	if err != nil {
		return nil, errors.Wrap(err, "tokenizing Alpaca prompt")
	}
	if len(ids) > cutoff {
		ids = ids[:cutoff]
	}
	eos := tok.EOS()
	if addEOS && eos >= 0 && len(ids) < cutoff && (len(ids) == 0 || ids[len(ids)-1] != eos) {
		ids = append(ids, eos)
	}
	return ids, nil
}
