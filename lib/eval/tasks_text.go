package eval

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Python string semantics that lm-eval's task code relies on.

// pyIsSpace is Python's str.isspace for one code point: Go's unicode.IsSpace plus the ASCII
// separators U+001C..U+001F, which Python also treats as whitespace.
func pyIsSpace(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) }

// pyStrip is Python's str.strip() without arguments.
func pyStrip(s string) string { return strings.TrimFunc(s, pyIsSpace) }

// pyCapitalize is Python 3's str.capitalize(): the first character in title case and all the
// others in lower case ("the LADY" → "The lady"). Go's simple case mappings differ from Python's
// full ones only for a handful of non-ASCII letters (e.g. "ß", "İ").
func pyCapitalize(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToTitle(r)) + strings.ToLower(s[n:])
}

// bracketTag matches lm-eval HellaSwag's "\[.*?\]": the shortest "[...]" on one line.
var bracketTag = regexp.MustCompile(`\[.*?\]`)

// hellaswagPreprocess is lm-eval's HellaSwag.preprocess: strip, turn " [title]" into ". ", delete
// every remaining bracket tag, then replace double spaces by single ones (one pass).
func hellaswagPreprocess(text string) string {
	text = pyStrip(text)
	text = strings.ReplaceAll(text, " [title]", ". ")
	text = bracketTag.ReplaceAllLiteralString(text, "")
	return strings.ReplaceAll(text, "  ", " ")
}
