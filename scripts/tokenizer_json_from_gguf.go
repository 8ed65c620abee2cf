//go:build ignore

// Command tokenizer_json_from_gguf rebuilds a Hugging Face tokenizer.json and tokenizer_config.json
// from the byte-level BPE vocabulary of a GGUF file (llama.cpp's vocab-only test models):
//
//	go run scripts/tokenizer_json_from_gguf.go $LLMPRUNER_DATA/tokenizers/llamacpp-vocab/ggml-vocab-qwen2.gguf OUT_DIR
//
// The tokenizer tests build the same files in a temporary directory (internal/ggufvocab).
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/llmpruner/llmpruner/internal/ggufvocab"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: go run scripts/tokenizer_json_from_gguf.go VOCAB.gguf OUT_DIR")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintf(os.Stderr, "tokenizer_json_from_gguf: %v\n", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	v, err := ggufvocab.Read(in)
	if err != nil {
		return err
	}
	tj, err := v.TokenizerJSON()
	if err != nil {
		return err
	}
	tc, err := v.TokenizerConfigJSON()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "tokenizer.json"), tj, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "tokenizer_config.json"), tc, 0o644)
}
