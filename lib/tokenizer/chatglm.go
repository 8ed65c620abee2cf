package tokenizer

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pkg/errors"
)

// ChatGLM is ChatGLM-6B's tokenizer (THUDM's ChatGLMTokenizer over ice_text.model, a
// SentencePiece unigram model with an NFKC character map): newlines become "<n>", tabs
// "<|tab|>" and runs of 2–80 spaces "<|blank_N|>" before SentencePiece, and every
// SentencePiece id is shifted by num_image_tokens (20000 in THUDM's code, 0 in the released
// chatglm-6b tokenizer_config.json; ids below it are image tokens). Model inputs are the text ids
// followed by [gMASK] and <sop> (BOS); EOS is <eop>.
type ChatGLM struct {
	sp        *SentencePiece
	offset    int // num_image_tokens
	bos, eos  int // SentencePiece ids of <sop> and <eop>
	gmask     int // SentencePiece id of [gMASK]
	maxBlank  int
	blankToks map[string]int
}

// chatglmDefaultImageTokens is num_image_tokens's default in THUDM's tokenization_chatglm.py.
const chatglmDefaultImageTokens = 20000

func isChatGLMModel(sp *SentencePiece) bool {
	for _, p := range []string{"<n>", "<|tab|>", "<|blank_2|>", "[gMASK]", "<sop>", "<eop>"} {
		if _, ok := sp.PieceID(p); !ok {
			return false
		}
	}
	return true
}

func newChatGLM(sp *SentencePiece) *ChatGLM {
	c := &ChatGLM{sp: sp, offset: chatglmDefaultImageTokens, maxBlank: 80}
	c.bos, _ = sp.PieceID("<sop>")
	c.eos, _ = sp.PieceID("<eop>")
	c.gmask, _ = sp.PieceID("[gMASK]")
	return c
}

// LoadChatGLM reads ChatGLM-6B's ice_text.model with the given num_image_tokens offset (0 for the
// released chatglm-6b tokenizer; Load reads it from tokenizer_config.json).
func LoadChatGLM(path string, numImageTokens int) (*ChatGLM, error) {
	sp, err := LoadSentencePiece(path)
	if err != nil {
		return nil, err
	}
	if !isChatGLMModel(sp) {
		return nil, errors.Errorf("%s is not a ChatGLM tokenizer: it lacks <n>, <|tab|>, <|blank_N|>, [gMASK], <sop> or <eop>", path)
	}
	if numImageTokens < 0 {
		return nil, errors.Errorf("num_image_tokens %d is negative", numImageTokens)
	}
	c := newChatGLM(sp)
	c.offset = numImageTokens
	return c, nil
}

// configure applies tokenizer_config.json: num_image_tokens, bos_token, eos_token.
func (c *ChatGLM) configure(cfg hfTokenizerConfig) error {
	if cfg.NumImageTokens != nil {
		c.offset = *cfg.NumImageTokens
	}
	for _, s := range []struct {
		key   string
		piece *string
		dst   *int
	}{{"bos_token", cfg.BOS, &c.bos}, {"eos_token", cfg.EOS, &c.eos}} {
		if s.piece == nil {
			continue
		}
		id, ok := c.sp.PieceID(*s.piece)
		if !ok {
			return errors.Errorf("%s: %s %q is not in the ChatGLM vocabulary", cfg.source[s.key], s.key, *s.piece)
		}
		*s.dst = id
	}
	return nil
}

// preprocess is THUDM's SPTokenizer._preprocess: "\n" → "<n>", "\t" → "<|tab|>", then runs of
// spaces, longest first, → "<|blank_N|>" (N from 80 down to 2).
func (c *ChatGLM) preprocess(text string) string {
	text = strings.ReplaceAll(text, "\n", "<n>")
	text = strings.ReplaceAll(text, "\t", "<|tab|>")
	if !strings.Contains(text, "  ") {
		return text
	}
	var b strings.Builder
	for i := 0; i < len(text); {
		if text[i] != ' ' {
			b.WriteByte(text[i])
			i++
			continue
		}
		n := 0
		for i+n < len(text) && text[i+n] == ' ' {
			n++
		}
		i += n
		for n >= c.maxBlank {
			b.WriteString(blankToken(c.maxBlank))
			n -= c.maxBlank
		}
		switch {
		case n >= 2:
			b.WriteString(blankToken(n))
		case n == 1:
			b.WriteByte(' ')
		}
	}
	return b.String()
}

func blankToken(n int) string { return "<|blank_" + strconv.Itoa(n) + "|>" }

// postprocess undoes preprocess on decoded text.
func (c *ChatGLM) postprocess(text string) string {
	text = strings.ReplaceAll(text, "<n>", "\n")
	text = strings.ReplaceAll(text, "<|tab|>", "\t")
	for n := 2; n <= c.maxBlank; n++ {
		text = strings.ReplaceAll(text, blankToken(n), strings.Repeat(" ", n))
	}
	return text
}

// Encode returns the text ids (HF's tokenize + convert_tokens_to_ids: no [gMASK]/<sop>).
// Special-token strings in the text are encoded as text, not parsed.
func (c *ChatGLM) Encode(text string) ([]int, error) {
	if err := checkUTF8(text); err != nil {
		return nil, err
	}
	ids, err := c.sp.Encode(c.preprocess(text))
	if err != nil {
		return nil, err
	}
	for i := range ids {
		ids[i] += c.offset
	}
	return ids, nil
}

// EncodeInputs returns the model inputs: the text ids, then [gMASK] and <sop>, as THUDM's
// build_inputs_with_special_tokens.
func (c *ChatGLM) EncodeInputs(text string) ([]int, error) {
	ids, err := c.Encode(text)
	if err != nil {
		return nil, err
	}
	return append(ids, c.gmask+c.offset, c.bos+c.offset), nil
}

// Decode skips image, special and padding ids, decodes the rest with SentencePiece and turns
// "<n>", "<|tab|>" and "<|blank_N|>" back into whitespace.
func (c *ChatGLM) Decode(ids []int) string {
	spIDs := make([]int, 0, len(ids))
	for _, id := range ids {
		if id >= c.offset {
			spIDs = append(spIDs, id-c.offset)
		}
	}
	return c.postprocess(c.sp.Decode(spIDs))
}

// Piece is the vocabulary entry of id: "<image_N>" below num_image_tokens.
func (c *ChatGLM) Piece(id int) string {
	if id >= 0 && id < c.offset {
		return "<image_" + strconv.Itoa(id) + ">"
	}
	return c.sp.Piece(id - c.offset)
}

// PieceID returns the id of a vocabulary entry.
func (c *ChatGLM) PieceID(piece string) (int, bool) {
	id, ok := c.sp.PieceID(piece)
	return id + c.offset, ok
}

// BOS is <sop>, which starts the generated part.
func (c *ChatGLM) BOS() int { return c.bos + c.offset }

// EOS is <eop>.
func (c *ChatGLM) EOS() int { return c.eos + c.offset }

// GMASK is the id of [gMASK], which the model inputs carry before <sop>.
func (c *ChatGLM) GMASK() int { return c.gmask + c.offset }

// MASK is the id of [MASK].
func (c *ChatGLM) MASK() int {
	id, _ := c.sp.PieceID("[MASK]")
	return id + c.offset
}

// VocabSize is num_image_tokens plus the SentencePiece pieces (130344 for the released model,
// whose embedding matrix is padded to 130528).
func (c *ChatGLM) VocabSize() int { return c.offset + c.sp.VocabSize() }

// String describes the tokenizer.
func (c *ChatGLM) String() string {
	return fmt.Sprintf("ChatGLM tokenizer (%d image tokens + %s)", c.offset, c.sp)
}
