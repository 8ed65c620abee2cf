//go:build amd64 && goexperiment.simd

package backend

import (
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"simd/archsimd"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/internal/avx2test"
)

// TestGoBackendHalfMatMul is a GoMLX-only reproduction of a bug in the pure-Go backend (compute
// v0.1.14) that lib/models works around (models.autocast), pinned so that a dependency upgrade
// that fixes or changes it is noticed.
//
// A bf16 or f16 DotGeneral (float32 accumulation) of lhs [M, K] and rhs [N, K] takes the AVX2
// "large" kernel (internal/gobackend/dot/matmul/avx2, avx2LargeKernel{BFloat16,Float16}Asm in
// large_amd64_{bfloat16,float16}.s) when AVX-512 is absent or off (GOMLX_GO_SIMD_AVX512=false) and
// M·N·K ≥ matmul.SmallMatMulSizeThreshold (4Mi). Its 4×16 micro-kernel overwrites X13 (the
// broadcast of LHS row 3) with the next step's value (VPERMILPS $0xFF, X10, X13) before the row-3
// FMAs of the current step, in every step of its 2-step pipelined K loop except the last pair's
// second. So in every 4th output row (row ≡ 3 mod 4), within each K panel of L ≤ 128 values with
// L ≥ 2, step k < 2⌊L/2⌋-1 adds rhs[k]·lhs[k+1] in lanes 0–3 of each 8 columns and nothing in
// lanes 4–7 (the VEX.128 write zeroed them). The float32 kernel loads its broadcasts from memory
// and is correct; so are the small kernels (M·N·K < 4Mi) and the AVX-512 ones.
//
// The test checks every output against a float64 reference and, on the AVX2 path, against that
// model of the bug; with AVX-512 present it runs the AVX2 path too, in a child process.
func TestGoBackendHalfMatMul(t *testing.T) {
	avx2test.Rerun(t)
	path := goMatMulPath()
	t.Logf("Go backend matmul kernels: %s", path)
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	kc := 128 // AVX2ParamsBFloat16.PanelContractingSize (= Float16's)
	if v, err := strconv.Atoi(os.Getenv("GOMLX_GO_AVX2_KC")); err == nil && v > 0 {
		kc = v
	}
	rng := rand.New(rand.NewPCG(16, 1))
	for _, dt := range []dtypes.DType{dtypes.BFloat16, dtypes.Float16} {
		for _, s := range []struct{ m, n, k int }{
			{127, 512, 64}, // 4,161,536 < 4Mi: small kernel
			{128, 512, 64}, // = 4Mi: large kernel
			{129, 512, 65}, // odd K: the k_odd tail is right, the pairs are not
			{130, 300, 129},
			{33, 769, 300},  // K over 2 panels, N over the 768-column panel
			{4096, 1024, 1}, // K = 1: no pairs, right even in the large kernel
		} {
			x, w := roundedNormals(rng, dt, s.m*s.k), roundedNormals(rng, dt, s.n*s.k)
			out := MustExecOnce(b, func(x, w *Node) *Node {
				y := DotGeneral(ConvertDType(x, dt), []int{1}, nil, ConvertDType(w, dt), []int{1}, nil) // [m, n]
				return ConvertDType(y, dtypes.Float32)
			}, tensors.FromFlatDataAndDimensions(x, s.m, s.k), tensors.FromFlatDataAndDimensions(w, s.n, s.k))
			got := tensors.MustCopyFlatData[float32](out)
			large := s.m*s.n*s.k >= 4<<20
			buggy := path == "avx2" && large
			var wrong, wrongOther, offModel int
			var maxErr float64
			for i := range s.m {
				for j := range s.n {
					ref, abs := dot64(x[i*s.k:(i+1)*s.k], w[j*s.k:(j+1)*s.k])
					g := float64(got[i*s.n+j])
					tol := halfTol(dt, ref, abs, s.k)
					if e := math.Abs(g - ref); e > tol {
						wrong++
						maxErr = math.Max(maxErr, e)
						if i%4 != 3 {
							wrongOther++
						}
					}
					if buggy {
						bug, babs := bugModel(x[i*s.k:(i+1)*s.k], w[j*s.k:(j+1)*s.k], i, j, kc)
						if math.Abs(g-bug) > halfTol(dt, bug, babs, s.k) {
							offModel++
						}
					}
				}
			}
			t.Logf("%s [%d,%d]·[%d,%d]ᵀ (M·N·K %d, %s kernel): %d of %d outputs wrong (max error %.3g), %d outside rows ≡ 3 mod 4",
				dt, s.m, s.k, s.n, s.k, s.m*s.n*s.k, map[bool]string{true: "large", false: "small"}[large], wrong, s.m*s.n, maxErr, wrongOther)
			switch {
			case !buggy && wrong > 0:
				t.Errorf("%s [%d,%d]·[%d,%d]ᵀ on the %s kernels: %d outputs wrong (max error %.3g)", dt, s.m, s.k, s.n, s.k, path, wrong, maxErr)
			case buggy && offModel > 0:
				t.Errorf("%s [%d,%d]·[%d,%d]ᵀ: %d outputs differ from the model of the AVX2 kernel bug (GoMLX changed? see models.autocast)", dt, s.m, s.k, s.n, s.k, offModel)
			case buggy && s.k > 1 && wrong == 0:
				t.Errorf("%s [%d,%d]·[%d,%d]ᵀ: the AVX2 large kernel is right now: GoMLX fixed it; models.autocast's float32 emulation on the Go backend can go", dt, s.m, s.k, s.n, s.k)
			}
		}
	}
}

// goMatMulPath names the Go backend's matmul kernels for this process by compute v0.1.14's rules
// (internal/gobackend/simd_x86.go, dot/matmul/avx2): "avx512", "avx2" (its assembly kernels) or
// "other".
func goMatMulPath() string {
	on := func(env string) bool {
		v, err := strconv.ParseBool(os.Getenv(env))
		return err != nil || v // unset: on
	}
	switch {
	case !on("GOMLX_GO_DOT_MATMUL"):
		return "other"
	case on("GOMLX_GO_SIMD_AVX512") && archsimd.X86.AVX512():
		return "avx512"
	case on("GOMLX_GO_SIMD_AVX2") && archsimd.X86.AVX2() && on("GOMLX_GO_AVX2_ASM"):
		return "avx2"
	}
	return "other"
}

// roundedNormals returns n standard normal values rounded to dt.
func roundedNormals(rng *rand.Rand, dt dtypes.DType, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return roundTo(dt, v)
}

// dot64 returns Σ a·b in float64 and Σ|a·b|.
func dot64(a, b []float32) (sum, abs float64) {
	for i := range a {
		p := float64(a[i]) * float64(b[i])
		sum += p
		abs += math.Abs(p)
	}
	return sum, abs
}

// halfTol bounds the error of a dt product with float32 accumulation over k terms whose exact sum
// is ref and Σ|terms| abs: float32 rounding of the sums plus one rounding of the result to dt
// (for f16 near zero, a subnormal result flushed to zero).
func halfTol(dt dtypes.DType, ref, abs float64, k int) float64 {
	u, tiny := 0x1p-8, 0x1p-100 // bf16: 8 significant bits
	if dt == dtypes.Float16 {
		u, tiny = 0x1p-11, 0x1p-13
	}
	return u*math.Abs(ref) + float64(k+1)*0x1p-24*abs + tiny
}

// bugModel is output row i, column j of the AVX2 large half-precision kernel of compute v0.1.14
// (see TestGoBackendHalfMatMul) for lhs row x and rhs row w, K panels of kc: its sum and Σ|terms|.
func bugModel(x, w []float32, i, j, kc int) (sum, abs float64) {
	for p0 := 0; p0 < len(x); p0 += kc {
		l := min(kc, len(x)-p0)
		for k := range l {
			xk := float64(x[p0+k])
			if i%4 == 3 && k < 2*(l/2)-1 {
				if j%8 >= 4 {
					continue // lanes 4–7: zeroed broadcast
				}
				xk = float64(x[p0+k+1]) // lanes 0–3: the next step's value
			}
			p := xk * float64(w[p0+k])
			sum += p
			abs += math.Abs(p)
		}
	}
	return sum, abs
}

// roundTo rounds v to dt (bf16 or f16) in place and returns it.
func roundTo(dt dtypes.DType, v []float32) []float32 {
	for i, x := range v {
		if dt == dtypes.Float16 {
			v[i] = float16.FromFloat32(x).Float32()
		} else {
			v[i] = bfloat16.FromFloat32(x).Float32()
		}
	}
	return v
}
