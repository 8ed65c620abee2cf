package checkpoint

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/atomicfile"
	"github.com/pkg/errors"
)

// GetFunc returns the tensor named name. Writers call it once or twice per name (once to learn
// the shape when no TensorInfo is given, once to write the bytes) and never keep or finalize the
// tensor: the caller owns it.
type GetFunc func(name string) (*tensors.Tensor, error)

// WriteSafetensors writes the named tensors to path as one safetensors file, atomically: the
// header (names sorted, __metadata__ first, padded with spaces to a multiple of 8 bytes) and
// then the tensors' bytes in name order. get is called twice per name (shapes first, then data),
// one tensor at a time.
func WriteSafetensors(path string, names []string, get GetFunc, metadata map[string]string) error {
	infos, err := infosFromGet(names, get)
	if err != nil {
		return errors.WithMessagef(err, "writing %s", path)
	}
	return writeSafetensors(path, infos, borrowed(get), metadata)
}

// source yields a tensor to write and a release function called once its bytes are written
// (a no-op for tensors the caller owns).
type source func(name string) (t *tensors.Tensor, release func(), err error)

// borrowed adapts a GetFunc, whose tensors belong to the caller.
func borrowed(get GetFunc) source {
	return func(name string) (*tensors.Tensor, func(), error) {
		t, err := get(name)
		return t, func() {}, err
	}
}

// infosFromGet asks get for each tensor once to learn its dtype and shape.
func infosFromGet(names []string, get GetFunc) ([]TensorInfo, error) {
	infos := make([]TensorInfo, 0, len(names))
	for _, name := range names {
		t, err := get(name)
		if err != nil {
			return nil, errors.WithMessagef(err, "tensor %q", name)
		}
		if t == nil {
			return nil, errors.Errorf("tensor %q: got nil", name)
		}
		infos = append(infos, TensorInfo{Name: name, DType: t.DType(), Shape: t.Shape().Dimensions})
	}
	return infos, nil
}

// safetensorsHeader renders the JSON header for infos (already sorted by name), returning it
// padded to a multiple of 8 bytes, together with the total data size.
func safetensorsHeader(infos []TensorInfo, metadata map[string]string) ([]byte, int64, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	if len(metadata) > 0 {
		m, err := json.Marshal(metadata)
		if err != nil {
			return nil, 0, errors.Wrap(err, "encoding metadata")
		}
		buf.WriteString(`"__metadata__":`)
		buf.Write(m)
	}
	var offset int64
	for i, ti := range infos {
		if ti.Name == "__metadata__" || ti.Name == "" {
			return nil, 0, errors.Errorf("invalid tensor name %q", ti.Name)
		}
		if i > 0 && infos[i-1].Name == ti.Name {
			return nil, 0, errors.Errorf("tensor %q is listed twice", ti.Name)
		}
		dt, err := safetensorsName(ti.DType)
		if err != nil {
			return nil, 0, errors.WithMessagef(err, "tensor %q", ti.Name)
		}
		n, err := numElements(ti.Shape)
		if err != nil {
			return nil, 0, errors.WithMessagef(err, "tensor %q", ti.Name)
		}
		size := n * int64(ti.DType.Size())
		name, _ := json.Marshal(ti.Name)
		shape := ti.Shape
		if shape == nil {
			shape = []int{}
		}
		shapeJSON, _ := json.Marshal(shape)
		if buf.Len() > 1 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `%s:{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}`, name, dt, shapeJSON, offset, offset+size)
		offset += size
	}
	buf.WriteByte('}')
	for buf.Len()%8 != 0 {
		buf.WriteByte(' ')
	}
	return buf.Bytes(), offset, nil
}

// writeSafetensors writes infos (any order; sorted here) fetching data with get.
func writeSafetensors(path string, infos []TensorInfo, get source, metadata map[string]string) error {
	infos = cloneInfos(infos)
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	header, _, err := safetensorsHeader(infos, metadata)
	if err != nil {
		return errors.WithMessagef(err, "writing %s", path)
	}
	return atomicfile.Write(path, 0o644, func(f *os.File) error {
		w := bufio.NewWriterSize(f, 1<<20)
		var lenBuf [8]byte
		binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(header)))
		if _, err := w.Write(lenBuf[:]); err != nil {
			return err
		}
		if _, err := w.Write(header); err != nil {
			return err
		}
		for _, ti := range infos {
			if err := writeTensorData(w, ti, get); err != nil {
				return err
			}
		}
		return w.Flush()
	})
}

func writeTensorData(w *bufio.Writer, ti TensorInfo, get source) error {
	t, release, err := get(ti.Name)
	if err != nil {
		return errors.WithMessagef(err, "tensor %q", ti.Name)
	}
	defer release()
	if t == nil {
		return errors.Errorf("tensor %q: got nil", ti.Name)
	}
	if t.DType() != ti.DType || !slices.Equal(t.Shape().Dimensions, ti.Shape) {
		return errors.Errorf("tensor %q changed between calls: %s%v, then %s", ti.Name, ti.DType, ti.Shape, t.Shape())
	}
	var werr error
	if err := t.ConstBytes(func(data []byte) { _, werr = w.Write(data) }); err != nil {
		return errors.Wrapf(err, "tensor %q", ti.Name)
	}
	return errors.Wrapf(werr, "tensor %q", ti.Name)
}

// ShardedFiles describes what WriteSafetensorsSharded wrote.
type ShardedFiles struct {
	Files []string // shard file names (base names), in order
	Index string   // base name of the index file, "" when a single file was written
}

// WriteSafetensorsSharded writes infos into dir as model.safetensors when their total size is at
// most maxShardBytes (or maxShardBytes <= 0), else as model-0000k-of-0000n.safetensors shards of at
// most maxShardBytes each (a single larger tensor gets its own shard) plus
// model.safetensors.index.json, the layout transformers writes. Each file is written atomically;
// use SaveHF (or atomicfile.WriteDir) for an atomic directory.
func WriteSafetensorsSharded(dir string, infos []TensorInfo, get GetFunc, metadata map[string]string, maxShardBytes int64) (ShardedFiles, error) {
	return writeSharded(dir, infos, borrowed(get), metadata, maxShardBytes)
}

func writeSharded(dir string, infos []TensorInfo, get source, metadata map[string]string, maxShardBytes int64) (ShardedFiles, error) {
	infos = cloneInfos(infos)
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	var groups [][]TensorInfo
	var cur []TensorInfo
	var curSize, total int64
	for _, ti := range infos {
		n, err := numElements(ti.Shape)
		if err != nil {
			return ShardedFiles{}, errors.WithMessagef(err, "tensor %q", ti.Name)
		}
		size := n * int64(ti.DType.Size())
		total += size
		if maxShardBytes > 0 && len(cur) > 0 && curSize+size > maxShardBytes {
			groups = append(groups, cur)
			cur, curSize = nil, 0
		}
		cur = append(cur, ti)
		curSize += size
	}
	if len(cur) > 0 || len(groups) == 0 {
		groups = append(groups, cur)
	}
	if len(groups) == 1 {
		err := writeSafetensors(filepath.Join(dir, SafetensorsFile), infos, get, metadata)
		return ShardedFiles{Files: []string{SafetensorsFile}}, err
	}
	out := ShardedFiles{Index: SafetensorsIndexFile}
	weightMap := map[string]string{}
	for i, g := range groups {
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(groups))
		if err := writeSafetensors(filepath.Join(dir, name), g, get, metadata); err != nil {
			return out, err
		}
		out.Files = append(out.Files, name)
		for _, ti := range g {
			weightMap[ti.Name] = name
		}
	}
	idx, err := json.MarshalIndent(map[string]any{
		"metadata":   map[string]any{"total_size": total},
		"weight_map": weightMap,
	}, "", "  ")
	if err != nil {
		return out, errors.Wrap(err, "encoding index")
	}
	return out, atomicfile.WriteFile(filepath.Join(dir, SafetensorsIndexFile), append(idx, '\n'), 0o644)
}
