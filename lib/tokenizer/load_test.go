package tokenizer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/lib/internal/testdata"
)

func TestLoadDetectsFormats(t *testing.T) {
	for _, c := range []struct {
		rel   string
		check func(Tokenizer) bool
		vocab int
	}{
		{"tokenizers/llama2/tokenizer.model", func(t Tokenizer) bool { _, ok := t.(*SentencePiece); return ok }, 32000},
		{"tokenizers/llama2/tokenizer.bin", func(t Tokenizer) bool { _, ok := t.(*Llama2C); return ok }, 32000},
		{"models/stories260K/tok512.bin", func(t Tokenizer) bool { _, ok := t.(*Llama2C); return ok }, 512},
		{"tokenizers/llama3/tokenizer.model", func(t Tokenizer) bool { _, ok := t.(*Tiktoken); return ok }, 128256},
		{"tokenizers/chatglm-6b/ice_text.model", func(t Tokenizer) bool { _, ok := t.(*ChatGLM); return ok }, 130344},
		// Directories: the file inside is found; ChatGLM's tokenizer_config.json sets num_image_tokens 0.
		{"models/stories260K", func(t Tokenizer) bool { _, ok := t.(*Llama2C); return ok }, 512},
		{"tokenizers/chatglm-6b", func(t Tokenizer) bool { _, ok := t.(*ChatGLM); return ok }, 130344},
		{"tokenizers/llama3", func(t Tokenizer) bool { _, ok := t.(*Tiktoken); return ok }, 128256},
	} {
		tok, files, err := Load(testdata.Path(t, c.rel))
		if err != nil {
			t.Errorf("Load(%s): %v", c.rel, err)
			continue
		}
		if !c.check(tok) || tok.VocabSize() != c.vocab {
			t.Errorf("Load(%s) = %T with %d tokens, want %d", c.rel, tok, tok.VocabSize(), c.vocab)
		}
		if len(files) == 0 || !strings.Contains(files[0], filepath.Base(c.rel)) && !strings.HasPrefix(files[0], testdata.Path(t, c.rel)) {
			t.Errorf("Load(%s) files = %v", c.rel, files)
		}
	}
}

// link puts the real file src into dir under name (a symlink; the test data is read-only).
func link(t *testing.T, src, dir, name string) {
	t.Helper()
	if err := os.Symlink(src, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadHFConfigOverrides(t *testing.T) {
	// A LLaMA-2 directory whose tokenizer_config.json turns BOS off and EOS on.
	dir := t.TempDir()
	link(t, testdata.Path(t, "tokenizers/llama2/tokenizer.model"), dir, "tokenizer.model")
	writeFile(t, dir, "tokenizer_config.json", `{"add_bos_token": false, "add_eos_token": true, "bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>"}`)
	tok, files, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Errorf("files = %v, want tokenizer.model and tokenizer_config.json", files)
	}
	ids, err := ModelInputs(tok, "Hello, world!")
	if want := []int{15043, 29892, 3186, 29991, 2}; err != nil || !equalInts(ids, want) {
		t.Errorf("ModelInputs = %v, %v; want %v", ids, err, want)
	}

	// An instruct-style LLaMA-3 HF directory: Meta's file under original/, eos <|eot_id|> in
	// special_tokens_map.json overriding tokenizer_config.json.
	dir = t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "original"), 0o755); err != nil {
		t.Fatal(err)
	}
	link(t, testdata.Path(t, "tokenizers/llama3/tokenizer.model"), dir, "original/tokenizer.model")
	writeFile(t, dir, "tokenizer_config.json", `{"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"}`)
	writeFile(t, dir, "special_tokens_map.json", `{"eos_token": {"content": "<|eot_id|>"}}`)
	tok, _, err = Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := Underlying(tok).(*Tiktoken); !ok {
		t.Errorf("Underlying(%T) is %T, want *Tiktoken", tok, Underlying(tok))
	}
	if tok.BOS() != 128000 || tok.EOS() != 128009 {
		t.Errorf("BOS %d EOS %d, want 128000 128009", tok.BOS(), tok.EOS())
	}
	ids, err = ModelInputs(tok, "Hello, world!")
	if want := []int{128000, 9906, 11, 1917, 0}; err != nil || !equalInts(ids, want) {
		t.Errorf("ModelInputs = %v, %v; want %v", ids, err, want)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	llama2 := testdata.Path(t, "tokenizers/llama2/tokenizer.model")
	good, err := os.ReadFile(llama2)
	if err != nil {
		t.Fatal(err)
	}
	badConfig := t.TempDir()
	link(t, llama2, badConfig, "tokenizer.model")
	writeFile(t, badConfig, "tokenizer_config.json", `{"eos_token": "<|not_there|>"}`)
	hfOnly := t.TempDir()
	writeFile(t, hfOnly, "tokenizer.json", `{}`)
	for _, c := range []struct {
		name, path string
		want       []string // substrings of the error
	}{
		{"missing", filepath.Join(dir, "nope.model"), []string{"nope.model", "no such file"}},
		{"empty dir", t.TempDir(), []string{"no tokenizer in directory", "tokenizer.model"}},
		{"tokenizer.json only", hfOnly, []string{"tokenizer.json", "not supported"}},
		{"empty file", writeFile(t, dir, "empty.model", ""), []string{"empty.model", "empty"}},
		{"truncated SentencePiece", writeFile(t, dir, "trunc.model", string(good[:len(good)/2])), []string{"trunc.model", "SentencePiece"}},
		{"truncated llama2.c", writeFile(t, dir, "trunc.bin", "\x07\x00\x00\x00\x00\x00\x80\x3f\x05\x00\x00\x00ab"), []string{"trunc.bin", "token 0"}},
		{"text", writeFile(t, dir, "notes.txt", "hello there, this is not a tokenizer\n"), []string{"notes.txt", "unknown format"}},
		{"bad tiktoken rank", writeFile(t, dir, "tt.model", "IQ== 0\nIg== x\n"), []string{"tt.model", "line 2"}},
		{"bad eos_token", badConfig, []string{"tokenizer_config.json", "<|not_there|>"}},
	} {
		_, _, err := Load(c.path)
		if err == nil {
			t.Errorf("%s: Load(%s) succeeded", c.name, c.path)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, w)
			}
		}
	}
}

func TestEncodeRejectsInvalidUTF8(t *testing.T) {
	for _, rel := range []string{"tokenizers/llama2/tokenizer.model", "tokenizers/llama2/tokenizer.bin",
		"tokenizers/llama3/tokenizer.model", "tokenizers/chatglm-6b"} {
		tok, _, err := Load(testdata.Path(t, rel))
		if err != nil {
			t.Fatal(err)
		}
		_, err = tok.Encode("ok \xff\xfe bad")
		if !errors.Is(err, ErrInvalidUTF8) || !strings.Contains(err.Error(), "offset 3") {
			t.Errorf("%s: Encode(invalid UTF-8) error = %v", rel, err)
		}
	}
}

// Decoding byte pieces that do not form valid UTF-8 gives U+FFFD for each bad byte, as the
// SentencePiece library does (python sentencepiece 0.1.97: decode([229, 148, 263, 258]) == "\ufffd\ufffd a\ufffd").
func TestDecodeInvalidBytes(t *testing.T) {
	sp, err := LoadSentencePiece(testdata.Path(t, "tokenizers/llama2/tokenizer.model"))
	if err != nil {
		t.Fatal(err)
	}
	// <0xE2> <0x91> (a truncated 3-byte character), "▁a", <0xFF>
	if got, want := sp.Decode([]int{229, 148, 263, 258}), "\uFFFD\uFFFD a\uFFFD"; got != want {
		t.Errorf("Decode = %q, want %q", got, want)
	}
}
