package checkpoint

// GGUF (llama.cpp's model file, version 3): the magic "GGUF", a version, the tensor and
// metadata counts, typed key/value metadata, tensor infos (name, dims with the fastest-varying
// first, ggml type, offset), padding to general.alignment, then the tensor data, each tensor at
// an aligned offset. Read from gguf-py/gguf/constants.py and ggml/src/gguf.cpp of llama.cpp.

import (
	"strconv"
	"strings"

	"github.com/pkg/errors"
)

// ggufMagic opens every GGUF file ("GGUF" read as a little-endian uint32).
const ggufMagic = 0x46554747

// ggufVersion is the version SaveGGUF writes (llama.cpp reads 2 and 3; 1 is obsolete).
const ggufVersion = 3

// ggufAlignment is the data alignment SaveGGUF writes (and general.alignment's default).
const ggufAlignment = 32

// GGUF metadata value types (gguf-py GGUFValueType).
const (
	ggufUint8   uint32 = 0
	ggufInt8    uint32 = 1
	ggufUint16  uint32 = 2
	ggufInt16   uint32 = 3
	ggufUint32  uint32 = 4
	ggufInt32   uint32 = 5
	ggufFloat32 uint32 = 6
	ggufBool    uint32 = 7
	ggufString  uint32 = 8
	ggufArray   uint32 = 9
	ggufUint64  uint32 = 10
	ggufInt64   uint32 = 11
	ggufFloat64 uint32 = 12
)

// GGUFType is a ggml tensor type (gguf-py GGMLQuantizationType). SaveGGUF writes and the GGUF
// reader reads these four.
type GGUFType uint32

// The ggml tensor types llmpruner writes and reads.
const (
	GGUFF32  GGUFType = 0
	GGUFF16  GGUFType = 1
	GGUFQ8_0 GGUFType = 8
	GGUFBF16 GGUFType = 30
)

// q8Block is the number of values in one Q8_0 block (one float16 scale, then 32 int8).
const q8Block = 32

// ParseGGUFType maps "f32", "f16", "bf16" or "q8_0" (case-insensitive; "float32", "float16",
// "bfloat16" and "q8" too) to a GGUFType.
func ParseGGUFType(s string) (GGUFType, error) {
	switch strings.ToLower(s) {
	case "f32", "float32", "fp32":
		return GGUFF32, nil
	case "f16", "float16", "fp16":
		return GGUFF16, nil
	case "bf16", "bfloat16":
		return GGUFBF16, nil
	case "q8_0", "q8":
		return GGUFQ8_0, nil
	}
	return 0, errors.Errorf("unknown GGUF tensor type %q (want f32, f16, bf16 or q8_0)", s)
}

// String is the llama.cpp name of the type ("F32", "F16", "BF16", "Q8_0").
func (t GGUFType) String() string {
	switch t {
	case GGUFF32:
		return "F32"
	case GGUFF16:
		return "F16"
	case GGUFBF16:
		return "BF16"
	case GGUFQ8_0:
		return "Q8_0"
	}
	return "ggml type " + strconv.FormatUint(uint64(t), 10)
}

// fileType is general.file_type of a model whose matrices are t (llama_ftype: ALL_F32 0,
// MOSTLY_F16 1, MOSTLY_Q8_0 7, MOSTLY_BF16 32).
func (t GGUFType) fileType() uint32 {
	switch t {
	case GGUFF16:
		return 1
	case GGUFQ8_0:
		return 7
	case GGUFBF16:
		return 32
	}
	return 0
}

// rowBytes is the size of a row of n values stored as t; ok is false when t cannot store a row
// of that length (Q8_0 needs a multiple of 32) or t is not one of the four types.
func (t GGUFType) rowBytes(n int64) (int64, bool) {
	switch t {
	case GGUFF32:
		return 4 * n, true
	case GGUFF16, GGUFBF16:
		return 2 * n, true
	case GGUFQ8_0:
		if n%q8Block != 0 {
			return 0, false
		}
		return n / q8Block * (2 + q8Block), true
	}
	return 0, false
}

func alignUp(n, a int64) int64 { return (n + a - 1) / a * a }
