package eval

import (
	"github.com/pkg/errors"
)

// Tokenized is a request as token ids.
type Tokenized struct {
	// Tokens is context_enc + continuation_enc, left-truncated to at most maxLength+1 tokens.
	Tokens []int
	// ContLen is the number of scored tokens at the end of Tokens (the continuation's).
	ContLen int
	// ContextCut is set when tokens were dropped from the left of the context (as lm-eval does).
	ContextCut bool
	// ContinuationCut is set when the continuation alone is longer than maxLength: only its last
	// maxLength tokens are scored. lm-eval stops with an assertion error on such a request; this
	// happens only with models of a short context (e.g. 512-token stories260K on long PIQA
	// solutions), never for LLaMA's 2048.
	ContinuationCut bool
}

// TokenizeRequest turns a request into the token sequence lm-eval feeds a causal model and the
// number of continuation tokens at its end, as lm-eval 4d21ab6 does for hf-causal models
// (BaseLM.loglikelihood and _loglikelihood_tokens):
//
//   - context and continuation are encoded separately with tokenizer.encode(s,
//     add_special_tokens=False): no BOS anywhere. An empty context is replaced by the EOS id
//     (lm-eval's eot_token_id).
//   - whole = context_enc + continuation_enc, cut from the left to the last maxLength+1 tokens
//     (the model then sees whole[:-1], at most maxLength positions).
//   - the request's log-likelihood is the sum of log p over the continuation tokens.
//
// The continuation always starts with a space (" yes", " sol", …). HF's LlamaTokenizer of that era
// (legacy SentencePiece behaviour, and the fast tokenizer converted from it) encodes a string by
// handing it to SentencePiece, whose add_dummy_prefix prepends "▁" to the text; with the LLaMA
// model's identity normalizer (no whitespace folding) " yes" becomes "▁▁yes" and is encoded as
// ["▁", "▁yes"] = [29871, 4874]. So every continuation carries an extra leading "▁" token and the
// context carries its own dummy prefix at its start. tokenizer.Tokenizer.Encode is specified to add
// the dummy prefix exactly like that (llama2.c tokenizers do the same: run.c prepends " "), so
// calling Encode on each part reproduces lm-eval's ids; no stripping or re-spacing is done here.
func TokenizeRequest(tok Encoder, req Request, maxLength int) (Tokenized, error) {
	ctx, err := encodeCached(tok, nil, req.Context, true)
	if err != nil {
		return Tokenized{}, errors.WithMessage(err, "context")
	}
	cont, err := encodeCached(tok, nil, req.Continuation, false)
	if err != nil {
		return Tokenized{}, errors.WithMessage(err, "continuation")
	}
	return joinTokens(ctx, cont, maxLength, req)
}

// joinTokens concatenates encoded context and continuation and left-truncates to maxLength+1.
func joinTokens(ctx, cont []int, maxLength int, req Request) (Tokenized, error) {
	if maxLength < 1 {
		return Tokenized{}, errors.Errorf("context length %d must be positive", maxLength)
	}
	if len(ctx) == 0 {
		return Tokenized{}, errors.Errorf("context %q encodes to no tokens", abbrevText(req.Context))
	}
	if len(cont) == 0 {
		return Tokenized{}, errors.Errorf("continuation %q encodes to no tokens", abbrevText(req.Continuation))
	}
	whole := make([]int, 0, len(ctx)+len(cont))
	whole = append(append(whole, ctx...), cont...)
	r := Tokenized{Tokens: whole, ContLen: len(cont)}
	if len(whole) > maxLength+1 {
		r.Tokens = whole[len(whole)-(maxLength+1):]
		r.ContextCut = true
	}
	if len(cont) > maxLength {
		r.ContLen, r.ContinuationCut = maxLength, true
	}
	return r, nil
}

func abbrevText(s string) string {
	const max = 60
	r := []rune(s)
	if len(r) > max {
		return string(r[:max]) + "…"
	}
	return s
}
