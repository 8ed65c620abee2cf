package checkpoint

import (
	"bufio"
	"encoding/binary"
	"io"
	"math"
	"os"
	"sort"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/pkg/errors"
)

// ggufInfo is one tensor's entry in a GGUF file's directory.
type ggufInfo struct {
	name   string
	ne     []int64 // fastest-varying first
	typ    GGUFType
	offset int64 // absolute, in the file
	size   int64
}

// ggufFile is a parsed GGUF header. Metadata scalars are int64 (every integer type), float64,
// bool or string; arrays are []int64, []float64, []bool or []string.
type ggufFile struct {
	path    string
	version uint32
	meta    map[string]any
	keys    []string // metadata keys in file order
	infos   []ggufInfo
	byName  map[string]int
}

// ggufHeaderReader reads a GGUF header, refusing any count or length the rest of the file
// cannot hold (so a corrupt header never makes it allocate more than the file's size).
type ggufHeaderReader struct {
	r    *bufio.Reader
	pos  int64
	size int64
	path string
}

func (h *ggufHeaderReader) bytes(n int64) ([]byte, error) {
	if n < 0 || n > h.size-h.pos {
		return nil, errors.Errorf("%s: header field of %d bytes at offset %d runs past the end of the file (%d bytes)", h.path, n, h.pos, h.size)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(h.r, b); err != nil {
		return nil, errors.Wrapf(err, "%s: reading the header at offset %d", h.path, h.pos)
	}
	h.pos += n
	return b, nil
}

func (h *ggufHeaderReader) u32() (uint32, error) {
	b, err := h.bytes(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (h *ggufHeaderReader) u64() (uint64, error) {
	b, err := h.bytes(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// count reads a uint64 count of items each taking at least minBytes.
func (h *ggufHeaderReader) count(what string, minBytes int64) (int64, error) {
	n, err := h.u64()
	if err != nil {
		return 0, err
	}
	if n > uint64(h.size-h.pos)/uint64(minBytes) {
		return 0, errors.Errorf("%s: %s %d at offset %d is more than the file (%d bytes) can hold", h.path, what, n, h.pos-8, h.size)
	}
	return int64(n), nil
}

func (h *ggufHeaderReader) str() (string, error) {
	n, err := h.count("string length", 1)
	if err != nil {
		return "", err
	}
	b, err := h.bytes(n)
	return string(b), err
}

// scalarSize is the encoded size of a scalar of GGUF value type t (0 for strings/arrays/unknown).
func ggufScalarSize(t uint32) int64 {
	switch t {
	case ggufUint8, ggufInt8, ggufBool:
		return 1
	case ggufUint16, ggufInt16:
		return 2
	case ggufUint32, ggufInt32, ggufFloat32:
		return 4
	case ggufUint64, ggufInt64, ggufFloat64:
		return 8
	}
	return 0
}

// scalar reads one value of scalar type t.
func (h *ggufHeaderReader) scalar(t uint32) (any, error) {
	if t == ggufString {
		return h.str()
	}
	n := ggufScalarSize(t)
	if n == 0 {
		return nil, errors.Errorf("%s: unknown metadata value type %d at offset %d", h.path, t, h.pos)
	}
	b, err := h.bytes(n)
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	switch t {
	case ggufUint8:
		return int64(b[0]), nil
	case ggufInt8:
		return int64(int8(b[0])), nil
	case ggufBool:
		return b[0] != 0, nil
	case ggufUint16:
		return int64(le.Uint16(b)), nil
	case ggufInt16:
		return int64(int16(le.Uint16(b))), nil
	case ggufUint32:
		return int64(le.Uint32(b)), nil
	case ggufInt32:
		return int64(int32(le.Uint32(b))), nil
	case ggufFloat32:
		return float64(math.Float32frombits(le.Uint32(b))), nil
	case ggufUint64:
		v := le.Uint64(b)
		if v > math.MaxInt64 {
			return nil, errors.Errorf("%s: uint64 value %d is too large", h.path, v)
		}
		return int64(v), nil
	case ggufInt64:
		return int64(le.Uint64(b)), nil
	default: // float64
		return math.Float64frombits(le.Uint64(b)), nil
	}
}

// value reads a typed metadata value (arrays of scalars or strings; nested arrays are refused).
func (h *ggufHeaderReader) value(t uint32) (any, error) {
	if t != ggufArray {
		return h.scalar(t)
	}
	et, err := h.u32()
	if err != nil {
		return nil, err
	}
	minBytes := ggufScalarSize(et)
	if et == ggufString {
		minBytes = 8
	}
	if minBytes == 0 {
		return nil, errors.Errorf("%s: metadata array of value type %d at offset %d is not supported", h.path, et, h.pos-4)
	}
	n, err := h.count("array length", minBytes)
	if err != nil {
		return nil, err
	}
	var ints []int64
	var floats []float64
	var bools []bool
	var strs []string
	for range n {
		v, err := h.scalar(et)
		if err != nil {
			return nil, err
		}
		switch x := v.(type) {
		case int64:
			ints = append(ints, x)
		case float64:
			floats = append(floats, x)
		case bool:
			bools = append(bools, x)
		case string:
			strs = append(strs, x)
		}
	}
	switch {
	case et == ggufString:
		if strs == nil {
			strs = []string{}
		}
		return strs, nil
	case et == ggufFloat32 || et == ggufFloat64:
		if floats == nil {
			floats = []float64{}
		}
		return floats, nil
	case et == ggufBool:
		if bools == nil {
			bools = []bool{}
		}
		return bools, nil
	}
	if ints == nil {
		ints = []int64{}
	}
	return ints, nil
}

// parseGGUF reads and validates a GGUF header: every tensor must be F32, F16, BF16 or Q8_0,
// have a sane shape, an aligned offset, and lie inside the file without overlapping another.
func parseGGUF(path string, f io.ReaderAt, size int64) (*ggufFile, error) {
	h := &ggufHeaderReader{r: bufio.NewReaderSize(io.NewSectionReader(f, 0, size), 1<<16), size: size, path: path}
	magic, err := h.u32()
	if err != nil {
		return nil, err
	}
	if magic != ggufMagic {
		return nil, errors.Errorf("%s: not a GGUF file (magic %#x)", path, magic)
	}
	g := &ggufFile{path: path, meta: map[string]any{}, byName: map[string]int{}}
	if g.version, err = h.u32(); err != nil {
		return nil, err
	}
	if g.version != 2 && g.version != 3 {
		return nil, errors.Errorf("%s: GGUF version %d is not supported (2 and 3 are)", path, g.version)
	}
	nTensors, err := h.count("tensor count", 8+4+4+8)
	if err != nil {
		return nil, err
	}
	nKV, err := h.count("metadata count", 8+4+1)
	if err != nil {
		return nil, err
	}
	for range nKV {
		key, err := h.str()
		if err != nil {
			return nil, err
		}
		t, err := h.u32()
		if err != nil {
			return nil, err
		}
		v, err := h.value(t)
		if err != nil {
			return nil, errors.WithMessagef(err, "metadata %q", key)
		}
		if _, dup := g.meta[key]; dup {
			return nil, errors.Errorf("%s: metadata key %q appears twice", path, key)
		}
		g.meta[key] = v
		g.keys = append(g.keys, key)
	}
	align := int64(ggufAlignment)
	if v, ok := g.meta["general.alignment"]; ok {
		a, ok := v.(int64)
		if !ok || a <= 0 || a > 1<<20 || a&(a-1) != 0 {
			return nil, errors.Errorf("%s: general.alignment %v is not a power of two", path, v)
		}
		align = a
	}
	for range nTensors {
		if err := g.readInfo(h); err != nil {
			return nil, err
		}
	}
	dataStart := alignUp(h.pos, align)
	for i := range g.infos {
		t := &g.infos[i]
		if t.offset%align != 0 {
			return nil, errors.Errorf("%s: tensor %q offset %d is not aligned to %d", path, t.name, t.offset, align)
		}
		if t.offset > size || t.size > size-dataStart-t.offset {
			return nil, errors.Errorf("%s: tensor %q (%d bytes at data offset %d) runs past the end of the file (%d bytes)", path, t.name, t.size, t.offset, size)
		}
		t.offset += dataStart
	}
	sorted := append([]ggufInfo(nil), g.infos...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].offset < sorted[j].offset })
	for i := 1; i < len(sorted); i++ {
		if prev := sorted[i-1]; prev.offset+prev.size > sorted[i].offset {
			return nil, errors.Errorf("%s: tensors %q and %q overlap", path, prev.name, sorted[i].name)
		}
	}
	return g, nil
}

func (g *ggufFile) readInfo(h *ggufHeaderReader) error {
	name, err := h.str()
	if err != nil {
		return err
	}
	nd, err := h.u32()
	if err != nil {
		return err
	}
	if nd == 0 || nd > 4 {
		return errors.Errorf("%s: tensor %q has %d dimensions (1 to 4 allowed)", g.path, name, nd)
	}
	t := ggufInfo{name: name}
	elems := int64(1)
	for range nd {
		d, err := h.u64()
		if err != nil {
			return err
		}
		if d == 0 || d > uint64(h.size) {
			return errors.Errorf("%s: tensor %q has dimension %d", g.path, name, d)
		}
		t.ne = append(t.ne, int64(d))
		if elems > h.size/int64(d) {
			return errors.Errorf("%s: tensor %q with dims %v is larger than the file", g.path, name, t.ne)
		}
		elems *= int64(d)
	}
	typ, err := h.u32()
	if err != nil {
		return err
	}
	t.typ = GGUFType(typ)
	row, ok := t.typ.rowBytes(t.ne[0])
	if !ok {
		return errors.Errorf("%s: tensor %q: type %s with rows of %d is not supported (F32, F16, BF16 and Q8_0 are; requantize other files with llama-quantize)", g.path, name, t.typ, t.ne[0])
	}
	t.size = row * (elems / t.ne[0])
	off, err := h.u64()
	if err != nil {
		return err
	}
	if off > uint64(h.size) {
		return errors.Errorf("%s: tensor %q offset %d is past the end of the file", g.path, name, off)
	}
	t.offset = int64(off)
	if _, dup := g.byName[name]; dup {
		return errors.Errorf("%s: tensor %q appears twice", g.path, name)
	}
	g.byName[name] = len(g.infos)
	g.infos = append(g.infos, t)
	return nil
}

// readFloat32 reads tensor t and decodes it to float32 (GGUF element order).
func (g *ggufFile) readFloat32(f io.ReaderAt, t ggufInfo, dst []float32) error {
	raw := make([]byte, t.size)
	if err := readFullAt(f, raw, t.offset); err != nil {
		return errors.Wrapf(err, "%s: reading tensor %q", g.path, t.name)
	}
	return errors.WithMessagef(decodeGGUF(dst, raw, t.typ), "%s: tensor %q", g.path, t.name)
}

// ggufReader serves a llama / deci GGUF file's tensors under Hugging Face names and layouts,
// dequantized to float32, with q/k rows back in the half-split RoPE order.
type ggufReader struct {
	g      *ggufFile
	f      *os.File
	infos  []TensorInfo
	src    map[string]int // Hugging Face name → index into g.infos
	rotary map[string]int // Hugging Face name → head_dim of q/k rows to reorder
}

// Tensors implements Reader.
func (r *ggufReader) Tensors() []TensorInfo { return cloneInfos(r.infos) }

// Read implements Reader.
func (r *ggufReader) Read(name string) (*tensors.Tensor, error) { return r.readWith(name, nil) }

func (r *ggufReader) readWith(name string, alloc Allocator) (*tensors.Tensor, error) {
	i, ok := r.src[name]
	if err := checkReadable(r.g.path, name, ok, r.f != nil); err != nil {
		return nil, err
	}
	t := r.g.infos[i]
	shape := make([]int, len(t.ne))
	for k, d := range t.ne {
		shape[len(t.ne)-1-k] = int(d)
	}
	return fillTensor(r.g.path, name, alloc, shapes.Make(dtypes.Float32, shape...), func(buf []byte) error {
		x := make([]float32, len(buf)/4)
		if err := r.g.readFloat32(r.f, t, x); err != nil {
			return err
		}
		if hd := r.rotary[name]; hd > 0 {
			cols := 1
			if len(shape) == 2 {
				cols = shape[1]
			}
			rotaryToHalves(x, hd, cols)
		}
		for k, v := range x {
			binary.LittleEndian.PutUint32(buf[4*k:], math.Float32bits(v))
		}
		return nil
	})
}

// Close implements Reader.
func (r *ggufReader) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return errors.Wrapf(err, "closing %s", r.g.path)
}
