package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/internal/ggufvocab"
	"github.com/llmpruner/llmpruner/lib/internal/testdata"
)

// llama.cpp's tokenizer test set (tokenizers/llamacpp-vocab in LLMPRUNER_DATA): vocab-only GGUF
// files and, for each test string of *.gguf.inp, the ids Hugging Face's own tokenizer gives
// (*.gguf.out, no BOS).

// vocabCases reads the test strings and Hugging Face's ids of one vocabulary.
func vocabCases(t *testing.T, name string) (texts []string, ids [][]int) {
	t.Helper()
	dir := testdata.Path(t, "tokenizers/llamacpp-vocab")
	inp, err := os.ReadFile(filepath.Join(dir, "ggml-vocab-"+name+".gguf.inp"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(filepath.Join(dir, "ggml-vocab-"+name+".gguf.out"))
	if err != nil {
		t.Fatal(err)
	}
	texts = strings.Split(strings.TrimSuffix(string(inp), "\n__ggml_vocab_test__\n"), "\n__ggml_vocab_test__\n")
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(texts) {
		t.Fatalf("%s: %d test strings, %d id lines", name, len(texts), len(lines))
	}
	for _, l := range lines {
		var row []int
		for _, f := range strings.Fields(l) {
			id, err := strconv.Atoi(f)
			if err != nil {
				t.Fatal(err)
			}
			row = append(row, id)
		}
		ids = append(ids, row)
	}
	return texts, ids
}

func readVocab(t *testing.T, name string) *ggufvocab.Vocab {
	t.Helper()
	v, err := ggufvocab.Read(filepath.Join(testdata.Path(t, "tokenizers/llamacpp-vocab"), "ggml-vocab-"+name+".gguf"))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// checkCases encodes every test string with tok and compares with Hugging Face's ids.
func checkCases(t *testing.T, label string, tok Tokenizer, texts []string, want [][]int) {
	t.Helper()
	bad := 0
	for i, text := range texts {
		got, err := tok.Encode(text)
		if err != nil {
			t.Fatalf("%s: %q: %v", label, text, err)
		}
		if !equalInts(got, want[i]) {
			bad++
			t.Errorf("%s: %q\n got %v\nwant %v", label, text, got, want[i])
		}
	}
	t.Logf("%s: %d of %d test strings give Hugging Face's ids", label, len(texts)-bad, len(texts))
}

// TestTokenizerJSONMatchesHF: tokenizer.json files rebuilt from the Qwen2 and LLaMA-3 vocabularies
// (internal/ggufvocab, as scripts/tokenizer_json_from_gguf.go writes them) load through Load and
// encode every test string to Hugging Face's ids; decoding gives the text back (NFC-normalized for
// Qwen2). Qwen2 has no BOS; LLaMA-3's post-processor gives <|begin_of_text|>.
func TestTokenizerJSONMatchesHF(t *testing.T) {
	for _, c := range []struct {
		name string
		bos  int
		eos  string
	}{{"qwen2", -1, "<|endoftext|>"}, {"llama-bpe", 128000, "<|end_of_text|>"}} {
		v := readVocab(t, c.name)
		tj, err := v.TokenizerJSON()
		if err != nil {
			t.Fatal(err)
		}
		tc, err := v.TokenizerConfigJSON()
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tj, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), tc, 0o644); err != nil {
			t.Fatal(err)
		}
		tok, files, err := Load(dir)
		if err != nil {
			t.Fatalf("%s: %+v", c.name, err)
		}
		if _, ok := Underlying(tok).(*HFBPE); !ok || !strings.HasSuffix(files[0], "tokenizer.json") {
			t.Fatalf("%s: loaded %T from %v", c.name, Underlying(tok), files)
		}
		texts, want := vocabCases(t, c.name)
		checkCases(t, c.name+" tokenizer.json", tok, texts, want)
		for i, text := range texts {
			if got := tok.Decode(want[i]); got != text && c.name != "qwen2" {
				t.Errorf("%s: decode %v = %q, want %q", c.name, want[i], got, text)
			}
		}
		eos := -1
		if pl, ok := tok.(PieceLookup); ok {
			eos, _ = pl.PieceID(c.eos)
		}
		if tok.BOS() != c.bos || tok.EOS() != eos || eos < 0 {
			t.Errorf("%s: BOS %d EOS %d, want %d and %s (%d)", c.name, tok.BOS(), tok.EOS(), c.bos, c.eos, eos)
		}
		in, err := ModelInputs(tok, "Hello")
		if err != nil || (c.bos >= 0) != (len(in) > 0 && in[0] == c.bos) {
			t.Errorf("%s: model inputs %v (%v)", c.name, in, err)
		}
		if c.name == "qwen2" {
			// Added tokens are matched in the text; the chat template is kept.
			ids, err := tok.Encode("<|im_start|>user\nhi<|im_end|>")
			im, _ := tok.(PieceLookup).PieceID("<|im_start|>")
			if err != nil || len(ids) < 3 || ids[0] != im || tok.Decode(ids) != "user\nhi" {
				t.Errorf("special tokens: %v %q (%v)", ids, tok.Decode(ids), err)
			}
			if !strings.Contains(ChatTemplate(tok), "im_start") {
				t.Errorf("chat template %q", ChatTemplate(tok))
			}
		}
	}
}

// TestExistingTokenizersMatchHF: the LLaMA-3 tiktoken tokenizer and the LLaMA-2 SentencePiece
// tokenizer, built from the same GGUF vocabularies, give Hugging Face's ids for the test set.
func TestExistingTokenizersMatchHF(t *testing.T) {
	for _, name := range []string{"llama-bpe", "llama-spm"} {
		v := readVocab(t, name)
		gv := &GGUFVocab{Model: v.Model, Pre: v.Pre, Tokens: v.Tokens, Types: v.Types, Scores: v.Scores, Merges: v.Merges,
			BOS: v.BOS, EOS: v.EOS, UNK: v.UNK, PAD: -1, AddBOS: v.BOS >= 0, AddSpacePrefix: v.AddSpacePrefix}
		tok, err := FromGGUFVocab(gv)
		if err != nil {
			t.Fatalf("%s: %+v", name, err)
		}
		texts, want := vocabCases(t, name)
		checkCases(t, name+" "+strings.TrimPrefix(strings.TrimPrefix(typeName(Underlying(tok)), "*tokenizer."), ""), tok, texts, want)
	}
}

func typeName(t Tokenizer) string {
	switch t.(type) {
	case *Tiktoken:
		return "tiktoken"
	case *SentencePiece:
		return "SentencePiece"
	case *HFBPE:
		return "tokenizer.json BPE"
	}
	return "?"
}

// TestTokenizerJSONAsGGUF: the Qwen2 and LLaMA-3 tokenizer.json files, written as GGUF metadata
// (GGUFVocabOf), hold llama.cpp's own reference vocabulary: the same tokens, token types and
// merges in the same order, pre-tokenizer qwen2 / llama-bpe. Read back (FromGGUFVocab), they
// encode llama.cpp's test strings into Hugging Face's ids.
func TestTokenizerJSONAsGGUF(t *testing.T) {
	for _, name := range []string{"qwen2", "llama-bpe"} {
		ref := readVocab(t, name)
		tj, err := ref.TokenizerJSON()
		if err != nil {
			t.Fatal(err)
		}
		tc, err := ref.TokenizerConfigJSON()
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tj, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), tc, 0o644); err != nil {
			t.Fatal(err)
		}
		tok, _, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		v, err := GGUFVocabOf(tok)
		if err != nil {
			t.Fatalf("%s: %+v", name, err)
		}
		if v.Model != "gpt2" || v.Pre != ref.Pre || len(v.Tokens) > len(ref.Tokens) {
			t.Fatalf("%s: model %q pre %q, %d tokens; llama.cpp's: %q %q %d", name, v.Model, v.Pre, len(v.Tokens), ref.Model, ref.Pre, len(ref.Tokens))
		}
		for id := range ref.Tokens {
			if id >= len(v.Tokens) {
				if ref.Types[id] != GGUFTokenUnused {
					t.Errorf("%s: token %d %q (type %d) is missing", name, id, ref.Tokens[id], ref.Types[id])
				}
				continue
			}
			if ref.Types[id] != GGUFTokenUnused && (v.Tokens[id] != ref.Tokens[id] || v.Types[id] != ref.Types[id]) {
				t.Errorf("%s: token %d is %q type %d, llama.cpp's %q type %d", name, id, v.Tokens[id], v.Types[id], ref.Tokens[id], ref.Types[id])
				break
			}
		}
		if !slices.Equal(v.Merges, ref.Merges) {
			t.Errorf("%s: %d merges differ from llama.cpp's %d", name, len(v.Merges), len(ref.Merges))
		}
		back, err := FromGGUFVocab(v)
		if err != nil {
			t.Fatalf("%s: %+v", name, err)
		}
		texts, want := vocabCases(t, name)
		checkCases(t, name+" tokenizer.json → GGUF → "+typeName(Underlying(back)), back, texts, want)
	}
}

// TestQwen2GGUFVocabBadInput: a "gpt2"/"qwen2" vocabulary that is not a byte-level BPE gives a
// one-line error naming what is wrong.
func TestQwen2GGUFVocabBadInput(t *testing.T) {
	good := func() *GGUFVocab {
		v := &GGUFVocab{Model: "gpt2", Pre: "qwen2", BOS: -1, EOS: -1, UNK: -1, PAD: -1}
		for b := range 256 {
			v.Tokens, v.Types = append(v.Tokens, string(byteToRune[b])), append(v.Types, GGUFTokenNormal)
		}
		v.Tokens, v.Types = append(v.Tokens, "ab", "<|endoftext|>"), append(v.Types, GGUFTokenNormal, GGUFTokenControl)
		v.Merges = []string{"a b"}
		return v
	}
	if tok, err := FromGGUFVocab(good()); err != nil {
		t.Fatalf("%+v", err)
	} else if ids, _ := tok.Encode("ab<|endoftext|>"); !slices.Equal(ids, []int{256, 257}) {
		t.Errorf("encoded %v", ids)
	}
	for name, c := range map[string]struct {
		edit func(v *GGUFVocab)
		want string
	}{
		"no merges":      {func(v *GGUFVocab) { v.Merges = nil }, "merges is missing"},
		"merge to none":  {func(v *GGUFVocab) { v.Merges = []string{"b c"} }, `merge 0 "b c"`},
		"merge no space": {func(v *GGUFVocab) { v.Merges = []string{"ab"} }, `merge 0 "ab"`},
		"missing byte":   {func(v *GGUFVocab) { v.Tokens[0x41] = "zz" }, "byte 0x41"},
		"byte token":     {func(v *GGUFVocab) { v.Types[3] = GGUFTokenByte }, "type 6"},
		"types":          {func(v *GGUFVocab) { v.Types = v.Types[:10] }, "258 tokens, 10 token types"},
		"empty added":    {func(v *GGUFVocab) { v.Tokens[257] = "" }, "added token 257 is empty"},
		"other pre":      {func(v *GGUFVocab) { v.Pre = "gpt-4o" }, `pre-tokenizer "gpt-4o"`},
	} {
		v := good()
		c.edit(v)
		_, err := FromGGUFVocab(v)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %v, want one line with %q", name, err, c.want)
		}
	}
}

// TestTokenizerJSONWithoutLlamaCppPre: Qwen2's split pattern without its NFC normalizer matches no
// pre-tokenizer of llama.cpp: GGUF export refuses it in one line.
func TestTokenizerJSONWithoutLlamaCppPre(t *testing.T) {
	vocab := map[string]int{}
	for b := range 256 {
		vocab[string(byteToRune[b])] = b
	}
	var qwen2Pattern string
	for p, digits := range splitPatterns {
		if digits == 1 {
			qwen2Pattern = p
		}
	}
	js, err := json.Marshal(map[string]any{
		"normalizer": nil,
		"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": qwen2Pattern}, "behavior": "Isolated", "invert": false},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}}},
		"post_processor": map[string]any{"type": "ByteLevel"},
		"model":          map[string]any{"type": "BPE", "vocab": vocab, "merges": []string{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := parseHFBPE(js)
	if err != nil {
		t.Fatalf("%+v", err)
	}
	_, err = GGUFVocabOf(tok)
	if err == nil || !strings.Contains(err.Error(), "matches no llama.cpp pre-tokenizer") || strings.Contains(err.Error(), "\n") {
		t.Errorf("error %v", err)
	}
}
