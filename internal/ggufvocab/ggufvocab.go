// Package ggufvocab reads the tokenizer stored in a GGUF file's metadata (llama.cpp's vocab-only
// models/ggml-vocab-*.gguf) and writes a byte-level BPE vocabulary as a Hugging Face
// tokenizer.json. Tests use it to rebuild the Qwen2 and LLaMA-3 tokenizers from llama.cpp's
// reference files (scripts/tokenizer_json_from_gguf.go is its command line). It reads only the
// metadata, never tensors.
package ggufvocab

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"os"

	"github.com/pkg/errors"
)

// Vocab is the tokenizer metadata of a GGUF file (tokenizer.ggml.*).
type Vocab struct {
	Model, Pre     string    // tokenizer.ggml.model ("gpt2", "llama"), .pre ("qwen2", "llama-bpe")
	Tokens         []string  // id → token (byte-level alphabet for "gpt2")
	Types          []int32   // id → 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
	Scores         []float32 // id → score ("llama" SentencePiece vocabularies)
	Merges         []string  // "a b", by rank
	BOS, EOS, UNK  int       // -1 when absent
	AddSpacePrefix bool
	ChatTemplate   string
}

// Token types of tokenizer.ggml.token_type.
const (
	TypeNormal      = 1
	TypeControl     = 3
	TypeUserDefined = 4
)

// Read reads the tokenizer metadata of the GGUF file at path.
func Read(path string) (*Vocab, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errors.Wrap(err, "gguf vocab")
	}
	defer f.Close()
	r := &reader{r: bufio.NewReaderSize(f, 1<<20)}
	v := &Vocab{BOS: -1, EOS: -1, UNK: -1, AddSpacePrefix: true}
	if magic := r.u32(); r.err == nil && magic != 0x46554747 { // "GGUF" little-endian
		return nil, errors.Errorf("%s: not a GGUF file", path)
	}
	if ver := r.u32(); r.err == nil && ver < 2 {
		return nil, errors.Errorf("%s: GGUF version %d is not supported", path, ver)
	}
	r.u64() // tensor count
	nKV := r.u64()
	for i := uint64(0); i < nKV && r.err == nil; i++ {
		key := r.str()
		val := r.value(r.u32())
		switch key {
		case "tokenizer.ggml.model":
			v.Model, _ = val.(string)
		case "tokenizer.ggml.pre":
			v.Pre, _ = val.(string)
		case "tokenizer.ggml.tokens":
			v.Tokens = strings(val)
		case "tokenizer.ggml.merges":
			v.Merges = strings(val)
		case "tokenizer.ggml.token_type":
			for _, t := range asSlice(val) {
				n, _ := t.(int64)
				v.Types = append(v.Types, int32(n))
			}
		case "tokenizer.ggml.scores":
			for _, x := range asSlice(val) {
				f, _ := x.(float64)
				v.Scores = append(v.Scores, float32(f))
			}
		case "tokenizer.ggml.bos_token_id":
			v.BOS = asInt(val)
		case "tokenizer.ggml.eos_token_id":
			v.EOS = asInt(val)
		case "tokenizer.ggml.unknown_token_id":
			v.UNK = asInt(val)
		case "tokenizer.ggml.add_space_prefix":
			v.AddSpacePrefix, _ = val.(bool)
		case "tokenizer.chat_template":
			v.ChatTemplate, _ = val.(string)
		}
	}
	if r.err != nil {
		return nil, errors.Wrapf(r.err, "%s: reading GGUF metadata", path)
	}
	if len(v.Tokens) == 0 || len(v.Types) != len(v.Tokens) {
		return nil, errors.Errorf("%s: %d tokens, %d token types", path, len(v.Tokens), len(v.Types))
	}
	return v, nil
}

// reader decodes GGUF's little-endian values, keeping the first error.
type reader struct {
	r   io.Reader
	err error
}

func (r *reader) read(n int) []byte {
	b := make([]byte, n)
	if r.err == nil {
		_, r.err = io.ReadFull(r.r, b)
	}
	return b
}
func (r *reader) u32() uint32 { return binary.LittleEndian.Uint32(r.read(4)) }
func (r *reader) u64() uint64 { return binary.LittleEndian.Uint64(r.read(8)) }
func (r *reader) str() string {
	n := r.u64()
	if n > 1<<30 {
		r.err = errors.Errorf("string of %d bytes", n)
		return ""
	}
	return string(r.read(int(n)))
}

// value reads one value of GGUF type t: integers as int64, floats as float64, bool, string, or a
// []any for arrays.
func (r *reader) value(t uint32) any {
	switch t {
	case 0, 1: // u8, i8
		b := r.read(1)[0]
		if t == 1 {
			return int64(int8(b))
		}
		return int64(b)
	case 2, 3: // u16, i16
		v := binary.LittleEndian.Uint16(r.read(2))
		if t == 3 {
			return int64(int16(v))
		}
		return int64(v)
	case 4, 5: // u32, i32
		v := r.u32()
		if t == 5 {
			return int64(int32(v))
		}
		return int64(v)
	case 6:
		return float64(math.Float32frombits(r.u32()))
	case 7:
		return r.read(1)[0] != 0
	case 8:
		return r.str()
	case 9:
		et, n := r.u32(), r.u64()
		if n > 1<<26 {
			r.err = errors.Errorf("array of %d values", n)
			return nil
		}
		out := make([]any, 0, n)
		for i := uint64(0); i < n && r.err == nil; i++ {
			out = append(out, r.value(et))
		}
		return out
	case 10, 11:
		return int64(r.u64())
	case 12:
		return math.Float64frombits(r.u64())
	}
	if r.err == nil {
		r.err = errors.Errorf("unknown GGUF value type %d", t)
	}
	return nil
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func strings(v any) []string {
	var out []string
	for _, s := range asSlice(v) {
		str, _ := s.(string)
		out = append(out, str)
	}
	return out
}

func asInt(v any) int {
	n, ok := v.(int64)
	if !ok {
		return -1
	}
	return int(n)
}

// Pre-tokenizer patterns of the byte-level BPE tokenizers, as their tokenizer.json files state
// them (Split, behavior Isolated).
var prePatterns = map[string]string{
	"llama-bpe": `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
	"qwen2":     `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
}

// TokenizerJSON renders a "gpt2" (byte-level BPE) vocabulary as a Hugging Face tokenizer.json
// with the normalizer, pre-tokenizer, post-processor and decoder of the original model's file:
// Qwen2's (NFC, its Split pattern, no BOS) or LLaMA-3's (no normalizer, its Split pattern,
// <|begin_of_text|> prepended, ignore_merges). Normal tokens form the BPE vocabulary; control
// and user-defined tokens become added tokens (special for control); unused padding ids are left
// out, as Hugging Face's files do.
func (v *Vocab) TokenizerJSON() ([]byte, error) {
	pattern, ok := prePatterns[v.Pre]
	if v.Model != "gpt2" || !ok {
		return nil, errors.Errorf("tokenizer %q with pre-tokenizer %q: only byte-level BPE (gpt2) with pre llama-bpe or qwen2 is supported", v.Model, v.Pre)
	}
	vocab := map[string]int{}
	var added []map[string]any
	for id, tok := range v.Tokens {
		switch v.Types[id] {
		case TypeNormal:
			vocab[tok] = id
		case TypeControl, TypeUserDefined:
			added = append(added, map[string]any{"id": id, "content": tok, "single_word": false, "lstrip": false,
				"rstrip": false, "normalized": v.Types[id] == TypeUserDefined, "special": v.Types[id] == TypeControl})
		}
	}
	byteLevel := map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}
	out := map[string]any{
		"version": "1.0", "truncation": nil, "padding": nil, "added_tokens": added,
		"normalizer": nil,
		"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": pattern}, "behavior": "Isolated", "invert": false},
			byteLevel,
		}},
		"post_processor": byteLevel,
		"decoder":        byteLevel,
	}
	model := map[string]any{"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": nil,
		"end_of_word_suffix": nil, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
		"vocab": vocab, "merges": v.Merges}
	switch v.Pre {
	case "qwen2":
		out["normalizer"] = map[string]any{"type": "NFC"}
	case "llama-bpe":
		model["ignore_merges"] = true
		if v.BOS < 0 {
			return nil, errors.New("llama-bpe vocabulary without bos_token_id")
		}
		bos := v.Tokens[v.BOS]
		out["post_processor"] = map[string]any{"type": "TemplateProcessing",
			"single": []any{map[string]any{"SpecialToken": map[string]any{"id": bos, "type_id": 0}},
				map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
			"pair": []any{map[string]any{"SpecialToken": map[string]any{"id": bos, "type_id": 0}},
				map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}},
				map[string]any{"SpecialToken": map[string]any{"id": bos, "type_id": 1}},
				map[string]any{"Sequence": map[string]any{"id": "B", "type_id": 1}}},
			"special_tokens": map[string]any{bos: map[string]any{"id": bos, "ids": []int{v.BOS}, "tokens": []string{bos}}}}
	}
	out["model"] = model
	return json.Marshal(out)
}

// TokenizerConfigJSON renders the tokenizer_config.json fields the vocabulary states: bos_token
// and eos_token (null when absent; Qwen2 has no BOS) and the chat template.
func (v *Vocab) TokenizerConfigJSON() ([]byte, error) {
	name := func(id int) any {
		if id < 0 || id >= len(v.Tokens) {
			return nil
		}
		return v.Tokens[id]
	}
	cfg := map[string]any{"bos_token": name(v.BOS), "eos_token": name(v.EOS)}
	if v.Pre == "qwen2" {
		cfg["bos_token"] = nil // Qwen2 has no BOS (its files say null; the GGUF reuses <|endoftext|>)
	}
	if v.ChatTemplate != "" {
		cfg["chat_template"] = v.ChatTemplate
	}
	return json.MarshalIndent(cfg, "", "  ")
}
