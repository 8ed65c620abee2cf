package checkpoint

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/internal/fuzzcheck"
)

// Hostile files: each claims sizes far beyond its own length. Opening (and reading every tensor
// of) each must fail with an error naming the file, having allocated at most a small multiple
// of the file's size plus a fixed slack (fuzzcheck.Limit), never the claimed size.

// pickleStateDict is a protocol-2 pickle of {"w": _rebuild_tensor_v2(storage, 0, (size,), (1,),
// False)} whose storage ('storage', FloatStorage, "0", "cpu", numel) is a persistent id.
func pickleStateDict(numel, size int64) []byte {
	var b bytes.Buffer
	str := func(s string) {
		b.WriteByte('X')
		_ = binary.Write(&b, binary.LittleEndian, uint32(len(s)))
		b.WriteString(s)
	}
	long := func(v int64) { // LONG1 with 8 little-endian bytes
		b.Write([]byte{0x8a, 8})
		_ = binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("\x80\x02}")
	str("w")
	b.WriteString("ctorch._utils\n_rebuild_tensor_v2\n(")
	b.WriteString("(")
	str("storage")
	b.WriteString("ctorch\nFloatStorage\n")
	str("0")
	str("cpu")
	long(numel)
	b.WriteString("tQ")    // persistent id → storage
	b.WriteString("K\x00") // storage offset 0
	b.WriteString("(")     // size
	long(size)
	b.WriteString("t(K\x01t") // stride (1,)
	b.WriteString("\x89tRs.") // False, args tuple, REDUCE, SETITEM, STOP
	return b.Bytes()
}

// torchZip writes a torch.save-style zip (stored entries) holding data.pkl and data/0.
func torchZip(t *testing.T, pkl, storage []byte) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range []struct {
		name string
		data []byte
	}{{"archive/data.pkl", pkl}, {"archive/byteorder", []byte("little")}, {"archive/data/0", storage}} {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(e.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// patchCentralSize makes the central directory claim size bytes (compressed and uncompressed)
// for the zip entry called name.
func patchCentralSize(t *testing.T, z []byte, name string, size uint32) {
	for i := 0; i+46 < len(z); i++ {
		if !bytes.Equal(z[i:i+4], []byte("PK\x01\x02")) {
			continue
		}
		n := int(binary.LittleEndian.Uint16(z[i+28:]))
		if string(z[i+46:i+46+n]) == name {
			binary.LittleEndian.PutUint32(z[i+20:], size)
			binary.LittleEndian.PutUint32(z[i+24:], size)
			return
		}
	}
	t.Fatalf("zip entry %s not found", name)
}

func TestHostileFilesFailBeforeAllocating(t *testing.T) {
	valid := torchZip(t, pickleStateDict(4, 4), make([]byte, 16))
	forged := torchZip(t, pickleStateDict(1<<29, 1<<29), make([]byte, 16))
	patchCentralSize(t, forged, "archive/data/0", 1<<32-1) // the entry "holds" 4 GB
	v0 := make([]byte, 28)
	for i, v := range []int32{8, 12, 60000, 2, 1, 10, 4} { // 60000 layers of dim 8
		binary.LittleEndian.PutUint32(v0[4*i:], uint32(v))
	}
	v0 = append(v0, make([]byte, 4096)...)
	cfg, names, get := nonUniform(t, []int{2}, []int{1}, []int{32})
	ggufPath := filepath.Join(t.TempDir(), "m.gguf")
	if _, err := SaveGGUF(ggufPath, cfg, names, get, GGUFOptions{Type: GGUFQ8_0}); err != nil {
		t.Fatal(err)
	}
	gguf, err := os.ReadFile(ggufPath)
	if err != nil {
		t.Fatal(err)
	}
	ggufTensors := bytes.Clone(gguf)
	binary.LittleEndian.PutUint64(ggufTensors[8:], 1<<64-1) // tensor count
	ggufLayers := bytes.Clone(gguf)                         // llama.block_count (a uint32 value after its type) = 2²⁷+1
	at := bytes.Index(ggufLayers, []byte("llama.block_count")) + len("llama.block_count") + 4
	binary.LittleEndian.PutUint32(ggufLayers[at:], 1<<27+1)
	ggufKV := bytes.Clone(gguf)
	binary.LittleEndian.PutUint64(ggufKV[16:], 1<<63) // metadata key/value count

	for _, c := range []struct {
		name, file string
		data       []byte
		want       string
		open       func(string) (Reader, error)
	}{
		{"valid torch zip (control)", "ok.bin", valid, "", OpenPyTorch},
		{"safetensors: 10¹² element tensor", "huge.safetensors",
			stFile(`{"w":{"dtype":"F32","shape":[1000000,1000000],"data_offsets":[0,16]}}`, make([]byte, 16)), "1000000000000 elements", OpenSafetensors},
		{"safetensors: header length 2⁶⁴-1", "hlen.safetensors",
			append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "{}"...), "header length", OpenSafetensors},
		{"pickle: 10¹² element storage", "storage.bin", torchZip(t, pickleStateDict(1e12, 1e12), make([]byte, 16)), "storage 0 holds 16 bytes", OpenPyTorch},
		{"pickle: view beyond its storage", "view.bin", torchZip(t, pickleStateDict(4, 1e12), make([]byte, 16)), "reaches element", OpenPyTorch},
		{"zip: entry claims 4 GB in a small file", "forged.bin", forged, "archive/data/0", OpenPyTorch},
		{"pickle: length prefix 2⁶³", "prefix.bin", torchZip(t, []byte("\x80\x02\x8d\xff\xff\xff\xff\xff\xff\xff\x7f"), nil), "exceeds the data left", OpenPyTorch},
		{"llama2.c: 60000 layers in 4 KB", "layers.bin", v0, "implies", OpenLlama2C},
		{"valid GGUF (control)", "ok.gguf", gguf, "", OpenGGUF},
		{"GGUF: 2⁶⁴-1 tensors", "tensors.gguf", ggufTensors, "more than the file", OpenGGUF},
		{"GGUF: 2²⁷+1 layers (found by FuzzGGUF: 6.4 GB allocated)", "layers.gguf", ggufLayers, "block_count 134217729", OpenGGUF},
		{"GGUF: 2⁶³ metadata entries", "kv.gguf", ggufKV, "more than the file", OpenGGUF},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), c.file)
			if err := os.WriteFile(p, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			var err error
			allocated, _ := fuzzcheck.Measure(func() {
				var r Reader
				if r, err = c.open(p); err != nil {
					return
				}
				defer r.Close()
				for _, ti := range r.Tensors() {
					var x interface{ FinalizeAll() error }
					if x, err = r.Read(ti.Name); err != nil {
						return
					}
					_ = x.FinalizeAll()
				}
			})
			if limit := fuzzcheck.Limit(len(c.data), 16); allocated > limit {
				t.Errorf("allocated %d bytes for a %d-byte file (limit %d)", allocated, len(c.data), limit)
			}
			if c.want == "" {
				if err != nil {
					t.Fatalf("control file: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.file) {
				t.Errorf("error %v: want one naming %s and saying %q", err, c.file, c.want)
			}
			t.Logf("%d bytes allocated: %v", allocated, err)
		})
	}
}
