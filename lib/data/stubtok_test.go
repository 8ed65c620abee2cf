package data

import "strings"

// byteTok is a test tokenizer: each byte b of the text is the id b+3; BOS=1, EOS=2.
type byteTok struct{}

func (byteTok) Encode(text string) ([]int, error) {
	ids := make([]int, len(text))
	for i := 0; i < len(text); i++ {
		ids[i] = int(text[i]) + 3
	}
	return ids, nil
}

func (byteTok) Decode(ids []int) string {
	var b strings.Builder
	for _, id := range ids {
		if id >= 3 {
			b.WriteByte(byte(id - 3))
		}
	}
	return b.String()
}

func (byteTok) Piece(id int) string { return byteTok{}.Decode([]int{id}) }
func (byteTok) BOS() int            { return 1 }
func (byteTok) EOS() int            { return 2 }
func (byteTok) VocabSize() int      { return 259 }

// bytesWithBOS is the expected tokenization of s with BOS under byteTok.
func bytesWithBOS(s string) []int {
	ids, _ := byteTok{}.Encode(s)
	return append([]int{1}, ids...)
}
