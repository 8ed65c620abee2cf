package tokenizer

import (
	"math"
	"unicode/utf8"
)

// unigramLattice segments normalized text with a SentencePiece unigram model: the Viterbi path
// of highest total piece score, as SentencePiece's Model::EncodeOptimized computes it (float32
// path scores, candidate sums in float64 exactly as the C++ does, which decides near-ties on long
// inputs; user-defined pieces scored length·max_score−0.1; an unknown character scored
// min_score−10 and taken one character at a time).
type unigramLattice struct {
	sp         *SentencePiece
	trie       *byteTrie // normal, user-defined and unused pieces
	minScore   float32
	maxScore   float32
	unkPenalty float32
}

func newUnigramLattice(sp *SentencePiece) *unigramLattice {
	u := &unigramLattice{sp: sp, minScore: math.MaxFloat32, maxScore: 0x1p-126 /* C's FLT_MIN, as SentencePiece starts */, unkPenalty: 10}
	for _, p := range sp.m.pieces {
		if p.typ == spNormal {
			u.minScore = min(u.minScore, p.score)
			u.maxScore = max(u.maxScore, p.score)
		}
	}
	u.trie = newByteTrie(sp.pieces)
	return u
}

type unigramNode struct {
	id       int
	score    float32
	startsAt int
}

// segment returns the pieces of the best segmentation with their ids (the unknown id for a
// character no piece covers).
func (u *unigramLattice) segment(norm string) []spToken {
	size := len(norm)
	best := make([]unigramNode, size+1)
	for i := range best {
		best[i].startsAt = -1
	}
	unkScore := u.minScore - u.unkPenalty
	for start := 0; start < size; {
		here := best[start].score
		_, charLen := utf8.DecodeRuneInString(norm[start:])
		hasSingle := false
		u.trie.prefixes(norm[start:], func(id, length int) {
			p := u.sp.m.pieces[id]
			if p.typ == spUnused {
				return
			}
			// As in SentencePiece's C++: the piece score is promoted to double (the user-defined
			// branch makes it so), the sum is compared in double and stored as float.
			var score float64
			if p.typ == spUserDefined {
				score = float64(float32(length)*u.maxScore) - 0.1
			} else {
				score = float64(p.score)
			}
			cand := score + float64(here)
			t := &best[start+length]
			if t.startsAt == -1 || cand > float64(t.score) {
				*t = unigramNode{id: id, score: float32(cand), startsAt: start}
			}
			if length == charLen {
				hasSingle = true
			}
		})
		if !hasSingle {
			t := &best[start+charLen]
			cand := unkScore + here
			if t.startsAt == -1 || cand > t.score {
				*t = unigramNode{id: u.sp.m.unkID, score: cand, startsAt: start}
			}
		}
		start += charLen
	}
	var rev []spToken
	for end := size; end > 0; end = best[end].startsAt {
		rev = append(rev, spToken{piece: norm[best[end].startsAt:end], id: best[end].id})
	}
	out := make([]spToken, len(rev))
	for i, p := range rev {
		out[len(rev)-1-i] = p
	}
	return out
}
