package main

import (
	"os"
	"path/filepath"
	"time"

	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/pkg/errors"
)

var convertCmd = &command{
	name:     "convert",
	summary:  "write a model as a Hugging Face directory (safetensors, config.json, tokenizer)",
	synopsis: "convert --model M [--adapter DIR] --out DIR [--dtype f32|bf16|f16] [--force] [--json]",
	details: `Reads any supported checkpoint (HF safetensors or pytorch_model.bin, llama2.c .bin) and writes an
HF-layout directory that transformers and llmpruner load: config.json (with llmpruner's per-layer
sizes), model.safetensors (sharded above 5 GB), generation_config.json and the tokenizer files.
--dtype converts the weights (default: keep the stored dtype). The directory is written atomically;
an existing non-empty --out is only replaced with --force.
With --adapter the LoRA adapter is merged first (W + (alpha/r)·B·A): the output is a plain model.
The merged weights are rounded to the stored dtype (e.g. float16) unless --dtype is given; give
--dtype f32 to keep a half-precision model's merge exact.`,
	examples: []string{
		"llmpruner convert --model $LLMPRUNER_DATA/models/stories260K/stories260K.bin --out stories260K-hf",
		"llmpruner convert --model ./llama-7b --out ./llama-7b-bf16 --dtype bf16",
		"llmpruner convert --model ./pruned --adapter ./lora-out --out ./recovered   # merge a LoRA adapter",
	},
	run: runConvert,
}

func init() { register(convertCmd) }

func runConvert(e *env, args []string) error {
	e.addModel()
	e.addJSON()
	out := e.fs.String("out", "", "output `DIR` (Hugging Face layout)")
	dtype := e.fs.String("dtype", "", "weight `dtype` of the output: f32, bf16 or f16 (default: as stored)")
	force := e.fs.Bool("force", false, "replace an existing non-empty --out directory")
	if err := e.parse(args); err != nil {
		return err
	}
	if err := e.requireModel(); err != nil {
		return err
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
		return e.printJSON(map[string]any{"out": *out, "params": m.Config.NumParams(), "bytes": size})
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
