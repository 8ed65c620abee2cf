package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// llama3Pretokenize splits text as Meta's LLaMA-3 pre-tokenizer pattern does,
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// with a hand-written scanner (Go's regexp has no lookahead). At each position the alternatives
// are tried in order, each with the regex's greedy-then-backtrack semantics, and the first that
// matches wins. \s is Unicode White_Space, \p{L} and \p{N} Go's Unicode tables. It calls emit
// with each piece in order; the pieces concatenate back to text.
func llama3Pretokenize(text string, emit func(piece string)) { byteLevelPretokenize(text, 3, emit) }

// byteLevelPretokenize splits text as llama3Pretokenize does, with \p{N}{1,maxDigits} for the
// number alternative: 3 is LLaMA-3's pattern, 1 Qwen2's (one digit per pre-token).
func byteLevelPretokenize(text string, maxDigits int, emit func(piece string)) {
	for i := 0; i < len(text); {
		n := byteLevelMatch(text[i:], maxDigits)
		emit(text[i : i+n])
		i += n
	}
}

// byteLevelMatch returns the byte length of the pre-token at the start of s (len(s) > 0).
func byteLevelMatch(s string, maxDigits int) int {
	c, cn := utf8.DecodeRuneInString(s)
	// (?i:'s|'t|'re|'ve|'m|'ll|'d)
	if c == '\'' {
		if n := contractionLen(s[1:]); n > 0 {
			return 1 + n
		}
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if unicode.IsLetter(c) {
		return cn + runLen(s[cn:], unicode.IsLetter)
	}
	if c != '\r' && c != '\n' && !unicode.IsNumber(c) {
		if n := runLen(s[cn:], unicode.IsLetter); n > 0 {
			return cn + n
		}
	}
	// \p{N}{1,maxDigits}
	if unicode.IsNumber(c) {
		n := cn
		for k := 1; k < maxDigits && n < len(s); k++ {
			r, rn := utf8.DecodeRuneInString(s[n:])
			if !unicode.IsNumber(r) {
				break
			}
			n += rn
		}
		return n
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	start := 0
	if c == ' ' {
		start = 1
	}
	if n := runLen(s[start:], isLlama3Other); n > 0 {
		end := start + n
		return end + runLen(s[end:], func(r rune) bool { return r == '\r' || r == '\n' })
	}
	// The remaining alternatives all start with whitespace; c is whitespace here (every other
	// character matched above).
	ws := runLen(s, unicode.IsSpace)
	if ws == 0 {
		return cn // unreachable for valid input; keeps the scanner moving
	}
	// \s*[\r\n]+ : up to and including the last \r or \n of the whitespace run.
	for k := ws - 1; k >= 0; k-- {
		if s[k] == '\r' || s[k] == '\n' {
			return k + 1
		}
	}
	// \s+(?!\S) : the run, less its last character when a non-space follows.
	if ws == len(s) {
		return ws
	}
	_, lastN := utf8.DecodeLastRuneInString(s[:ws])
	if ws-lastN > 0 {
		return ws - lastN
	}
	// \s+
	return ws
}

// isLlama3Other is [^\s\p{L}\p{N}].
func isLlama3Other(r rune) bool {
	return !unicode.IsSpace(r) && !unicode.IsLetter(r) && !unicode.IsNumber(r)
}

// runLen is the byte length of the longest prefix of s whose characters all satisfy f.
func runLen(s string, f func(rune) bool) int {
	n := 0
	for n < len(s) {
		r, rn := utf8.DecodeRuneInString(s[n:])
		if !f(r) {
			break
		}
		n += rn
	}
	return n
}

// contractionLen matches s|t|re|ve|m|ll|d case-insensitively at the start of s (after the
// apostrophe), in the pattern's order, and returns the matched byte length or 0. Under Unicode
// case folding "ſ" (U+017F) also matches s, as it does for Python's regex module.
func contractionLen(s string) int {
	lower := func(i int) (rune, int) {
		if i >= len(s) {
			return 0, 0
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == 'ſ' {
			return 's', n
		}
		if r < utf8.RuneSelf {
			return unicode.ToLower(r), n
		}
		return r, n
	}
	r1, n1 := lower(0)
	switch r1 {
	case 's', 't', 'm', 'd':
		return n1
	case 'r', 'v':
		if r2, n2 := lower(n1); r2 == 'e' {
			return n1 + n2
		}
	case 'l':
		if r2, n2 := lower(n1); r2 == 'l' {
			return n1 + n2
		}
	}
	return 0
}
