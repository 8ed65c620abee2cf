package checkpoint

import (
	"fmt"
	"io"
	"math/big"

	"github.com/gomlx/compute/dtypes"
	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
	"github.com/pkg/errors"
)

// This file holds the restricted unpickler for PyTorch checkpoints. Only a fixed list of globals
// resolves (torch's tensor/parameter rebuild functions, storage classes, OrderedDict, torch.Size);
// any other global — os.system, builtins.eval, a user class — is an error naming it. Nothing is
// ever executed: the allowed "functions" are Go values that build tensor descriptors.

// torchStorageDTypes maps torch storage class names to dtypes.
var torchStorageDTypes = map[string]dtypes.DType{
	"DoubleStorage":   dtypes.Float64,
	"FloatStorage":    dtypes.Float32,
	"HalfStorage":     dtypes.Float16,
	"BFloat16Storage": dtypes.BFloat16,
	"LongStorage":     dtypes.Int64,
	"IntStorage":      dtypes.Int32,
	"ShortStorage":    dtypes.Int16,
	"CharStorage":     dtypes.Int8,
	"ByteStorage":     dtypes.Uint8,
	"BoolStorage":     dtypes.Bool,
}

// ptStorageClass is the pickled value of a torch.XStorage global.
type ptStorageClass struct {
	name  string
	dtype dtypes.DType
}

// ptStorage is one storage of the checkpoint; its bytes are read lazily.
type ptStorage struct {
	key   string
	dtype dtypes.DType
	numel int64
	// where the bytes are: an entry of the zip archive, or an offset in a legacy file.
	read func(buf []byte, byteOffset int64) error
	size int64 // bytes available
}

// ptTensor describes a tensor as torch pickled it: a strided view into a storage.
type ptTensor struct {
	storage *ptStorage
	offset  int64 // in elements
	size    []int
	stride  []int
}

// pyFunc adapts a Go function to gopickle's Callable.
type pyFunc struct {
	name string
	fn   func(args []any) (any, error)
}

func (p *pyFunc) Call(args ...any) (any, error) {
	v, err := p.fn(args)
	return v, errors.WithMessage(err, p.name)
}

// findTorchClass resolves the globals a state-dict pickle may name.
func findTorchClass(module, name string) (any, error) {
	switch module + "." + name {
	case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
		return &pyFunc{name, rebuildTensor}, nil
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		return &pyFunc{name, func(args []any) (any, error) {
			if len(args) < 1 {
				return nil, errors.New("missing data argument")
			}
			return args[0], nil
		}}, nil
	case "torch._tensor._rebuild_from_type_v2":
		// (func, new_type, args, state): func(*args); the subclass (Parameter) is dropped.
		return &pyFunc{name, func(args []any) (any, error) {
			if len(args) < 3 {
				return nil, errors.New("expected (func, type, args, state)")
			}
			f, ok1 := args[0].(*pyFunc)
			inner, ok2 := args[2].(*types.Tuple)
			if !ok1 || !ok2 {
				return nil, errors.Errorf("unexpected arguments %T, %T", args[0], args[2])
			}
			return f.fn(*inner)
		}}, nil
	case "torch.nn.parameter.Parameter", "torch._tensor.Tensor", "torch.Tensor":
		return &pyFunc{name, func(args []any) (any, error) { return nil, errors.New("cannot be instantiated") }}, nil
	case "torch.Size":
		return &pyFunc{name, func(args []any) (any, error) {
			if len(args) != 1 {
				return nil, errors.New("expected one tuple")
			}
			return args[0], nil
		}}, nil
	}
	if module == "torch" {
		if dt, ok := torchStorageDTypes[name]; ok {
			return &ptStorageClass{name: name, dtype: dt}, nil
		}
	}
	return nil, errors.Errorf("pickle references the global %s.%s, which is not allowed (only torch tensor/parameter rebuild functions, torch storage types, collections.OrderedDict and torch.Size are; no code is executed)", module, name)
}

// rebuildTensor implements torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, ...).
func rebuildTensor(args []any) (any, error) {
	if len(args) < 4 {
		return nil, errors.Errorf("expected at least 4 arguments, got %d", len(args))
	}
	st, ok := args[0].(*ptStorage)
	if !ok {
		return nil, errors.Errorf("argument 0 is %T, not a storage", args[0])
	}
	off, ok := args[1].(int)
	if !ok || off < 0 {
		return nil, errors.Errorf("storage offset %v is not a non-negative int", args[1])
	}
	size, err := intTuple(args[2])
	if err != nil {
		return nil, errors.WithMessage(err, "size")
	}
	stride, err := intTuple(args[3])
	if err != nil {
		return nil, errors.WithMessage(err, "stride")
	}
	if len(size) != len(stride) {
		return nil, errors.Errorf("size %v and stride %v differ in rank", size, stride)
	}
	return &ptTensor{storage: st, offset: int64(off), size: size, stride: stride}, nil
}

func intTuple(v any) ([]int, error) {
	var items []any
	switch t := v.(type) {
	case *types.Tuple:
		items = *t
	case *types.List:
		items = *t
	default:
		return nil, errors.Errorf("expected a tuple of ints, got %T", v)
	}
	out := make([]int, len(items))
	for i, it := range items {
		n, ok := it.(int)
		if !ok || n < 0 {
			return nil, errors.Errorf("expected non-negative ints, got %v", it)
		}
		out[i] = n
	}
	return out, nil
}

// unpickle runs the restricted unpickler over r. persistentLoad resolves ('storage', ...) ids.
// gopickle panics on some malformed streams; that is turned into an error.
func unpickle(r io.Reader, persistentLoad func(id *types.Tuple) (any, error)) (obj any, err error) {
	defer func() {
		if p := recover(); p != nil {
			obj, err = nil, errors.Errorf("malformed pickle: %v", p)
		}
	}()
	u := pickle.NewUnpickler(r)
	u.FindClass = findTorchClass
	u.PersistentLoad = func(id any) (any, error) {
		t, ok := id.(*types.Tuple)
		if !ok || t.Len() == 0 {
			return nil, errors.Errorf("persistent id %v is not a tuple", id)
		}
		if kind, _ := t.Get(0).(string); kind != "storage" {
			return nil, errors.Errorf("persistent id of type %v is not supported (only 'storage')", t.Get(0))
		}
		return persistentLoad(t)
	}
	u.GetExtension = func(code int) (any, error) {
		return nil, errors.Errorf("pickle extension code %d is not allowed", code)
	}
	return u.Load()
}

// plainUnpickle reads a pickle holding only plain data (ints, strings, lists): any global is refused.
func plainUnpickle(r io.Reader) (any, error) {
	return unpickle(r, func(*types.Tuple) (any, error) { return nil, errors.New("unexpected persistent id") })
}

// storageArgs decodes ('storage', storage_type, key, location, numel[, view_metadata]).
func storageArgs(t *types.Tuple) (cls *ptStorageClass, key string, numel int64, err error) {
	if t.Len() < 5 {
		return nil, "", 0, errors.Errorf("storage id has %d fields, want at least 5", t.Len())
	}
	cls, ok := t.Get(1).(*ptStorageClass)
	if !ok {
		return nil, "", 0, errors.Errorf("storage type %v is not a supported torch storage class", t.Get(1))
	}
	switch k := t.Get(2).(type) {
	case string:
		key = k
	case int:
		key = fmt.Sprint(k)
	default:
		return nil, "", 0, errors.Errorf("storage key %v is not a string", t.Get(2))
	}
	n, ok := t.Get(4).(int)
	if !ok || n < 0 {
		return nil, "", 0, errors.Errorf("storage size %v is not a non-negative int", t.Get(4))
	}
	return cls, key, int64(n), nil
}

// stateDictEntries extracts name → tensor from the unpickled object: a (Ordered)Dict of tensors,
// or a dict whose "state_dict" / "model" / "module" entry is one.
func stateDictEntries(obj any) (names []string, byName map[string]*ptTensor, err error) {
	byName = map[string]*ptTensor{}
	type kv struct {
		k string
		v any
	}
	entries := func(o any) ([]kv, bool) {
		var out []kv
		switch d := o.(type) {
		case *types.OrderedDict:
			for el := d.List.Front(); el != nil; el = el.Next() {
				e := el.Value.(*types.OrderedDictEntry)
				k, _ := e.Key.(string)
				out = append(out, kv{k, e.Value})
			}
		case *types.Dict:
			for _, e := range *d {
				k, _ := e.Key.(string)
				out = append(out, kv{k, e.Value})
			}
		default:
			return nil, false
		}
		return out, true
	}
	top, ok := entries(obj)
	if !ok {
		return nil, nil, errors.Errorf("top-level object is %T, not a state dict", obj)
	}
	hasTensor := func(es []kv) bool {
		for _, e := range es {
			if _, ok := e.v.(*ptTensor); ok {
				return true
			}
		}
		return false
	}
	if !hasTensor(top) {
		for _, e := range top {
			if e.k == "state_dict" || e.k == "model" || e.k == "module" {
				if inner, ok := entries(e.v); ok && hasTensor(inner) {
					top = inner
					break
				}
			}
		}
	}
	for _, e := range top {
		t, ok := e.v.(*ptTensor)
		if !ok {
			continue // non-tensor values (ints, strings) are not weights
		}
		if e.k == "" {
			return nil, nil, errors.New("state dict has a tensor under a non-string key")
		}
		names = append(names, e.k)
		byName[e.k] = t
	}
	if len(names) == 0 {
		return nil, nil, errors.New("no tensors found in the state dict")
	}
	return names, byName, nil
}

// checkLegacyMagic checks the magic number and protocol version pickles of a legacy torch file.
func checkLegacyMagic(r io.Reader) error {
	magic, err := plainUnpickle(r)
	if err != nil {
		return errors.WithMessage(err, "reading magic number")
	}
	if n, ok := magic.(*big.Int); !ok || n.Text(16) != "1950a86a20f9469cfc6c" {
		return errors.Errorf("not a PyTorch file: bad magic number %v", magic)
	}
	version, err := plainUnpickle(r)
	if err != nil {
		return errors.WithMessage(err, "reading protocol version")
	}
	if v, ok := version.(int); !ok || v != 1001 {
		return errors.Errorf("unsupported legacy PyTorch protocol version %v", version)
	}
	return nil
}
