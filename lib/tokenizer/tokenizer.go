// Package tokenizer encodes and decodes text for the supported model families: SentencePiece
// .model files (LLaMA-1/2, Vicuna, TinyLlama), llama2.c tokenizer.bin files, LLaMA-3 tiktoken
// files and ChatGLM-6B's ice_text.model. Load finds and opens any of them.
// It holds no GoMLX graph code.
package tokenizer

// Tokenizer turns text into token ids and back.
type Tokenizer interface {
	// Encode returns the ids of text without any special tokens (no BOS/EOS); a leading dummy
	// space is added where the model family does (SentencePiece add_dummy_prefix). Text that is
	// not valid UTF-8 is an error (wrapping ErrInvalidUTF8).
	Encode(text string) ([]int, error)
	// Decode turns ids back into text, as HF's decode(skip_special_tokens=True) does.
	Decode(ids []int) string
	// Piece is the vocabulary entry of id, for display.
	Piece(id int) string
	// BOS and EOS are the begin/end-of-sequence ids (-1 if the tokenizer has none).
	BOS() int
	EOS() int
	// VocabSize is the number of ids.
	VocabSize() int
}

// InputEncoder is implemented by tokenizers whose model inputs are not simply BOS followed by
// Encode(text): ChatGLM appends [gMASK] and <sop>; a tokenizer_config.json may turn BOS off
// (add_bos_token) or EOS on (add_eos_token). ModelInputs uses it when present.
type InputEncoder interface {
	// EncodeInputs returns the ids the model takes for text, special tokens included.
	EncodeInputs(text string) ([]int, error)
}

// PieceLookup is implemented by every tokenizer of this package: the id of a vocabulary entry
// (special tokens included).
type PieceLookup interface {
	PieceID(piece string) (int, bool)
}

// ModelInputs returns the ids a model takes for text (HF's add_special_tokens=True): the
// tokenizer's EncodeInputs when it has one (ChatGLM's [gMASK] <sop>; a tokenizer_config.json
// that turns BOS off or EOS on), else Encode with the BOS id prepended when the tokenizer has one
// (Qwen2 has none).
func ModelInputs(t Tokenizer, text string) ([]int, error) {
	if ie, ok := t.(InputEncoder); ok {
		return ie.EncodeInputs(text)
	}
	ids, err := t.Encode(text)
	if err != nil {
		return nil, err
	}
	if t.BOS() < 0 {
		return ids, nil
	}
	return append([]int{t.BOS()}, ids...), nil
}
