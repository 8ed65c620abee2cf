package models

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/internal/avx2test"
)

// TestProjectionShapes: the projection every model runs (newWeights(…).linear: Linear, under
// Hooks.MatMulDType f32, bf16 or f16), its output and its gradients with respect to the input and
// the weight, against float64 sums of the same dtype-rounded operands, for shapes on both sides of
// every size threshold of the Go backend's matmul kernels (compute v0.1.14,
// internal/gobackend/dot/matmul): the small/large switch at M·N·K = 4Mi (127/128/129 rows by 512
// outputs by 64 inputs), the micro-tiles (AVX2 4×16, AVX-512 8×32, no-SIMD 2×4: rows 1–9, odd
// column counts), the K panels (128 half / 128 or 192 float32 / 512 no-SIMD: inputs 1, 2, 129, 193,
// 385, 1025) and the N panels (512 float32 / 768 half: 769 outputs). A kernel that gets any
// output wrong fails it whatever the CPU; with AVX-512 present the test runs once more on the AVX2
// kernels (child process, GOMLX_GO_SIMD_AVX512=false). It found the AVX2 half-precision kernel bug
// that autocast works around (backend.TestGoBackendHalfMatMul).
func TestProjectionShapes(t *testing.T) {
	avx2test.Rerun(t)
	b := backend(t)
	type shape struct {
		batch, seq, in, out int // x [batch, seq, in], weight [out, in]
		bias                bool
	}
	shapes := []shape{
		{1, 1, 64, 512, false}, {1, 3, 17, 33, true}, {1, 4, 16, 16, false}, {1, 5, 31, 17, false},
		{1, 7, 1, 9, false}, {1, 9, 2, 31, true}, {1, 8, 129, 32, false},
		{1, 127, 64, 512, false}, {1, 128, 64, 512, false}, {1, 129, 64, 512, true}, // M·N·K 4161536 | 4Mi | 4227072
		{2, 64, 64, 512, false},                                                         // rows from a batch: M = 128
		{1, 127, 129, 256, false}, {1, 128, 129, 256, false}, {1, 129, 129, 257, false}, // odd inner size across 4Mi
		{1, 130, 193, 200, true}, {1, 40, 385, 300, false}, // K over 2–3 panels
		{1, 33, 129, 769, false}, {1, 43, 129, 769, false}, // N over the 768-column panel, small | large
		{1, 5, 1025, 769, false}, {1, 6, 1025, 769, false}, // K over the 512 no-SIMD panel, small | large
	}
	rng := rand.New(rand.NewPCG(16, 3))
	for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.BFloat16, dtypes.Float16} {
		for _, s := range shapes {
			m := s.batch * s.seq
			name := fmt.Sprintf("%s [%d,%d,%d]·[%d,%d]ᵀ", dt, s.batch, s.seq, s.in, s.out, s.in)
			x, w, g := normals(rng, dt, m*s.in), normals(rng, dt, s.out*s.in), normals(rng, dt, m*s.out)
			bias := make([]float32, s.out)
			if s.bias {
				bias = normals(rng, dt, s.out)
			}
			outs := MustExecOnceN(b, func(xn, wn, bn, gn *Node) []*Node {
				lin := newWeights(nil, xn.Graph(), &Hooks{MatMulDType: dt}).linear
				var bb *Node
				if s.bias {
					bb = bn
				}
				y := lin(xn, "model.layers.0.mlp.up_proj", wn, bb) // [batch, seq, out]
				grads := Gradient(ReduceAllSum(Mul(y, gn)), xn, wn)
				// Negated: compute v0.1.14's executor panics (index out of range in
				// FunctionExecutable.executeNode) when the gradient of a biased nn.Dense with
				// respect to its input is itself a graph output; the models only use gradients
				// inside the graph.
				return []*Node{y, Neg(grads[0]), Neg(grads[1])}
			}, tensors.FromFlatDataAndDimensions(x, s.batch, s.seq, s.in), tensors.FromFlatDataAndDimensions(w, s.out, s.in),
				tensors.FromFlatDataAndDimensions(bias, s.out), tensors.FromFlatDataAndDimensions(g, s.batch, s.seq, s.out))
			y, gx, gw := tensors.MustCopyFlatData[float32](outs[0]), negated(tensors.MustCopyFlatData[float32](outs[1])), negated(tensors.MustCopyFlatData[float32](outs[2]))
			// y[i,j] = Σ_k x[i,k]·w[j,k] + bias[j]; ∂/∂x[i,k] = Σ_j g[i,j]·w[j,k]; ∂/∂w[j,k] = Σ_i g[i,j]·x[i,k].
			checkProducts(t, name+" output", dt, y, m, s.out, s.in, func(i, j, k int) float64 { return float64(x[i*s.in+k]) * float64(w[j*s.in+k]) }, bias)
			checkProducts(t, name+" ∂x", dt, gx, m, s.in, s.out, func(i, k, j int) float64 { return float64(g[i*s.out+j]) * float64(w[j*s.in+k]) }, nil)
			checkProducts(t, name+" ∂w", dt, gw, s.out, s.in, m, func(j, k, i int) float64 { return float64(g[i*s.out+j]) * float64(x[i*s.in+k]) }, nil)
		}
	}
}

// checkProducts compares got [rows, cols] with Σ_k term(r, c, k) (+ bias[c]) computed in float64,
// allowing float32 accumulation over n terms and the rounding of the result to dt.
func checkProducts(t *testing.T, name string, dt dtypes.DType, got []float32, rows, cols, n int, term func(r, c, k int) float64, bias []float32) {
	t.Helper()
	u, tiny := 0x1p-24, 0.0
	switch dt {
	case dtypes.BFloat16:
		u, tiny = 0x1p-8, 0x1p-100
	case dtypes.Float16:
		u, tiny = 0x1p-10, 0x1p-13 // a bias added in f16 rounds twice; f16 results near 0 may flush
	}
	var wrong int
	var maxErr, atRef float64
	for r := range rows {
		for c := range cols {
			var sum, abs float64
			for k := range n {
				p := term(r, c, k)
				sum += p
				abs += math.Abs(p)
			}
			if bias != nil {
				sum += float64(bias[c])
				abs += math.Abs(float64(bias[c]))
			}
			e := math.Abs(float64(got[r*cols+c]) - sum)
			if e > u*math.Abs(sum)+float64(n+2)*0x1p-24*abs+tiny {
				wrong++
				if e > maxErr {
					maxErr, atRef = e, sum
				}
			}
		}
	}
	if wrong > 0 {
		t.Errorf("%s: %d of %d values wrong (worst %.4g off a float64 value of %.4g)", name, wrong, rows*cols, maxErr, atRef)
	}
}

// normals returns n standard normal values rounded to dt.
func normals(rng *rand.Rand, dt dtypes.DType, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		x := float32(rng.NormFloat64())
		switch dt {
		case dtypes.BFloat16:
			x = bfloat16.FromFloat32(x).Float32()
		case dtypes.Float16:
			x = float16.FromFloat32(x).Float32()
		}
		v[i] = x
	}
	return v
}

func negated(v []float32) []float32 {
	for i := range v {
		v[i] = -v[i]
	}
	return v
}
