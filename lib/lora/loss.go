package lora

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/support/exceptions"
	"github.com/llmpruner/llmpruner/lib/data"
)

// LabelsNLL is the causal-LM loss of Hugging Face's LlamaForCausalLM with labels: logits [B, S, V]
// at position t predict labels[t+1]; positions whose label is data.IgnoreLabel (-100) do not count.
// It returns the summed negative log-likelihood and the number of counted positions (float32
// scalars); the mean loss is sum/count. labels is [B, S] int32.
func LabelsNLL(logits, labels *Node) (sum, count *Node) {
	g := logits.Graph()
	B, S, V := logits.Shape().Dim(0), logits.Shape().Dim(1), logits.Shape().Dim(2)
	if labels.Rank() != 2 || labels.Shape().Dim(0) != B || labels.Shape().Dim(1) != S {
		exceptions.Panicf("labels %s must be [batch, seq] like the logits %s", labels.Shape(), logits.Shape())
	}
	if S < 2 {
		exceptions.Panicf("the loss needs at least 2 positions, got %d", S)
	}
	N := B * (S - 1)
	pred := Reshape(Slice(logits, AxisRange(), AxisRange(0, S-1)), N, V)                       // [N, V]
	target := Reshape(ConvertDType(Slice(labels, AxisRange(), AxisRange(1)), dtypes.Int32), N) // [N]
	valid := NotEqual(target, Scalar(g, dtypes.Int32, data.IgnoreLabel))                       // [N]
	safe := Where(valid, target, ZerosLike(target))                                            // ignored → class 0
	rows := Iota(g, shapes.Make(dtypes.Int32, N), 0)
	logp := Gather(LogSoftmax(pred, -1), Stack([]*Node{rows, safe}, -1)) // [N]
	w := ConvertDType(valid, dtypes.Float32)
	return Neg(ReduceAllSum(Mul(logp, w))), ReduceAllSum(w)
}

// LabelsLoss is the mean of LabelsNLL over the counted positions (0 when none counts).
func LabelsLoss(logits, labels *Node) *Node {
	sum, count := LabelsNLL(logits, labels)
	return Div(sum, Max(count, OnesLike(count)))
}
