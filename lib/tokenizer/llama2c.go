package tokenizer

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/pkg/errors"
)

// Llama2C encodes and decodes with a llama2.c tokenizer file (tokenizer.bin, tok512.bin):
// int32 max_token_length, then for each token a float32 score, an int32 byte length and the
// bytes. Pieces use a plain space; byte tokens are "<0xNN>" at id byte+3; BOS=1, EOS=2.
type Llama2C struct {
	path   string
	vocab  []string
	scores []float32
	ids    map[string]int // piece → lowest id with that piece
	pairs  map[runePair]struct{}
	maxLen int
}

// Token ids fixed by llama2.c.
const (
	llama2cUNK      = 0
	llama2cBOS      = 1
	llama2cEOS      = 2
	llama2cByteBase = 3
)

// LoadLlama2C reads a llama2.c tokenizer file. The vocabulary size is not stored in the file:
// all tokens up to the end are read.
func LoadLlama2C(path string) (*Llama2C, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	t, err := parseLlama2C(b)
	if err != nil {
		return nil, errors.Wrapf(err, "llama2.c tokenizer %s", path)
	}
	t.path = path
	return t, nil
}

func parseLlama2C(b []byte) (*Llama2C, error) {
	if len(b) < 4 {
		return nil, errors.New("file too short for the max_token_length header")
	}
	t := &Llama2C{maxLen: int(int32(binary.LittleEndian.Uint32(b))), ids: map[string]int{}}
	if t.maxLen <= 0 || t.maxLen > 1<<16 {
		return nil, errors.Errorf("max_token_length %d is implausible: not a llama2.c tokenizer file", t.maxLen)
	}
	for off := 4; off < len(b); {
		if off+8 > len(b) {
			return nil, errors.Errorf("token %d is truncated at byte %d", len(t.vocab), off)
		}
		score := math.Float32frombits(binary.LittleEndian.Uint32(b[off:]))
		n := int(int32(binary.LittleEndian.Uint32(b[off+4:])))
		off += 8
		if n < 0 || n > t.maxLen || off+n > len(b) {
			return nil, errors.Errorf("token %d has length %d (max_token_length %d, %d bytes left)", len(t.vocab), n, t.maxLen, len(b)-off)
		}
		piece := string(b[off : off+n])
		off += n
		if _, dup := t.ids[piece]; !dup {
			t.ids[piece] = len(t.vocab)
		}
		t.vocab = append(t.vocab, piece)
		t.scores = append(t.scores, score)
	}
	t.pairs = mergeablePairs(t.ids)
	if len(t.vocab) < llama2cByteBase+256 {
		return nil, errors.Errorf("only %d tokens: a llama2.c tokenizer has <unk>, <s>, </s> and 256 byte tokens first", len(t.vocab))
	}
	return t, nil
}

// Encode returns the ids of text (no BOS/EOS) as run.c's encode does: a dummy-prefix " " token
// unless the text is empty, one token per UTF-8 character (its bytes as byte tokens id=byte+3
// when the character is not in the vocabulary), then repeatedly merging the adjacent pair whose
// concatenated pieces form the highest-scoring token (leftmost on ties). The merging uses a
// priority queue instead of run.c's quadratic scan; the result is the same.
func (t *Llama2C) Encode(text string) ([]int, error) {
	if err := checkUTF8(text); err != nil {
		return nil, err
	}
	if text == "" {
		return []int{}, nil
	}
	var initial []int
	space, ok := t.ids[" "]
	if !ok {
		return nil, errors.Errorf("llama2.c tokenizer %s has no \" \" token for the dummy prefix", t.path)
	}
	initial = append(initial, space)
	for i := 0; i < len(text); {
		_, n := utf8.DecodeRuneInString(text[i:])
		if id, ok := t.ids[text[i:i+n]]; ok {
			initial = append(initial, id)
		} else {
			for k := i; k < i+n; k++ {
				initial = append(initial, int(text[k])+llama2cByteBase)
			}
		}
		i += n
	}
	// Merge segment by segment: two neighbouring tokens can only ever join if some vocabulary
	// entry holds the last character of the first next to the first character of the second, so
	// the merges of the segments between other neighbours are independent (and repeated
	// segments are merged once).
	cache := map[string][]int{}
	ids := make([]int, 0, len(initial))
	var key []byte
	start := 0
	for k := 1; k <= len(initial); k++ {
		if k < len(initial) && t.mayJoin(initial[k-1], initial[k]) {
			continue
		}
		seg := initial[start:k]
		key = key[:0]
		for _, id := range seg {
			key = binary.AppendUvarint(key, uint64(id))
		}
		merged, ok := cache[string(key)]
		if !ok {
			merged = t.merge(seg)
			cache[string(key)] = merged
		}
		ids = append(ids, merged...)
		start = k
	}
	return ids, nil
}

// mayJoin reports whether a merge could ever span the boundary between tokens a and b.
func (t *Llama2C) mayJoin(a, b int) bool {
	last, _ := utf8.DecodeLastRuneInString(t.vocab[a])
	first, _ := utf8.DecodeRuneInString(t.vocab[b])
	_, ok := t.pairs[runePair{last, first}]
	return ok
}

// merge runs run.c's merge loop over tokens: over the concatenation of their pieces, as run.c
// compares vocab strings (byte tokens take part as their "<0xNN>" text).
func (t *Llama2C) merge(initial []int) []int {
	var sb strings.Builder
	bounds := make([]int, len(initial))
	for i, id := range initial {
		sb.WriteString(t.vocab[id])
		bounds[i] = sb.Len()
	}
	s := sb.String()
	ends := bpeMerge(s, bounds, nil, func(piece string, _ int) (float64, bool) {
		id, ok := t.ids[piece]
		if !ok || t.scores[id] <= -1e10 { // run.c starts its search at best_score = -1e10
			return 0, false
		}
		return float64(t.scores[id]), true
	}, nil)
	// Map the spans back to ids; an unmerged span keeps its original id.
	ids := make([]int, len(ends))
	k, start := 0, 0
	for i, e := range ends {
		first := k
		for bounds[k] != e {
			k++
		}
		if k == first {
			ids[i] = initial[k]
		} else {
			ids[i] = t.ids[s[start:e]]
		}
		k++
		start = e
	}
	return ids
}

// Decode turns ids into text as run.c's decode does, for a whole sequence: <unk>, BOS and EOS are
// skipped, "<0xNN>" tokens become raw bytes, and the leading space of the first text token (the
// dummy prefix, which run.c drops after BOS) is removed whether or not a BOS precedes it, so that
// Decode(Encode(s)) == s as with the other tokenizers. Invalid UTF-8 bytes become U+FFFD; ids
// outside the vocabulary are skipped.
func (t *Llama2C) Decode(ids []int) string {
	var buf []byte
	first := true
	for _, id := range ids {
		if id < 0 || id >= len(t.vocab) || id == llama2cUNK || id == llama2cBOS || id == llama2cEOS {
			continue
		}
		piece := t.vocab[id]
		if first {
			piece = strings.TrimPrefix(piece, " ")
			first = false
		}
		if v, ok := parseBytePiece(piece); ok {
			buf = append(buf, v)
			continue
		}
		buf = append(buf, piece...)
	}
	return validUTF8(buf)
}

// Piece is the vocabulary entry of id ("" when out of range).
func (t *Llama2C) Piece(id int) string {
	if id < 0 || id >= len(t.vocab) {
		return ""
	}
	return t.vocab[id]
}

// PieceID returns the (lowest) id of a vocabulary entry.
func (t *Llama2C) PieceID(piece string) (int, bool) {
	id, ok := t.ids[piece]
	return id, ok
}

// BOS is 1, as in llama2.c.
func (t *Llama2C) BOS() int { return llama2cBOS }

// EOS is 2, as in llama2.c.
func (t *Llama2C) EOS() int { return llama2cEOS }

// VocabSize is the number of tokens in the file.
func (t *Llama2C) VocabSize() int { return len(t.vocab) }

// String describes the tokenizer.
func (t *Llama2C) String() string {
	return fmt.Sprintf("llama2.c tokenizer (%d tokens) %s", len(t.vocab), t.path)
}
