package data

import (
	"bytes"
	"os"
	"unicode/utf8"

	"github.com/pkg/errors"
)

// ReadText reads a plain UTF-8 text file and returns its content with every CRLF ("\r\n")
// turned into LF ("\n"). Lone CR bytes are kept. A file that is not valid UTF-8 is rejected
// with an error naming the file and the byte offset of the first invalid sequence.
func ReadText(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", errors.Wrapf(err, "reading text file %q", path)
	}
	return decodeText(path, raw)
}

// decodeText validates raw as UTF-8 and normalises CRLF line ends; path names the source in errors.
func decodeText(path string, raw []byte) (string, error) {
	if off := invalidUTF8Offset(raw); off >= 0 {
		return "", errors.Errorf("text file %q is not valid UTF-8: invalid byte 0x%02x at byte offset %d",
			path, raw[off], off)
	}
	if bytes.Contains(raw, []byte("\r\n")) {
		raw = bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
	}
	return string(raw), nil
}

// invalidUTF8Offset returns the byte offset of the first invalid UTF-8 sequence in b, or -1.
func invalidUTF8Offset(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for off := 0; off < len(b); {
		r, size := utf8.DecodeRune(b[off:])
		if r == utf8.RuneError && size <= 1 {
			return off
		}
		off += size
	}
	return -1
}
