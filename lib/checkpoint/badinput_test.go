package checkpoint

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stFile builds a safetensors file from a raw JSON header and data.
func stFile(header string, data []byte) []byte {
	var b bytes.Buffer
	_ = binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	b.Write(data)
	return b.Bytes()
}

func writeTemp(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBadInputCatalogue: every malformed checkpoint gives an error naming the file (and the
// tensor where there is one), never a panic.
func TestBadInputCatalogue(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile("testdata/st_python.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	ptGood, _ := os.ReadFile("testdata/pt_f32.bin")
	eight := make([]byte, 8)
	okShard := stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, eight)
	gcfg, gnames, gget := nonUniform(t, []int{2}, []int{1}, []int{32})
	ggufPath := filepath.Join(dir, "good.gguf")
	if _, err := SaveGGUF(ggufPath, gcfg, gnames, gget, GGUFOptions{Type: GGUFQ8_0}); err != nil {
		t.Fatal(err)
	}
	gguf, _ := os.ReadFile(ggufPath)
	patched := func(off int, v uint64, width int) []byte {
		b := bytes.Clone(gguf)
		if width == 4 {
			binary.LittleEndian.PutUint32(b[off:], uint32(v))
		} else {
			binary.LittleEndian.PutUint64(b[off:], v)
		}
		return b
	}

	cases := []struct {
		name string
		path func() string
		want []string // substrings of the error
	}{
		{"missing file", func() string { return filepath.Join(dir, "nope.safetensors") }, []string{"nope.safetensors", "no such file"}},
		{"empty directory", func() string { d := filepath.Join(dir, "emptydir"); _ = os.Mkdir(d, 0o755); return d },
			[]string{"emptydir", "model.safetensors", "pytorch_model.bin"}},
		{"truncated safetensors", func() string { return writeTemp(t, dir, "trunc.safetensors", good[:len(good)/2]) }, []string{"trunc.safetensors"}},
		{"header length beyond file", func() string {
			return writeTemp(t, dir, "hlen.safetensors", append([]byte{0xff, 0xff, 0, 0, 0, 0, 0, 0}, `{"a":1}`...))
		}, []string{"hlen.safetensors", "header length"}},
		{"truncated data", func() string {
			return writeTemp(t, dir, "short.safetensors", stFile(`{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, eight))
		}, []string{"short.safetensors", `"w"`, "outside"}},
		{"size lies about shape", func() string {
			return writeTemp(t, dir, "lie.safetensors", stFile(`{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, eight))
		}, []string{"lie.safetensors", `"w"`, "needs 12"}},
		{"overlapping offsets", func() string {
			return writeTemp(t, dir, "overlap.safetensors", stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight))
		}, []string{"overlap.safetensors", "overlap"}},
		{"offsets out of range", func() string {
			return writeTemp(t, dir, "range.safetensors", stFile(`{"a":{"dtype":"U8","shape":[8],"data_offsets":[100,108]}}`, eight))
		}, []string{"range.safetensors", `"a"`, "outside"}},
		{"unknown dtype", func() string {
			return writeTemp(t, dir, "dtype.safetensors", stFile(`{"q":{"dtype":"Q4_K","shape":[8],"data_offsets":[0,8]}}`, eight))
		}, []string{"dtype.safetensors", `"q"`, "Q4_K"}},
		{"negative shape", func() string {
			return writeTemp(t, dir, "neg.safetensors", stFile(`{"q":{"dtype":"U8","shape":[-8],"data_offsets":[0,8]}}`, eight))
		}, []string{"neg.safetensors", `"q"`}},
		{"huge shape", func() string {
			return writeTemp(t, dir, "huge.safetensors", stFile(`{"q":{"dtype":"F64","shape":[1073741824,1073741824,16],"data_offsets":[0,8]}}`, eight))
		}, []string{"huge.safetensors", `"q"`}},
		{"header not JSON", func() string { return writeTemp(t, dir, "garbage.safetensors", stFile("{not json", nil)) }, []string{"garbage.safetensors", "JSON"}},
		{"bad metadata", func() string {
			return writeTemp(t, dir, "meta.safetensors", stFile(`{"__metadata__":{"n":1}}`, nil))
		}, []string{"meta.safetensors", "__metadata__"}},
		{"gap in data", func() string {
			return writeTemp(t, dir, "gap.safetensors", stFile(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}`, eight))
		}, []string{"gap.safetensors", `"a"`, "gap"}},
		{"corrupt zip", func() string { return writeTemp(t, dir, "corrupt.bin", ptGood[:len(ptGood)-30]) }, []string{"corrupt.bin", "zip"}},
		{"zip without data.pkl", func() string {
			var b bytes.Buffer
			zw := zip.NewWriter(&b)
			w, _ := zw.Create("x/other.txt")
			_, _ = w.Write([]byte("hi"))
			_ = zw.Close()
			return writeTemp(t, dir, "nopkl.bin", b.Bytes())
		}, []string{"nopkl.bin", "data.pkl"}},
		{"garbage pickle", func() string {
			var b bytes.Buffer
			zw := zip.NewWriter(&b)
			w, _ := zw.Create("x/data.pkl")
			_, _ = w.Write([]byte("\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01\xff\xfe"))
			_ = zw.Close()
			return writeTemp(t, dir, "badpkl.bin", b.Bytes())
		}, []string{"badpkl.bin"}},
		{"forbidden global", func() string { return "testdata/pt_forbidden.bin" }, []string{"pt_forbidden.bin", "posix.system", "not allowed"}},
		{"index names a missing shard", func() string {
			d := filepath.Join(dir, "missingshard")
			writeTemp(t, d, "model-1.safetensors", okShard)
			return writeTemp(t, d, SafetensorsIndexFile, []byte(`{"weight_map":{"a":"model-1.safetensors","b":"model-2.safetensors"}}`))
		}, []string{"model-2.safetensors", "missing"}},
		{"index names a tensor the shard lacks", func() string {
			d := filepath.Join(dir, "missingtensor")
			writeTemp(t, d, "model-1.safetensors", okShard)
			writeTemp(t, d, SafetensorsIndexFile, []byte(`{"weight_map":{"a":"model-1.safetensors","zz":"model-1.safetensors"}}`))
			return d
		}, []string{`"zz"`, "model-1.safetensors"}},
		{"tensor in two shards", func() string {
			d := filepath.Join(dir, "dup")
			writeTemp(t, d, "model-1.safetensors", okShard)
			writeTemp(t, d, "model-2.safetensors", okShard)
			return writeTemp(t, d, SafetensorsIndexFile, []byte(`{"weight_map":{"a":"model-1.safetensors"},"other":{"a":"model-2.safetensors"}}`))
		}, nil}, // a lone index routes "a" to one shard: not an error (checked below with both listed)
		{"index escaping its directory", func() string {
			return writeTemp(t, filepath.Join(dir, "escape"), SafetensorsIndexFile, []byte(`{"weight_map":{"a":"../x.safetensors"}}`))
		}, []string{"../x.safetensors"}},
		{"GGUF truncated", func() string { return writeTemp(t, dir, "trunc.gguf", gguf[:len(gguf)*2/3]) }, []string{"trunc.gguf"}},
		{"GGUF version 1", func() string { return writeTemp(t, dir, "v1.gguf", patched(4, 1, 4)) }, []string{"v1.gguf", "GGUF version 1"}},
		{"GGUF claiming 2^64-1 tensors", func() string { return writeTemp(t, dir, "count.gguf", patched(8, 1<<64-1, 8)) },
			[]string{"count.gguf", "tensor count 18446744073709551615"}},
		{"GGUF key longer than the file", func() string { return writeTemp(t, dir, "key.gguf", patched(24, 1<<40, 8)) },
			[]string{"key.gguf", "string length 1099511627776"}},
		{"GGUF of another architecture", func() string {
			b := bytes.Clone(gguf)
			i := bytes.Index(b, []byte("general.architecture"))
			j := bytes.Index(b[i:], []byte("llama"))
			copy(b[i+j:], "gpt2x")
			return writeTemp(t, dir, "arch.gguf", b)
		}, []string{"arch.gguf", "gpt2x"}},
		{"llama2.c file too short for its header", func() string { return writeTemp(t, dir, "short.bin", []byte{64, 0, 0, 0, 1, 0}) }, []string{"short.bin"}},
		{"llama2.c header disagrees with size", func() string {
			h := make([]byte, 28+400)
			for i, v := range []int32{64, 172, 5, 8, 4, 512, 512} {
				binary.LittleEndian.PutUint32(h[4*i:], uint32(v))
			}
			p := writeTemp(t, dir, "l2c.bin", h)
			_, _, err := LoadLlama2C(p)
			if err == nil || !strings.Contains(err.Error(), "l2c.bin") || !strings.Contains(err.Error(), "implies") {
				t.Errorf("LoadLlama2C on a short file: %v", err)
			}
			return p
		}, []string{"l2c.bin"}},
		{"llama2.c version 3", func() string {
			h := make([]byte, 300)
			binary.LittleEndian.PutUint32(h, llama2cMagic)
			binary.LittleEndian.PutUint32(h[4:], 3)
			return writeTemp(t, dir, "v3.bin", h)
		}, []string{"v3.bin", "version 3"}},
		{"llama2.c version 2 with a bad group size", func() string {
			h := make([]byte, 300)
			binary.LittleEndian.PutUint32(h, llama2cMagic)
			binary.LittleEndian.PutUint32(h[4:], 2)
			return writeTemp(t, dir, "v2.bin", h)
		}, []string{"v2.bin", "group size"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.path()
			r, err := Open(p)
			if tc.want == nil {
				if err == nil {
					_ = r.Close()
				}
				return
			}
			if err == nil {
				_ = r.Close()
				t.Fatalf("Open(%s) succeeded on bad input", p)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}

	// Both shards listed, both holding "a".
	d := filepath.Join(dir, "dup2")
	writeTemp(t, d, "model-1.safetensors", okShard)
	writeTemp(t, d, "model-2.safetensors", stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`, make([]byte, 16)))
	writeTemp(t, d, SafetensorsIndexFile, []byte(`{"weight_map":{"a":"model-1.safetensors","b":"model-2.safetensors"}}`))
	if _, err := Open(d); err == nil || !strings.Contains(err.Error(), `"a"`) || !strings.Contains(err.Error(), "model-2.safetensors") {
		t.Errorf("duplicate tensor across shards: %v", err)
	}
}

// TestMutatedFilesNeverPanic truncates and flips bytes of every fixture: Open and Read may fail
// but must not panic.
func TestMutatedFilesNeverPanic(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.bin")
	files = append(files, "testdata/st_python.safetensors")
	rng := rand.New(rand.NewPCG(9, 10))
	dir := t.TempDir()
	n := 300
	if testing.Short() {
		n = 60
	}
	for _, f := range files {
		orig, _ := os.ReadFile(f)
		for i := range n {
			data := bytes.Clone(orig)
			switch i % 3 {
			case 0:
				data = data[:rng.IntN(len(data))]
			default:
				for range 1 + rng.IntN(4) {
					data[rng.IntN(len(data))] = byte(rng.IntN(256))
				}
			}
			p := filepath.Join(dir, fmt.Sprintf("m%d_%s", i, filepath.Base(f)))
			_ = os.WriteFile(p, data, 0o644)
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("panic on mutation %d of %s: %v", i, f, r)
					}
				}()
				r, err := Open(p)
				if err != nil {
					if !strings.Contains(err.Error(), filepath.Base(p)) {
						t.Errorf("error does not name the file: %v", err)
					}
					return
				}
				for _, ti := range r.Tensors() {
					_, _ = r.Read(ti.Name)
				}
				_ = r.Close()
			}()
			_ = os.Remove(p)
		}
	}
}
