package tokenizer

import "unicode/utf8"

// runePair is two adjacent characters of a piece.
type runePair [2]rune

// mergeablePairs lists every pair of adjacent characters inside a mergeable piece. BPE can only
// ever join two neighbouring characters of the text if some piece contains them side by side, so
// the text splits, between any other two characters, into segments that merge independently.
func mergeablePairs(pieces map[string]int) map[runePair]struct{} {
	pairs := make(map[runePair]struct{})
	for p := range pieces {
		prev := rune(-1)
		for _, r := range p {
			if prev >= 0 {
				pairs[runePair{prev, r}] = struct{}{}
			}
			prev = r
		}
	}
	return pairs
}

// bpeBySegments gives the same tokens as bpe(norm) but merges each independent segment (see
// mergeablePairs; user-defined symbols are segments of their own) separately and once per
// distinct segment, which makes long texts fast: a word seen before costs a map lookup. It is
// exact because merges never cross a segment boundary and the merge order inside a segment does
// not depend on the rest of the text. Models with UNUSED pieces do not use it (their re-split
// depends on suggestions across the whole text).
func (sp *SentencePiece) bpeBySegments(norm string) []spToken {
	cache := map[string][]spToken{}
	out := make([]spToken, 0, len(norm)/3+1)
	flush := func(seg string) {
		toks, ok := cache[seg]
		if !ok {
			toks = sp.bpe(seg)
			cache[seg] = toks
		}
		out = append(out, toks...)
	}
	start := 0
	prev, prevUser := rune(-1), false
	for i := 0; i < len(norm); {
		n, user := sp.matchSymbol(norm[i:])
		r, _ := utf8.DecodeRuneInString(norm[i:])
		if i > start {
			if _, ok := sp.pairs[runePair{prev, r}]; user || prevUser || !ok {
				flush(norm[start:i])
				start = i
			}
		}
		prev, prevUser = r, user
		i += n
	}
	if start < len(norm) {
		flush(norm[start:])
	}
	return out
}
