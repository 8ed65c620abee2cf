package tokenizer

import (
	"os"
	"unicode/utf8"

	"github.com/pkg/errors"
)

// ErrInvalidUTF8 is returned (wrapped) by Encode for text that is not valid UTF-8.
var ErrInvalidUTF8 = errors.New("text is not valid UTF-8")

// checkUTF8 rejects text that is not valid UTF-8, naming the offset of the first bad byte.
func checkUTF8(text string) error {
	if utf8.ValidString(text) {
		return nil
	}
	for i := 0; i < len(text); {
		r, n := utf8.DecodeRuneInString(text[i:])
		if r == utf8.RuneError && n == 1 {
			return errors.Wrapf(ErrInvalidUTF8, "invalid byte 0x%02x at offset %d", text[i], i)
		}
		i += n
	}
	return ErrInvalidUTF8
}

// validUTF8 converts decoded bytes to a string, replacing each byte that is not part of a valid
// UTF-8 sequence with U+FFFD (as SentencePiece does for byte-fallback pieces).
func validUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	out := make([]byte, 0, len(b)+8)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, b[:n]...)
		}
		b = b[n:]
	}
	return string(out)
}

// readFile reads a tokenizer file, with an error naming it.
func readFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, errors.Wrap(err, "reading tokenizer")
	}
	return b, nil
}
