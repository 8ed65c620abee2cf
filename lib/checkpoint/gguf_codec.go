package checkpoint

// Encoding float32 values into the GGUF tensor types and back, in llama.cpp's layouts
// (ggml-quants.c quantize_row_q8_0_ref / dequantize_row_q8_0, ggml_fp32_to_fp16, ggml_fp32_to_bf16).

import (
	"encoding/binary"
	"math"

	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/pkg/errors"
)

// encodeGGUF appends x stored as t to dst. Q8_0 needs len(x) to be a multiple of 32 (a row).
func encodeGGUF(dst []byte, x []float32, t GGUFType) ([]byte, error) {
	switch t {
	case GGUFF32:
		for _, v := range x {
			dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
		}
	case GGUFF16:
		for _, v := range x {
			dst = binary.LittleEndian.AppendUint16(dst, uint16(float16.FromFloat32(v)))
		}
	case GGUFBF16:
		for _, v := range x {
			dst = binary.LittleEndian.AppendUint16(dst, bf16Bits(v))
		}
	case GGUFQ8_0:
		if len(x)%q8Block != 0 {
			return nil, errors.Errorf("Q8_0 needs a multiple of %d values, got %d", q8Block, len(x))
		}
		for b := 0; b < len(x); b += q8Block {
			dst = appendQ8Block(dst, x[b:b+q8Block])
		}
	default:
		return nil, errors.Errorf("cannot encode GGUF type %s", t)
	}
	return dst, nil
}

// bf16Bits rounds v to bfloat16 (nearest even; NaN stays a quiet NaN), as ggml_compute_fp32_to_bf16.
func bf16Bits(v float32) uint16 {
	if math.IsNaN(float64(v)) {
		return uint16(math.Float32bits(v)>>16) | 0x40
	}
	return uint16(bfloat16.FromFloat32(v))
}

// appendQ8Block quantizes 32 values: scale d = max|x|/127 (stored as float16), q = round(x/d).
func appendQ8Block(dst []byte, x []float32) []byte {
	amax := float32(0)
	for _, v := range x {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	d := amax / 127
	id := float32(0)
	if d != 0 {
		id = 1 / d
	}
	dst = binary.LittleEndian.AppendUint16(dst, uint16(float16.FromFloat32(d)))
	for _, v := range x {
		dst = append(dst, byte(int8(math.Round(float64(v*id)))))
	}
	return dst
}

// decodeGGUF decodes the bytes of n values of type t into dst[:n].
func decodeGGUF(dst []float32, src []byte, t GGUFType) error {
	n := len(dst)
	need, ok := t.rowBytes(int64(n))
	if !ok || int64(len(src)) != need {
		return errors.Errorf("%d values of type %s need %d bytes, have %d", n, t, need, len(src))
	}
	switch t {
	case GGUFF32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case GGUFF16:
		for i := range dst {
			dst[i] = float16.Float16(binary.LittleEndian.Uint16(src[2*i:])).Float32()
		}
	case GGUFBF16:
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
		}
	case GGUFQ8_0:
		const blockBytes = 2 + q8Block
		for b := 0; b < n/q8Block; b++ {
			blk := src[b*blockBytes:]
			d := float16.Float16(binary.LittleEndian.Uint16(blk)).Float32()
			for j := range q8Block {
				dst[b*q8Block+j] = float32(int8(blk[2+j])) * d
			}
		}
	}
	return nil
}
