package models

// Fetching models from the Hugging Face Hub into the standard HF cache.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/gomlx/go-huggingface/hub"
	"github.com/llmpruner/llmpruner/lib/atomicfile"
	"github.com/pkg/errors"
)

var repoIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// LooksLikeRepoID reports whether s has the form of a Hugging Face repo id ("owner/name").
func LooksLikeRepoID(s string) bool {
	return repoIDPattern.MatchString(s) && !strings.Contains(s, "..")
}

// hubFiles are the files of a repo Load needs besides the weight files.
var hubFiles = []string{"config.json", "generation_config.json", "tokenizer.model", "tokenizer.json",
	"tokenizer_config.json", "special_tokens_map.json"}

// hubCacheDir is opts.CacheDir, else $HF_HUB_CACHE, else $HF_HOME/hub, else the library default.
func hubCacheDir(opts LoadOptions) string {
	switch {
	case opts.CacheDir != "":
		return opts.CacheDir
	case os.Getenv("HF_HUB_CACHE") != "":
		return os.Getenv("HF_HUB_CACHE")
	case os.Getenv("HF_HOME") != "":
		return filepath.Join(os.Getenv("HF_HOME"), "hub")
	}
	return hub.DefaultCacheDir()
}

// downloadRepo fetches config, weights and tokenizer files of a Hub model repo into the HF cache
// and returns the snapshot directory. Offline, it falls back to a complete cached snapshot, and
// otherwise fails with a message saying what to do.
func downloadRepo(id string, opts LoadOptions) (string, error) {
	cache := hubCacheDir(opts)
	repo := hub.New(id).WithCacheDir(cache).WithProgressBar(!opts.Quiet)
	if opts.Revision != "" {
		repo = repo.WithRevision(opts.Revision)
	}
	if tok := os.Getenv("HF_TOKEN"); tok != "" {
		repo = repo.WithAuth(tok)
	}
	if opts.Quiet {
		repo.Verbosity = 0
	}
	// Look the cache up first: go-huggingface deletes its cached repo info before refreshing it.
	cached := cachedSnapshot(cache, id, opts.Revision)
	dir, err := fetchRepoFiles(repo)
	if err == nil {
		recordRevision(cache, id, opts.Revision, filepath.Base(dir))
		return dir, nil
	}
	if cached != "" {
		return cached, nil
	}
	endpoint := os.Getenv("HF_ENDPOINT")
	if endpoint == "" {
		endpoint = "https://huggingface.co"
	}
	return "", errors.Errorf("model %q is not a local path and could not be downloaded from the Hugging Face Hub (%s): %v\n"+
		"Download the model and pass its directory (or llama2.c .bin file) instead, or set LLMPRUNER_DATA to the llmpruner data folder "+
		"for the bundled test models; for a private/gated repo set HF_TOKEN, for a mirror set HF_ENDPOINT",
		id, endpoint, err)
}

// fetchRepoFiles downloads what loading needs and returns the snapshot directory.
func fetchRepoFiles(repo *hub.Repo) (string, error) {
	var names []string
	for name, err := range repo.IterFileNames() {
		if err != nil {
			return "", err
		}
		names = append(names, name)
	}
	want, err := filesToFetch(names)
	if err != nil {
		return "", errors.WithMessagef(err, "repo %s", repo.ID)
	}
	paths, err := repo.DownloadFiles(want...)
	if err != nil {
		return "", err
	}
	return filepath.Dir(paths[0]), nil // want[0] is config.json, at the snapshot root
}

// filesToFetch picks config.json, one weight format (safetensors preferred, with shards) and the
// tokenizer files from a repo's file list.
func filesToFetch(names []string) ([]string, error) {
	if !slices.Contains(names, "config.json") {
		return nil, errors.New("has no config.json (not a Hugging Face transformers model repo)")
	}
	var weights []string
	for _, group := range [][2]string{{"model.safetensors", ".safetensors"}, {"pytorch_model.bin", ".bin"}} {
		index := group[0] + ".index.json"
		switch {
		case slices.Contains(names, group[0]):
			weights = []string{group[0]}
		case slices.Contains(names, index):
			weights = []string{index}
			for _, n := range names {
				if !strings.Contains(n, "/") && strings.HasPrefix(n, strings.TrimSuffix(group[0], group[1])+"-") && strings.HasSuffix(n, group[1]) {
					weights = append(weights, n)
				}
			}
		}
		if weights != nil {
			break
		}
	}
	if weights == nil {
		return nil, errors.New("has neither model.safetensors(.index.json) nor pytorch_model.bin(.index.json)")
	}
	out := []string{"config.json"}
	for _, n := range hubFiles[1:] {
		if slices.Contains(names, n) {
			out = append(out, n)
		}
	}
	return append(out, weights...), nil
}

// repoCacheDir is the cache folder of a model repo ("models--owner--name").
func repoCacheDir(cache, id string) string {
	return filepath.Join(cache, "models"+hub.RepoIdSeparator+strings.ReplaceAll(id, "/", hub.RepoIdSeparator))
}

// recordRevision writes refs/<revision> = sha, as Python's huggingface_hub does, so that the
// snapshot can be found offline (and by Python tools). Failing to write it is not an error.
func recordRevision(cache, id, revision, sha string) {
	if revision == "" {
		revision = "main"
	}
	refs := filepath.Join(repoCacheDir(cache, id), "refs")
	if os.MkdirAll(refs, 0o755) == nil {
		_ = atomicfile.WriteFile(filepath.Join(refs, revision), []byte(sha), 0o644)
	}
}

// cachedSnapshot returns the cached snapshot directory of repo id at revision if one with a
// config.json is present, else "".
func cachedSnapshot(cache, id, revision string) string {
	if revision == "" {
		revision = "main"
	}
	repoDir := repoCacheDir(cache, id)
	var sha string
	if data, err := os.ReadFile(filepath.Join(repoDir, "refs", revision)); err == nil {
		sha = strings.TrimSpace(string(data)) // huggingface_hub layout, also written by recordRevision
	} else if data, err := os.ReadFile(filepath.Join(repoDir, "info", revision)); err == nil {
		var info struct {
			SHA string `json:"sha"`
		}
		if json.Unmarshal(data, &info) == nil {
			sha = info.SHA // go-huggingface's cached repo info
		}
	}
	if sha == "" || strings.ContainsAny(sha, `/\`) {
		return ""
	}
	dir := filepath.Join(repoDir, "snapshots", sha)
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
		return ""
	}
	return dir
}
