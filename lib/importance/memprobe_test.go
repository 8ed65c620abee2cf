package importance

import (
	"testing"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/nn"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
)

func TestMemProbe(t *testing.T) {
	be := groupstest.Backend(t)
	const O, I, B = 4096, 4096, 640
	wdata := make([]float32, O*I)
	for i := range wdata {
		wdata[i] = float32(i%7) * 0.01
	}
	w := tensors.FromFlatDataAndDimensions(wdata, O, I)
	x := tensors.FromFlatDataAndDimensions(make([]float32, B*I), B, I)
	forms := map[string]func(x, w *Node) *Node{
		"dense":  func(x, w *Node) *Node { return nn.Dense(x, w, nil, compute.DenseLayoutOutputsInput) },
		"matmulT": func(x, w *Node) *Node { return MatMul(x, Transpose(w, 0, 1)) },
		"dotgeneral": func(x, w *Node) *Node { return DotGeneral(x, []int{1}, nil, w, []int{1}, nil) },
	}
	for name, f := range forms {
		for _, wrtW := range []bool{false, true} {
			e := MustNewExec(be, func(x, w *Node) []*Node {
				y := f(x, w)
				y = f(Tanh(y), w) // two uses, like stacked layers
				loss := ReduceAllSum(Square(y))
				if wrtW {
					gs := Gradient(loss, x, w)
					return []*Node{ReduceAllSum(gs[0]), ReduceAllSum(gs[1])}
				}
				return []*Node{ReduceAllSum(Gradient(loss, x)[0])}
			})
			e.MustExec(x, w)
			resetPeak()
			before := float64(currentRSS())
			e.MustExec(x, w)
			t.Logf("%s wrtW=%v: extra %.2f× W", name, wrtW, (float64(peakRSS())-before)/(4*O*I))
			e.Finalize()
		}
	}
}
