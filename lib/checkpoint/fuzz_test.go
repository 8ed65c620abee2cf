package checkpoint

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/llmpruner/llmpruner/internal/fuzzcheck"
)

// The fuzz targets of the checkpoint readers. Each writes the input to a file, opens it with one
// reader and reads every tensor it lists. Properties: no panic; an error or a Reader, never both
// nil; time and allocation bounded by fuzzcheck (a tensor's bytes are only allocated once its
// claimed size has been checked against the file, so a tiny file cannot claim a huge tensor).
// Seeds: testdata/ fixtures, the real checkpoints of $LLMPRUNER_DATA, testdata/fuzz/FuzzX.

// readAll opens path with open and reads every tensor, checking the Reader's contract.
func readAll(t *testing.T, path string, open func(string) (Reader, error)) {
	r, err := open(path)
	if err != nil {
		if r != nil {
			t.Fatalf("error %v with a non-nil Reader", err)
		}
		return
	}
	if r == nil {
		t.Fatal("nil Reader and nil error")
	}
	defer r.Close()
	for _, ti := range r.Tensors() {
		x, err := r.Read(ti.Name)
		if err != nil {
			continue // a tensor whose bytes are missing (sharded index lies, truncated zip entry)
		}
		if got := x.Shape(); got.DType != ti.DType || !equalInts(got.Dimensions, ti.Shape) {
			t.Fatalf("tensor %q read as %s, listed as %s%v", ti.Name, got, ti.DType, ti.Shape)
		}
		_ = x.FinalizeAll()
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// addTestdata adds the named files of testdata/ as seeds.
func addTestdata(f *testing.F, names ...string) {
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		fuzzcheck.AddSeedVariants(f, b)
	}
}

// FuzzSafetensors: header length, header JSON (dtypes, shapes, data_offsets, __metadata__) and
// the data layout of a .safetensors file.
func FuzzSafetensors(f *testing.F) {
	addTestdata(f, "st_python.safetensors")
	f.Add(stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"format":"pt"}}`, make([]byte, 8)))
	f.Add(stFile(`{"q":{"dtype":"F64","shape":[1000000,1000000],"data_offsets":[0,8]}}`, make([]byte, 8)))
	fuzzcheck.AddDataSeeds(f, "models/tiny-random-llama/model.safetensors")
	scratch := fuzzcheck.NewScratch(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		p := scratch.Write(t, "model.safetensors", data)
		fuzzcheck.Bounded(t, len(data), 16, func() { readAll(t, p, OpenSafetensors) })
	})
}

// FuzzPyTorch: a pytorch_model.bin, zip (torch >= 1.6) or legacy: the zip directory, the
// restricted unpickler, storages and their sizes, views (offsets, strides).
func FuzzPyTorch(f *testing.F) {
	addTestdata(f, "pt_f32.bin", "pt_f16.bin", "pt_bf16.bin", "pt_forbidden.bin", "pt_legacy.bin",
		"pt_params.bin", "pt_shared.bin", "pt_views.bin", "pt_sharded/pytorch_model-00001-of-00002.bin")
	scratch := fuzzcheck.NewScratch(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		p := scratch.Write(t, "pytorch_model.bin", data)
		fuzzcheck.Bounded(t, len(data), 32, func() { readAll(t, p, OpenPyTorch) })
	})
}

// FuzzLlama2C: llama2.c .bin checkpoints, v0 (legacy 7-int header), v1 (float32) and v2 (Q8_0),
// and the format detection Open does on single files.
func FuzzLlama2C(f *testing.F) {
	addTestdata(f, "l2c_v0_tied.bin", "l2c_v0_untied.bin", "l2c_v1_tied.bin", "l2c_v1_untied.bin",
		"l2c_v2_tied.bin", "l2c_v2_untied.bin")
	fuzzcheck.AddDataSeeds(f, "models/stories260K/stories260K.bin")
	scratch := fuzzcheck.NewScratch(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		p := scratch.Write(t, "model.bin", data)
		// v2 dequantizes int8 to float32: 4 bytes per stored byte, plus the int8 buffer.
		fuzzcheck.Bounded(t, len(data), 16, func() {
			readAll(t, p, OpenLlama2C)
			readAll(t, p, Open)
		})
	})
}

// FuzzShardIndex: model.safetensors.index.json routing tensors to two small shard files.
func FuzzShardIndex(f *testing.F) {
	f.Add([]byte(`{"metadata":{"total_size":16},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}`))
	f.Add([]byte(`{"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00001-of-00002.safetensors"}}`))
	f.Add([]byte(`{"weight_map":{"a":"../model-00001-of-00002.safetensors"}}`))
	f.Add([]byte(`{"weight_map":{}}`))
	shard1 := stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8))
	shard2 := stFile(`{"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8))
	scratch := fuzzcheck.NewScratch(f)
	scratch.Write(f, "model-00001-of-00002.safetensors", shard1)
	scratch.Write(f, "model-00002-of-00002.safetensors", shard2)
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := filepath.Dir(scratch.Write(t, SafetensorsIndexFile, data))
		fuzzcheck.Bounded(t, len(data), 32, func() { readAll(t, dir, Open) })
	})
}

// FuzzGGUF: llama.cpp GGUF files (header, metadata key/values and arrays, tensor directory,
// alignment, F32/F16/BF16/Q8_0 data, tokenizer metadata), llama, qwen2 and deci architectures.
func FuzzGGUF(f *testing.F) {
	dir := f.TempDir()
	for i, c := range []struct {
		heads, kv, inter []int
		typ              GGUFType
		qwen2            bool
	}{{[]int{2}, []int{1}, []int{32}, GGUFQ8_0, false}, {[]int{2, 1}, []int{1, 1}, []int{32, 16}, GGUFF16, false},
		{[]int{8}, []int{2}, []int{32}, GGUFF32, true}, {[]int{8, 4}, []int{2, 1}, []int{32, 16}, GGUFF16, true}} {
		cfg, names, get := nonUniform(f, c.heads, c.kv, c.inter)
		if c.qwen2 {
			cfg, names, get = qwen2Tensors(f, c.heads, c.kv, c.inter)
		}
		p := filepath.Join(dir, "m"+strconv.Itoa(i)+".gguf")
		if _, err := SaveGGUF(p, cfg, names, get, GGUFOptions{Type: c.typ}); err != nil {
			f.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		fuzzcheck.AddSeedVariants(f, b)
	}
	fuzzcheck.AddDataSeeds(f, "tokenizers/llamacpp-vocab/ggml-vocab-llama-spm.gguf")
	scratch := fuzzcheck.NewScratch(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		p := scratch.Write(t, "model.gguf", data)
		// Q8_0 dequantizes to float32: about 4 bytes per stored byte.
		fuzzcheck.Bounded(t, len(data), 16, func() {
			readAll(t, p, OpenGGUF)
			if r, err := OpenGGUF(p); err == nil {
				if src, ok := r.(GGUFSource); ok {
					_ = src.GGUFVocab()
				}
				_ = r.Close()
			}
		})
	})
}
