package main

import (
	"os"
	"path/filepath"

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
	from             string // where they were found, for the log
}

// findStories260K looks for stories260K under $LLMPRUNER_DATA/models/stories260K, then in the
// Hugging Face cache (downloading it when online). Offline with neither it says what to set or
// download.
func findStories260K(e *env) (storiesFiles, error) {
	if data := os.Getenv("LLMPRUNER_DATA"); data != "" {
		dir := filepath.Join(data, storiesDataDir)
		m, t := filepath.Join(dir, "stories260K.bin"), filepath.Join(dir, "tok512.bin")
		if fileExists(m) && fileExists(t) {
			return storiesFiles{model: m, tokenizer: t, from: dir}, nil
		}
		e.logf("stories260K not found in %s; trying the Hugging Face Hub (%s)", dir, storiesRepo)
	}
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
	cacheDir, _ := repo.CacheDir()
	return storiesFiles{model: paths[0], tokenizer: paths[1], from: cacheDir}, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
