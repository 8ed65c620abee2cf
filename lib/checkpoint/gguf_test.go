package checkpoint

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/internal/testdata"
)

// TestRotaryPermutation: Hugging Face → pairs moves row c·hd/2+j of each head to 2j+c, and
// the inverse restores it.
func TestRotaryPermutation(t *testing.T) {
	// Two heads of head_dim 4, one column: HF rows [a0 a1 b0 b1] per head (a = first half).
	x := []float32{0, 1, 2, 3, 10, 11, 12, 13}
	rotaryToPairs(x, 4, 1)
	if want := []float32{0, 2, 1, 3, 10, 12, 11, 13}; !slices.Equal(x, want) {
		t.Fatalf("to pairs: %v, want %v", x, want)
	}
	rotaryToHalves(x, 4, 1)
	if want := []float32{0, 1, 2, 3, 10, 11, 12, 13}; !slices.Equal(x, want) {
		t.Fatalf("back to halves: %v", x)
	}
	// Rows of several columns move whole.
	y := []float32{0, 0, 1, 1, 2, 2, 3, 3}
	rotaryToPairs(y, 4, 2)
	if want := []float32{0, 0, 2, 2, 1, 1, 3, 3}; !slices.Equal(y, want) {
		t.Fatalf("2 columns: %v", y)
	}
}

// TestGGUFCodecs: F32 is exact; F16 and BF16 round to nearest even; Q8_0 stores round(x/d) with
// d = max|x|/127 in float16, as llama.cpp's quantize_row_q8_0_ref.
func TestGGUFCodecs(t *testing.T) {
	x := make([]float32, 64)
	for i := range x {
		x[i] = float32(i-20) / 7
	}
	x[5] = 1 + 1.0/2048 // halfway between two float16 values: rounds to even (1.0)
	for _, typ := range []GGUFType{GGUFF32, GGUFF16, GGUFBF16, GGUFQ8_0} {
		b, err := encodeGGUF(nil, x, typ)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := typ.rowBytes(int64(len(x))); int64(len(b)) != n {
			t.Fatalf("%s: %d bytes, want %d", typ, len(b), n)
		}
		y := make([]float32, len(x))
		if err := decodeGGUF(y, b, typ); err != nil {
			t.Fatal(err)
		}
		for i := range x {
			var tol float64
			switch typ {
			case GGUFF16:
				tol = math.Abs(float64(x[i])) / 2048
			case GGUFBF16:
				tol = math.Abs(float64(x[i])) / 256
			case GGUFQ8_0:
				tol = 43.0 / 7 / 127 / 2 * 1.01 // half a step of the block holding the largest |x|
			}
			if d := math.Abs(float64(y[i] - x[i])); d > tol {
				t.Errorf("%s: x[%d] = %g decoded %g (tolerance %g)", typ, i, x[i], y[i], tol)
			}
		}
		if typ == GGUFF16 && y[5] != 1 {
			t.Errorf("F16 of 1+2^-11 = %g, want 1 (round half to even)", y[5])
		}
	}
	// One Q8_0 block by hand: values -31..0 → d = 31/127, q = round(x/d).
	blk := make([]float32, 32)
	for i := range blk {
		blk[i] = float32(i - 31)
	}
	b, _ := encodeGGUF(nil, blk, GGUFQ8_0)
	d := float32(31) / 127
	if got := binary.LittleEndian.Uint16(b); got != 0x33D0 { // float16(0.2441) = 0x33D0
		t.Errorf("Q8_0 scale bits %#x, want 0x33d0 (float16 of %g)", got, d)
	}
	if int8(b[2]) != -127 || int8(b[2+31]) != 0 || int8(b[2+16]) != int8(math.Round(-15/float64(d))) {
		t.Errorf("Q8_0 values %d %d %d", int8(b[2]), int8(b[2+16]), int8(b[2+31]))
	}
	if _, err := encodeGGUF(nil, x[:40], GGUFQ8_0); err == nil {
		t.Error("Q8_0 of 40 values: no error")
	}
}

// stories260KTensors opens stories260K (Hugging Face names, float32) for the writer tests.
func stories260KTensors(t *testing.T) (*config.Config, Reader, []string, GetFunc) {
	t.Helper()
	cfg, r, err := LoadLlama2C(testdata.Path(t, "models/stories260K/stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	var names []string
	for _, ti := range r.Tensors() {
		names = append(names, ti.Name)
	}
	return cfg, r, names, r.Read
}

// TestGGUFRoundTripF32: HF → GGUF (F32) → HF returns every tensor bit for bit, and the config.
func TestGGUFRoundTripF32(t *testing.T) {
	cfg, r, names, get := stories260KTensors(t)
	path := filepath.Join(t.TempDir(), "m.gguf")
	res, err := SaveGGUF(path, cfg, names, get, GGUFOptions{Name: "stories260K"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Arch != "llama" || res.Layers != 5 || len(res.F16Fallback) != 0 {
		t.Errorf("result %+v", res)
	}
	back, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	got := back.(ConfigSource).Config()
	if !slices.Equal(got.Heads, cfg.Heads) || !slices.Equal(got.KVHeads, cfg.KVHeads) || !slices.Equal(got.Inter, cfg.Inter) ||
		got.HeadDim != cfg.HeadDim || got.Hidden != cfg.Hidden || got.Vocab != cfg.Vocab || got.TieEmbed != cfg.TieEmbed ||
		got.MaxPositions != cfg.MaxPositions || float32(got.RMSNormEps) != float32(cfg.RMSNormEps) || got.RopeTheta != cfg.RopeTheta {
		t.Errorf("config after the round trip:\n%v\nwant\n%v", got, cfg)
	}
	if len(back.Tensors()) != len(names) {
		t.Errorf("%d tensors back, %d written", len(back.Tensors()), len(names))
	}
	for _, n := range names {
		a, err := r.Read(n)
		if err != nil {
			t.Fatal(err)
		}
		b, err := back.Read(n)
		if err != nil {
			t.Fatal(err)
		}
		if !bitsEqual(t, a, b) {
			t.Errorf("%s differs after the round trip", n)
		}
	}
}

// nonUniform is stories260K with pruned-looking sizes and random weights of those shapes.
func nonUniform(t testing.TB, heads, kv, inter []int) (*config.Config, []string, GetFunc) {
	t.Helper()
	cfg := &config.Config{Arch: arch.Llama, Hidden: 64, Vocab: 512, HeadDim: 8, Heads: heads, KVHeads: kv, Inter: inter,
		RMSNormEps: 1e-5, RopeTheta: 10000, MaxPositions: 256, TieEmbed: true, BOS: 1, EOS: []int{2}}
	dims := map[string][]int{"model.embed_tokens.weight": {512, 64}, "model.norm.weight": {64}}
	for i := range heads {
		p := "model.layers." + itoaT(i) + "."
		if heads[i] > 0 {
			dims[p+"input_layernorm.weight"] = []int{64}
			dims[p+"self_attn.q_proj.weight"] = []int{heads[i] * 8, 64}
			dims[p+"self_attn.k_proj.weight"] = []int{kv[i] * 8, 64}
			dims[p+"self_attn.v_proj.weight"] = []int{kv[i] * 8, 64}
			dims[p+"self_attn.o_proj.weight"] = []int{64, heads[i] * 8}
		}
		if inter[i] > 0 {
			dims[p+"post_attention_layernorm.weight"] = []int{64}
			dims[p+"mlp.gate_proj.weight"] = []int{inter[i], 64}
			dims[p+"mlp.up_proj.weight"] = []int{inter[i], 64}
			dims[p+"mlp.down_proj.weight"] = []int{64, inter[i]}
		}
	}
	var names []string
	data := map[string]*tensors.Tensor{}
	rng := rand.New(rand.NewPCG(1, 2))
	for n, s := range dims {
		names = append(names, n)
		tt := tensors.FromShape(shapes.Make(dtypes.Float32, s...))
		tt.MutableFlatData(func(flat any) {
			for i := range flat.([]float32) {
				flat.([]float32)[i] = float32(rng.NormFloat64())
			}
		})
		data[n] = tt
	}
	slices.Sort(names)
	return cfg, names, func(n string) (*tensors.Tensor, error) { return data[n], nil }
}

func itoaT(i int) string { return string(rune('0' + i)) }

// TestGGUFDeciMetadata: a non-uniform model is written as deci with INT32 per-layer arrays and
// the head size stated explicitly; reading it back restores the per-layer sizes and the tensors.
func TestGGUFDeciMetadata(t *testing.T) {
	cfg, names, get := nonUniform(t, []int{2, 8, 4}, []int{1, 4, 2}, []int{32, 172, 96})
	path := filepath.Join(t.TempDir(), "m.gguf")
	res, err := SaveGGUF(path, cfg, names, get, GGUFOptions{Type: GGUFQ8_0})
	if err != nil {
		t.Fatal(err)
	}
	if res.Arch != "deci" || res.Layers != 3 {
		t.Errorf("result %+v", res)
	}
	if want := []string{"blk.0.attn_output.weight", "blk.1.ffn_down.weight"}; !slices.Equal(res.F16Fallback, want) {
		t.Errorf("F16 fallback %v, want %v (rows of 16 and 172 are not multiples of 32)", res.F16Fallback, want)
	}
	g := readGGUFFile(t, path)
	for key, want := range map[string]any{
		"general.architecture":                  "deci",
		"deci.attention.head_count":             []int64{2, 8, 4},
		"deci.attention.head_count_kv":          []int64{1, 4, 2},
		"deci.feed_forward_length":              []int64{32, 172, 96},
		"deci.attention.key_length":             int64(8),
		"deci.attention.value_length":           int64(8),
		"deci.rope.dimension_count":             int64(8),
		"deci.block_count":                      int64(3),
		"deci.embedding_length":                 int64(64),
		"general.file_type":                     int64(7),
		"deci.attention.layer_norm_rms_epsilon": float64(float32(1e-5)),
	} {
		a, _ := json.Marshal(g.meta[key])
		b, _ := json.Marshal(want)
		if string(a) != string(b) {
			t.Errorf("%s = %s, want %s", key, a, b)
		}
	}
	q := g.infos[g.byName["blk.1.attn_q.weight"]]
	if q.typ != GGUFQ8_0 || !slices.Equal(q.ne, []int64{64, 64}) || q.offset%32 != 0 {
		t.Errorf("blk.1.attn_q: %+v", q)
	}
	if n := g.infos[g.byName["blk.1.attn_norm.weight"]]; n.typ != GGUFF32 {
		t.Errorf("norm stored %s, want F32", n.typ)
	}
	back, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	c := back.(ConfigSource).Config()
	if !slices.Equal(c.Heads, cfg.Heads) || !slices.Equal(c.KVHeads, cfg.KVHeads) || !slices.Equal(c.Inter, cfg.Inter) {
		t.Errorf("per-layer sizes back: %v", c)
	}
	// Q8_0 weights come back within half a quantization step of each block.
	a, _ := get("model.layers.0.self_attn.k_proj.weight")
	b, err := back.Read("model.layers.0.self_attn.k_proj.weight")
	if err != nil {
		t.Fatal(err)
	}
	x, _ := float32sOf(a)
	y, _ := float32sOf(b)
	for i := 0; i < len(x); i += 32 {
		amax := float32(0)
		for _, v := range x[i : i+32] {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		for j := i; j < i+32; j++ {
			if d := math.Abs(float64(x[j] - y[j])); d > float64(amax)/127*0.51+1e-3*float64(amax) {
				t.Fatalf("k_proj[%d]: %g back as %g", j, x[j], y[j])
			}
		}
	}
}

// TestGGUFEmptyLayers: a layer without heads is deci's attention-free layer (n_head 0, no
// attention tensors), except layer 0, which gets one zero head; a layer without MLP channels gets
// one zero channel; a layer with neither is left out and the rest renumbered.
func TestGGUFEmptyLayers(t *testing.T) {
	cfg, names, get := nonUniform(t, []int{0, 8, 0, 0, 4}, []int{0, 4, 0, 0, 2}, []int{64, 0, 96, 0, 32})
	path := filepath.Join(t.TempDir(), "m.gguf")
	res, err := SaveGGUF(path, cfg, names, get, GGUFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Arch != "deci" || res.Layers != 4 || len(res.Placeholders) != 2 {
		t.Errorf("result %+v", res)
	}
	g := readGGUFFile(t, path)
	for key, want := range map[string][]int64{
		"deci.attention.head_count":    {1, 8, 0, 4},
		"deci.attention.head_count_kv": {1, 4, 0, 2},
		"deci.feed_forward_length":     {64, 1, 96, 32},
	} {
		if got, _ := g.meta[key].([]int64); !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", key, g.meta[key], want)
		}
	}
	for _, n := range []string{"blk.0.attn_q.weight", "blk.1.ffn_down.weight", "blk.3.attn_q.weight", "blk.3.ffn_down.weight"} {
		if _, ok := g.byName[n]; !ok {
			t.Errorf("%s missing", n)
		}
	}
	for _, n := range []string{"blk.2.attn_q.weight", "blk.2.attn_norm.weight", "blk.4.attn_q.weight"} {
		if _, ok := g.byName[n]; ok {
			t.Errorf("%s written: llama.cpp refuses tensors its graph does not use", n)
		}
	}
	// The renumbered last layer holds layer 4's weights.
	want, _ := get("model.layers.4.mlp.up_proj.weight")
	x, _ := float32sOf(want)
	info := g.infos[g.byName["blk.3.ffn_up.weight"]]
	f, _ := os.Open(path)
	defer f.Close()
	y := make([]float32, len(x))
	if err := g.readFloat32(f, info, y); err != nil || !slices.Equal(x, y) {
		t.Errorf("blk.3.ffn_up is not layer 4's up_proj (%v)", err)
	}
}

// TestGGUFBadInput: one clear error and no file for ChatGLM, an unknown type, a tensor llama.cpp
// has no place for, a wrong shape found while writing, and an unwritable path.
func TestGGUFBadInput(t *testing.T) {
	cfg, names, get := nonUniform(t, []int{2, 8}, []int{1, 4}, []int{32, 64})
	dir := t.TempDir()
	glm := cfg.Clone()
	glm.Arch = arch.ChatGLM
	wrong := func(n string) (*tensors.Tensor, error) {
		if strings.Contains(n, "layers.1.mlp.up") {
			return tensors.FromShape(shapes.Make(dtypes.Float32, 3, 64)), nil
		}
		return get(n)
	}
	blocker := filepath.Join(t.TempDir(), "file") // a file where a directory should be
	_ = os.WriteFile(blocker, nil, 0o644)
	for _, c := range []struct {
		name  string
		path  string
		cfg   *config.Config
		names []string
		get   GetFunc
		opts  GGUFOptions
		want  string
	}{
		{"chatglm", "a.gguf", glm, names, get, GGUFOptions{}, "no ChatGLM-6B (v1) architecture"},
		{"type", "b.gguf", cfg, names, get, GGUFOptions{Type: 2}, "not supported"},
		{"extra tensor", "c.gguf", cfg, append(slices.Clone(names), "model.layers.0.self_attn.rotary_emb.inv_freq"), get, GGUFOptions{}, "rotary_emb.inv_freq"},
		{"missing tensor", "d.gguf", cfg, names[1:], get, GGUFOptions{}, "missing"},
		{"shape", "e.gguf", cfg, names, wrong, GGUFOptions{}, "has shape [3 64]"},
		{"unwritable", "file/f.gguf", cfg, names, get, GGUFOptions{}, "file/f.gguf"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.path)
			if c.name == "unwritable" {
				p = filepath.Join(blocker, "f.gguf")
			}
			_, err := SaveGGUF(p, c.cfg, c.names, c.get, c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v, want one line with %q", err, c.want)
			}
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s was written", p)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("left behind: %v", entries)
			}
		})
	}
}

// TestGGUFCorruptHeaders: truncations and absurd counts or sizes are errors, never panics or
// allocations beyond the file's size.
func TestGGUFCorruptHeaders(t *testing.T) {
	cfg, names, get := nonUniform(t, []int{2}, []int{1}, []int{32})
	dir := t.TempDir()
	path := filepath.Join(dir, "m.gguf")
	if _, err := SaveGGUF(path, cfg, names, get, GGUFOptions{}); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(path)
	try := func(name string, b []byte) {
		p := filepath.Join(dir, name)
		_ = os.WriteFile(p, b, 0o644)
		if r, err := OpenGGUF(p); err == nil {
			r.Close()
			t.Errorf("%s: opened", name)
		}
	}
	for _, n := range []int{3, 4, 8, 16, 24, 40, 100, 1000, len(good) - 1} {
		try("trunc", good[:n])
	}
	huge := slices.Clone(good)
	binary.LittleEndian.PutUint64(huge[8:], 1<<60) // tensor count
	try("tensors", huge)
	huge = slices.Clone(good)
	binary.LittleEndian.PutUint64(huge[16:], 1<<60) // metadata count
	try("kv", huge)
	huge = slices.Clone(good)
	binary.LittleEndian.PutUint64(huge[24:], 1<<62) // first key's length
	try("keylen", huge)
}

// qwen2Tensors is nonUniform's model as a Qwen2: q/k/v biases, no o_proj bias.
func qwen2Tensors(t testing.TB, heads, kv, inter []int) (*config.Config, []string, GetFunc) {
	t.Helper()
	cfg, names, get := nonUniform(t, heads, kv, inter)
	cfg.Arch, cfg.AttnBias, cfg.QKVBiasOnly, cfg.RopeTheta = arch.Qwen2, true, true, 1e6
	rng := rand.New(rand.NewPCG(5, 6))
	biases := map[string]*tensors.Tensor{}
	for i := range heads {
		for m, n := range map[string]int{"q": heads[i] * 8, "k": kv[i] * 8, "v": kv[i] * 8} {
			x := make([]float32, n)
			for j := range x {
				x[j] = float32(rng.NormFloat64())
			}
			name := "model.layers." + itoaT(i) + ".self_attn." + m + "_proj.bias"
			biases[name] = tensors.FromFlatDataAndDimensions(x, n)
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return cfg, names, func(n string) (*tensors.Tensor, error) {
		if b, ok := biases[n]; ok {
			return b, nil
		}
		return get(n)
	}
}

// TestGGUFQwen2: a Qwen2 whose heads·head_dim is hidden_size is written as llama.cpp's qwen2 with
// q/k rows as Hugging Face stores them (qwen2 rotates halves); one with narrower attention or
// layers of different sizes as deci, q/k rows and biases in pairs. Both read back as Qwen2 (q/k/v
// biases, no o_proj bias) with every tensor bit for bit.
func TestGGUFQwen2(t *testing.T) {
	for _, c := range []struct {
		heads, kv, inter []int
		arch             string
	}{
		{[]int{8, 8}, []int{2, 2}, []int{32, 32}, "qwen2"},
		{[]int{4, 4}, []int{2, 2}, []int{32, 32}, "deci"},
		{[]int{8, 4}, []int{2, 1}, []int{32, 16}, "deci"},
	} {
		cfg, names, get := qwen2Tensors(t, c.heads, c.kv, c.inter)
		path := filepath.Join(t.TempDir(), "q.gguf")
		res, err := SaveGGUF(path, cfg, names, get, GGUFOptions{})
		if err != nil {
			t.Fatalf("%v: %+v", c.heads, err)
		}
		if res.Arch != c.arch {
			t.Errorf("%v: written as %s, want %s", c.heads, res.Arch, c.arch)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		g, err := parseGGUF(path, f, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		raw := make([]byte, 4*c.heads[0]*8*64)
		_, err = f.ReadAt(raw, g.infos[g.byName["blk.0.attn_q.weight"]].offset)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		hf, _ := get("model.layers.0.self_attn.q_proj.weight")
		same := true
		hf.MustConstFlatData(func(flat any) {
			for i, v := range flat.([]float32) {
				same = same && binary.LittleEndian.Uint32(raw[4*i:]) == math.Float32bits(v)
			}
		})
		if same != (c.arch == "qwen2") {
			t.Errorf("%s: q_proj rows stored as Hugging Face's: %v", c.arch, same)
		}
		back, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		got := back.(ConfigSource).Config()
		if got.Arch != arch.Qwen2 || !got.QKVBiasOnly || !got.AttnBias || got.RopeTheta != 1e6 || !slices.Equal(got.Heads, c.heads) {
			t.Errorf("%s: read back as %v", c.arch, got)
		}
		for _, n := range names {
			a, _ := get(n)
			b, err := back.Read(n)
			if err != nil {
				t.Fatal(err)
			}
			if !bitsEqual(t, a, b) {
				t.Errorf("%s: %s differs after the round trip", c.arch, n)
			}
		}
		back.Close()
	}
}
