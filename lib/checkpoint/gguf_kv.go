package checkpoint

// GGUF metadata: typed key/value pairs, encoded in the order they are added.

import (
	"encoding/binary"
	"math"

	"github.com/pkg/errors"
)

// ggufKV is one metadata entry. val is uint32, int32, float32, bool, string, []int32,
// []float32 or []string (uint64/int64/float64/… are read but never written).
type ggufKV struct {
	key string
	val any
}

// ggufMeta is ordered metadata.
type ggufMeta []ggufKV

func (m *ggufMeta) add(key string, val any) { *m = append(*m, ggufKV{key, val}) }

// get returns the value of key, nil when absent.
func (m ggufMeta) get(key string) any {
	for _, kv := range m {
		if kv.key == key {
			return kv.val
		}
	}
	return nil
}

func appendGGUFString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// appendGGUFValue appends the type tag and the value.
func appendGGUFValue(b []byte, v any) ([]byte, error) {
	le := binary.LittleEndian
	switch x := v.(type) {
	case uint32:
		b = le.AppendUint32(le.AppendUint32(b, ggufUint32), x)
	case int32:
		b = le.AppendUint32(le.AppendUint32(b, ggufInt32), uint32(x))
	case float32:
		b = le.AppendUint32(le.AppendUint32(b, ggufFloat32), math.Float32bits(x))
	case bool:
		var c byte
		if x {
			c = 1
		}
		b = append(le.AppendUint32(b, ggufBool), c)
	case string:
		b = appendGGUFString(le.AppendUint32(b, ggufString), x)
	case []int32:
		b = le.AppendUint64(le.AppendUint32(le.AppendUint32(b, ggufArray), ggufInt32), uint64(len(x)))
		for _, e := range x {
			b = le.AppendUint32(b, uint32(e))
		}
	case []float32:
		b = le.AppendUint64(le.AppendUint32(le.AppendUint32(b, ggufArray), ggufFloat32), uint64(len(x)))
		for _, e := range x {
			b = le.AppendUint32(b, math.Float32bits(e))
		}
	case []string:
		b = le.AppendUint64(le.AppendUint32(le.AppendUint32(b, ggufArray), ggufString), uint64(len(x)))
		for _, e := range x {
			b = appendGGUFString(b, e)
		}
	default:
		return nil, errors.Errorf("GGUF metadata value of type %T is not supported", v)
	}
	return b, nil
}
