package tokenizer

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"

	"github.com/pkg/errors"
	"golang.org/x/text/unicode/norm"
)

// HFBPE is a byte-level BPE tokenizer read from a Hugging Face tokenizer.json (Qwen2 / Qwen2.5,
// Llama-3.x): an optional NFC normalizer, the Split pre-tokenizer with the LLaMA-3 or Qwen2
// pattern, GPT-2's byte-to-character alphabet, merges applied by rank, and added tokens
// (<|endoftext|>, <|im_start|>, …) matched in the text before everything else, as the
// tokenizers library does. BOS is the special token the post-processor's template starts with
// (Llama-3's <|begin_of_text|>), none for Qwen2; tokenizer_config.json's settings apply on top
// (Load), and its chat_template is kept (ChatTemplate).
type HFBPE struct {
	path         string
	vocab        map[string]int // token in the byte-level alphabet → id
	merges       map[string]int // "left right" → rank
	pieces       []string       // id → token (byte-level alphabet) or added token content
	added        []addedToken   // longest first
	special      map[int]bool   // added tokens with special=true: skipped by Decode
	isAdded      map[int]bool
	nfc          bool
	maxDigits    int // \p{N}{1,maxDigits} in the Split pattern
	ignoreMerges bool
	bos          int
}

type addedToken struct {
	content string
	id      int
}

// Split patterns this tokenizer implements (Go's regexp has no lookahead; byteLevelPretokenize
// is a hand-written scanner of them), by their \p{N} repetition.
var splitPatterns = map[string]int{
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`: 3, // LLaMA-3
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`:      1, // Qwen2
}

// hfTokenizerJSON is the part of tokenizer.json this reader uses.
type hfTokenizerJSON struct {
	AddedTokens []struct {
		ID      int    `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
		LStrip  bool   `json:"lstrip"`
		RStrip  bool   `json:"rstrip"`
	} `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Model         struct {
		Type                    string            `json:"type"`
		Vocab                   map[string]int    `json:"vocab"`
		Merges                  []json.RawMessage `json:"merges"`
		ByteFallback            bool              `json:"byte_fallback"`
		IgnoreMerges            bool              `json:"ignore_merges"`
		ContinuingSubwordPrefix *string           `json:"continuing_subword_prefix"`
		EndOfWordSuffix         *string           `json:"end_of_word_suffix"`
	} `json:"model"`
}

// component is a normalizer / pre-tokenizer / post-processor object: its type and the parts this
// reader looks at.
type component struct {
	Type          string      `json:"type"`
	Normalizers   []component `json:"normalizers"`
	Pretokenizers []component `json:"pretokenizers"`
	Processors    []component `json:"processors"`
	Pattern       struct {
		Regex  *string `json:"Regex"`
		String *string `json:"String"`
	} `json:"pattern"`
	Behavior       string `json:"behavior"`
	Invert         bool   `json:"invert"`
	UseRegex       *bool  `json:"use_regex"`
	AddPrefixSpace bool   `json:"add_prefix_space"`
	Single         []struct {
		SpecialToken *struct {
			ID string `json:"id"`
		} `json:"SpecialToken"`
	} `json:"single"`
}

// flatten lists c, or the members of a Sequence.
func (c component) flatten() []component {
	switch {
	case c.Type == "Sequence" && c.Normalizers != nil:
		return c.Normalizers
	case c.Type == "Sequence" && c.Pretokenizers != nil:
		return c.Pretokenizers
	case c.Type == "Sequence" && c.Processors != nil:
		return c.Processors
	}
	return []component{c}
}

func parseComponent(raw json.RawMessage) (*component, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// parseHFBPE reads tokenizer.json bytes.
func parseHFBPE(b []byte) (*HFBPE, error) {
	var f hfTokenizerJSON
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, errors.Wrap(err, "invalid JSON")
	}
	if f.Model.Type != "BPE" {
		return nil, errors.Errorf("model type %q is not supported (only byte-level BPE)", f.Model.Type)
	}
	if f.Model.ByteFallback || (f.Model.ContinuingSubwordPrefix != nil && *f.Model.ContinuingSubwordPrefix != "") ||
		(f.Model.EndOfWordSuffix != nil && *f.Model.EndOfWordSuffix != "") {
		return nil, errors.New("BPE with byte_fallback, continuing_subword_prefix or end_of_word_suffix is not supported (only byte-level BPE)")
	}
	t := &HFBPE{vocab: f.Model.Vocab, merges: make(map[string]int, len(f.Model.Merges)), special: map[int]bool{},
		isAdded: map[int]bool{}, ignoreMerges: f.Model.IgnoreMerges, bos: -1}
	for rank, m := range f.Model.Merges {
		var s string
		if err := json.Unmarshal(m, &s); err != nil { // newer files: ["left", "right"]
			var pair []string
			if err := json.Unmarshal(m, &pair); err != nil || len(pair) != 2 {
				return nil, errors.Errorf("merge %d is %s, want \"left right\" or [left, right]", rank, m)
			}
			s = pair[0] + " " + pair[1]
		}
		if _, dup := t.merges[s]; !dup {
			t.merges[s] = rank
		}
	}
	size := 0
	for _, id := range t.vocab {
		size = max(size, id+1)
	}
	for _, a := range f.AddedTokens {
		size = max(size, a.ID+1)
	}
	// Ids are dense in real files (the vocabulary, then the added tokens). A larger id than the
	// number of entries leaves holes; refuse one that would make the id table larger than the file
	// could describe before allocating it.
	if entries := len(t.vocab) + len(f.AddedTokens); size > entries+len(b) {
		return nil, errors.Errorf("token id %d is out of range for %d vocabulary and added-token entries", size-1, entries)
	}
	t.pieces = make([]string, size)
	for tok, id := range t.vocab {
		if id < 0 {
			return nil, errors.Errorf("token %q has id %d", tok, id)
		}
		t.pieces[id] = tok
	}
	for _, a := range f.AddedTokens {
		if a.Content == "" {
			return nil, errors.Errorf("added token %d has no content", a.ID)
		}
		if a.ID < 0 {
			return nil, errors.Errorf("added token %q has id %d", a.Content, a.ID)
		}
		if a.LStrip || a.RStrip {
			return nil, errors.Errorf("added token %q: lstrip/rstrip are not supported", a.Content)
		}
		t.pieces[a.ID] = a.Content
		t.added = append(t.added, addedToken{a.Content, a.ID})
		t.isAdded[a.ID] = true
		t.special[a.ID] = a.Special
	}
	sort.SliceStable(t.added, func(i, j int) bool { return len(t.added[i].content) > len(t.added[j].content) })
	for b := range 256 {
		if _, ok := t.vocab[string(byteToRune[b])]; !ok {
			return nil, errors.Errorf("byte 0x%02x (%q) is not in the vocabulary: not a byte-level BPE", b, byteToRune[b])
		}
	}
	if err := t.readNormalizer(f.Normalizer); err != nil {
		return nil, err
	}
	if err := t.readPreTokenizer(f.PreTokenizer); err != nil {
		return nil, err
	}
	if err := t.readPostProcessor(f.PostProcessor); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *HFBPE) readNormalizer(raw json.RawMessage) error {
	c, err := parseComponent(raw)
	if err != nil || c == nil {
		return errors.Wrap(err, "normalizer")
	}
	for _, n := range c.flatten() {
		if n.Type != "NFC" {
			return errors.Errorf("normalizer %q is not supported (supported: NFC)", n.Type)
		}
		t.nfc = true
	}
	return nil
}

// readPreTokenizer accepts Split(pattern, Isolated) followed by ByteLevel(use_regex false), as the
// LLaMA-3 and Qwen2 files have.
func (t *HFBPE) readPreTokenizer(raw json.RawMessage) error {
	c, err := parseComponent(raw)
	if err != nil {
		return errors.Wrap(err, "pre_tokenizer")
	}
	var parts []component
	if c != nil {
		parts = c.flatten()
	}
	ok := len(parts) == 2 && parts[0].Type == "Split" && parts[0].Pattern.Regex != nil && parts[0].Behavior == "Isolated" &&
		!parts[0].Invert && parts[1].Type == "ByteLevel" && parts[1].UseRegex != nil && !*parts[1].UseRegex && !parts[1].AddPrefixSpace
	if ok {
		t.maxDigits, ok = splitPatterns[*parts[0].Pattern.Regex]
	}
	if !ok {
		return errors.Errorf("pre_tokenizer %s is not supported (supported: Split with the LLaMA-3 or Qwen2 pattern, then ByteLevel without its regex)", truncateForError(raw))
	}
	return nil
}

// readPostProcessor takes BOS from a TemplateProcessing whose single template starts with a
// special token; ByteLevel post-processing changes no ids.
func (t *HFBPE) readPostProcessor(raw json.RawMessage) error {
	c, err := parseComponent(raw)
	if err != nil || c == nil {
		return errors.Wrap(err, "post_processor")
	}
	for _, p := range c.flatten() {
		switch p.Type {
		case "ByteLevel":
		case "TemplateProcessing":
			if len(p.Single) > 0 && p.Single[0].SpecialToken != nil {
				id, ok := t.PieceID(p.Single[0].SpecialToken.ID)
				if !ok {
					return errors.Errorf("post_processor: special token %q is not in the vocabulary", p.Single[0].SpecialToken.ID)
				}
				t.bos = id
			}
		default:
			return errors.Errorf("post_processor %q is not supported (supported: ByteLevel, TemplateProcessing)", p.Type)
		}
	}
	return nil
}

// LoadHFBPE reads a tokenizer.json file.
func LoadHFBPE(path string) (*HFBPE, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	t, err := parseHFBPE(b)
	if err != nil {
		return nil, errors.Wrapf(err, "tokenizer.json %s", path)
	}
	t.path = path
	return t, nil
}

// looksLikeJSON reports whether b starts (after white space) with '{'.
func looksLikeJSON(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// Encode returns the ids of text (no BOS/EOS): added tokens where their content occurs, the rest
// normalized, pre-tokenized and byte-pair merged. Text must be valid UTF-8.
func (t *HFBPE) Encode(text string) ([]int, error) {
	if err := checkUTF8(text); err != nil {
		return nil, err
	}
	var ids []int
	for len(text) > 0 {
		at, tok := t.nextAdded(text)
		ids = t.appendText(ids, text[:at])
		if tok == nil {
			break
		}
		ids = append(ids, tok.id)
		text = text[at+len(tok.content):]
	}
	return ids, nil
}

// nextAdded finds the first added token in text (the longest among those at the earliest
// position, as the tokenizers library's leftmost-longest match): its offset and the token, or
// len(text) and nil.
func (t *HFBPE) nextAdded(text string) (int, *addedToken) {
	at, best := len(text), -1
	for i, a := range t.added { // longest first: a later one must start strictly earlier
		if k := strings.Index(text[:min(len(text), at+len(a.content)-1)], a.content); k >= 0 && k < at {
			at, best = k, i
		}
	}
	if best < 0 {
		return len(text), nil
	}
	return at, &t.added[best]
}

// appendText encodes a stretch of text without added tokens.
func (t *HFBPE) appendText(ids []int, text string) []int {
	if text == "" {
		return ids
	}
	if t.nfc {
		text = norm.NFC.String(text)
	}
	byteLevelPretokenize(text, t.maxDigits, func(piece string) {
		ids = t.appendPieceIDs(ids, toByteLevel(piece))
	})
	return ids
}

// appendPieceIDs byte-pair merges one pre-token (in the byte-level alphabet): the pair of lowest
// merge rank first, leftmost among equals.
func (t *HFBPE) appendPieceIDs(ids []int, piece string) []int {
	if t.ignoreMerges {
		if id, ok := t.vocab[piece]; ok {
			return append(ids, id)
		}
	}
	var bounds []int
	for i := range piece {
		if i > 0 {
			bounds = append(bounds, i)
		}
	}
	bounds = append(bounds, len(piece))
	ends := bpeMerge(piece, bounds, nil, func(p string, split int) (float64, bool) {
		r, ok := t.merges[p[:split]+" "+p[split:]]
		return -float64(r), ok
	}, nil)
	start := 0
	for _, e := range ends {
		ids = append(ids, t.vocab[piece[start:e]]) // every merge result and every byte is in the vocabulary
		start = e
	}
	return ids
}

// Decode turns ids back into text, skipping special added tokens and ids outside the vocabulary
// (HF's skip_special_tokens=True); invalid UTF-8 becomes U+FFFD.
func (t *HFBPE) Decode(ids []int) string {
	var buf []byte
	for _, id := range ids {
		if id < 0 || id >= len(t.pieces) || t.special[id] {
			continue
		}
		if t.isAdded[id] {
			buf = append(buf, t.pieces[id]...)
			continue
		}
		for _, r := range t.pieces[id] {
			if b, ok := runeToByte[r]; ok {
				buf = append(buf, b)
			}
		}
	}
	return lossyUTF8(buf)
}

// Piece is the vocabulary entry of id: the token in the byte-level alphabet, or the added
// token's content.
func (t *HFBPE) Piece(id int) string {
	if id < 0 || id >= len(t.pieces) {
		return ""
	}
	return t.pieces[id]
}

// PieceID is the id of a vocabulary entry or added token.
func (t *HFBPE) PieceID(piece string) (int, bool) {
	for _, a := range t.added {
		if a.content == piece {
			return a.id, true
		}
	}
	id, ok := t.vocab[piece]
	return id, ok
}

// BOS is the special token the post-processor prepends, -1 if none.
func (t *HFBPE) BOS() int { return t.bos }

// EOS is -1: tokenizer.json does not name one (tokenizer_config.json's eos_token does, Load).
func (t *HFBPE) EOS() int { return -1 }

// VocabSize is the number of ids (vocabulary and added tokens).
func (t *HFBPE) VocabSize() int { return len(t.pieces) }

func (t *HFBPE) String() string {
	return "tokenizer.json byte-level BPE " + t.path
}

// GPT-2's byte-to-character alphabet (byteEncoder, gguf.go) and its inverse.
var byteToRune, runeToByte = byteLevelAlphabet()

func byteLevelAlphabet() ([256]rune, map[rune]byte) {
	fwd := byteEncoder()
	back := make(map[rune]byte, 256)
	for b, r := range fwd {
		back[r] = byte(b)
	}
	return fwd, back
}

// toByteLevel spells s's bytes in the byte-level alphabet.
func toByteLevel(s string) string {
	var b strings.Builder
	b.Grow(2 * len(s))
	for i := 0; i < len(s); i++ {
		b.WriteRune(byteToRune[s[i]])
	}
	return b.String()
}
