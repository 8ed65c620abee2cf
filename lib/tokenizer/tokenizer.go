// Package tokenizer encodes and decodes text for the supported model families: SentencePiece
// .model files (LLaMA-1/2, Vicuna, TinyLlama), llama2.c tokenizer.bin files, LLaMA-3 tiktoken files.
// It holds no GoMLX graph code.
package tokenizer

// Tokenizer turns text into token ids and back.
type Tokenizer interface {
	// Encode returns the ids of text without any special tokens (no BOS/EOS); a leading dummy
	// space is added where the model family does (SentencePiece add_dummy_prefix).
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

// EncodeWithBOS is Encode with the BOS id prepended (HF LlamaTokenizer's add_special_tokens=True).
func EncodeWithBOS(t Tokenizer, text string) ([]int, error) {
	ids, err := t.Encode(text)
	if err != nil {
		return nil, err
	}
	if t.BOS() < 0 {
		return ids, nil
	}
	return append([]int{t.BOS()}, ids...), nil
}
