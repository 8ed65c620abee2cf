package models

// Loading a model: a Hugging Face directory, a llama2.c .bin file, or a Hugging Face Hub repo id.

import (
	"os"
	"path/filepath"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/pkg/errors"
)

// LoadOptions configure Load. The zero value is fine.
type LoadOptions struct {
	// Tokenizer is a tokenizer file (or directory) to use instead of the one found beside the model.
	Tokenizer string
	// CacheDir is the Hugging Face cache used for repo ids (default: $HF_HUB_CACHE, else the
	// standard ~/.cache/huggingface/hub).
	CacheDir string
	// Revision of a Hub repo (default "main").
	Revision string
	// Quiet suppresses download progress output.
	Quiet bool
}

// Load loads a model for backend from path:
//   - a Hugging Face model directory (config.json plus model.safetensors, sharded safetensors or
//     pytorch_model.bin; tokenizer files in the same directory);
//   - a llama2.c .bin checkpoint (its tokenizer, tok512.bin or tokenizer.bin, beside it, or
//     opts.Tokenizer);
//   - a llama.cpp GGUF file of architecture llama or deci (F32, F16, BF16 or Q8_0 tensors,
//     dequantized to float32; the tokenizer from its metadata, or opts.Tokenizer);
//   - when path does not exist locally and looks like "owner/name", a Hugging Face Hub repo id,
//     downloaded into the standard HF cache (honours HF_ENDPOINT and HF_TOKEN).
//
// Loading is strict: any missing, unexpected or wrong-shape tensor is an error. Weights keep their
// stored dtype.
func Load(backend compute.Backend, path string, opts LoadOptions) (*Model, error) {
	m, _, err := load(backend, path, opts, false)
	return m, err
}

// OpenStreamed is Load without the weights, for computations that read them layer by layer: it
// parses the config, checks the checkpoint's tensor list strictly against it (CheckTensors),
// attaches the tokenizer and returns the Model with an empty Store together with the open
// checkpoint Reader (the caller closes it).
func OpenStreamed(backend compute.Backend, path string, opts LoadOptions) (*Model, checkpoint.Reader, error) {
	return load(backend, path, opts, true)
}

// load is Load (lazy false) or OpenStreamed (lazy true).
func load(backend compute.Backend, path string, opts LoadOptions, lazy bool) (*Model, checkpoint.Reader, error) {
	st, err := os.Stat(path)
	switch {
	case err == nil && st.IsDir():
		return loadHFDir(backend, path, path, opts, lazy)
	case err == nil:
		return loadLlama2C(backend, path, opts, lazy)
	case os.IsNotExist(err) && LooksLikeRepoID(path):
		dir, err := downloadRepo(path, opts)
		if err != nil {
			return nil, nil, err
		}
		return loadHFDir(backend, dir, path, opts, lazy)
	default:
		return nil, nil, errors.Wrapf(err, "loading model %q (expected a Hugging Face model directory, a llama2.c .bin or GGUF file, or a Hub repo id owner/name)", path)
	}
}

// loadHFDir loads a Hugging Face layout directory; source is what the user named.
func loadHFDir(backend compute.Backend, dir, source string, opts LoadOptions, lazy bool) (*Model, checkpoint.Reader, error) {
	cfgPath := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, nil, errors.Wrapf(err, "loading model %s: reading config.json", source)
	}
	cfg, err := arch.ParseConfig(data, cfgPath)
	if err != nil {
		return nil, nil, err
	}
	lay, err := layoutOf(cfg)
	if err != nil {
		return nil, nil, errors.WithMessage(err, cfgPath)
	}
	r, err := checkpoint.Open(dir)
	if err != nil {
		return nil, nil, errors.WithMessagef(err, "loading model %s", source)
	}
	if lay.reader != nil {
		r = lay.reader(cfg, r)
	}
	return newModel(backend, cfg, r, dir, false, source, opts, lazy)
}

// loadLlama2C loads a llama2.c checkpoint file.
func loadLlama2C(backend compute.Backend, path string, opts LoadOptions, lazy bool) (*Model, checkpoint.Reader, error) {
	format, err := checkpoint.DetectFormat(path)
	if err != nil {
		return nil, nil, errors.WithMessagef(err, "loading model %s", path)
	}
	if format == checkpoint.FormatGGUF {
		if lazy {
			return nil, nil, errors.Errorf("model %s: a GGUF file cannot be streamed layer by layer yet; load it, or convert it to a Hugging Face directory (llmpruner convert)", path)
		}
		m, err := loadGGUF(backend, path, opts) // gguf.go
		return m, nil, err
	}
	if format != checkpoint.FormatLlama2C {
		return nil, nil, errors.Errorf("loading model %s: a single file must be a llama2.c .bin checkpoint or a GGUF file, this is %s; pass the directory holding it and its config.json",
			path, format)
	}
	cfg, r, err := checkpoint.LoadLlama2C(path)
	if err != nil {
		return nil, nil, errors.WithMessagef(err, "loading model %s", path)
	}
	return newModel(backend, cfg, r, filepath.Dir(path), true, path, opts, lazy)
}

// newModel reads the store from r (lazy: only checks r's tensor list and returns r open, the store
// empty; otherwise r is closed) and finds the tokenizer (in tokDir unless opts says otherwise;
// llama2c selects the llama2.c tokenizer search).
func newModel(backend compute.Backend, cfg *config.Config, r checkpoint.Reader, tokDir string, llama2c bool, source string, opts LoadOptions, lazy bool) (*Model, checkpoint.Reader, error) {
	var store *model.Store
	var err error
	if lazy {
		if err = CheckTensors(cfg, r.Tensors()); err != nil {
			err = errors.WithMessage(err, source)
		}
		store = model.NewStore()
	} else {
		store, err = LoadStore(backend, cfg, r, source)
		_ = r.Close()
		r = nil
	}
	closeReader := func() {
		if r != nil {
			_ = r.Close()
		}
	}
	if err != nil {
		closeReader()
		return nil, nil, err
	}
	m := &Model{Config: cfg, Store: store, Backend: backend, Source: source}
	if err := m.attachTokenizer(tokDir, llama2c, opts.Tokenizer); err != nil {
		store.Finalize()
		closeReader()
		return nil, nil, err
	}
	return m, r, nil
}
