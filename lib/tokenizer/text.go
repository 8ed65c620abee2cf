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
	return replaceInvalidUTF8(b, func([]byte) int { return 1 })
}

// replaceInvalidUTF8 copies b, replacing each invalid sequence at the start of the rest with one
// U+FFFD; invalidLen tells how many bytes that sequence spans (at least 1).
func replaceInvalidUTF8(b []byte, invalidLen func(rest []byte) int) string {
	if utf8.Valid(b) {
		return string(b)
	}
	out := make([]byte, 0, len(b)+8)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			n = invalidLen(b)
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

// lossyUTF8 converts decoded bytes to a string the way Python's bytes.decode("utf-8",
// errors="replace") and Rust's String::from_utf8_lossy do (tiktoken and HF byte-level decoders):
// each maximal prefix of a valid UTF-8 sequence that is cut short becomes one U+FFFD, and so does
// each byte that cannot start one.
func lossyUTF8(b []byte) string { return replaceInvalidUTF8(b, maximalSubpart) }

// maximalSubpart is the length of the invalid sequence at the start of b: its lead byte and the
// continuation bytes that could still have completed it (at least 1).
func maximalSubpart(b []byte) int {
	lo, hi := byte(0x80), byte(0xBF) // allowed range of the first continuation byte
	need := 0
	switch c := b[0]; {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c == 0xED:
		need, hi = 2, 0x9F
	case c >= 0xE1 && c <= 0xEF:
		need = 2
	case c == 0xF0:
		need, lo = 3, 0x90
	case c == 0xF4:
		need, hi = 3, 0x8F
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	default:
		return 1
	}
	n := 1
	for k := 0; k < need && n < len(b); k++ {
		x := b[n]
		if k == 0 && (x < lo || x > hi) || k > 0 && (x < 0x80 || x > 0xBF) {
			break
		}
		n++
	}
	return n
}
