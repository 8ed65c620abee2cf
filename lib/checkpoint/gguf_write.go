package checkpoint

import (
	"bufio"
	"fmt"
	"os"
	"slices"

	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/atomicfile"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/tokenizer"
	"github.com/pkg/errors"
)

// GGUFOptions controls SaveGGUF.
type GGUFOptions struct {
	// Type stores the weight matrices (embeddings included): GGUFF32 (the zero value), GGUFF16,
	// GGUFBF16 or GGUFQ8_0. Norms and other 1-D tensors are always F32. A Q8_0 matrix whose rows
	// are not a multiple of 32 long (e.g. down_proj of a pruned MLP) is stored F16 instead, as
	// llama.cpp's own converter does.
	Type GGUFType
	// Vocab is the tokenizer metadata; nil writes none (llama.cpp then cannot tokenize text).
	Vocab *tokenizer.GGUFVocab
	// Name is general.name.
	Name string
}

// GGUFResult says what SaveGGUF wrote.
type GGUFResult struct {
	Arch   string // the family's architecture ("llama", "qwen2") or its per-layer one ("deci")
	Layers int    // block_count (layers with neither attention nor MLP are left out)
	// F16Fallback lists the matrices stored F16 because Q8_0 needs rows of a multiple of 32.
	F16Fallback []string
	// Placeholders lists the zero-weight stand-ins written where llama.cpp has no way to say
	// "nothing here" (see SaveGGUF).
	Placeholders []string
	// Notes are differences between llama.cpp's architecture and the model that the caller should
	// tell (Mistral's sliding window, which llama.cpp's llama and deci graphs do not have).
	Notes []string
	Bytes int64 // file size
}

// ggufLayer is how one decoder layer is written.
type ggufLayer struct {
	src                int // layer index in the model
	heads, kvHeads, ff int // as written (placeholders included)
	zeroAttn, zeroMLP  bool
}

// ggufTensor is one tensor of the file being written.
type ggufTensor struct {
	name    string
	src     string    // Hugging Face name, "" for data
	data    []float32 // values of a synthetic tensor (nil with src: read from get)
	hfShape []int     // expected Hugging Face shape of src
	ne      []int64   // GGUF dims, fastest-varying first
	typ     GGUFType
	rotary  int // >0: head_dim of q/k rows to reorder into pairs
	offset  int64
	size    int64
}

// SaveGGUF writes a model of a family with GGUF names (arch.Family.GGUF: LLaMA, Llama-3.x and
// Mistral as llama.cpp's "llama", Qwen2 as its "qwen2"; Hugging Face tensor names, layouts and
// config) as a llama.cpp GGUF v3 file, atomically (a temporary sibling renamed into place), reading
// one tensor at a time through get.
//
// Architecture: the family's when every layer has the same head, key/value-head and MLP sizes (the
// widest support: llama.cpp, Ollama, LM Studio, …) and, for qwen2, heads·head_dim = hidden_size;
// else the per-layer "deci" with INT32 arrays deci.attention.head_count,
// deci.attention.head_count_kv and deci.feed_forward_length (llama.cpp builds each deci layer from
// its own entry). attention.key_length, attention.value_length and rope.dimension_count always
// hold head_dim. llama and deci rotate adjacent pairs (rope "norm"): q and k rows (and biases) go
// from Hugging Face's half-split RoPE layout to interleaved pairs, per head; qwen2 rotates halves
// as Hugging Face does and gets them unchanged. Biases are written as blk.N.*.bias, which
// llama.cpp's llama, qwen2 and deci graphs add. LLaMA-3 rope scaling is rope_freqs.weight.
//
// Layers pruned to nothing: a layer with no heads is deci's attention-free layer, except the
// first layer (llama.cpp takes the head size from layer 0's head count) or one whose o_proj keeps
// a bias: those get one attention head whose weights are all zero, which adds exactly nothing (plus
// the bias). A layer with no MLP channels gets one zero MLP channel, because deci skips the whole
// layer, attention included, when its MLP width is 0. A layer with neither (and no bias) computes
// the identity and is left out; the layers after it are renumbered.
func SaveGGUF(path string, cfg *config.Config, names []string, get GetFunc, opts GGUFOptions) (*GGUFResult, error) {
	res, tensors, meta, err := planGGUF(cfg, names, opts)
	if err != nil {
		return nil, errors.WithMessagef(err, "saving %s", path)
	}
	err = atomicfile.Write(path, 0o644, func(f *os.File) error {
		return writeGGUF(f, meta, tensors, get)
	})
	if err != nil {
		return nil, errors.WithMessagef(err, "saving %s", path)
	}
	if st, err := os.Stat(path); err == nil {
		res.Bytes = st.Size()
	}
	return res, nil
}

// planGGUF decides the layers, the tensors (names, types, offsets) and the metadata.
func planGGUF(cfg *config.Config, names []string, opts GGUFOptions) (*GGUFResult, []*ggufTensor, ggufMeta, error) {
	fam, err := arch.ByName(cfg.Arch)
	if err != nil {
		return nil, nil, nil, err
	}
	g := fam.GGUF()
	if g.Arch == "" {
		return nil, nil, nil, errors.Errorf("%s models cannot be written as GGUF: %s", fam.Title(), g.Unsupported)
	}
	if _, ok := opts.Type.rowBytes(q8Block); !ok {
		return nil, nil, nil, errors.Errorf("GGUF tensor type %s is not supported (f32, f16, bf16 or q8_0)", opts.Type)
	}
	byLayer := map[int]map[string]hfTensor{}
	global := map[string]bool{}
	for _, n := range names {
		t, ok := parseHFName(g, n)
		if !ok {
			return nil, nil, nil, errors.Errorf("tensor %q has no place in llama.cpp's %s graph", n, g.Arch)
		}
		if t.layer < 0 {
			global[n] = true
			continue
		}
		if t.layer >= cfg.NumLayers() {
			return nil, nil, nil, errors.Errorf("tensor %q: the config has %d layers", n, cfg.NumLayers())
		}
		if byLayer[t.layer] == nil {
			byLayer[t.layer] = map[string]hfTensor{}
		}
		byLayer[t.layer][n] = t
	}
	for _, n := range []string{"model.embed_tokens.weight", "model.norm.weight"} {
		if !global[n] {
			return nil, nil, nil, errors.Errorf("tensor %q is missing", n)
		}
	}
	layers, err := ggufLayers(cfg, byLayer)
	if err != nil {
		return nil, nil, nil, err
	}
	D, V, hd := cfg.Hidden, cfg.Vocab, cfg.HeadDim
	llama3 := cfg.RopeScaling.Kind() == "llama3"
	res := &GGUFResult{Arch: g.Arch, Layers: len(layers)}
	for _, l := range layers {
		f := layers[0]
		if l.heads != f.heads || l.kvHeads != f.kvHeads || l.ff != f.ff || l.heads == 0 || l.zeroAttn || l.zeroMLP ||
			g.SquareAttention && l.heads*hd != D || g.HalfSplitRoPE && llama3 {
			res.Arch = g.PerLayerArch
		}
	}
	if res.Arch == "" {
		return nil, nil, nil, errors.Errorf("%s models whose layers differ (or whose attention width differs from hidden_size) cannot be written as GGUF: llama.cpp's %s architecture sizes every layer alike", fam.Title(), g.Arch)
	}
	perLayer := res.Arch != g.Arch
	if w := cfg.SlidingWindow; w > 0 && (cfg.MaxPositions <= 0 || w < cfg.MaxPositions) {
		res.Notes = append(res.Notes, fmt.Sprintf("llama.cpp's %s architecture has no sliding-window attention: it computes as the model for contexts up to sliding_window = %d tokens, with full attention beyond", res.Arch, w))
	}
	// q/k rows go to adjacent pairs unless the architecture rotates halves as Hugging Face does.
	pairs := perLayer || !g.HalfSplitRoPE
	var out []*ggufTensor
	addHF := func(name string, blk int, t hfTensor, hfShape []int) {
		gt := &ggufTensor{name: t.ggufName(g, blk), src: name, hfShape: hfShape, typ: GGUFF32}
		for i := len(hfShape) - 1; i >= 0; i-- {
			gt.ne = append(gt.ne, int64(hfShape[i]))
		}
		if t.rotary() && pairs {
			gt.rotary = hd
		}
		out = append(out, gt)
	}
	addZeros := func(name string, ne ...int64) {
		n := int64(1)
		for _, d := range ne {
			n *= d
		}
		out = append(out, &ggufTensor{name: name, data: make([]float32, n), ne: ne, typ: GGUFF32})
	}
	addHF("model.embed_tokens.weight", -1, hfTensor{layer: -1, module: "model.embed_tokens.weight"}, []int{V, D})
	for blk, l := range layers {
		i := l.src
		hfName := func(module, param string) string { return fmt.Sprintf("model.layers.%d.%s.%s", i, module, param) }
		has := func(module, param string) bool { _, ok := byLayer[i][hfName(module, param)]; return ok }
		add := func(module, param string, shape ...int) {
			n := hfName(module, param)
			if _, ok := byLayer[i][n]; !ok {
				return
			}
			addHF(n, blk, byLayer[i][n], shape)
		}
		H, KV, F := cfg.Heads[i]*hd, cfg.KVHeads[i]*hd, cfg.Inter[i]
		switch {
		case l.zeroAttn:
			p := fmt.Sprintf("blk.%d.", blk)
			addZeros(p+"attn_norm.weight", int64(D))
			addZeros(p+"attn_q.weight", int64(D), int64(hd))
			addZeros(p+"attn_k.weight", int64(D), int64(hd))
			addZeros(p+"attn_v.weight", int64(D), int64(hd))
			addZeros(p+"attn_output.weight", int64(hd), int64(D))
			res.Placeholders = append(res.Placeholders, fmt.Sprintf("layer %d: one zero attention head (it has none)", i))
		case l.heads > 0:
			for _, m := range []string{"input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"} {
				if !has(m, "weight") {
					return nil, nil, nil, errors.Errorf("tensor %q is missing", hfName(m, "weight"))
				}
			}
			add("input_layernorm", "weight", D)
			add("self_attn.q_proj", "weight", H, D)
			add("self_attn.k_proj", "weight", KV, D)
			add("self_attn.v_proj", "weight", KV, D)
			add("self_attn.o_proj", "weight", D, H)
			add("self_attn.q_proj", "bias", H)
			add("self_attn.k_proj", "bias", KV)
			add("self_attn.v_proj", "bias", KV)
		}
		if l.heads > 0 {
			add("self_attn.o_proj", "bias", D)
		}
		if l.zeroMLP {
			p := fmt.Sprintf("blk.%d.", blk)
			addZeros(p+"ffn_norm.weight", int64(D))
			addZeros(p+"ffn_gate.weight", int64(D), 1)
			addZeros(p+"ffn_up.weight", int64(D), 1)
			addZeros(p+"ffn_down.weight", 1, int64(D))
			res.Placeholders = append(res.Placeholders, fmt.Sprintf("layer %d: one zero MLP channel (it has none)", i))
		} else {
			for _, m := range []string{"post_attention_layernorm", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"} {
				if !has(m, "weight") {
					return nil, nil, nil, errors.Errorf("tensor %q is missing", hfName(m, "weight"))
				}
			}
			add("post_attention_layernorm", "weight", D)
			add("mlp.gate_proj", "weight", F, D)
			add("mlp.up_proj", "weight", F, D)
			add("mlp.down_proj", "weight", D, F)
			add("mlp.gate_proj", "bias", F)
			add("mlp.up_proj", "bias", F)
		}
		add("mlp.down_proj", "bias", D)
	}
	addHF("model.norm.weight", -1, hfTensor{layer: -1, module: "model.norm.weight"}, []int{D})
	if global["lm_head.weight"] {
		addHF("lm_head.weight", -1, hfTensor{layer: -1, module: "lm_head.weight"}, []int{V, D})
	}
	if llama3 {
		out = append(out, &ggufTensor{name: ggufRopeFreqs, data: cfg.Llama3RopeFactors(), ne: []int64{int64(hd / 2)}, typ: GGUFF32})
	}
	// Types and offsets.
	var offset int64
	for _, t := range out {
		if len(t.ne) == 2 && t.src != "" {
			t.typ = opts.Type
			if _, ok := t.typ.rowBytes(t.ne[0]); !ok {
				t.typ = GGUFF16
				res.F16Fallback = append(res.F16Fallback, t.name)
			}
		}
		n := int64(1)
		for _, d := range t.ne[1:] {
			n *= d
		}
		row, _ := t.typ.rowBytes(t.ne[0])
		t.size = row * n
		t.offset = offset
		offset = alignUp(offset+t.size, ggufAlignment)
	}
	meta, err := ggufMetadata(cfg, layers, res.Arch, perLayer, opts)
	if err != nil {
		return nil, nil, nil, err
	}
	return res, out, meta, nil
}

// ggufLayers decides how each layer is written (see SaveGGUF).
func ggufLayers(cfg *config.Config, byLayer map[int]map[string]hfTensor) ([]ggufLayer, error) {
	var layers []ggufLayer
	for i := range cfg.NumLayers() {
		h, kv, ff := cfg.Heads[i], cfg.KVHeads[i], cfg.Inter[i]
		switch {
		case h < 0 || kv < 0 || ff < 0:
			return nil, errors.Errorf("layer %d: negative size (heads %d, kv-heads %d, intermediate %d)", i, h, kv, ff)
		case h > 0 && (kv == 0 || h%kv != 0):
			return nil, errors.Errorf("layer %d: %d heads is not a multiple of %d key/value heads", i, h, kv)
		}
		hasBias := func(module string) bool {
			_, ok := byLayer[i][fmt.Sprintf("model.layers.%d.%s.bias", i, module)]
			return ok
		}
		oBias, downBias := hasBias("self_attn.o_proj"), hasBias("mlp.down_proj")
		if h == 0 && ff == 0 && !oBias && !downBias {
			continue // the identity: left out
		}
		l := ggufLayer{src: i, heads: h, kvHeads: kv, ff: ff}
		if h == 0 {
			l.kvHeads = 0
			if len(layers) == 0 || oBias {
				l.zeroAttn, l.heads, l.kvHeads = true, 1, 1
			}
		}
		if ff == 0 {
			l.zeroMLP, l.ff = true, 1
		}
		layers = append(layers, l)
	}
	if len(layers) == 0 {
		return nil, errors.New("every layer is empty (no heads and no MLP channels)")
	}
	return layers, nil
}

// ggufMetadata builds the key/value metadata.
func ggufMetadata(cfg *config.Config, layers []ggufLayer, arch string, perLayer bool, opts GGUFOptions) (ggufMeta, error) {
	var m ggufMeta
	m.add("general.architecture", arch)
	if opts.Name != "" {
		m.add("general.name", opts.Name)
	}
	m.add("general.file_type", opts.Type.fileType())
	if opts.Type == GGUFQ8_0 {
		m.add("general.quantization_version", uint32(2))
	}
	m.add("general.alignment", uint32(ggufAlignment))
	ctx := cfg.MaxPositions
	if ctx <= 0 {
		ctx = 2048
	}
	m.add(arch+".context_length", uint32(ctx))
	m.add(arch+".embedding_length", uint32(cfg.Hidden))
	m.add(arch+".block_count", uint32(len(layers)))
	m.add(arch+".vocab_size", uint32(cfg.Vocab))
	heads, kv, ff := make([]int32, len(layers)), make([]int32, len(layers)), make([]int32, len(layers))
	for i, l := range layers {
		heads[i], kv[i], ff[i] = int32(l.heads), int32(l.kvHeads), int32(l.ff)
	}
	if !perLayer {
		m.add(arch+".feed_forward_length", uint32(ff[0]))
		m.add(arch+".attention.head_count", uint32(heads[0]))
		m.add(arch+".attention.head_count_kv", uint32(kv[0]))
	} else {
		m.add(arch+".feed_forward_length", ff)
		m.add(arch+".attention.head_count", heads)
		m.add(arch+".attention.head_count_kv", kv)
	}
	m.add(arch+".attention.key_length", uint32(cfg.HeadDim))
	m.add(arch+".attention.value_length", uint32(cfg.HeadDim))
	m.add(arch+".rope.dimension_count", uint32(cfg.HeadDim))
	m.add(arch+".rope.freq_base", float32(cfg.RopeTheta))
	m.add(arch+".attention.layer_norm_rms_epsilon", float32(cfg.RMSNormEps))
	if opts.Vocab != nil {
		if err := addVocab(&m, opts.Vocab, cfg.Vocab); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// addVocab adds the tokenizer.ggml.* keys; a vocabulary shorter than the embedding is padded
// with unused "[PADn]" tokens (llama.cpp needs one token per embedding row).
func addVocab(m *ggufMeta, v *tokenizer.GGUFVocab, modelVocab int) error {
	n := len(v.Tokens)
	if n > modelVocab {
		return errors.Errorf("the tokenizer has %d tokens but the model's embedding only %d rows", n, modelVocab)
	}
	if len(v.Types) != n || (v.Scores != nil && len(v.Scores) != n) {
		return errors.Errorf("tokenizer metadata: %d tokens, %d types, %d scores", n, len(v.Types), len(v.Scores))
	}
	tokens, types, scores := slices.Clone(v.Tokens), slices.Clone(v.Types), slices.Clone(v.Scores)
	for i := n; i < modelVocab; i++ {
		tokens = append(tokens, fmt.Sprintf("[PAD%d]", i))
		types = append(types, tokenizer.GGUFTokenUnused)
		if scores != nil {
			scores = append(scores, 0)
		}
	}
	m.add("tokenizer.ggml.model", v.Model)
	m.add("tokenizer.ggml.pre", v.Pre)
	m.add("tokenizer.ggml.tokens", tokens)
	if scores != nil {
		m.add("tokenizer.ggml.scores", scores)
	}
	m.add("tokenizer.ggml.token_type", types)
	if len(v.Merges) > 0 {
		m.add("tokenizer.ggml.merges", v.Merges)
	}
	for _, id := range []struct {
		key string
		id  int
	}{{"bos_token_id", v.BOS}, {"eos_token_id", v.EOS}, {"unknown_token_id", v.UNK}, {"padding_token_id", v.PAD}} {
		if id.id >= 0 {
			m.add("tokenizer.ggml."+id.key, uint32(id.id))
		}
	}
	m.add("tokenizer.ggml.add_bos_token", v.AddBOS)
	m.add("tokenizer.ggml.add_eos_token", v.AddEOS)
	if v.Model == "llama" {
		m.add("tokenizer.ggml.add_space_prefix", v.AddSpacePrefix)
	}
	if v.ChatTemplate != "" {
		m.add("tokenizer.chat_template", v.ChatTemplate)
	}
	return nil
}

// writeGGUF writes the header, then each tensor's data (read, converted and encoded one at a time).
func writeGGUF(f *os.File, meta ggufMeta, ts []*ggufTensor, get GetFunc) error {
	w := bufio.NewWriterSize(f, 1<<20)
	var err error
	h := []byte("GGUF")
	h = appendUint32(h, ggufVersion)
	h = appendUint64(h, uint64(len(ts)))
	h = appendUint64(h, uint64(len(meta)))
	for _, kv := range meta {
		h = appendGGUFString(h, kv.key)
		if h, err = appendGGUFValue(h, kv.val); err != nil {
			return errors.WithMessagef(err, "metadata %s", kv.key)
		}
	}
	for _, t := range ts {
		h = appendGGUFString(h, t.name)
		h = appendUint32(h, uint32(len(t.ne)))
		for _, d := range t.ne {
			h = appendUint64(h, uint64(d))
		}
		h = appendUint32(h, uint32(t.typ))
		h = appendUint64(h, uint64(t.offset))
	}
	h = append(h, make([]byte, alignUp(int64(len(h)), ggufAlignment)-int64(len(h)))...)
	if _, err := w.Write(h); err != nil {
		return errors.Wrap(err, "writing the GGUF header")
	}
	written := int64(0)
	for _, t := range ts {
		if _, err := w.Write(make([]byte, t.offset-written)); err != nil {
			return errors.Wrap(err, "writing")
		}
		data, err := ggufTensorBytes(t, get)
		if err != nil {
			return err
		}
		if int64(len(data)) != t.size {
			return errors.Errorf("tensor %s: %d bytes encoded, %d planned", t.name, len(data), t.size)
		}
		if _, err := w.Write(data); err != nil {
			return errors.Wrapf(err, "writing tensor %s", t.name)
		}
		written = t.offset + t.size
	}
	return errors.Wrap(w.Flush(), "writing")
}

// ggufTensorBytes reads (or makes) one tensor's values and encodes them.
func ggufTensorBytes(t *ggufTensor, get GetFunc) ([]byte, error) {
	x := t.data
	if t.src != "" {
		src, err := get(t.src)
		if err != nil {
			return nil, errors.WithMessagef(err, "tensor %q", t.src)
		}
		if src == nil {
			return nil, errors.Errorf("tensor %q: got nil", t.src)
		}
		if !slices.Equal(src.Shape().Dimensions, t.hfShape) {
			return nil, errors.Errorf("tensor %q has shape %v, the config implies %v", t.src, src.Shape().Dimensions, t.hfShape)
		}
		if x, err = float32sOf(src); err != nil {
			return nil, errors.WithMessagef(err, "tensor %q", t.src)
		}
		if t.rotary > 0 {
			cols := 1
			if len(t.hfShape) == 2 {
				cols = t.hfShape[1]
			}
			rotaryToPairs(x, t.rotary, cols)
		}
	}
	return encodeGGUF(make([]byte, 0, t.size), x, t.typ)
}

// float32sOf copies a floating-point tensor's values as float32.
func float32sOf(t *tensors.Tensor) ([]float32, error) {
	out := make([]float32, t.Shape().Size())
	var err error
	ferr := t.ConstFlatData(func(flat any) {
		switch s := flat.(type) {
		case []float32:
			copy(out, s)
		case []float64:
			for i, v := range s {
				out[i] = float32(v)
			}
		case []float16.Float16:
			for i, v := range s {
				out[i] = v.Float32()
			}
		case []bfloat16.BFloat16:
			for i, v := range s {
				out[i] = v.Float32()
			}
		default:
			err = errors.Errorf("dtype %s is not a floating-point type", t.DType())
		}
	})
	if ferr != nil {
		return nil, ferr
	}
	return out, err
}

func appendUint32(b []byte, v uint32) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}

func appendUint64(b []byte, v uint64) []byte {
	return appendUint32(appendUint32(b, uint32(v)), uint32(v>>32))
}
