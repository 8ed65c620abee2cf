package checkpoint

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/pkg/errors"
)

// llama2cMagic opens llama2.c "version 1+" files ("ak42" as a little-endian uint32).
const llama2cMagic = 0x616b3432

// llama2cV1HeaderSize is the fixed header size of llama2.c version 1+ files.
const llama2cV1HeaderSize = 256

// ConfigSource is implemented by Readers whose file format carries the model configuration
// (llama2.c .bin files).
type ConfigSource interface {
	Config() *config.Config
}

// llama2cHeader holds the seven header integers.
type llama2cHeader struct {
	Dim, Hidden, Layers, Heads, KVHeads, Vocab, SeqLen int
	Shared                                             bool // classifier tied to the embeddings
	Version                                            int
	GroupSize                                          int // Q8_0 group size (version 2)
}

// parseLlama2CV0 reads the 7-int32 legacy header (negative vocab = untied classifier).
func parseLlama2CV0(b []byte) llama2cHeader {
	v := make([]int, 7)
	for i := range v {
		v[i] = int(int32(binary.LittleEndian.Uint32(b[4*i:])))
	}
	h := llama2cHeader{Dim: v[0], Hidden: v[1], Layers: v[2], Heads: v[3], KVHeads: v[4], Vocab: v[5], SeqLen: v[6], Shared: v[5] > 0}
	if h.Vocab < 0 {
		h.Vocab = -h.Vocab
	}
	return h
}

func (h llama2cHeader) validate() error {
	const limit = 1 << 24
	for _, v := range []struct {
		name string
		val  int
	}{{"dim", h.Dim}, {"hidden_dim", h.Hidden}, {"n_layers", h.Layers}, {"n_heads", h.Heads}, {"n_kv_heads", h.KVHeads}, {"vocab_size", h.Vocab}, {"seq_len", h.SeqLen}} {
		if v.val <= 0 || v.val > limit {
			return errors.Errorf("header field %s = %d is out of range", v.name, v.val)
		}
	}
	if h.Dim%h.Heads != 0 || (h.Dim/h.Heads)%2 != 0 {
		return errors.Errorf("dim %d is not a multiple of 2·n_heads (n_heads %d)", h.Dim, h.Heads)
	}
	if h.Heads%h.KVHeads != 0 {
		return errors.Errorf("n_heads %d is not a multiple of n_kv_heads %d", h.Heads, h.KVHeads)
	}
	return nil
}

// checkGroupSize validates the Q8_0 group size of a version 2 file: every quantized matrix must
// split into whole groups.
func (h llama2cHeader) checkGroupSize() error {
	g := h.GroupSize
	if g <= 0 || h.Dim%g != 0 {
		return errors.Errorf("invalid Q8_0 group size %d (dim %d)", g, h.Dim)
	}
	return nil
}

// llama2cTensor is one tensor's place in the file.
type llama2cTensor struct {
	info    TensorInfo
	offset  int64 // float32 data, or int8 data when quantized
	permute int   // >0: permute rows from interleaved-pair RoPE to rotate_half with this many heads
	// Q8_0 (version 2): int8 values at offset, one float32 scale per group at scaleOffset.
	quantized   bool
	scaleOffset int64
	groupSize   int
}

// layout lists the tensors in file order starting at base and returns the end offset.
func (h llama2cHeader) layout(path string, base int64) ([]llama2cTensor, int64) {
	D, F, L, V := h.Dim, h.Hidden, h.Layers, h.Vocab
	hd := D / h.Heads
	kvD := h.KVHeads * hd
	var out []llama2cTensor
	off := base
	quantized := false // set while laying out version 2's int8 matrices
	add := func(name string, permute int, shape ...int) {
		n := int64(1)
		for _, d := range shape {
			n *= int64(d)
		}
		out = append(out, llama2cTensor{info: TensorInfo{Name: name, DType: dtypes.Float32, Shape: shape, File: path},
			offset: off, permute: permute, quantized: quantized, groupSize: h.GroupSize})
		if quantized {
			off += n
		} else {
			off += 4 * n
		}
	}
	perLayer := func(format string, permute int, shape ...int) {
		for i := range L {
			add(fmt.Sprintf(format, i), permute, shape...)
		}
	}
	embed := func() { add("model.embed_tokens.weight", 0, V, D) }
	attnNorm := func() { perLayer("model.layers.%d.input_layernorm.weight", 0, D) }
	ffnNorm := func() { perLayer("model.layers.%d.post_attention_layernorm.weight", 0, D) }
	finalNorm := func() { add("model.norm.weight", 0, D) }
	attention := func() {
		perLayer("model.layers.%d.self_attn.q_proj.weight", h.Heads, D, D)
		perLayer("model.layers.%d.self_attn.k_proj.weight", h.KVHeads, kvD, D)
		perLayer("model.layers.%d.self_attn.v_proj.weight", 0, kvD, D)
		perLayer("model.layers.%d.self_attn.o_proj.weight", 0, D, D)
	}
	mlp := func() {
		perLayer("model.layers.%d.mlp.gate_proj.weight", 0, F, D)
		perLayer("model.layers.%d.mlp.down_proj.weight", 0, D, F)
		perLayer("model.layers.%d.mlp.up_proj.weight", 0, F, D)
	}
	classifier := func() {
		if !h.Shared {
			add("lm_head.weight", 0, V, D)
		}
	}
	switch h.Version {
	case 0:
		// run.c order: embeddings, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final,
		// freq_cis_real and freq_cis_imag ([seq_len, head_dim/2] each, unused), classifier.
		embed()
		attnNorm()
		attention()
		ffnNorm()
		mlp()
		finalNorm()
		off += 4 * int64(h.SeqLen) * int64(hd)
		classifier()
	case 1:
		attnNorm()
		ffnNorm()
		finalNorm()
		embed()
		attention()
		mlp()
		classifier()
	case 2:
		// Norms in float32, then every matrix as int8, then all their float32 group scales.
		attnNorm()
		ffnNorm()
		finalNorm()
		first := len(out)
		quantized = true
		embed()
		attention()
		mlp()
		classifier()
		for i := first; i < len(out); i++ {
			n, _ := numElements(out[i].info.Shape)
			out[i].scaleOffset = off
			off += 4 * (n / int64(h.GroupSize))
		}
	}
	return out, off
}

// impliedSize is the file size the header implies (the end offset layout returns), computed
// arithmetically so that a header claiming millions of layers is rejected by comparing it with
// the file size before any per-tensor table is built. ok is false when it exceeds 2⁶².
func (h llama2cHeader) impliedSize(base int64) (size int64, ok bool) {
	D, F, L, V := float64(h.Dim), float64(h.Hidden), float64(h.Layers), float64(h.Vocab)
	kvD := float64(h.KVHeads) * D / float64(h.Heads)
	classifier := V * D
	if h.Shared {
		classifier = 0
	}
	norms := 2*L*D + D
	matrices := V*D + L*(2*D*D+2*kvD*D+3*F*D) + classifier // every q, k, v, o, w1, w2, w3 and embedding element
	var est float64
	switch h.Version {
	case 0:
		est = 4 * (norms + matrices + float64(h.SeqLen)*D/float64(h.Heads))
	case 1:
		est = 4 * (norms + matrices)
	default: // 2: int8 matrices and one float32 scale per group
		est = 4*norms + matrices + 4*matrices/float64(h.GroupSize)
	}
	if est+float64(base) > 1<<62 {
		return 0, false
	}
	// Exact integer arithmetic now that nothing can overflow.
	d, f, l, v, kv := int64(h.Dim), int64(h.Hidden), int64(h.Layers), int64(h.Vocab), int64(h.KVHeads)*int64(h.Dim/h.Heads)
	m := v*d + l*(2*d*d+2*kv*d+3*f*d)
	if !h.Shared {
		m += v * d
	}
	n := 2*l*d + d
	switch h.Version {
	case 0:
		return base + 4*(n+m+int64(h.SeqLen)*int64(h.Dim/h.Heads)), true
	case 1:
		return base + 4*(n+m), true
	default:
		// Each matrix has dim as one of its axes and dim is a multiple of the group size, so the
		// per-matrix group counts add up to m / group size.
		return base + 4*n + m + 4*(m/int64(h.GroupSize)), true
	}
}

// looksLikeLlama2CV0 reports whether head starts with a plausible legacy header whose implied
// size equals the file size.
func looksLikeLlama2CV0(head []byte, size int64) bool {
	h := parseLlama2CV0(head)
	if h.validate() != nil {
		return false
	}
	end, ok := h.impliedSize(28)
	return ok && end == size
}

// llama2cReader serves the tensors of a llama2.c file under Hugging Face names.
type llama2cReader struct {
	path    string
	f       *os.File
	cfg     *config.Config
	infos   []TensorInfo
	tensors map[string]llama2cTensor
}

// OpenLlama2C opens a llama2.c checkpoint: the legacy v0 header, or an "ak42" file of version 1
// (float32) or 2 (Q8_0 int8 groups, dequantized to float32 on read).
// The returned Reader implements ConfigSource; it serves tensors under Hugging Face names with
// q/k rows permuted from llama2.c's interleaved-pair RoPE to HF's rotate_half layout, and
// lm_head.weight only when the classifier is not shared.
func OpenLlama2C(path string) (Reader, error) {
	r, _, err := openLlama2C(path)
	if err != nil {
		return nil, err // not a typed nil *llama2cReader inside a non-nil Reader
	}
	return r, nil
}

// LoadLlama2C opens a llama2.c checkpoint and returns its configuration and Reader.
func LoadLlama2C(path string) (*config.Config, Reader, error) {
	r, cfg, err := openLlama2C(path)
	if err != nil {
		return nil, nil, err
	}
	return cfg, r, nil
}

func openLlama2C(path string) (*llama2cReader, *config.Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, errors.Wrap(err, "opening llama2.c checkpoint")
	}
	r, err := newLlama2CReader(path, f)
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	return r, r.cfg, nil
}

func newLlama2CReader(path string, f *os.File) (*llama2cReader, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, errors.Wrapf(err, "%s", path)
	}
	size := st.Size()
	buf := make([]byte, llama2cV1HeaderSize)
	n, _ := f.ReadAt(buf, 0)
	buf = buf[:n]
	var h llama2cHeader
	var base int64
	switch {
	case n >= 8 && binary.LittleEndian.Uint32(buf) == llama2cMagic:
		version := int(int32(binary.LittleEndian.Uint32(buf[4:])))
		if version != 1 && version != 2 {
			return nil, errors.Errorf("%s: llama2.c file version %d is not supported (supported: 0, 1 and 2)", path, version)
		}
		if n < llama2cV1HeaderSize {
			return nil, errors.Errorf("%s: llama2.c version %d file too short for its %d-byte header (%d bytes)", path, version, llama2cV1HeaderSize, size)
		}
		h = parseLlama2CV0(buf[8:])
		h.Shared = buf[36] != 0
		h.Version = version
		base = llama2cV1HeaderSize
		if version == 2 {
			h.GroupSize = int(int32(binary.LittleEndian.Uint32(buf[37:])))
			if err := h.checkGroupSize(); err != nil {
				return nil, errors.WithMessagef(err, "%s", path)
			}
		}
	case n >= 28:
		h = parseLlama2CV0(buf)
		base = 28
	default:
		return nil, errors.Errorf("%s: llama2.c file too short for its 28-byte header (%d bytes)", path, size)
	}
	if err := h.validate(); err != nil {
		return nil, errors.WithMessagef(err, "%s: invalid llama2.c header", path)
	}
	end, ok := h.impliedSize(base)
	if !ok || end != size {
		implied := fmt.Sprintf("%d bytes", end)
		if !ok {
			implied = "more than 2⁶² bytes"
		}
		return nil, errors.Errorf("%s: llama2.c header (dim %d, hidden %d, layers %d, heads %d, kv-heads %d, vocab %d, seq_len %d, shared classifier %v) implies %s, the file has %d",
			path, h.Dim, h.Hidden, h.Layers, h.Heads, h.KVHeads, h.Vocab, h.SeqLen, h.Shared, implied, size)
	}
	layout, end := h.layout(path, base)
	if end != size {
		return nil, errors.Errorf("%s: internal error: the llama2.c layout ends at byte %d, its size formula says %d", path, end, size)
	}
	r := &llama2cReader{path: path, f: f, cfg: h.config(), tensors: map[string]llama2cTensor{}}
	for _, t := range layout {
		r.tensors[t.info.Name] = t
		r.infos = append(r.infos, t.info)
	}
	sort.Slice(r.infos, func(i, j int) bool { return r.infos[i].Name < r.infos[j].Name })
	return r, nil
}

// config builds the LLaMA configuration llama2.c implies (RoPE theta 10000, RMSNorm eps 1e-5,
// BOS 1, EOS 2).
func (h llama2cHeader) config() *config.Config {
	per := func(v int) []int {
		out := make([]int, h.Layers)
		for i := range out {
			out[i] = v
		}
		return out
	}
	return &config.Config{
		Arch:         arch.Llama,
		Hidden:       h.Dim,
		Vocab:        h.Vocab,
		HeadDim:      h.Dim / h.Heads,
		Heads:        per(h.Heads),
		KVHeads:      per(h.KVHeads),
		Inter:        per(h.Hidden),
		RMSNormEps:   1e-5,
		RopeTheta:    10000,
		MaxPositions: h.SeqLen,
		TieEmbed:     h.Shared,
		BOS:          1,
		EOS:          []int{2},
		Raw:          map[string]json.RawMessage{},
	}
}

// Config implements ConfigSource.
func (r *llama2cReader) Config() *config.Config { return r.cfg.Clone() }

// Tensors implements Reader.
func (r *llama2cReader) Tensors() []TensorInfo { return cloneInfos(r.infos) }

// Read implements Reader.
func (r *llama2cReader) Read(name string) (*tensors.Tensor, error) { return r.readWith(name, nil) }

func (r *llama2cReader) readWith(name string, alloc Allocator) (*tensors.Tensor, error) {
	e, ok := r.tensors[name]
	if err := checkReadable(r.path, name, ok, r.f != nil); err != nil {
		return nil, err
	}
	return fillTensor(r.path, name, alloc, shapes.Make(dtypes.Float32, e.info.Shape...), func(buf []byte) error {
		var err error
		if e.quantized {
			err = r.dequantize(e, buf)
		} else {
			err = readFullAt(r.f, buf, e.offset)
		}
		if err == nil && e.permute > 0 {
			permuteRotaryRows(buf, e.permute, e.info.Shape[0], e.info.Shape[1]*4)
		}
		return err
	})
}

// dequantize reads a Q8_0 matrix into dst (float32 bytes): value = int8 · scale of its group.
func (r *llama2cReader) dequantize(e llama2cTensor, dst []byte) error {
	n := len(dst) / 4
	q := make([]byte, n)
	if err := readFullAt(r.f, q, e.offset); err != nil {
		return err
	}
	scales := make([]byte, 4*(n/e.groupSize))
	if err := readFullAt(r.f, scales, e.scaleOffset); err != nil {
		return err
	}
	for i := range n {
		s := math.Float32frombits(binary.LittleEndian.Uint32(scales[4*(i/e.groupSize):]))
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(float32(int8(q[i]))*s))
	}
	return nil
}

// Close implements Reader.
func (r *llama2cReader) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return errors.Wrapf(err, "closing %s", r.path)
}

// permuteRotaryRows reorders the rows of a [rows, rowBytes] matrix holding nHeads heads so that
// within each head, row 2j+c (llama2.c/Meta interleaved pairs) moves to c·half+j (HF rotate_half):
// w.view(nHeads, half, 2, cols).transpose(1, 2).
func permuteRotaryRows(buf []byte, nHeads, rows, rowBytes int) {
	headRows := rows / nHeads
	half := headRows / 2
	tmp := make([]byte, headRows*rowBytes)
	for h := range nHeads {
		head := buf[h*headRows*rowBytes : (h+1)*headRows*rowBytes]
		copy(tmp, head)
		for j := range half {
			for c := range 2 {
				src := (2*j + c) * rowBytes
				dst := (c*half + j) * rowBytes
				copy(head[dst:dst+rowBytes], tmp[src:src+rowBytes])
			}
		}
	}
}
