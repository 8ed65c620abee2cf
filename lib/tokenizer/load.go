package tokenizer

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pkg/errors"
)

// tokenizerFiles are the files Load looks for in a directory, in order.
var tokenizerFiles = []string{
	"tokenizer.model",          // SentencePiece (LLaMA-1/2, Vicuna, TinyLlama) or tiktoken (LLaMA-3)
	"original/tokenizer.model", // LLaMA-3 HF repositories keep Meta's file there
	"tokenizer.bin",            // llama2.c
	"tok512.bin",               // llama2.c (stories260K)
	"ice_text.model",           // ChatGLM-6B
	"tokenizer.json",           // Hugging Face byte-level BPE (Qwen2/2.5, Llama-3.x)
}

// Load opens the tokenizer at path: a tokenizer file (its format detected from its content), or a
// directory holding tokenizer.model (SentencePiece or tiktoken), original/tokenizer.model,
// tokenizer.bin, tok512.bin, ice_text.model or tokenizer.json (byte-level BPE), tried in that order. A tokenizer_config.json and
// special_tokens_map.json in that directory (or beside the file) are read when present: add_bos_token,
// add_eos_token, bos_token and eos_token override the tokenizer's own (special_tokens_map.json
// wins, as in HF). It returns the tokenizer and the files it used.
func Load(path string) (Tokenizer, []string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, errors.Wrap(err, "tokenizer")
	}
	file, configDir := path, filepath.Dir(path)
	if st.IsDir() {
		configDir = path
		file = ""
		for _, name := range tokenizerFiles {
			p := filepath.Join(path, name)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
				file = p
				break
			}
		}
		if file == "" {
			return nil, nil, errors.Errorf("no tokenizer in directory %s: looked for %s", path, strings.Join(tokenizerFiles, ", "))
		}
	}
	tok, err := loadFile(file)
	if err != nil {
		return nil, nil, err
	}
	files := []string{file}
	cfg, cfgFiles, err := readHFTokenizerConfig(configDir)
	if err != nil {
		return nil, nil, err
	}
	files = append(files, cfgFiles...)
	if cg, ok := tok.(*ChatGLM); ok {
		if err := cg.configure(cfg); err != nil {
			return nil, nil, err
		}
		return cg, files, nil
	}
	tok, err = applyHFConfig(tok, cfg)
	if err != nil {
		return nil, nil, err
	}
	return tok, files, nil
}

// loadFile opens one tokenizer file, detecting its format: tiktoken text, SentencePiece protobuf
// (ChatGLM's ice_text.model when it holds ChatGLM's special pieces), or llama2.c binary.
func loadFile(path string) (Tokenizer, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, errors.Errorf("tokenizer file %s is empty", path)
	}
	if looksLikeJSON(b) {
		t, err := parseHFBPE(b)
		if err != nil {
			return nil, errors.Wrapf(err, "tokenizer.json %s", path)
		}
		t.path = path
		return t, nil
	}
	if looksLikeTiktoken(b) {
		t, err := parseTiktoken(b)
		if err != nil {
			return nil, errors.Wrapf(err, "tiktoken tokenizer %s", path)
		}
		t.path = path
		return t, nil
	}
	sp, spErr := newSentencePiece(b)
	if spErr == nil {
		sp.path = path
		if isChatGLMModel(sp) {
			return newChatGLM(sp), nil
		}
		return sp, nil
	}
	lc, lcErr := parseLlama2C(b)
	if lcErr == nil {
		lc.path = path
		return lc, nil
	}
	if b[0] == 0x0a { // protobuf field 1 (pieces): report the SentencePiece problem
		return nil, errors.Wrapf(spErr, "SentencePiece model %s", path)
	}
	if strings.HasSuffix(path, ".bin") {
		return nil, errors.Wrapf(lcErr, "llama2.c tokenizer %s", path)
	}
	return nil, errors.Errorf("tokenizer %s: unknown format (not tiktoken text; not a SentencePiece model: %v; not a llama2.c tokenizer: %v)", path, spErr, lcErr)
}

// looksLikeTiktoken reports whether b starts with a "base64-token rank" line.
func looksLikeTiktoken(b []byte) bool {
	line := b
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		line = b[:i]
	}
	fields := bytes.Fields(line)
	if len(fields) != 2 {
		return false
	}
	if _, err := base64.StdEncoding.DecodeString(string(fields[0])); err != nil {
		return false
	}
	_, err := strconv.Atoi(string(fields[1]))
	return err == nil
}
