package tokenizer

// tokenizer.json byte-level BPE as llama.cpp's "gpt2" tokenizer metadata, and back.

import (
	"fmt"
	"sort"

	"github.com/pkg/errors"
)

// ggufPre names llama.cpp's pre-tokenizer that splits text as t does: "qwen2" (NFC, digits one
// by one) or "llama-bpe" (no normalizer, digits in threes; llama.cpp always looks a whole
// pre-token up in the vocabulary first, which is tokenizer.json's ignore_merges — the LLaMA-3
// files set it).
func (t *HFBPE) ggufPre() (string, error) {
	switch {
	case t.maxDigits == 1 && t.nfc:
		return "qwen2", nil
	case t.maxDigits == 3 && !t.nfc:
		return "llama-bpe", nil
	}
	return "", errors.Errorf("tokenizer.json pre-tokenizer (digits by %d, NFC %v) matches no llama.cpp pre-tokenizer (qwen2: by 1 with NFC; llama-bpe: by 3 without)", t.maxDigits, t.nfc)
}

// ggufVocab writes t as llama.cpp's "gpt2" tokenizer: the tokens in the byte-level alphabet (ids
// no entry names become unused "[PADn]" tokens), added tokens typed control (special) or
// user-defined, and the merges in rank order.
func (t *HFBPE) ggufVocab() (*GGUFVocab, error) {
	pre, err := t.ggufPre()
	if err != nil {
		return nil, err
	}
	v := &GGUFVocab{Model: "gpt2", Pre: pre, BOS: t.bos, EOS: -1, UNK: -1, PAD: -1}
	for id, piece := range t.pieces {
		typ := int32(GGUFTokenNormal)
		switch {
		case t.isAdded[id] && t.special[id]:
			typ = GGUFTokenControl
		case t.isAdded[id]:
			typ = GGUFTokenUserDefined
		case piece == "":
			typ, piece = GGUFTokenUnused, fmt.Sprintf("[PAD%d]", id)
		}
		v.Tokens = append(v.Tokens, piece)
		v.Types = append(v.Types, typ)
	}
	v.Merges = make([]string, 0, len(t.merges))
	for m := range t.merges {
		v.Merges = append(v.Merges, m)
	}
	sort.Slice(v.Merges, func(i, j int) bool { return t.merges[v.Merges[i]] < t.merges[v.Merges[j]] })
	return v, nil
}

// hfBPEFromGGUF builds the tokenizer of a "gpt2" vocabulary with pre-tokenizer "qwen2": normal
// tokens form the BPE vocabulary, control and user-defined tokens are added tokens matched in
// the text first (special for control), merges rank by their order.
func hfBPEFromGGUF(v *GGUFVocab) (*HFBPE, error) {
	if len(v.Types) != len(v.Tokens) {
		return nil, errors.Errorf("%d tokens, %d token types", len(v.Tokens), len(v.Types))
	}
	if len(v.Merges) == 0 {
		return nil, errors.New("tokenizer.ggml.merges is missing")
	}
	t := &HFBPE{vocab: map[string]int{}, merges: make(map[string]int, len(v.Merges)), pieces: make([]string, len(v.Tokens)),
		special: map[int]bool{}, isAdded: map[int]bool{}, nfc: true, maxDigits: 1, bos: -1, path: "GGUF metadata"}
	for id, tok := range v.Tokens {
		switch v.Types[id] {
		case GGUFTokenNormal:
			t.vocab[tok] = id
			t.pieces[id] = tok
		case GGUFTokenControl, GGUFTokenUserDefined:
			if tok == "" {
				return nil, errors.Errorf("added token %d is empty", id)
			}
			t.pieces[id] = tok
			t.added = append(t.added, addedToken{tok, id})
			t.isAdded[id] = true
			t.special[id] = v.Types[id] == GGUFTokenControl
		case GGUFTokenUnused:
		default:
			return nil, errors.Errorf("token %d %q has type %d (byte-level BPE has normal, control, user-defined and unused tokens)", id, tok, v.Types[id])
		}
	}
	sort.SliceStable(t.added, func(i, j int) bool { return len(t.added[i].content) > len(t.added[j].content) })
	for rank, m := range v.Merges {
		if _, dup := t.merges[m]; !dup {
			t.merges[m] = rank
		}
	}
	for b := range 256 {
		if _, ok := t.vocab[string(byteToRune[b])]; !ok {
			return nil, errors.Errorf("byte 0x%02x (%q) has no token: not a byte-level BPE", b, byteToRune[b])
		}
	}
	// Every merge must produce a vocabulary entry from two of them (appendPieceIDs relies on it).
	for m, rank := range t.merges {
		l, r, ok := cutMerge(m)
		_, okL := t.vocab[l]
		_, okR := t.vocab[r]
		_, okLR := t.vocab[l+r]
		if !ok || !okL || !okR || !okLR {
			return nil, errors.Errorf("merge %d %q does not join two tokens into a token", rank, m)
		}
	}
	return t, nil
}

// cutMerge splits "left right" at its one space.
func cutMerge(m string) (string, string, bool) {
	for i := 0; i < len(m); i++ {
		if m[i] == ' ' {
			return m[:i], m[i+1:], i > 0 && i < len(m)-1
		}
	}
	return "", "", false
}
