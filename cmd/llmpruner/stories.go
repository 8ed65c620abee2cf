package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/gomlx/go-huggingface/hub"
	"github.com/pkg/errors"
)

// The demo model: stories260K, the 260K-parameter TinyStories LLaMA by the author of llama2.c.
const (
	storiesRepo      = "karpathy/tinyllamas"
	storiesModelFile = "stories260K/stories260K.bin"
	storiesTokFile   = "stories260K/tok512.bin"
	storiesDataDir   = "models/stories260K" // under $LLMPRUNER_DATA
	tinyStoriesText  = "text/tinystories/tinystories_val_head.txt"
)

// storiesFiles are the model and tokenizer paths of stories260K.
type storiesFiles struct {
	model, tokenizer string
}

// findStories260K looks for stories260K under $LLMPRUNER_DATA/models/stories260K, then in the
// Hugging Face cache, then downloads it from the Hub into that cache. Offline with neither it
// says what to set or download.
func findStories260K(e *env) (storiesFiles, error) {
	if data := os.Getenv("LLMPRUNER_DATA"); data != "" {
		dir := filepath.Join(data, storiesDataDir)
		f := storiesFiles{filepath.Join(dir, "stories260K.bin"), filepath.Join(dir, "tok512.bin")}
		if fileExists(f.model) && fileExists(f.tokenizer) {
			return f, nil
		}
		e.logf("stories260K is not in %s; looking in the Hugging Face cache", dir)
	}
	if f, ok := storiesInHFCache(); ok {
		e.logf("using stories260K from the Hugging Face cache: %s", filepath.Dir(f.model))
		return f, nil
	}
	e.logf("downloading stories260K from the Hugging Face Hub (%s)", storiesRepo)
	repo := hub.New(storiesRepo)
	repo.Verbosity = 0 // the hub prints progress on stdout, which is reserved for results
	paths, err := repo.DownloadFiles(storiesModelFile, storiesTokFile)
	if err != nil {
		base := "https://huggingface.co/" + storiesRepo + "/resolve/main/"
		return storiesFiles{}, errors.Errorf(
			"stories260K is not available: download %s%s and %s%s into DIR/%s/ and set LLMPRUNER_DATA=DIR "+
				"(or go online: the Hugging Face Hub could not be reached: %v)",
			base, storiesModelFile, base, storiesTokFile, storiesDataDir, err)
	}
	return storiesFiles{model: paths[0], tokenizer: paths[1]}, nil
}

// storiesInHFCache finds stories260K in a Hugging Face cache without the network (the hub
// package asks the Hub for the current revision before it looks at its cache). It looks in
// $HF_HUB_CACHE, $HF_HOME/hub and go-huggingface's default (${XDG_CACHE_HOME:-~/.cache}/huggingface/hub),
// preferring the snapshot that refs/main names.
func storiesInHFCache() (storiesFiles, bool) {
	var roots []string
	if d := os.Getenv("HF_HUB_CACHE"); d != "" {
		roots = append(roots, d)
	}
	if d := os.Getenv("HF_HOME"); d != "" {
		roots = append(roots, filepath.Join(d, "hub"))
	}
	roots = append(roots, hub.DefaultCacheDir())
	for _, root := range roots {
		repoDir := filepath.Join(root, "models--"+strings.ReplaceAll(storiesRepo, "/", "--"))
		var snapshots []string
		if ref, err := os.ReadFile(filepath.Join(repoDir, "refs", "main")); err == nil {
			snapshots = append(snapshots, filepath.Join(repoDir, "snapshots", strings.TrimSpace(string(ref))))
		}
		others, _ := filepath.Glob(filepath.Join(repoDir, "snapshots", "*"))
		for _, snap := range append(snapshots, others...) {
			f := storiesFiles{filepath.Join(snap, storiesModelFile), filepath.Join(snap, storiesTokFile)}
			if fileExists(f.model) && fileExists(f.tokenizer) {
				return f, true
			}
		}
	}
	return storiesFiles{}, false
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
