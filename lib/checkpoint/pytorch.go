package checkpoint

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/nlpodyssey/gopickle/types"
	"github.com/pkg/errors"
)

// pytorchFile reads a pytorch_model.bin (zip format of torch >= 1.6, or the legacy format).
// Only the pickle (the tensor directory) is read at open; each tensor's bytes are read from its
// storage when asked for.
type pytorchFile struct {
	path    string
	f       *os.File
	infos   []TensorInfo
	tensors map[string]*ptTensor
}

// OpenPyTorch opens a PyTorch checkpoint saved with torch.save(state_dict): the zip format
// (torch >= 1.6) or the legacy format. The pickle is decoded by a restricted unpickler that
// executes nothing and refuses every global except torch's tensor-rebuild functions, storage
// types and OrderedDict. Storage offsets and strides are honoured (views, transposes and shared
// storages); float32/float16/bfloat16 storages keep their dtype.
func OpenPyTorch(path string) (Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errors.Wrap(err, "opening PyTorch checkpoint")
	}
	r := &pytorchFile{path: path, f: f}
	var head [4]byte
	_, _ = f.ReadAt(head[:], 0)
	if bytes.Equal(head[:], []byte("PK\x03\x04")) {
		err = r.openZip()
	} else {
		err = r.openLegacy()
	}
	if err != nil {
		_ = f.Close()
		return nil, errors.WithMessagef(err, "%s", path)
	}
	return r, nil
}

func (r *pytorchFile) openZip() error {
	st, err := r.f.Stat()
	if err != nil {
		return err
	}
	zr, err := zip.NewReader(r.f, st.Size())
	if err != nil {
		return errors.Wrap(err, "not a valid zip archive")
	}
	var pkl *zip.File
	entries := map[string]*zip.File{}
	for _, zf := range zr.File {
		entries[zf.Name] = zf
		if strings.HasSuffix(zf.Name, "/constants.pkl") {
			return errors.New("TorchScript archives are not supported (save the model's state_dict instead)")
		}
		if strings.HasSuffix(zf.Name, "/data.pkl") && strings.Count(zf.Name, "/") == 1 {
			pkl = zf
		}
	}
	if pkl == nil {
		return errors.New("zip archive has no <name>/data.pkl: not a torch.save file")
	}
	prefix := strings.TrimSuffix(pkl.Name, "data.pkl")
	if bo, ok := entries[prefix+"byteorder"]; ok {
		if b, err := readSmallEntry(bo, 16); err == nil && strings.TrimSpace(string(b)) != "little" {
			return errors.Errorf("byte order %q is not supported", b)
		}
	}
	if err := checkZipEntrySize(pkl, st.Size()); err != nil {
		return err
	}
	raw, err := readSmallEntry(pkl, 1<<30)
	if err != nil {
		return errors.Wrapf(err, "reading %s", pkl.Name)
	}
	data, err := scanPickle(bufio.NewReader(bytes.NewReader(raw)), int64(len(raw)))
	if err != nil {
		return errors.WithMessagef(err, "decoding %s", pkl.Name)
	}
	storages := map[string]*ptStorage{}
	obj, err := unpickle(bytes.NewReader(data), func(id *types.Tuple) (any, error) {
		cls, key, numel, err := storageArgs(id)
		if err != nil {
			return nil, err
		}
		if s, ok := storages[key]; ok {
			return s, nil
		}
		zf, ok := entries[prefix+"data/"+key]
		if !ok {
			return nil, errors.Errorf("storage %s: zip entry %sdata/%s is missing", key, prefix, key)
		}
		if err := checkZipEntrySize(zf, st.Size()); err != nil {
			return nil, errors.WithMessagef(err, "storage %s", key)
		}
		s := &ptStorage{key: key, dtype: cls.dtype, numel: numel, size: int64(zf.UncompressedSize64)}
		s.read = r.zipEntryReader(zf)
		storages[key] = s
		return s, nil
	})
	if err != nil {
		return errors.WithMessagef(err, "decoding %s", pkl.Name)
	}
	return r.index(obj)
}

// zipEntryReader returns a function reading bytes of an entry: with ReadAt straight from the
// file for stored (uncompressed, as torch writes them) entries, by decompressing otherwise.
func (r *pytorchFile) zipEntryReader(zf *zip.File) func(buf []byte, off int64) error {
	return func(buf []byte, off int64) error {
		if off+int64(len(buf)) > int64(zf.UncompressedSize64) {
			return errors.Errorf("zip entry %s has %d bytes, need %d", zf.Name, zf.UncompressedSize64, off+int64(len(buf)))
		}
		if zf.Method == zip.Store {
			base, err := zf.DataOffset()
			if err != nil {
				return err
			}
			return readFullAt(r.f, buf, base+off)
		}
		rc, err := zf.Open()
		if err != nil {
			return err
		}
		defer rc.Close()
		if _, err := io.CopyN(io.Discard, rc, off); err != nil {
			return err
		}
		_, err = io.ReadFull(rc, buf)
		return err
	}
}

// maxDeflateRatio bounds how much deflate can expand its input (a run of one byte value reaches
// about 1032:1); an entry claiming more than that is lying about its size.
const maxDeflateRatio = 1032

// checkZipEntrySize rejects an entry whose claimed size the file cannot hold: a stored entry
// must lie inside the file, a compressed one cannot expand beyond deflate's ratio. Storage bytes
// are allocated from that claim, so a forged central directory must fail here, not in make().
func checkZipEntrySize(zf *zip.File, fileSize int64) error {
	off, err := zf.DataOffset()
	if err != nil {
		return errors.Wrapf(err, "zip entry %s", zf.Name)
	}
	c, u := zf.CompressedSize64, zf.UncompressedSize64
	switch {
	case c > uint64(fileSize) || off < 0 || uint64(off)+c > uint64(fileSize):
		return errors.Errorf("zip entry %s claims %d bytes at offset %d, beyond the %d-byte file (truncated or forged)", zf.Name, c, off, fileSize)
	case zf.Method == zip.Store && u != c:
		return errors.Errorf("zip entry %s is stored uncompressed but claims %d bytes in %d", zf.Name, u, c)
	case u > maxDeflateRatio*c+64:
		return errors.Errorf("zip entry %s claims %d bytes compressed into %d, beyond what deflate can produce", zf.Name, u, c)
	}
	return nil
}

func readSmallEntry(zf *zip.File, limit int64) ([]byte, error) {
	if zf.UncompressedSize64 > uint64(limit) {
		return nil, errors.Errorf("%s is too large (%d bytes)", zf.Name, zf.UncompressedSize64)
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, limit))
}

// openLegacy reads the pre-1.6 format: magic, protocol version and sys-info pickles, the
// state-dict pickle, the sorted storage keys, then each storage as an int64 element count
// followed by its bytes.
func (r *pytorchFile) openLegacy() error {
	st, err := r.f.Stat()
	if err != nil {
		return err
	}
	br := bufio.NewReader(r.f)
	var consumed int64
	next := func(what string) (*bytes.Reader, error) {
		p, err := scanPickle(br, st.Size()-consumed)
		if err != nil {
			return nil, errors.WithMessagef(err, "reading the %s pickle", what)
		}
		consumed += int64(len(p))
		return bytes.NewReader(p), nil
	}
	pickles := make([]*bytes.Reader, 5)
	for i, what := range []string{"magic number", "protocol version", "sys info", "state dict", "storage keys"} {
		if pickles[i], err = next(what); err != nil {
			return err
		}
		if i == 1 {
			if err := checkLegacyMagic(io.MultiReader(pickles[0], pickles[1])); err != nil {
				return err
			}
		}
	}
	if _, err := plainUnpickle(pickles[2]); err != nil {
		return errors.WithMessage(err, "reading sys info")
	}
	storages := map[string]*ptStorage{}
	obj, err := unpickle(pickles[3], func(id *types.Tuple) (any, error) {
		cls, key, numel, err := storageArgs(id)
		if err != nil {
			return nil, err
		}
		if id.Len() > 5 && id.Get(5) != nil {
			return nil, errors.Errorf("storage %s: legacy storage views are not supported", key)
		}
		if s, ok := storages[key]; ok {
			return s, nil
		}
		s := &ptStorage{key: key, dtype: cls.dtype, numel: numel, size: -1}
		storages[key] = s
		return s, nil
	})
	if err != nil {
		return errors.WithMessage(err, "decoding the state-dict pickle")
	}
	rawKeys, err := plainUnpickle(pickles[4])
	if err != nil {
		return errors.WithMessage(err, "reading storage keys")
	}
	keys, err := legacyKeys(rawKeys)
	if err != nil {
		return err
	}
	pos := consumed
	for _, key := range keys {
		s, ok := storages[key]
		if !ok {
			return errors.Errorf("storage %s listed but never referenced", key)
		}
		var n [8]byte
		if _, err := r.f.ReadAt(n[:], pos); err != nil {
			return errors.Errorf("storage %s: truncated file (no size at byte %d)", key, pos)
		}
		count := int64(binary.LittleEndian.Uint64(n[:]))
		if count < 0 || count != s.numel {
			return errors.Errorf("storage %s: stored element count %d, pickle says %d", key, count, s.numel)
		}
		base := pos + 8
		s.size = count * int64(s.dtype.Size())
		if base+s.size > st.Size() {
			return errors.Errorf("storage %s: needs bytes up to %d, file has %d (truncated)", key, base+s.size, st.Size())
		}
		s.read = func(buf []byte, off int64) error { return readFullAt(r.f, buf, base+off) }
		pos = base + s.size
	}
	for key, s := range storages {
		if s.read == nil {
			return errors.Errorf("storage %s is referenced but its data is missing", key)
		}
	}
	return r.index(obj)
}

func legacyKeys(v any) ([]string, error) {
	l, ok := v.(*types.List)
	if !ok {
		return nil, errors.Errorf("storage key list is %T", v)
	}
	out := make([]string, len(*l))
	for i, k := range *l {
		s, ok := k.(string)
		if !ok {
			return nil, errors.Errorf("storage key %v is not a string", k)
		}
		out[i] = s
	}
	return out, nil
}

// index validates every tensor against its storage and builds the TensorInfo list.
func (r *pytorchFile) index(obj any) error {
	names, byName, err := stateDictEntries(obj)
	if err != nil {
		return err
	}
	r.tensors = byName
	for _, name := range names {
		t := byName[name]
		if t.storage.dtype.Size() == 0 {
			return errors.Errorf("tensor %q: unsupported dtype %s", name, t.storage.dtype)
		}
		if err := t.checkView(); err != nil {
			return errors.WithMessagef(err, "tensor %q", name)
		}
		if end := t.extent(); end > t.storage.numel {
			return errors.Errorf("tensor %q: view (offset %d, size %v, stride %v) reaches element %d of a %d-element storage", name, t.offset, t.size, t.stride, end, t.storage.numel)
		}
		if need := t.storage.numel * int64(t.storage.dtype.Size()); t.storage.size >= 0 && t.storage.size < need {
			return errors.Errorf("tensor %q: storage %s holds %d bytes, %d elements of %s need %d", name, t.storage.key, t.storage.size, t.storage.numel, t.storage.dtype, need)
		}
		r.infos = append(r.infos, TensorInfo{Name: name, DType: t.storage.dtype, Shape: t.size, File: r.path})
	}
	sort.Slice(r.infos, func(i, j int) bool { return r.infos[i].Name < r.infos[j].Name })
	return nil
}

// checkView rejects views whose element count or reach would overflow int64.
func (t *ptTensor) checkView() error {
	if _, err := numElements(t.size); err != nil {
		return err
	}
	reach := t.offset
	for i, s := range t.size {
		if s > 1 && t.stride[i] > 0 && int64(t.stride[i]) > ((1<<62)-reach)/int64(s-1) {
			return errors.Errorf("view size %v with stride %v is out of range", t.size, t.stride)
		}
		if s > 1 {
			reach += int64(s-1) * int64(t.stride[i])
		}
	}
	return nil
}

// extent is one past the largest storage element the view touches (offset when it is empty).
func (t *ptTensor) extent() int64 {
	end := t.offset + 1
	for i, s := range t.size {
		if s == 0 {
			return t.offset
		}
		end += int64(s-1) * int64(t.stride[i])
	}
	return end
}

// contiguous reports whether the view is row-major without gaps.
func (t *ptTensor) contiguous() bool {
	want := 1
	for i := len(t.size) - 1; i >= 0; i-- {
		if t.size[i] != 1 && t.stride[i] != want {
			return false
		}
		want *= t.size[i]
	}
	return true
}

// Tensors implements Reader.
func (r *pytorchFile) Tensors() []TensorInfo { return cloneInfos(r.infos) }

// Read implements Reader.
func (r *pytorchFile) Read(name string) (*tensors.Tensor, error) { return r.readWith(name, nil) }

func (r *pytorchFile) readWith(name string, alloc Allocator) (*tensors.Tensor, error) {
	t, ok := r.tensors[name]
	if err := checkReadable(r.path, name, ok, r.f != nil); err != nil {
		return nil, err
	}
	return fillTensor(r.path, name, alloc, shapes.Make(t.storage.dtype, t.size...), func(dst []byte) error {
		if len(dst) == 0 {
			return nil
		}
		esize := int64(t.storage.dtype.Size())
		if t.contiguous() {
			return t.storage.read(dst, t.offset*esize)
		}
		// Strided view: read the span it touches, then gather.
		span := make([]byte, (t.extent()-t.offset)*esize)
		if err := t.storage.read(span, t.offset*esize); err != nil {
			return err
		}
		gather(dst, span, t.size, t.stride, int(esize))
		return nil
	})
}

// gather copies the strided view of src (element strides, element size esize) into dst in
// row-major order.
func gather(dst, src []byte, size, stride []int, esize int) {
	pos := 0
	var walk func(axis, base int)
	walk = func(axis, base int) {
		if axis == len(size) {
			copy(dst[pos:pos+esize], src[base*esize:(base+1)*esize])
			pos += esize
			return
		}
		for i := range size[axis] {
			walk(axis+1, base+i*stride[axis])
		}
	}
	walk(0, 0)
}

// Close implements Reader.
func (r *pytorchFile) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return errors.Wrapf(err, "closing %s", r.path)
}
