package tokenizer

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"

	"github.com/pkg/errors"
)

// Tiktoken encodes and decodes with Meta's LLaMA-3 tokenizer.model (tiktoken format: one
// "base64-token rank" per line, 128000 ranks) plus the 256 special tokens that Meta's
// tokenizer.py defines in code (ids 128000–128255). Text is split by the LLaMA-3 pre-tokenizer
// and each piece is byte-pair merged by rank. Special-token strings in the text are encoded as
// ordinary text, as Meta's encode does by default. BOS=<|begin_of_text|> (128000),
// EOS=<|end_of_text|> (128001), as the HF base models; instruct models end turns with <|eot_id|>
// (128009), which a tokenizer_config.json can name as eos_token.
type Tiktoken struct {
	path     string
	ranks    map[string]int // token bytes → rank (= id)
	tokens   []string       // id → token bytes, for ranks and special tokens
	special  map[string]int
	numRanks int
}

// llama3NumSpecial is the number of special tokens Meta appends after the ranks.
const llama3NumSpecial = 256

// llama3SpecialTokens returns the special token names in id order, as Meta's llama3
// tokenizer.py lists them: 10 named or reserved tokens, then reserved tokens 5…250.
func llama3SpecialTokens() []string {
	names := []string{
		"<|begin_of_text|>", "<|end_of_text|>",
		"<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
		"<|reserved_special_token_2|>", "<|reserved_special_token_3|>",
		"<|start_header_id|>", "<|end_header_id|>",
		"<|reserved_special_token_4|>", "<|eot_id|>",
	}
	for i := 5; len(names) < llama3NumSpecial; i++ {
		names = append(names, "<|reserved_special_token_"+strconv.Itoa(i)+"|>")
	}
	return names
}

// LoadTiktoken reads a LLaMA-3 tiktoken tokenizer.model file.
func LoadTiktoken(path string) (*Tiktoken, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	t, err := parseTiktoken(b)
	if err != nil {
		return nil, errors.Wrapf(err, "tiktoken tokenizer %s", path)
	}
	t.path = path
	return t, nil
}

func parseTiktoken(b []byte) (*Tiktoken, error) {
	t := &Tiktoken{ranks: map[string]int{}, special: map[string]int{}}
	for lineNo, line := range bytes.Split(b, []byte{'\n'}) {
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			continue
		}
		fields := bytes.Fields(line)
		if len(fields) != 2 {
			return nil, errors.Errorf("line %d: want \"base64-token rank\", got %q", lineNo+1, truncateForError(line))
		}
		tok, err := base64.StdEncoding.DecodeString(string(fields[0]))
		if err != nil {
			return nil, errors.Wrapf(err, "line %d: bad base64 token", lineNo+1)
		}
		rank, err := strconv.Atoi(string(fields[1]))
		if err != nil || rank < 0 {
			return nil, errors.Errorf("line %d: bad rank %q", lineNo+1, fields[1])
		}
		if rank != len(t.tokens) {
			return nil, errors.Errorf("line %d: rank %d out of order (want %d)", lineNo+1, rank, len(t.tokens))
		}
		if _, dup := t.ranks[string(tok)]; dup {
			return nil, errors.Errorf("line %d: token %q listed twice", lineNo+1, tok)
		}
		t.ranks[string(tok)] = rank
		t.tokens = append(t.tokens, string(tok))
	}
	if len(t.tokens) == 0 {
		return nil, errors.New("no ranks in the file")
	}
	for b := 0; b < 256; b++ {
		if _, ok := t.ranks[string([]byte{byte(b)})]; !ok {
			return nil, errors.Errorf("byte 0x%02x has no rank: every single byte must be a token", b)
		}
	}
	t.numRanks = len(t.tokens)
	for _, name := range llama3SpecialTokens() {
		t.special[name] = len(t.tokens)
		t.tokens = append(t.tokens, name)
	}
	return t, nil
}

func truncateForError(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// Encode returns the ids of text (no BOS/EOS). Text must be valid UTF-8.
func (t *Tiktoken) Encode(text string) ([]int, error) {
	if err := checkUTF8(text); err != nil {
		return nil, err
	}
	ids := make([]int, 0, len(text)/3+1)
	llama3Pretokenize(text, func(piece string) {
		ids = t.appendPieceIDs(ids, piece)
	})
	return ids, nil
}

// appendPieceIDs byte-pair merges one pre-token: lowest rank first, leftmost among equals; a
// pre-token that is itself a token is kept whole.
func (t *Tiktoken) appendPieceIDs(ids []int, piece string) []int {
	if id, ok := t.ranks[piece]; ok {
		return append(ids, id)
	}
	bounds := make([]int, len(piece))
	for i := range bounds {
		bounds[i] = i + 1
	}
	ends := bpeMerge(piece, bounds, nil, func(p string, _ int) (float64, bool) {
		r, ok := t.ranks[p]
		return -float64(r), ok
	}, nil)
	start := 0
	for _, e := range ends {
		ids = append(ids, t.ranks[piece[start:e]])
		start = e
	}
	return ids
}

// Decode concatenates the tokens' bytes, skipping special tokens (HF's skip_special_tokens=True)
// and ids outside the vocabulary; invalid UTF-8 becomes U+FFFD as in tiktoken and HF (one per
// maximal invalid subsequence).
func (t *Tiktoken) Decode(ids []int) string {
	var buf []byte
	for _, id := range ids {
		if id < 0 || id >= t.numRanks {
			continue
		}
		buf = append(buf, t.tokens[id]...)
	}
	return lossyUTF8(buf)
}

// Piece is the token of id: its bytes (shown as a string) or the special token's name.
func (t *Tiktoken) Piece(id int) string {
	if id < 0 || id >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// PieceID returns the id of a token given by its bytes or special-token name.
func (t *Tiktoken) PieceID(piece string) (int, bool) {
	if id, ok := t.special[piece]; ok {
		return id, true
	}
	id, ok := t.ranks[piece]
	return id, ok
}

// BOS is <|begin_of_text|>.
func (t *Tiktoken) BOS() int { return t.special["<|begin_of_text|>"] }

// EOS is <|end_of_text|>.
func (t *Tiktoken) EOS() int { return t.special["<|end_of_text|>"] }

// VocabSize is the number of ranks plus the 256 special tokens (128256 for LLaMA-3).
func (t *Tiktoken) VocabSize() int { return len(t.tokens) }

// String describes the tokenizer.
func (t *Tiktoken) String() string {
	return fmt.Sprintf("LLaMA-3 tiktoken (%d ranks + %d special) %s", t.numRanks, llama3NumSpecial, t.path)
}
