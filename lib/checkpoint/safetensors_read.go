package checkpoint

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"slices"
	"sort"

	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/pkg/errors"
)

// maxSafetensorsHeader bounds the JSON header (the Python library uses the same 100 MB limit).
const maxSafetensorsHeader = 100 << 20

// safetensorsFile reads one .safetensors file. Tensors are read one at a time with ReadAt
// straight into a fresh host tensor's buffer, so reading never holds a second copy.
type safetensorsFile struct {
	path     string
	f        *os.File
	dataBase int64 // file offset of the data area
	infos    []TensorInfo
	entries  map[string]stEntry
	metadata map[string]string
}

type stEntry struct {
	info       TensorInfo
	begin, end int64 // offsets in the data area
}

// OpenSafetensors opens a single .safetensors file and validates its header: header length vs file
// size, known dtypes, byte sizes matching the shapes, offsets inside the data area and not
// overlapping.
func OpenSafetensors(path string) (Reader, error) {
	r, err := openSafetensors(path)
	if err != nil {
		return nil, err // not a typed nil *safetensorsFile inside a non-nil Reader
	}
	return r, nil
}

func openSafetensors(path string) (*safetensorsFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errors.Wrap(err, "opening safetensors file")
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, errors.Wrapf(err, "%s", path)
	}
	r := &safetensorsFile{path: path, f: f}
	if err := r.parseHeader(st.Size()); err != nil {
		_ = f.Close()
		return nil, err
	}
	return r, nil
}

func (r *safetensorsFile) parseHeader(fileSize int64) error {
	if fileSize < 8 {
		return errors.Errorf("%s: not a safetensors file: %d bytes, too short for the 8-byte header length", r.path, fileSize)
	}
	var lenBuf [8]byte
	if _, err := r.f.ReadAt(lenBuf[:], 0); err != nil {
		return errors.Wrapf(err, "%s: reading header length", r.path)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > uint64(fileSize-8) {
		return errors.Errorf("%s: truncated or not a safetensors file: header length %d exceeds the %d bytes after it", r.path, n, fileSize-8)
	}
	if n > maxSafetensorsHeader {
		return errors.Errorf("%s: header length %d exceeds the %d-byte limit", r.path, n, maxSafetensorsHeader)
	}
	hdr := make([]byte, n)
	if _, err := r.f.ReadAt(hdr, 8); err != nil {
		return errors.Wrapf(err, "%s: reading header", r.path)
	}
	r.dataBase = 8 + int64(n)
	dataLen := fileSize - r.dataBase
	if len(bytes.TrimSpace(hdr)) == 0 || bytes.TrimSpace(hdr)[0] != '{' {
		return errors.Errorf("%s: not a safetensors file: header is not a JSON object", r.path)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		return errors.Wrapf(err, "%s: invalid safetensors JSON header", r.path)
	}
	r.entries = make(map[string]stEntry, len(raw))
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &r.metadata); err != nil {
				return errors.Errorf("%s: __metadata__ must map strings to strings: %s", r.path, truncate(msg, 200))
			}
			continue
		}
		e, err := r.parseEntry(name, msg, dataLen)
		if err != nil {
			return err
		}
		r.entries[name] = e
		r.infos = append(r.infos, e.info)
	}
	sort.Slice(r.infos, func(i, j int) bool { return r.infos[i].Name < r.infos[j].Name })
	return r.checkLayout(dataLen)
}

func (r *safetensorsFile) parseEntry(name string, msg json.RawMessage, dataLen int64) (stEntry, error) {
	var h struct {
		DType   string   `json:"dtype"`
		Shape   []int    `json:"shape"`
		Offsets []uint64 `json:"data_offsets"`
	}
	if err := json.Unmarshal(msg, &h); err != nil {
		return stEntry{}, errors.Wrapf(err, "%s: tensor %q: invalid header entry %s", r.path, name, truncate(msg, 200))
	}
	dt, ok := safetensorsDTypes[h.DType]
	if !ok {
		return stEntry{}, errors.Errorf("%s: tensor %q: unknown dtype %q (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 BOOL)", r.path, name, h.DType)
	}
	if h.Shape == nil {
		return stEntry{}, errors.Errorf("%s: tensor %q: missing shape", r.path, name)
	}
	count, err := numElements(h.Shape)
	if err != nil {
		return stEntry{}, errors.WithMessagef(err, "%s: tensor %q", r.path, name)
	}
	if count > dataLen {
		return stEntry{}, errors.Errorf("%s: tensor %q: shape %v has %d elements, more than the %d-byte data area holds", r.path, name, h.Shape, count, dataLen)
	}
	if len(h.Offsets) != 2 {
		return stEntry{}, errors.Errorf("%s: tensor %q: data_offsets must have 2 entries, got %v", r.path, name, h.Offsets)
	}
	b, e := h.Offsets[0], h.Offsets[1]
	if b > e || e > uint64(dataLen) {
		return stEntry{}, errors.Errorf("%s: tensor %q: data_offsets [%d, %d] outside the %d-byte data area (file truncated or header corrupt)", r.path, name, b, e, dataLen)
	}
	if want := count * int64(dt.Size()); int64(e-b) != want {
		return stEntry{}, errors.Errorf("%s: tensor %q: data_offsets [%d, %d] hold %d bytes but %s%v needs %d", r.path, name, b, e, e-b, h.DType, h.Shape, want)
	}
	return stEntry{
		info:  TensorInfo{Name: name, DType: dt, Shape: h.Shape, File: r.path},
		begin: int64(b), end: int64(e),
	}, nil
}

// checkLayout rejects overlapping tensors and gaps, as the Python safetensors library does.
func (r *safetensorsFile) checkLayout(dataLen int64) error {
	order := make([]stEntry, 0, len(r.entries))
	for _, e := range r.entries {
		order = append(order, e)
	}
	slices.SortFunc(order, func(a, b stEntry) int {
		return cmp.Or(cmp.Compare(a.begin, b.begin), cmp.Compare(a.end, b.end))
	})
	pos, prev := int64(0), ""
	for _, e := range order {
		switch {
		case e.begin < pos:
			return errors.Errorf("%s: tensor %q: data_offsets [%d, %d] overlap tensor %q (ends at %d)", r.path, e.info.Name, e.begin, e.end, prev, pos)
		case e.begin > pos:
			return errors.Errorf("%s: tensor %q: data_offsets start at %d, leaving a gap after byte %d", r.path, e.info.Name, e.begin, pos)
		}
		pos, prev = e.end, e.info.Name
	}
	if pos != dataLen {
		return errors.Errorf("%s: the tensors cover %d bytes but the data area has %d (header and file size disagree)", r.path, pos, dataLen)
	}
	return nil
}

// Tensors implements Reader.
func (r *safetensorsFile) Tensors() []TensorInfo { return cloneInfos(r.infos) }

// MetadataSource is implemented by the Reader of a single safetensors file.
type MetadataSource interface {
	// Metadata returns the header's __metadata__ map (nil when absent).
	Metadata() map[string]string
}

// Metadata implements MetadataSource.
func (r *safetensorsFile) Metadata() map[string]string { return r.metadata }

// Read implements Reader.
func (r *safetensorsFile) Read(name string) (*tensors.Tensor, error) { return r.readWith(name, nil) }

func (r *safetensorsFile) readWith(name string, alloc Allocator) (*tensors.Tensor, error) {
	e, ok := r.entries[name]
	if err := checkReadable(r.path, name, ok, r.f != nil); err != nil {
		return nil, err
	}
	return fillTensor(r.path, name, alloc, shapes.Make(e.info.DType, e.info.Shape...), func(buf []byte) error {
		return readFullAt(r.f, buf, r.dataBase+e.begin)
	})
}

// checkReadable is the common precondition of every Reader's Read: the tensor exists (known) and
// the file is still open.
func checkReadable(path, name string, known, open bool) error {
	if !known {
		return errors.Errorf("%s: no tensor named %q", path, name)
	}
	if !open {
		return errors.Errorf("%s: reading tensor %q after Close", path, name)
	}
	return nil
}

// fillTensor allocates a tensor of shape with alloc (nil: tensors.FromShape) and lets fill write
// its bytes (little-endian, row-major). A failed fill frees the tensor and the error names the
// file and the tensor.
func fillTensor(path, name string, alloc Allocator, shape shapes.Shape, fill func(buf []byte) error) (*tensors.Tensor, error) {
	if alloc == nil {
		alloc = func(shape shapes.Shape) (*tensors.Tensor, error) { return tensors.FromShape(shape), nil }
	}
	t, err := alloc(shape)
	if err != nil {
		return nil, errors.WithMessagef(err, "%s: allocating tensor %q", path, name)
	}
	var fillErr error
	err = t.MutableBytes(func(buf []byte) { fillErr = fill(buf) })
	if err == nil {
		err = fillErr
	}
	if err != nil {
		_ = t.FinalizeAll()
		return nil, errors.Wrapf(err, "%s: reading tensor %q", path, name)
	}
	return t, nil
}

// Close implements Reader.
func (r *safetensorsFile) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return errors.Wrapf(err, "closing %s", r.path)
}

// readFullAt fills buf from f at off, in chunks (very large single reads are split by the kernel
// anyway; chunking keeps error reporting precise).
func readFullAt(f io.ReaderAt, buf []byte, off int64) error {
	const chunk = 64 << 20
	for len(buf) > 0 {
		n := min(len(buf), chunk)
		m, err := f.ReadAt(buf[:n], off)
		if m == n {
			err = nil
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		buf, off = buf[n:], off+int64(n)
	}
	return nil
}

func cloneInfos(in []TensorInfo) []TensorInfo {
	out := make([]TensorInfo, len(in))
	for i, ti := range in {
		ti.Shape = slices.Clone(ti.Shape)
		out[i] = ti
	}
	return out
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}
