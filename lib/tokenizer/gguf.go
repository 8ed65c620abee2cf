package tokenizer

// A tokenizer as llama.cpp's GGUF metadata describes it (tokenizer.ggml.*), read from
// llama.cpp's src/llama-vocab.cpp and gguf-py/gguf/constants.py.

import (
	"sort"
	"strings"

	"github.com/pkg/errors"
)

// llama.cpp token types (llama_token_type; the same numbers as SentencePiece's piece types).
const (
	GGUFTokenNormal      = 1
	GGUFTokenUnknown     = 2
	GGUFTokenControl     = 3
	GGUFTokenUserDefined = 4
	GGUFTokenUnused      = 5
	GGUFTokenByte        = 6
)

// GGUFVocab is the tokenizer part of a GGUF file.
type GGUFVocab struct {
	// Model is tokenizer.ggml.model: "llama" (SentencePiece-style BPE by piece score, "▁" for
	// spaces, byte fallback) or "gpt2" (byte-level BPE by merge rank).
	Model string
	// Pre is tokenizer.ggml.pre, the pre-tokenizer: "default" for "llama", "llama-bpe" for LLaMA-3.
	Pre    string
	Tokens []string  // id → piece (gpt2: bytes mapped to printable runes as GPT-2 does)
	Scores []float32 // id → score ("llama" only; nil otherwise)
	Types  []int32   // id → GGUFToken*
	Merges []string  // "gpt2" only: "left right" in rank order
	// Special ids, -1 when absent.
	BOS, EOS, UNK, PAD int
	AddBOS, AddEOS     bool
	// AddSpacePrefix is SentencePiece's add_dummy_prefix ("llama" only).
	AddSpacePrefix bool
	// ChatTemplate is tokenizer_config.json's chat_template ("" when none).
	ChatTemplate string
}

// GGUFVocabOf describes t for a GGUF file: SentencePiece BPE models (LLaMA-1/2, Mistral, Vicuna,
// TinyLlama), llama2.c tokenizer.bin files, LLaMA-3 tiktoken files and byte-level BPE
// tokenizer.json files (Qwen2 / Qwen2.5, Llama-3.x; pre-tokenizer qwen2 or llama-bpe), with the bos/eos,
// add_bos_token/add_eos_token and chat_template of a tokenizer_config.json when Load read one.
func GGUFVocabOf(t Tokenizer) (*GGUFVocab, error) {
	var v *GGUFVocab
	var err error
	switch u := Underlying(t).(type) {
	case *SentencePiece:
		v, err = u.ggufVocab()
	case *Llama2C:
		v = u.ggufVocab()
	case *Tiktoken:
		v = u.ggufVocab()
	case *HFBPE:
		v, err = u.ggufVocab()
	case *ChatGLM:
		return nil, errors.New("the ChatGLM-6B tokenizer has no llama.cpp equivalent")
	default:
		return nil, errors.Errorf("tokenizer %T cannot be described in GGUF", u)
	}
	if err != nil {
		return nil, err
	}
	v.AddBOS = v.BOS >= 0
	if c, ok := t.(*configured); ok {
		v.BOS, v.EOS, v.AddBOS, v.AddEOS, v.ChatTemplate = c.bos, c.eos, c.addBOS && c.bos >= 0, c.addEOS, c.chatTemplate
	}
	return v, nil
}

func (sp *SentencePiece) ggufVocab() (*GGUFVocab, error) {
	m := sp.m
	if m.modelType != spModelBPE {
		return nil, errors.New("SentencePiece unigram models are not supported in GGUF export (llama.cpp's \"llama\" tokenizer is BPE)")
	}
	if sp.normalizer != nil {
		return nil, errors.Errorf("SentencePiece normalizer %q is not applied by llama.cpp's \"llama\" tokenizer", m.normalizerName)
	}
	v := &GGUFVocab{Model: "llama", Pre: "default", BOS: sp.BOS(), EOS: sp.EOS(), UNK: sp.validID(m.unkID),
		PAD: sp.validID(m.padID), AddSpacePrefix: m.addDummyPrefix}
	for _, p := range m.pieces {
		v.Tokens = append(v.Tokens, p.piece)
		v.Scores = append(v.Scores, p.score)
		v.Types = append(v.Types, int32(p.typ))
	}
	return v, nil
}

// ggufVocab spells llama2.c's pieces as SentencePiece does: "▁" for spaces, "<s>"/"</s>" for its
// "\n<s>\n"/"\n</s>\n", byte tokens typed as such.
func (t *Llama2C) ggufVocab() *GGUFVocab {
	v := &GGUFVocab{Model: "llama", Pre: "default", BOS: llama2cBOS, EOS: llama2cEOS, UNK: llama2cUNK, PAD: -1,
		AddSpacePrefix: true}
	for id, piece := range t.vocab {
		typ := int32(GGUFTokenNormal)
		switch {
		case id == llama2cUNK:
			typ, piece = GGUFTokenUnknown, "<unk>"
		case id == llama2cBOS:
			typ, piece = GGUFTokenControl, "<s>"
		case id == llama2cEOS:
			typ, piece = GGUFTokenControl, "</s>"
		case id < llama2cByteBase+256:
			if _, ok := parseBytePiece(piece); ok {
				typ = GGUFTokenByte
			}
		}
		if typ == GGUFTokenNormal {
			piece = strings.ReplaceAll(piece, " ", "▁")
		}
		v.Tokens = append(v.Tokens, piece)
		v.Scores = append(v.Scores, t.scores[id])
		v.Types = append(v.Types, typ)
	}
	return v
}

// ggufVocab writes LLaMA-3's ranks as GPT-2-style byte-level BPE: tokens with bytes mapped to
// printable runes, the special tokens as control tokens, and merges rebuilt from the ranks as
// Hugging Face's tiktoken conversion does (and so as llama.cpp's reference LLaMA-3 file holds
// them): for each token in rank order, every split into two tokens, ordered by the ranks of the
// left then the right part.
func (t *Tiktoken) ggufVocab() *GGUFVocab {
	v := &GGUFVocab{Model: "gpt2", Pre: "llama-bpe", BOS: t.BOS(), EOS: t.EOS(), UNK: -1, PAD: -1}
	enc := byteEncoder()
	for id, tok := range t.tokens {
		typ := int32(GGUFTokenNormal)
		if id >= t.numRanks {
			typ = GGUFTokenControl
			v.Tokens = append(v.Tokens, tok)
		} else {
			v.Tokens = append(v.Tokens, encodeBytes(enc, tok))
		}
		v.Types = append(v.Types, typ)
	}
	type split struct{ left, right int }
	var local []split
	for id := range t.numRanks {
		tok := t.tokens[id]
		local = local[:0]
		for i := 1; i < len(tok); i++ {
			l, okL := t.ranks[tok[:i]]
			r, okR := t.ranks[tok[i:]]
			if okL && okR {
				local = append(local, split{l, r})
			}
		}
		sort.Slice(local, func(i, j int) bool {
			if local[i].left != local[j].left {
				return local[i].left < local[j].left
			}
			return local[i].right < local[j].right
		})
		for _, s := range local {
			v.Merges = append(v.Merges, v.Tokens[s.left]+" "+v.Tokens[s.right])
		}
	}
	return v
}

// byteEncoder is GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the
// others for the runes 256, 257, … in byte order.
func byteEncoder() [256]rune {
	var enc [256]rune
	next := rune(256)
	for b := range 256 {
		switch {
		case b >= '!' && b <= '~', b >= 0xA1 && b <= 0xAC, b >= 0xAE:
			enc[b] = rune(b)
		default:
			enc[b] = next
			next++
		}
	}
	return enc
}

func encodeBytes(enc [256]rune, s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteRune(enc[s[i]])
	}
	return b.String()
}

// FromGGUFVocab builds the tokenizer a GGUF file describes: "llama" (SentencePiece BPE by piece
// score, as LLaMA-1/2), "gpt2" with pre-tokenizer "llama-bpe" whose merges follow the token
// order (LLaMA-3: ids are ranks, special tokens after them), or "gpt2" with pre-tokenizer "qwen2"
// (Qwen2's byte-level BPE: NFC, digits one by one, merges by their order).
func FromGGUFVocab(v *GGUFVocab) (Tokenizer, error) {
	var tok Tokenizer
	var err error
	switch {
	case v.Model == "llama":
		tok, err = sentencePieceFromGGUF(v)
	case v.Model == "gpt2" && v.Pre == "llama-bpe":
		tok, err = tiktokenFromGGUF(v)
	case v.Model == "gpt2" && v.Pre == "qwen2":
		tok, err = hfBPEFromGGUF(v)
	default:
		return nil, errors.Errorf("GGUF tokenizer %q with pre-tokenizer %q is not supported (llama; gpt2 with llama-bpe or qwen2)", v.Model, v.Pre)
	}
	if err != nil {
		return nil, errors.WithMessage(err, "GGUF tokenizer")
	}
	if v.AddBOS == (v.BOS >= 0) && !v.AddEOS && v.BOS == tok.BOS() && v.EOS == tok.EOS() {
		return tok, nil
	}
	return &configured{Tokenizer: tok, bos: v.BOS, eos: v.EOS, addBOS: v.AddBOS, addEOS: v.AddEOS, chatTemplate: v.ChatTemplate}, nil
}

func sentencePieceFromGGUF(v *GGUFVocab) (*SentencePiece, error) {
	if len(v.Scores) != len(v.Tokens) || len(v.Types) != len(v.Tokens) {
		return nil, errors.Errorf("%d tokens need as many scores (%d) and types (%d)", len(v.Tokens), len(v.Scores), len(v.Types))
	}
	m := &spModel{modelType: spModelBPE, unkID: v.UNK, bosID: v.BOS, eosID: v.EOS, padID: v.PAD,
		unkSurface: " \u2047 ", addDummyPrefix: v.AddSpacePrefix, escapeWhitespaces: true, normalizerName: "identity"}
	for i, tok := range v.Tokens {
		typ := int(v.Types[i])
		if typ < GGUFTokenNormal || typ > GGUFTokenByte {
			return nil, errors.Errorf("token %d %q has type %d", i, tok, typ)
		}
		m.byteFallback = m.byteFallback || typ == GGUFTokenByte
		m.pieces = append(m.pieces, spPiece{piece: tok, score: v.Scores[i], typ: typ})
	}
	return newSentencePieceFromModel(m)
}

func tiktokenFromGGUF(v *GGUFVocab) (*Tiktoken, error) {
	dec := map[rune]byte{}
	for b, r := range byteEncoder() {
		dec[r] = byte(b)
	}
	t := &Tiktoken{ranks: map[string]int{}, special: map[string]int{}}
	for id, tok := range v.Tokens {
		typ := int32(GGUFTokenNormal)
		if id < len(v.Types) {
			typ = v.Types[id]
		}
		if typ != GGUFTokenNormal {
			if t.numRanks == 0 {
				t.numRanks = id
			}
			t.special[tok] = id
			t.tokens = append(t.tokens, tok)
			continue
		}
		if t.numRanks != 0 {
			return nil, errors.Errorf("normal token %d %q follows the special tokens: not LLaMA-3's layout", id, tok)
		}
		raw := make([]byte, 0, len(tok))
		for _, r := range tok {
			b, ok := dec[r]
			if !ok {
				return nil, errors.Errorf("token %d %q is not byte-level BPE", id, tok)
			}
			raw = append(raw, b)
		}
		t.ranks[string(raw)] = id
		t.tokens = append(t.tokens, string(raw))
	}
	if t.numRanks == 0 {
		t.numRanks = len(t.tokens)
	}
	for b := range 256 {
		if _, ok := t.ranks[string([]byte{byte(b)})]; !ok {
			return nil, errors.Errorf("byte 0x%02x has no token", b)
		}
	}
	for _, name := range []string{"<|begin_of_text|>", "<|end_of_text|>"} {
		if _, ok := t.special[name]; !ok {
			return nil, errors.Errorf("special token %s is missing: not LLaMA-3's vocabulary", name)
		}
	}
	return t, nil
}
