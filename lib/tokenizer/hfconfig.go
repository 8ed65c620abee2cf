package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/pkg/errors"
)

// hfTokenizerConfig holds the settings read from HF's tokenizer_config.json and
// special_tokens_map.json; nil fields were absent (or null).
type hfTokenizerConfig struct {
	AddBOS, AddEOS *bool
	BOS, EOS       *string
	NumImageTokens *int              // ChatGLM
	ChatTemplate   *string           // tokenizer_config.json's chat_template (Jinja), for GGUF export
	source         map[string]string // setting → file it came from, for errors
}

// readHFTokenizerConfig reads tokenizer_config.json then special_tokens_map.json from dir (both
// optional; the second overrides the first) and returns the files it read.
func readHFTokenizerConfig(dir string) (hfTokenizerConfig, []string, error) {
	cfg := hfTokenizerConfig{source: map[string]string{}}
	var files []string
	for _, name := range []string{"tokenizer_config.json", "special_tokens_map.json"} {
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return cfg, nil, errors.Wrap(err, "reading tokenizer config")
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			return cfg, nil, errors.Wrapf(err, "tokenizer config %s is not a JSON object", p)
		}
		if err := cfg.merge(raw, p); err != nil {
			return cfg, nil, err
		}
		files = append(files, p)
	}
	return cfg, files, nil
}

func (c *hfTokenizerConfig) merge(raw map[string]json.RawMessage, path string) error {
	for key, dst := range map[string]**bool{"add_bos_token": &c.AddBOS, "add_eos_token": &c.AddEOS} {
		if v, ok := raw[key]; ok && string(v) != "null" {
			var b bool
			if err := json.Unmarshal(v, &b); err != nil {
				return errors.Errorf("%s: %s is %s, want true or false", path, key, v)
			}
			*dst, c.source[key] = &b, path
		}
	}
	for key, dst := range map[string]**string{"bos_token": &c.BOS, "eos_token": &c.EOS} {
		v, ok := raw[key]
		if !ok || string(v) == "null" {
			continue
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			var added struct { // HF AddedToken: {"content": "<s>", "lstrip": false, ...}
				Content *string `json:"content"`
			}
			if err := json.Unmarshal(v, &added); err != nil || added.Content == nil {
				return errors.Errorf("%s: %s is %s, want a string or {\"content\": ...}", path, key, v)
			}
			s = *added.Content
		}
		*dst, c.source[key] = &s, path
	}
	if v, ok := raw["chat_template"]; ok && string(v) != "null" {
		tmpl, err := chatTemplate(v)
		if err != nil {
			return errors.Errorf("%s: chat_template: %v", path, err)
		}
		c.ChatTemplate, c.source["chat_template"] = &tmpl, path
	}
	if v, ok := raw["num_image_tokens"]; ok && string(v) != "null" {
		var n int
		if err := json.Unmarshal(v, &n); err != nil || n < 0 {
			return errors.Errorf("%s: num_image_tokens is %s, want a non-negative integer", path, v)
		}
		c.NumImageTokens, c.source["num_image_tokens"] = &n, path
	}
	return nil
}

// chatTemplate reads a chat_template value: a string, or a list of {"name", "template"} whose
// "default" entry (else the first) is taken.
func chatTemplate(v json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return s, nil
	}
	var named []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(v, &named); err != nil || len(named) == 0 {
		return "", errors.Errorf("want a string or a list of {\"name\", \"template\"}, got %s", truncateForError(v))
	}
	for _, n := range named {
		if n.Name == "default" {
			return n.Template, nil
		}
	}
	return named[0].Template, nil
}

// tokenID resolves a bos_token/eos_token setting to an id of tok.
func (c *hfTokenizerConfig) tokenID(tok Tokenizer, key, piece string) (int, error) {
	if pl, ok := tok.(PieceLookup); ok {
		if id, ok := pl.PieceID(piece); ok {
			return id, nil
		}
	}
	return -1, errors.Errorf("%s: %s %q is not in the tokenizer's vocabulary", c.source[key], key, piece)
}

// configured is a tokenizer with HF config overrides of BOS/EOS and of which of them the model
// inputs carry.
type configured struct {
	Tokenizer
	bos, eos       int
	addBOS, addEOS bool
	chatTemplate   string // "" when none
}

// ChatTemplate returns the chat_template (a Jinja template, not rendered here) of the
// tokenizer_config.json that Load read for t, "" when none.
func ChatTemplate(t Tokenizer) string {
	if c, ok := t.(*configured); ok {
		return c.chatTemplate
	}
	return ""
}

// applyHFConfig wraps tok when cfg changes anything.
func applyHFConfig(tok Tokenizer, cfg hfTokenizerConfig) (Tokenizer, error) {
	if cfg.AddBOS == nil && cfg.AddEOS == nil && cfg.BOS == nil && cfg.EOS == nil && cfg.ChatTemplate == nil {
		return tok, nil
	}
	c := &configured{Tokenizer: tok, bos: tok.BOS(), eos: tok.EOS(), addBOS: true}
	if cfg.ChatTemplate != nil {
		c.chatTemplate = *cfg.ChatTemplate
	}
	var err error
	if cfg.BOS != nil {
		if c.bos, err = cfg.tokenID(tok, "bos_token", *cfg.BOS); err != nil {
			return nil, err
		}
	}
	if cfg.EOS != nil {
		if c.eos, err = cfg.tokenID(tok, "eos_token", *cfg.EOS); err != nil {
			return nil, err
		}
	}
	if cfg.AddBOS != nil {
		c.addBOS = *cfg.AddBOS
	}
	if cfg.AddEOS != nil {
		c.addEOS = *cfg.AddEOS
	}
	return c, nil
}

// BOS is the configured bos_token.
func (c *configured) BOS() int { return c.bos }

// EOS is the configured eos_token.
func (c *configured) EOS() int { return c.eos }

// EncodeInputs is Encode with BOS prepended unless add_bos_token is false, and EOS appended when
// add_eos_token is true.
func (c *configured) EncodeInputs(text string) ([]int, error) {
	ids, err := c.Tokenizer.Encode(text)
	if err != nil {
		return nil, err
	}
	if c.addBOS && c.bos >= 0 {
		ids = append([]int{c.bos}, ids...)
	}
	if c.addEOS && c.eos >= 0 {
		ids = append(ids, c.eos)
	}
	return ids, nil
}

// PieceID looks piece up in the wrapped tokenizer.
func (c *configured) PieceID(piece string) (int, bool) {
	if pl, ok := c.Tokenizer.(PieceLookup); ok {
		return pl.PieceID(piece)
	}
	return -1, false
}

// Unwrap returns the tokenizer without the config overrides.
func (c *configured) Unwrap() Tokenizer { return c.Tokenizer }

// Underlying returns the concrete tokenizer (*SentencePiece, *Tiktoken, *Llama2C, *ChatGLM)
// beneath the tokenizer_config.json overrides that Load may wrap it in, or t itself.
func Underlying(t Tokenizer) Tokenizer {
	if c, ok := t.(*configured); ok {
		return c.Tokenizer
	}
	return t
}
