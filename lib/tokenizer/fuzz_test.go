package tokenizer

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/internal/fuzzcheck"
	"github.com/llmpruner/llmpruner/internal/ggufvocab"
	"google.golang.org/protobuf/encoding/protowire"
)

// The fuzz targets of the tokenizer readers. Each parses the input as one format and, when that
// succeeds, uses the tokenizer: encodes a fixed set of texts (whitespace runs, newlines, tabs,
// non-ASCII, special-token strings), decodes the ids (and out-of-range ids), and looks up
// pieces. Properties: no panic; decoded ids in range; time and allocation bounded by fuzzcheck
// (a protobuf length prefix or a token length larger than the file is an error, not an
// allocation). Seeds: testdata/ models, the real tokenizers of $LLMPRUNER_DATA,
// testdata/fuzz/FuzzX.

// fuzzTexts are encoded with every tokenizer that parses.
var fuzzTexts = []string{
	"", " ", "Once upon a time, there was a little girl.", "  two  spaces\tand\na newline\n\n",
	"ünïcödé 中文 🙂", "<s></s><unk>[gMASK]<sop><|begin_of_text|>", strings.Repeat(" ", 90) + "x",
	"\u2581\u2581 already escaped", "\x00\x01 control",
}

// exercise uses a parsed tokenizer the way the CLI does.
func exercise(t *testing.T, tok Tokenizer) {
	vocab := tok.VocabSize()
	for _, text := range fuzzTexts {
		ids, err := ModelInputs(tok, text)
		if err != nil {
			continue // e.g. a vocabulary without the pieces the text needs
		}
		for _, id := range ids {
			if id < 0 || id >= vocab {
				t.Fatalf("Encode(%q) gave id %d outside [0, %d)", text, id, vocab)
			}
		}
		_ = tok.Decode(ids)
	}
	_ = tok.Decode([]int{-1, 0, vocab - 1, vocab, vocab + 1000})
	for _, id := range []int{-1, 0, 1, 2, 3, vocab / 2, vocab - 1, vocab} {
		_ = tok.Piece(id)
	}
	_, _ = tok.BOS(), tok.EOS()
}

func addTestdataSeeds(f *testing.F, names ...string) {
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		fuzzcheck.AddSeedVariants(f, b)
	}
}

// FuzzSentencePiece: SentencePiece .model protobufs (pieces, trainer and normalizer specs,
// precompiled charsmap), BPE and unigram.
func FuzzSentencePiece(f *testing.F) {
	addTestdataSeeds(f, "bpe_nofallback.model", "unigram_identity.model")
	fuzzcheck.AddDataSeeds(f, "tokenizers/llama2/tokenizer.model")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzcheck.Bounded(t, len(data), 64, func() {
			sp, err := newSentencePiece(data)
			if err == nil {
				exercise(t, sp)
			}
		})
	})
}

// FuzzLlama2CTokenizer: llama2.c tokenizer.bin (max_token_length, then score, length, bytes).
func FuzzLlama2CTokenizer(f *testing.F) {
	fuzzcheck.AddDataSeeds(f, "models/stories260K/tok512.bin", "tokenizers/llama2/tokenizer.bin")
	f.Add([]byte{0xff, 0xff, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzcheck.Bounded(t, len(data), 64, func() {
			tok, err := parseLlama2C(data)
			if err == nil {
				exercise(t, tok)
			}
		})
	})
}

// FuzzTiktoken: tiktoken rank files ("base64-token rank" lines).
func FuzzTiktoken(f *testing.F) {
	if head := fuzzcheck.HeadLines("tokenizers/llama3/tokenizer.model", 400); head != nil {
		fuzzcheck.AddSeedVariants(f, head)
	}
	fuzzcheck.AddDataSeeds(f, "tokenizers/llama3/tokenizer.model")
	var b strings.Builder
	for i := range 256 {
		b.WriteString(base64.StdEncoding.EncodeToString([]byte{byte(i)}) + " " + strconv.Itoa(i) + "\n")
	}
	f.Add([]byte(b.String()))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzcheck.Bounded(t, len(data), 64, func() {
			tok, err := parseTiktoken(data)
			if err == nil {
				exercise(t, tok)
			}
		})
	})
}

// FuzzChatGLM: ChatGLM-6B ice_text.model (a SentencePiece model with ChatGLM's special pieces),
// with the num_image_tokens offset and whitespace pre-processing.
func FuzzChatGLM(f *testing.F) {
	fuzzcheck.AddDataSeeds(f, "tokenizers/chatglm-6b/ice_text.model")
	f.Add(syntheticChatGLMModel())
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzcheck.Bounded(t, len(data), 64, func() {
			sp, err := newSentencePiece(data)
			if err != nil || !isChatGLMModel(sp) {
				return
			}
			c := newChatGLM(sp)
			exercise(t, c)
			c.offset = 3 // num_image_tokens
			exercise(t, c)
		})
	})
}

// FuzzLoad: Load on a directory holding the input as tokenizer.model (format detection:
// tiktoken, SentencePiece, ChatGLM, llama2.c) next to a fixed tokenizer_config.json, and the
// input as tokenizer_config.json next to a fixed llama2.c tokenizer.
func FuzzLoad(f *testing.F) {
	fuzzcheck.AddDataSeeds(f, "models/stories260K/tok512.bin", "tokenizers/chatglm-6b/tokenizer_config.json")
	addTestdataSeeds(f, "bpe_nofallback.model")
	f.Add([]byte(`{"add_bos_token": false, "add_eos_token": true, "bos_token": {"content": "<s>"}, "eos_token": "</s>", "num_image_tokens": 0}`))
	tok512 := fuzzcheck.DataFile("models/stories260K/tok512.bin")
	scratch := fuzzcheck.NewScratch(f)
	modelDir, configDir := filepath.Join(scratch.Dir, "model"), filepath.Join(scratch.Dir, "config")
	for _, d := range []string{modelDir, configDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			f.Fatal(err)
		}
	}
	scratch.Write(f, "model/tokenizer_config.json", []byte(`{"add_bos_token": true, "bos_token": "<s>", "eos_token": "</s>"}`))
	if tok512 != nil {
		scratch.Write(f, "config/tokenizer.bin", tok512)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzcheck.Bounded(t, len(data), 64, func() {
			scratch.Write(t, "model/tokenizer.model", data)
			if tok, _, err := Load(modelDir); err == nil {
				exercise(t, tok)
			}
			if tok512 == nil {
				return
			}
			scratch.Write(t, "config/tokenizer_config.json", data)
			if tok, _, err := Load(configDir); err == nil {
				exercise(t, tok)
			}
		})
	})
}

// syntheticChatGLMModel is a small SentencePiece BPE model with ChatGLM's special pieces.
func syntheticChatGLMModel() []byte {
	var b []byte
	piece := func(s string, typ uint64, score float32) {
		var p []byte
		p = protowire.AppendTag(p, 1, protowire.BytesType)
		p = protowire.AppendString(p, s)
		p = protowire.AppendTag(p, 2, protowire.Fixed32Type)
		p = protowire.AppendFixed32(p, uint32(int32(score*100)))
		p = protowire.AppendTag(p, 3, protowire.VarintType)
		p = protowire.AppendVarint(p, typ)
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, p)
	}
	piece("<unk>", spUnknown, 0)
	piece("<s>", spControl, 0)
	piece("</s>", spControl, 0)
	for _, s := range []string{"<n>", "<|tab|>", "<|blank_2|>", "<|blank_3|>", "[MASK]", "[gMASK]", "<sop>", "<eop>"} {
		piece(s, spUserDefined, 0)
	}
	for i, s := range []string{"\u2581", "a", "b", "c", "\u2581a", "ab", "\u2581ab", "x", "t", "i", "m", "e", "o", "n"} {
		piece(s, spNormal, float32(-i))
	}
	var trainer []byte
	trainer = protowire.AppendTag(trainer, 3, protowire.VarintType)
	trainer = protowire.AppendVarint(trainer, spModelBPE)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, trainer)
	return b
}

// FuzzTokenizerJSON: Hugging Face tokenizer.json (byte-level BPE: vocab, merges as "a b" or
// [a, b], added tokens, NFC normalizer, Split/ByteLevel pre-tokenizers, post-processor). Seeds:
// small byte-level vocabularies written the way scripts/tokenizer_json_from_gguf.go writes
// Qwen2's and LLaMA-3's (ggufvocab), so every section of the format is present.
func FuzzTokenizerJSON(f *testing.F) {
	for _, pre := range []string{"qwen2", "llama-bpe"} {
		fuzzcheck.AddSeedVariants(f, smallTokenizerJSON(f, pre))
	}
	f.Add([]byte(`{"model": {"type": "BPE", "vocab": {"a": 1000000000000}, "merges": []}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzcheck.Bounded(t, len(data), 64, func() {
			tok, err := parseHFBPE(data)
			if err == nil {
				exercise(t, tok)
			}
		})
	})
}

// smallTokenizerJSON is a byte-level BPE tokenizer.json with the 256 byte tokens, a few merges
// and one control token, for the given pre-tokenizer ("qwen2" or "llama-bpe").
func smallTokenizerJSON(f *testing.F, pre string) []byte {
	v := &ggufvocab.Vocab{Model: "gpt2", Pre: pre, BOS: -1, EOS: -1, UNK: -1}
	for b := range 256 {
		v.Tokens = append(v.Tokens, string(byteToRune[b]))
	}
	sp := string(byteToRune[' '])
	for _, m := range [][2]string{{sp, "t"}, {"h", "e"}, {sp + "t", "he"}, {"i", "n"}, {sp, "a"}} {
		v.Merges = append(v.Merges, m[0]+" "+m[1])
		v.Tokens = append(v.Tokens, m[0]+m[1])
	}
	v.Types = make([]int32, len(v.Tokens))
	for i := range v.Types {
		v.Types[i] = ggufvocab.TypeNormal
	}
	v.Tokens, v.Types = append(v.Tokens, "<|endoftext|>"), append(v.Types, ggufvocab.TypeControl)
	v.BOS, v.EOS = len(v.Tokens)-1, len(v.Tokens)-1
	b, err := v.TokenizerJSON()
	if err != nil {
		f.Fatal(err)
	}
	return b
}
