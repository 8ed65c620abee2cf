package checkpoint

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/pkg/errors"
)

// shardedReader joins the readers of several shard files into one Reader.
type shardedReader struct {
	shards []Reader
	owner  map[string]Reader
	infos  []TensorInfo
}

// joinShards builds a Reader over shards. A tensor found in two shards is an error naming both
// files. It takes ownership of shards (closing them on error).
func joinShards(shards []Reader) (Reader, error) {
	s := &shardedReader{shards: shards, owner: map[string]Reader{}}
	for _, sh := range shards {
		for _, ti := range sh.Tensors() {
			if prev, dup := s.owner[ti.Name]; dup {
				first := prev.Tensors()[0].File
				_ = s.Close()
				return nil, errors.Errorf("tensor %q is stored twice: in %s and in %s", ti.Name, first, ti.File)
			}
			s.owner[ti.Name] = sh
			s.infos = append(s.infos, ti)
		}
	}
	sort.Slice(s.infos, func(i, j int) bool { return s.infos[i].Name < s.infos[j].Name })
	return s, nil
}

func (s *shardedReader) Tensors() []TensorInfo { return cloneInfos(s.infos) }

func (s *shardedReader) Read(name string) (*tensors.Tensor, error) { return s.readWith(name, nil) }

func (s *shardedReader) readWith(name string, alloc Allocator) (*tensors.Tensor, error) {
	sh, ok := s.owner[name]
	if !ok {
		return nil, errors.Errorf("checkpoint has no tensor named %q", name)
	}
	return ReadWith(sh, name, alloc)
}

func (s *shardedReader) Close() error {
	var first error
	for _, sh := range s.shards {
		if err := sh.Close(); err != nil && first == nil {
			first = err
		}
	}
	s.shards = nil
	return first
}

// shardIndex is the content of model.safetensors.index.json / pytorch_model.bin.index.json.
type shardIndex struct {
	Metadata  map[string]any    `json:"metadata"`
	WeightMap map[string]string `json:"weight_map"`
}

// openIndexed opens the shards listed by an index file with openShard, and checks that every
// tensor the index lists is in the shard it names. Tensors present in a shard but missing
// from the index are still served (the index is only a routing table).
func openIndexed(indexPath string, openShard func(path string) (Reader, error)) (Reader, error) {
	data, err := os.ReadFile(indexPath)
	if err != nil {
		return nil, errors.Wrap(err, "reading checkpoint index")
	}
	var idx shardIndex
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, errors.Wrapf(err, "%s: invalid index JSON", indexPath)
	}
	if len(idx.WeightMap) == 0 {
		return nil, errors.Errorf("%s: index has an empty or missing weight_map", indexPath)
	}
	dir := filepath.Dir(indexPath)
	files := map[string]bool{}
	for name, file := range idx.WeightMap {
		if file == "" || filepath.IsAbs(file) || filepath.Clean(file) != filepath.Base(file) {
			return nil, errors.Errorf("%s: tensor %q: shard name %q must be a plain file name in the index's directory", indexPath, name, file)
		}
		files[file] = true
	}
	names := make([]string, 0, len(files))
	for f := range files {
		names = append(names, f)
	}
	sort.Strings(names)
	var shards []Reader
	closeAll := func() {
		for _, sh := range shards {
			_ = sh.Close()
		}
	}
	byFile := map[string]map[string]bool{}
	for _, f := range names {
		p := filepath.Join(dir, f)
		if _, err := os.Stat(p); err != nil {
			closeAll()
			return nil, errors.Errorf("%s lists shard %s, which is missing (%v)", indexPath, p, err)
		}
		sh, err := openShard(p)
		if err != nil {
			closeAll()
			return nil, errors.WithMessagef(err, "shard listed by %s", indexPath)
		}
		shards = append(shards, sh)
		have := map[string]bool{}
		for _, ti := range sh.Tensors() {
			have[ti.Name] = true
		}
		byFile[f] = have
	}
	listed := make([]string, 0, len(idx.WeightMap))
	for name := range idx.WeightMap {
		listed = append(listed, name)
	}
	sort.Strings(listed)
	for _, name := range listed {
		if file := idx.WeightMap[name]; !byFile[file][name] {
			closeAll()
			return nil, errors.Errorf("%s lists tensor %q in %s, but that shard does not hold it", indexPath, name, filepath.Join(dir, file))
		}
	}
	return joinShards(shards)
}
