package checkpoint

import (
	"encoding/json"
	"io"

	"github.com/gomlx/compute/dtypes"
	"os"
	"sort"
	"strings"

	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/tokenizer"
	"github.com/pkg/errors"
)

// GGUFSource is implemented by the Reader of a GGUF file: its tokenizer metadata (nil when the
// file has none).
type GGUFSource interface {
	GGUFVocab() *tokenizer.GGUFVocab
}

// OpenGGUF opens a llama.cpp GGUF file of architecture llama, qwen2 or deci (a LLaMA, or a Qwen2
// when its layers have q/k/v biases and no o_proj bias) whose tensors are F32, F16, BF16 or Q8_0.
// The Reader serves Hugging Face names and layouts in float32 (q/k rows back in the half-split
// RoPE order) and implements ConfigSource and GGUFSource.
func OpenGGUF(path string) (Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errors.Wrap(err, "opening GGUF file")
	}
	r, err := newGGUFReader(path, f)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return r, nil
}

func newGGUFReader(path string, f *os.File) (*ggufReaderWithConfig, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, errors.Wrapf(err, "%s", path)
	}
	g, err := parseGGUF(path, f, st.Size())
	if err != nil {
		return nil, err
	}
	cfg, names, pairs, err := g.config(f)
	if err != nil {
		return nil, errors.WithMessage(err, path)
	}
	r := &ggufReaderWithConfig{ggufReader: ggufReader{g: g, f: f, src: map[string]int{}, rotary: map[string]int{}}, cfg: cfg}
	for i, t := range g.infos {
		if t.name == ggufRopeFreqs {
			continue // the config's rope_scaling (configOf)
		}
		hf, layer, ok := hfNameOfGGUF(names, t.name)
		if !ok {
			return nil, errors.Errorf("%s: tensor %q has no Hugging Face %s equivalent", path, t.name, arch.Of(cfg).Title())
		}
		if layer >= cfg.NumLayers() {
			return nil, errors.Errorf("%s: tensor %q: block_count is %d", path, t.name, cfg.NumLayers())
		}
		shape := make([]int, len(t.ne))
		for k, d := range t.ne {
			shape[len(t.ne)-1-k] = int(d)
		}
		if ht, _ := parseHFName(names, hf); ht.rotary() && pairs {
			r.rotary[hf] = cfg.HeadDim
		}
		r.src[hf] = i
		r.infos = append(r.infos, TensorInfo{Name: hf, DType: dtypes.Float32, Shape: shape, File: path})
	}
	sort.Slice(r.infos, func(i, j int) bool { return r.infos[i].Name < r.infos[j].Name })
	_, hasHead := r.src["lm_head.weight"]
	cfg.TieEmbed = !hasHead
	if r.vocab, err = g.vocab(); err != nil {
		return nil, errors.WithMessage(err, path)
	}
	if r.vocab != nil {
		cfg.BOS = r.vocab.BOS
		if r.vocab.EOS >= 0 {
			cfg.EOS = []int{r.vocab.EOS}
		}
	}
	return r, nil
}

// ggufReaderWithConfig adds the configuration and tokenizer read from the metadata.
type ggufReaderWithConfig struct {
	ggufReader
	cfg   *config.Config
	vocab *tokenizer.GGUFVocab
}

// Config implements ConfigSource.
func (r *ggufReaderWithConfig) Config() *config.Config { return r.cfg.Clone() }

// GGUFVocab implements GGUFSource.
func (r *ggufReaderWithConfig) GGUFVocab() *tokenizer.GGUFVocab { return r.vocab }

// metaUint returns a non-negative integer key; ok is false when absent.
func (g *ggufFile) metaUint(key string) (int, bool, error) {
	v, ok := g.meta[key]
	if !ok {
		return 0, false, nil
	}
	n, isInt := v.(int64)
	if !isInt || n < 0 || n > 1<<31 {
		return 0, true, errors.Errorf("%s is %v, want a non-negative integer", key, v)
	}
	return int(n), true, nil
}

// metaPerLayer reads a key that is a scalar or an array of n entries.
func (g *ggufFile) metaPerLayer(key string, n int) ([]int, bool, error) {
	switch v := g.meta[key].(type) {
	case nil:
		return nil, false, nil
	case []int64:
		if len(v) != n {
			return nil, true, errors.Errorf("%s has %d entries, block_count is %d", key, len(v), n)
		}
		out := make([]int, n)
		for i, x := range v {
			if x < 0 || x > 1<<24 {
				return nil, true, errors.Errorf("%s[%d] = %d is out of range", key, i, x)
			}
			out[i] = int(x)
		}
		return out, true, nil
	}
	s, _, err := g.metaUint(key)
	if err != nil {
		return nil, true, err
	}
	out := make([]int, n)
	for i := range out {
		out[i] = s
	}
	return out, true, nil
}

func (g *ggufFile) metaFloat(key string, def float64) (float64, error) {
	switch v := g.meta[key].(type) {
	case nil:
		return def, nil
	case float64:
		return v, nil
	}
	return 0, errors.Errorf("%s is %v, want a number", key, g.meta[key])
}

// config resolves the model configuration from a file's metadata (architecture llama, qwen2 or
// deci: the families' GGUF names, arch.FromGGUF), with the family's names and whether q/k rows are
// stored in adjacent pairs (rope "norm" mode).
func (g *ggufFile) config(f io.ReaderAt) (cfg *config.Config, names *arch.GGUFNames, pairs bool, err error) {
	ggufArch, _ := g.meta["general.architecture"].(string)
	// Layers with q/k/v biases and no attention output bias are Qwen2's (llama.cpp's own names).
	qkvBias, oBias := false, false
	for _, t := range g.infos {
		qkvBias = qkvBias || strings.HasSuffix(t.name, ".attn_q.bias") || strings.HasSuffix(t.name, ".attn_k.bias") || strings.HasSuffix(t.name, ".attn_v.bias")
		oBias = oBias || strings.HasSuffix(t.name, ".attn_output.bias")
	}
	qkvOnly := qkvBias && !oBias
	fam, err := arch.FromGGUF(ggufArch, qkvOnly)
	if err != nil {
		return nil, nil, false, err
	}
	names = fam.GGUF()
	pairs = ggufArch != names.Arch || !names.HalfSplitRoPE
	cfg, err = g.configOf(f, fam, ggufArch, names, qkvOnly)
	return cfg, names, pairs, err
}

// configOf reads the sizes of a file of family fam.
func (g *ggufFile) configOf(f io.ReaderAt, fam arch.Family, ggufArch string, names *arch.GGUFNames, qkvOnly bool) (*config.Config, error) {
	if s, ok := g.meta[ggufArch+".rope.scaling.type"].(string); ok && s != "none" {
		return nil, errors.Errorf("%s.rope.scaling.type %q is not supported on input", ggufArch, s)
	}
	p := ggufArch + "."
	L, ok, err := g.metaUint(p + "block_count")
	if err == nil && (!ok || L == 0) {
		err = errors.Errorf("%sblock_count is missing or 0", p)
	}
	if err == nil && L > config.MaxLayers {
		// Bounded before the per-layer tables are built from it.
		err = errors.Errorf("%sblock_count %d is implausible (more than %d)", p, L, config.MaxLayers)
	}
	if err != nil {
		return nil, err
	}
	D, _, err := g.metaUint(p + "embedding_length")
	if err != nil || D == 0 {
		return nil, errors.Errorf("%sembedding_length is missing or invalid", p)
	}
	cfg := &config.Config{Arch: fam.Name(), Hidden: D, BOS: -1, Raw: map[string]json.RawMessage{}}
	if cfg.Heads, ok, err = g.metaPerLayer(p+"attention.head_count", L); err != nil || !ok {
		return nil, errors.Errorf("%sattention.head_count is missing or invalid", p)
	}
	if cfg.KVHeads, ok, err = g.metaPerLayer(p+"attention.head_count_kv", L); err != nil {
		return nil, err
	} else if !ok {
		cfg.KVHeads = append([]int(nil), cfg.Heads...)
	}
	if cfg.Inter, ok, err = g.metaPerLayer(p+"feed_forward_length", L); err != nil || !ok {
		return nil, errors.Errorf("%sfeed_forward_length is missing or invalid", p)
	}
	for i := range L {
		if cfg.Heads[i] == 0 || cfg.KVHeads[i] == 0 || cfg.Inter[i] == 0 {
			return nil, errors.Errorf("layer %d has %d heads, %d key/value heads and %d MLP channels: llmpruner's models need at least one of each", i, cfg.Heads[i], cfg.KVHeads[i], cfg.Inter[i])
		}
	}
	hd, ok, err := g.metaUint(p + "attention.key_length")
	if err != nil {
		return nil, err
	}
	if !ok {
		if D%cfg.Heads[0] != 0 {
			return nil, errors.Errorf("%sattention.key_length is missing and embedding_length %d is not a multiple of head_count %d", p, D, cfg.Heads[0])
		}
		hd = D / cfg.Heads[0]
	}
	if v, ok, _ := g.metaUint(p + "attention.value_length"); ok && v != hd {
		return nil, errors.Errorf("%sattention.value_length %d differs from key_length %d", p, v, hd)
	}
	if r, ok, _ := g.metaUint(p + "rope.dimension_count"); ok && r != hd {
		return nil, errors.Errorf("%srope.dimension_count %d differs from the head size %d (partial RoPE is not supported)", p, r, hd)
	}
	cfg.HeadDim = hd
	if cfg.MaxPositions, _, err = g.metaUint(p + "context_length"); err != nil {
		return nil, err
	}
	if cfg.RopeTheta, err = g.metaFloat(p+"rope.freq_base", 10000); err != nil {
		return nil, err
	}
	if cfg.RMSNormEps, err = g.metaFloat(p+"attention.layer_norm_rms_epsilon", 1e-5); err != nil {
		return nil, err
	}
	if i, ok := g.byName[ggufRopeFreqs]; ok {
		// LLaMA-3.x rope scaling: one divisor per rotary pair.
		t := g.infos[i]
		if len(t.ne) != 1 || t.ne[0] != int64(hd/2) {
			return nil, errors.Errorf("%s has dims %v, want [%d] (head_dim/2)", ggufRopeFreqs, t.ne, hd/2)
		}
		factors := make([]float32, hd/2)
		if err := g.readFloat32(f, t, factors); err != nil {
			return nil, err
		}
		if cfg.RopeScaling, err = config.Llama3FromRopeFactors(cfg.RopeTheta, hd, factors); err != nil {
			return nil, errors.WithMessage(err, ggufRopeFreqs)
		}
	}
	emb, ok := g.byName["token_embd.weight"]
	if !ok || len(g.infos[emb].ne) != 2 || g.infos[emb].ne[0] != int64(D) {
		return nil, errors.New("token_embd.weight is missing or not [embedding_length, vocab]")
	}
	cfg.Vocab = int(g.infos[emb].ne[1])
	for _, t := range g.infos {
		if hf, _, ok := hfNameOfGGUF(names, t.name); ok {
			if ht, _ := parseHFName(names, hf); ht.param == "bias" {
				if ht.module == "self_attn.o_proj" || ht.module == "self_attn.q_proj" || ht.module == "self_attn.k_proj" || ht.module == "self_attn.v_proj" {
					cfg.AttnBias = true
				} else {
					cfg.MLPBias = true
				}
			}
		}
	}
	cfg.QKVBiasOnly = qkvOnly
	if err := arch.Validate(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// vocab reads the tokenizer.ggml.* metadata; nil when the file has no tokenizer.
func (g *ggufFile) vocab() (*tokenizer.GGUFVocab, error) {
	model, ok := g.meta["tokenizer.ggml.model"].(string)
	if !ok {
		return nil, nil
	}
	v := &tokenizer.GGUFVocab{Model: model, BOS: -1, EOS: -1, UNK: -1, PAD: -1, AddBOS: true, AddSpacePrefix: model == "llama"}
	v.Pre, _ = g.meta["tokenizer.ggml.pre"].(string)
	v.Tokens, _ = g.meta["tokenizer.ggml.tokens"].([]string)
	if v.Tokens == nil {
		return nil, errors.New("tokenizer.ggml.tokens is missing")
	}
	if s, ok := g.meta["tokenizer.ggml.scores"].([]float64); ok {
		if len(s) != len(v.Tokens) {
			return nil, errors.Errorf("tokenizer.ggml.scores has %d entries for %d tokens", len(s), len(v.Tokens))
		}
		for _, x := range s {
			v.Scores = append(v.Scores, float32(x))
		}
	}
	if t, ok := g.meta["tokenizer.ggml.token_type"].([]int64); ok {
		if len(t) != len(v.Tokens) {
			return nil, errors.Errorf("tokenizer.ggml.token_type has %d entries for %d tokens", len(t), len(v.Tokens))
		}
		for _, x := range t {
			v.Types = append(v.Types, int32(x))
		}
	}
	v.Merges, _ = g.meta["tokenizer.ggml.merges"].([]string)
	for key, dst := range map[string]*int{"bos_token_id": &v.BOS, "eos_token_id": &v.EOS, "unknown_token_id": &v.UNK, "padding_token_id": &v.PAD} {
		id, ok, err := g.metaUint("tokenizer.ggml." + key)
		if err != nil {
			return nil, err
		}
		if ok {
			if id >= len(v.Tokens) {
				return nil, errors.Errorf("tokenizer.ggml.%s %d is not a token id (%d tokens)", key, id, len(v.Tokens))
			}
			*dst = id
		}
	}
	for key, dst := range map[string]*bool{"add_bos_token": &v.AddBOS, "add_eos_token": &v.AddEOS, "add_space_prefix": &v.AddSpacePrefix} {
		if b, ok := g.meta["tokenizer.ggml."+key].(bool); ok {
			*dst = b
		}
	}
	v.ChatTemplate, _ = g.meta["tokenizer.chat_template"].(string)
	return v, nil
}
