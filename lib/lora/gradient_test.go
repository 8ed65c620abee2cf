package lora

import (
	"math"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/models"
)

// TestGradientsMatchFiniteDifferences checks the in-graph gradients of the labels loss with
// respect to lora_A and lora_B against central finite differences of the same loss, on the
// non-uniform tiny model with some labels masked.
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	m := tinyModel(t, 11)
	cfg := Config{R: 3, Alpha: 6, Targets: []string{"q", "k", "o", "up", "down"}}
	a, err := Attach(m, cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	randomizeB(t, m, 12, 0.3)
	vars, names, err := adapterVars(m, a)
	if err != nil {
		t.Fatal(err)
	}
	h := newHooks(m.Store, a.Config, a.Modules)
	hk := h.modelHooks(m)
	exec := model.MustNewExec(m.Backend, m.Store, func(scope *model.Scope, tokens, mask, labels *Node) []*Node {
		g := tokens.Graph()
		loss := LabelsLoss(models.Logits(scope, m.Config, tokens, mask, hk), labels)
		nodes := make([]*Node, len(vars))
		for i, v := range vars {
			nodes[i] = models.VariableNode(m.Store, v, g)
		}
		return append([]*Node{loss}, Gradient(loss, nodes...)...)
	})
	seqs := groupstest.Tokens(2, 8, 40, 13)
	exs := []Example{{IDs: seqs[0]}, {IDs: seqs[1][:6], Labels: append([]int{-100, -100, -100}, seqs[1][3:6]...)}}
	b := makeBatch(exs, 2)
	run := func() []*tensors.Tensor { return exec.MustExec(b.tokens, b.mask, b.labels) }
	outs := run()
	lossOf := func() float64 { return float64(tensors.ToScalar[float32](run()[0])) }
	checked, large := 0, 0
	for i, v := range vars {
		grad := tensors.MustCopyFlatData[float32](outs[i+1])
		base, _ := variableFloats(v, v.Shape().Size())
		for _, j := range []int{0, len(base) / 2, len(base) - 1} {
			const eps = 1e-2
			set := func(x float32) {
				d := append([]float32(nil), base...)
				d[j] = x
				if err := v.SetValue(tensors.FromFlatDataAndDimensions(d, v.Shape().Dimensions...)); err != nil {
					t.Fatal(err)
				}
			}
			set(base[j] + eps)
			up := lossOf()
			set(base[j] - eps)
			down := lossOf()
			set(base[j])
			fd := (up - down) / (2 * eps)
			if math.Abs(fd-float64(grad[j])) > 2e-4+2e-2*math.Abs(fd) {
				t.Errorf("%s[%d]: gradient %.6g, finite difference %.6g", names[i], j, grad[j], fd)
			}
			checked++
			if math.Abs(fd) > 1e-3 {
				large++
			}
		}
	}
	if checked != 3*2*15 || large < checked/2 {
		t.Errorf("checked %d coordinates, %d with |gradient| > 1e-3", checked, large)
	}
}

// TestLabelsLossMatchesModelLoss: with labels = ids and no padding, the labels loss is the
// models package's next-token loss (computed by a different route), and masked labels drop out.
func TestLabelsLossMatchesModelLoss(t *testing.T) {
	m := tinyModel(t, 14)
	seqs := groupstest.Tokens(1, 10, 40, 15)
	want, err := m.Loss(seqs)
	if err != nil {
		t.Fatal(err)
	}
	exec := model.MustNewExec(m.Backend, m.Store, func(scope *model.Scope, tokens, mask, labels *Node) (*Node, *Node) {
		return LabelsNLL(models.Logits(scope, m.Config, tokens, mask, nil), labels)
	})
	b := makeBatch([]Example{{IDs: seqs[0]}}, 2) // one empty padding row, padded to 32 positions
	outs := exec.MustExec(b.tokens, b.mask, b.labels)
	sum, count := tensors.ToScalar[float32](outs[0]), tensors.ToScalar[float32](outs[1])
	if count != 9 || math.Abs(float64(sum/count)-want) > 1e-5 {
		t.Errorf("labels loss %g over %g positions; models.Loss %g over 9", sum/count, count, want)
	}
}
