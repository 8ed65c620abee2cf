package tokenizer

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pkg/errors"
)

// spSpace is the character SentencePiece writes for a space ("▁", U+2581).
const spSpace = "\u2581"

// SentencePiece encodes and decodes with a SentencePiece `.model` file (LLaMA-1/2, Vicuna,
// TinyLlama): BPE merges by piece score with byte fallback, or unigram (Viterbi) segmentation,
// the model's normalizer (identity, or a precompiled NFKC-style character map), the dummy
// prefix and "▁" space escaping — the same ids as the C++ library.
type SentencePiece struct {
	path     string
	m        *spModel
	pieces   map[string]int // normal, user-defined and unused pieces (mergeable)
	reserved map[string]int // control, unknown and byte pieces
	byteID   [256]int       // id of <0xNN>, or -1
	idByte   map[int]byte
	// userDefined holds the user-defined symbols by first byte, longest first: they are
	// matched in the input before any merging and never merged with their neighbours.
	userDefined map[byte][]string
	normalizer  *charsmap // nil for the identity normalizer
	unigram     *unigramLattice
	hasUnused   bool                  // some pieces are of type UNUSED
	pairs       map[runePair]struct{} // adjacent characters inside pieces (BPE without UNUSED)
}

// LoadSentencePiece reads a SentencePiece `.model` file.
func LoadSentencePiece(path string) (*SentencePiece, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	sp, err := newSentencePiece(b)
	if err != nil {
		return nil, errors.Wrapf(err, "SentencePiece model %s", path)
	}
	sp.path = path
	return sp, nil
}

func newSentencePiece(b []byte) (*SentencePiece, error) {
	m, err := parseSPModel(b)
	if err != nil {
		return nil, errors.Wrap(err, "not a valid SentencePiece model protobuf")
	}
	return newSentencePieceFromModel(m)
}

// newSentencePieceFromModel builds the tokenizer of a decoded (or assembled) model.
func newSentencePieceFromModel(m *spModel) (*SentencePiece, error) {
	var err error
	sp := &SentencePiece{
		m: m, pieces: make(map[string]int, len(m.pieces)), reserved: map[string]int{},
		idByte: map[int]byte{}, userDefined: map[byte][]string{},
	}
	for i := range sp.byteID {
		sp.byteID[i] = -1
	}
	for id, p := range m.pieces {
		switch p.typ {
		case spNormal, spUserDefined, spUnused:
			if _, dup := sp.pieces[p.piece]; dup {
				return nil, errors.Errorf("piece %q (id %d) is defined twice", p.piece, id)
			}
			sp.pieces[p.piece] = id
			sp.hasUnused = sp.hasUnused || p.typ == spUnused
			if p.typ == spUserDefined && p.piece != "" {
				sp.userDefined[p.piece[0]] = append(sp.userDefined[p.piece[0]], p.piece)
			}
		case spByte:
			v, ok := parseBytePiece(p.piece)
			if !ok {
				return nil, errors.Errorf("byte piece %d is %q, want <0xNN>", id, p.piece)
			}
			sp.byteID[v] = id
			sp.idByte[id] = v
			sp.reserved[p.piece] = id
		default:
			sp.reserved[p.piece] = id
		}
	}
	for _, list := range sp.userDefined {
		sort.Slice(list, func(i, j int) bool { return len(list[i]) > len(list[j]) })
	}
	if m.unkID < 0 || m.unkID >= len(m.pieces) || m.pieces[m.unkID].typ != spUnknown {
		return nil, errors.Errorf("unk_id %d is not an <unk> piece", m.unkID)
	}
	if m.byteFallback {
		for v, id := range sp.byteID {
			if id < 0 {
				return nil, errors.Errorf("byte_fallback is set but piece <0x%02X> is missing", v)
			}
		}
	}
	if m.treatWhitespaceAsSuffix {
		return nil, errors.New("treat_whitespace_as_suffix models are not supported")
	}
	switch {
	case len(m.precompiledCharsmap) > 0:
		if sp.normalizer, err = newCharsmap(m.precompiledCharsmap); err != nil {
			return nil, errors.Wrapf(err, "normalizer %q", m.normalizerName)
		}
	case m.normalizerName == "" || m.normalizerName == "identity":
	default:
		return nil, errors.Errorf("normalizer %q has no precompiled character map; only identity and precompiled normalizers are supported", m.normalizerName)
	}
	switch m.modelType {
	case spModelBPE:
		if !sp.hasUnused {
			sp.pairs = mergeablePairs(sp.pieces)
		}
	case spModelUnigram:
		sp.unigram = newUnigramLattice(sp)
	default:
		return nil, errors.Errorf("model type %d is not supported (only BPE and unigram)", m.modelType)
	}
	return sp, nil
}

func parseBytePiece(s string) (byte, bool) {
	if len(s) != 6 || !strings.HasPrefix(s, "<0x") || s[5] != '>' {
		return 0, false
	}
	v, err := strconv.ParseUint(s[3:5], 16, 8)
	return byte(v), err == nil
}

// Encode returns the ids of text (no BOS/EOS). Text must be valid UTF-8.
func (sp *SentencePiece) Encode(text string) ([]int, error) {
	if err := checkUTF8(text); err != nil {
		return nil, err
	}
	norm := sp.normalize(text)
	if norm == "" {
		return []int{}, nil
	}
	var toks []spToken
	switch {
	case sp.unigram != nil:
		toks = sp.unigram.segment(norm)
	case sp.pairs != nil:
		toks = sp.bpeBySegments(norm)
	default:
		toks = sp.bpe(norm)
	}
	ids := make([]int, 0, len(toks))
	prevUnk := false
	for _, t := range toks {
		unk := t.id == sp.m.unkID
		switch {
		case unk && sp.m.byteFallback:
			for i := 0; i < len(t.piece); i++ {
				ids = append(ids, sp.byteID[t.piece[i]])
			}
		case unk && prevUnk:
			// SentencePiece merges a run of unknown pieces into one.
		default:
			ids = append(ids, t.id)
		}
		prevUnk = unk
	}
	return ids, nil
}

// spToken is a piece of the segmented text and its id.
type spToken struct {
	piece string
	id    int
}

// pieceToID is SentencePiece's PieceToId: reserved pieces first, then the vocabulary, else unk.
func (sp *SentencePiece) pieceToID(piece string) int {
	if id, ok := sp.reserved[piece]; ok {
		return id
	}
	if id, ok := sp.pieces[piece]; ok {
		return id
	}
	return sp.m.unkID
}

// bpe splits the normalized text into characters (user-defined symbols kept whole) and merges
// adjacent symbols by highest piece score.
func (sp *SentencePiece) bpe(norm string) []spToken {
	bounds := make([]int, 0, len(norm))
	var frozen []bool
	for i := 0; i < len(norm); {
		n, user := sp.matchSymbol(norm[i:])
		if user && frozen == nil {
			frozen = make([]bool, len(bounds), len(norm))
		}
		if frozen != nil {
			frozen = append(frozen, user)
		}
		i += n
		bounds = append(bounds, i)
	}
	// SentencePiece re-splits a merged piece of type UNUSED into the pair last suggested for it.
	var split map[string][2]string
	var suggested func(left, right string)
	if sp.hasUnused {
		split = map[string][2]string{}
		suggested = func(left, right string) {
			if id := sp.pieces[left+right]; sp.m.pieces[id].typ == spUnused {
				split[left+right] = [2]string{left, right}
			}
		}
	}
	ends := bpeMerge(norm, bounds, frozen, func(piece string, _ int) (float64, bool) {
		id, ok := sp.pieces[piece]
		if !ok {
			return 0, false
		}
		return float64(sp.m.pieces[id].score), true
	}, suggested)
	out := make([]spToken, 0, len(ends))
	var resegment func(piece string)
	resegment = func(piece string) {
		if pair, ok := split[piece]; ok && sp.m.pieces[sp.pieceToID(piece)].typ == spUnused {
			resegment(pair[0])
			resegment(pair[1])
			return
		}
		out = append(out, spToken{piece: piece, id: sp.pieceToID(piece)})
	}
	start := 0
	for _, e := range ends {
		resegment(norm[start:e])
		start = e
	}
	return out
}

// matchSymbol returns the byte length of the first symbol of s: the longest user-defined symbol
// that prefixes it, else one UTF-8 character.
func (sp *SentencePiece) matchSymbol(s string) (n int, userDefined bool) {
	for _, u := range sp.userDefined[s[0]] {
		if strings.HasPrefix(s, u) {
			return len(u), true
		}
	}
	_, n = utf8.DecodeRuneInString(s)
	return n, false
}

// normalize applies the model's normalizer as SentencePiece's Normalizer::Normalize does: the
// character map (if any) unit by unit, removal of extra spaces (leading, trailing, repeated),
// the dummy prefix and "▁" escaping. User-defined symbols pass through unchanged.
func (sp *SentencePiece) normalize(text string) string {
	removeWS := sp.m.removeExtraWhitespaces
	if removeWS {
		for text != "" {
			r, n := sp.normalizer.normalizePrefix(text, sp.userDefinedPrefix)
			if r != " " {
				break
			}
			text = text[n:]
		}
	}
	if text == "" {
		return ""
	}
	space := " "
	if sp.m.escapeWhitespaces {
		space = spSpace
	}
	var b strings.Builder
	b.Grow(len(text) + len(text)/4 + 4)
	if sp.m.addDummyPrefix {
		b.WriteString(space)
	}
	prevSpace := removeWS
	for text != "" {
		r, n := sp.normalizer.normalizePrefix(text, sp.userDefinedPrefix)
		text = text[n:]
		if prevSpace && removeWS {
			r = strings.TrimLeft(r, " ")
		}
		if r == "" {
			continue
		}
		if sp.m.escapeWhitespaces {
			b.WriteString(strings.ReplaceAll(r, " ", spSpace))
		} else {
			b.WriteString(r)
		}
		prevSpace = strings.HasSuffix(r, " ")
	}
	out := b.String()
	if removeWS {
		for strings.HasSuffix(out, space) {
			out = out[:len(out)-len(space)]
		}
	}
	return out
}

// userDefinedPrefix is the byte length of a user-defined symbol prefixing s, or 0: the
// normalizer leaves those symbols untouched.
func (sp *SentencePiece) userDefinedPrefix(s string) int {
	if n, user := sp.matchSymbol(s); user {
		return n
	}
	return 0
}

// Decode turns ids into text as HF's LlamaTokenizer.decode(ids, skip_special_tokens=True):
// control and unknown ids are skipped, "▁" becomes a space, byte pieces are reassembled into
// UTF-8 (each invalid byte becomes U+FFFD), and the leading dummy-prefix space is removed.
// Ids outside the vocabulary are skipped.
func (sp *SentencePiece) Decode(ids []int) string {
	var buf []byte
	first := true
	for _, id := range ids {
		if id < 0 || id >= len(sp.m.pieces) {
			continue
		}
		p := sp.m.pieces[id]
		switch p.typ {
		case spControl, spUnknown:
			continue
		case spByte:
			buf = append(buf, sp.idByte[id])
			first = false
			continue
		}
		piece := p.piece
		if first && sp.m.addDummyPrefix {
			piece = strings.TrimPrefix(piece, spSpace)
		}
		first = false
		if sp.m.escapeWhitespaces {
			piece = strings.ReplaceAll(piece, spSpace, " ")
		}
		buf = append(buf, piece...)
	}
	return validUTF8(buf)
}

// Piece is the vocabulary entry of id ("" when out of range).
func (sp *SentencePiece) Piece(id int) string {
	if id < 0 || id >= len(sp.m.pieces) {
		return ""
	}
	return sp.m.pieces[id].piece
}

// PieceID returns the id of a vocabulary entry.
func (sp *SentencePiece) PieceID(piece string) (int, bool) {
	if id, ok := sp.reserved[piece]; ok {
		return id, true
	}
	id, ok := sp.pieces[piece]
	return id, ok
}

// BOS is the model's bos_id (-1 if none).
func (sp *SentencePiece) BOS() int { return sp.validID(sp.m.bosID) }

// EOS is the model's eos_id (-1 if none).
func (sp *SentencePiece) EOS() int { return sp.validID(sp.m.eosID) }

func (sp *SentencePiece) validID(id int) int {
	if id < 0 || id >= len(sp.m.pieces) {
		return -1
	}
	return id
}

// VocabSize is the number of pieces.
func (sp *SentencePiece) VocabSize() int { return len(sp.m.pieces) }

// String describes the tokenizer.
func (sp *SentencePiece) String() string {
	kind := "BPE"
	if sp.unigram != nil {
		kind = "unigram"
	}
	return fmt.Sprintf("SentencePiece %s (%d pieces) %s", kind, len(sp.m.pieces), sp.path)
}
