package experiment

import "strings"

// ByteTokenizer is a character-level tokenizer for test fixtures that have no tokenizer of their
// own (the tiny random-weight ChatGLM): printable ASCII 32–126 maps to ids Offset…Offset+94, every
// other byte to Unknown. It has no BOS; EOS is EOSID. Its only purpose is to run text through a
// fixture; scores measured with it say nothing about language modelling.
type ByteTokenizer struct {
	Offset, Unknown, EOSID, Vocab int
}

// NewByteTokenizer fits a ByteTokenizer into a vocabulary of vocab ids (at least 100) whose ids
// from 4 on are free; eos is the model's EOS id.
func NewByteTokenizer(vocab, eos int) ByteTokenizer {
	return ByteTokenizer{Offset: 4, Unknown: 4 + 95, EOSID: eos, Vocab: vocab}
}

// Encode maps each byte of text to an id.
func (t ByteTokenizer) Encode(text string) ([]int, error) {
	ids := make([]int, 0, len(text))
	for i := 0; i < len(text); i++ {
		ids = append(ids, t.id(text[i]))
	}
	return ids, nil
}

func (t ByteTokenizer) id(c byte) int {
	if c >= 32 && c <= 126 {
		return t.Offset + int(c-32)
	}
	return t.Unknown
}

// Decode maps ids back to characters ("?" for anything else).
func (t ByteTokenizer) Decode(ids []int) string {
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(t.Piece(id))
	}
	return b.String()
}

// Piece is the character of id, "?" for the unknown id and ids outside the printable range.
func (t ByteTokenizer) Piece(id int) string {
	if id >= t.Offset && id < t.Offset+95 {
		return string(rune(32 + id - t.Offset))
	}
	return "?"
}

// BOS is -1: no BOS token.
func (t ByteTokenizer) BOS() int { return -1 }

// EOS is EOSID.
func (t ByteTokenizer) EOS() int { return t.EOSID }

// VocabSize is Vocab.
func (t ByteTokenizer) VocabSize() int { return t.Vocab }
