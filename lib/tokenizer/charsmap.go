package tokenizer

import (
	"encoding/binary"
	"unicode/utf8"

	"github.com/pkg/errors"
)

// charsmap is SentencePiece's precompiled normalization map (NormalizerSpec.precompiled_charsmap,
// e.g. "nmt_nfkc"): a Darts double-array trie over input bytes whose values point into a blob
// of NUL-terminated replacement strings. Layout: uint32 trie size in bytes, the trie units
// (uint32 each), then the replacement blob.
type charsmap struct {
	units []uint32
	blob  []byte
}

func newCharsmap(b []byte) (*charsmap, error) {
	if len(b) < 4 {
		return nil, errors.New("precompiled charsmap is truncated")
	}
	size := int(binary.LittleEndian.Uint32(b))
	if size%4 != 0 || 4+size > len(b) || size == 0 {
		return nil, errors.Errorf("precompiled charsmap trie size %d does not fit its %d bytes", size, len(b))
	}
	units := make([]uint32, size/4)
	for i := range units {
		units[i] = binary.LittleEndian.Uint32(b[4+4*i:])
	}
	return &charsmap{units: units, blob: b[4+size:]}, nil
}

// longestPrefix returns the replacement of the longest key of the trie that prefixes s and that
// key's length (0 when none matches).
func (c *charsmap) longestPrefix(s string) (replacement string, n int) {
	node := uint32(0)
	unit := c.units[0]
	node ^= dartsOffset(unit)
	bestValue := -1
	for i := 0; i < len(s); i++ {
		node ^= uint32(s[i])
		if int(node) >= len(c.units) {
			break
		}
		unit = c.units[node]
		if unit&(1<<31|0xFF) != uint32(s[i]) { // label mismatch
			break
		}
		node ^= dartsOffset(unit)
		if (unit>>8)&1 == 1 && int(node) < len(c.units) { // has a leaf: a key ends here
			bestValue, n = int(c.units[node]&(1<<31-1)), i+1
		}
	}
	if bestValue < 0 || bestValue >= len(c.blob) {
		return "", 0
	}
	end := bestValue
	for end < len(c.blob) && c.blob[end] != 0 {
		end++
	}
	return string(c.blob[bestValue:end]), n
}

func dartsOffset(unit uint32) uint32 { return (unit >> 10) << ((unit & (1 << 9)) >> 6) }

// normalizePrefix returns the normalized form of the first unit of s and how many bytes it
// consumed: a user-defined symbol unchanged (userDefined gives its length, or 0), else the
// longest charsmap match, else one UTF-8 character unchanged (U+FFFD for an invalid byte) —
// SentencePiece's Normalizer::NormalizePrefix.
func (c *charsmap) normalizePrefix(s string, userDefined func(string) int) (string, int) {
	if userDefined != nil {
		if n := userDefined(s); n > 0 {
			return s[:n], n
		}
	}
	if c != nil {
		if r, n := c.longestPrefix(s); n > 0 {
			return r, n
		}
	}
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError && n <= 1 {
		return "\uFFFD", 1
	}
	return s[:n], n
}
