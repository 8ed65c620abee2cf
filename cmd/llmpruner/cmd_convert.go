package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/atomicfile"
	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/pkg/errors"
)

var convertCmd = &command{
	name:     "convert",
	summary:  "write a model as a Hugging Face directory or a llama.cpp GGUF file",
	synopsis: "convert --model M [--adapter DIR] [--tokenizer T] --out DIR|FILE.gguf [--format hf|gguf] [--dtype f32|bf16|f16|q8_0] [--force] [--json]",
	details: `Reads any supported checkpoint (HF safetensors or pytorch_model.bin, llama2.c .bin, GGUF) and writes
either (--format hf, the default) an HF-layout directory that llmpruner loads — config.json,
model.safetensors (sharded above 5 GB), generation_config.json and the tokenizer files — or
(--format gguf, or an --out ending in .gguf) one GGUF file that llama.cpp and the tools built on it
(llama-cli, llama-server, Ollama, LM Studio, node-llama-cpp) run, tokenizer included.

Hugging Face output: a model whose layers all have the same sizes gets a stock config.json that
transformers and vLLM load; a non-uniform pruned model's config.json adds per-layer lists
(num_attention_heads_per_layer, num_key_value_heads_per_layer, intermediate_size_per_layer) that
only llmpruner reads — stock transformers cannot build per-layer sizes. Deploy those as GGUF.
GGUF output: llama.cpp's architecture of the family when every layer has the same sizes — "llama"
for LLaMA, Llama-3.x and Mistral, "qwen2" for Qwen2/Qwen2.5 (when heads × head_dim = hidden_size)
— else "deci" (llama.cpp's per-layer architecture). Mistral's sliding window is not in llama.cpp's
llama graph: the file computes as the model for contexts up to the window. ChatGLM-6B cannot be
written as GGUF (llama.cpp has no ChatGLM-6B).

--dtype converts the weights: f32, bf16 or f16 (HF: default keeps the stored dtype), and for GGUF
also q8_0 (llama.cpp's 8-bit blocks of 32; matrices whose rows are not a multiple of 32 long are
stored f16; GGUF default f32). Norms stay f32 in GGUF. The output is written atomically; an
existing --out is only replaced with --force.
With --adapter the LoRA adapter is merged first (W + (alpha/r)·B·A): the output is a plain model.
The merged weights are rounded to the stored dtype (e.g. float16) unless --dtype is given; give
--dtype f32 to keep a half-precision model's merge exact.`,
	examples: []string{
		"llmpruner convert --model $LLMPRUNER_DATA/models/stories260K/stories260K.bin --out stories260K-hf",
		"llmpruner convert --model ./llama-7b --out ./llama-7b-bf16 --dtype bf16",
		"llmpruner convert --model ./pruned --adapter ./lora-out --out ./recovered   # merge a LoRA adapter",
		"llmpruner convert --model ./pruned --out pruned.gguf --dtype q8_0          # for llama.cpp / Ollama",
	},
	run: runConvert,
}

func init() { register(convertCmd) }

func runConvert(e *env, args []string) error {
	e.addModel()
	e.addJSON()
	out := e.fs.String("out", "", "output `DIR` (Hugging Face layout) or FILE.gguf")
	format := e.fs.String("format", "", "output `format`: hf (a directory) or gguf (one llama.cpp file; the default when --out ends in .gguf)")
	dtype := e.fs.String("dtype", "", "weight `dtype` of the output: f32, bf16 or f16, or q8_0 for gguf (default: as stored for hf, f32 for gguf)")
	force := e.fs.Bool("force", false, "replace an existing --out")
	if err := e.parse(args); err != nil {
		return err
	}
	if err := e.requireModel(); err != nil {
		return err
	}
	switch *format {
	case "":
		*format = "hf"
		if strings.HasSuffix(strings.ToLower(*out), ".gguf") {
			*format = "gguf"
		}
	case "hf", "gguf":
	default:
		return usageErrorf("--format %q: want hf or gguf", *format)
	}
	if *format == "gguf" {
		return convertGGUF(e, *out, *dtype, *force)
	}
	if _, err := models.ParseSaveDType(*dtype); err != nil {
		return usageErrorf("--dtype: %v", err)
	}
	if err := checkOutDir(*out, e.model, *force); err != nil {
		return err
	}
	e.mergeAdapter = true
	e.mergeFloat32 = *dtype != "" // merged in float32, converted once by Save
	m, err := e.loadModel()
	if err != nil {
		return err
	}
	start := time.Now()
	stop := e.spinner("saving " + *out)
	err = m.Save(*out, *dtype)
	stop()
	if err != nil {
		return err
	}
	size := dirSize(*out)
	e.logf("wrote %s (%s on disk) in %s", *out, humanBytes(size), time.Since(start).Round(time.Millisecond))
	if e.json {
		return e.printJSON(map[string]any{"out": *out, "params": arch.NumParams(m.Config), "bytes": size})
	}
	return nil
}

// convertGGUF writes --model as one GGUF file.
func convertGGUF(e *env, out, dtype string, force bool) error {
	typ := checkpoint.GGUFF32
	if dtype != "" {
		t, err := checkpoint.ParseGGUFType(dtype)
		if err != nil {
			return usageErrorf("--dtype: %v", err)
		}
		typ = t
	}
	if err := checkOutFile(out, e.model, force); err != nil {
		return err
	}
	e.mergeAdapter = true
	e.mergeFloat32 = true // merged in float32, converted once by SaveGGUF
	m, err := e.loadModel()
	if err != nil {
		return err
	}
	start := time.Now()
	stop := e.spinner("saving " + out)
	res, err := m.SaveGGUF(out, checkpoint.GGUFOptions{Type: typ})
	stop()
	if err != nil {
		return err
	}
	e.logf("wrote %s (%s, architecture %s, %d layers, %s) in %s", out, humanBytes(res.Bytes), res.Arch, res.Layers, typ,
		time.Since(start).Round(time.Millisecond))
	if len(res.F16Fallback) > 0 {
		e.logf("%d matrices stored F16: Q8_0 needs rows that are a multiple of 32 long (round the widths with prune --round-to 32)", len(res.F16Fallback))
	}
	for _, p := range res.Placeholders {
		e.logf("placeholder: %s", p)
	}
	for _, n := range res.Notes {
		e.logf("note: %s", n)
	}
	if m.Tokenizer == nil {
		e.logf("warning: the model has no tokenizer, so the GGUF file has none (llama.cpp needs one to run text): pass --tokenizer")
	}
	if e.json {
		return e.printJSON(map[string]any{"out": out, "params": arch.NumParams(m.Config), "bytes": res.Bytes, "arch": res.Arch,
			"layers": res.Layers, "type": typ.String(), "f16_fallback": res.F16Fallback, "placeholders": res.Placeholders, "notes": res.Notes})
	}
	return nil
}

// checkOutFile validates an output file flag before any work is done: given, not the model, not a
// directory, its directory existing, and absent unless force.
func checkOutFile(out, model string, force bool) error {
	if out == "" {
		return usageErrorf("--out is required (the output file)")
	}
	absOut, _ := filepath.Abs(out)
	absModel, _ := filepath.Abs(model)
	if absOut == absModel {
		return usageErrorf("--out %s would overwrite the input model", out)
	}
	if st, err := os.Stat(filepath.Dir(absOut)); err != nil || !st.IsDir() {
		return errors.Errorf("--out %s: directory %s does not exist", out, filepath.Dir(out))
	}
	st, err := os.Stat(out)
	switch {
	case os.IsNotExist(err):
		return nil
	case err != nil:
		return errors.Wrap(err, "--out")
	case st.IsDir():
		return errors.Errorf("--out %s is a directory (GGUF output is one file)", out)
	case !force:
		return errors.Errorf("--out %s exists (use --force to replace it)", out)
	}
	return nil
}

// checkOutDir validates an output directory flag before any work is done: it must be given,
// must not be the model itself, must not be a file, and must be empty or absent unless force.
func checkOutDir(out, model string, force bool) error {
	if out == "" {
		return usageErrorf("--out is required (the output directory)")
	}
	absOut, _ := filepath.Abs(out)
	absModel, _ := filepath.Abs(model)
	if absOut == absModel || absOut == filepath.Dir(absModel) && !isDir(absModel) {
		return usageErrorf("--out %s would overwrite the input model", out)
	}
	st, err := os.Stat(out)
	switch {
	case os.IsNotExist(err):
		return nil
	case err != nil:
		return errors.Wrap(err, "--out")
	case !st.IsDir():
		return errors.Errorf("--out %s exists and is not a directory", out)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		return errors.Wrap(err, "--out")
	}
	// Temporary entries of an interrupted writer (lib/atomicfile) do not count as content.
	entries = slices.DeleteFunc(entries, func(e os.DirEntry) bool { return atomicfile.IsTemp(e.Name()) })
	if len(entries) > 0 && !force {
		return errors.Errorf("--out %s exists and is not empty (use --force to replace it)", out)
	}
	return nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// dirSize sums the sizes of the regular files directly in dir.
func dirSize(dir string) int64 {
	entries, _ := os.ReadDir(dir)
	var n int64
	for _, en := range entries {
		if info, err := en.Info(); err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
	}
	return n
}
