package models

// Architecture-independent entry points of the forward pass: logits, next-token loss and
// per-token log-probabilities.

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"
	"github.com/llmpruner/llmpruner/lib/config"
)

// TensorSpec names one tensor a model needs and its shape.
type TensorSpec struct {
	Name  string // Hugging Face name
	Shape []int
}

// ExpectedTensors lists the tensors (names and shapes) a checkpoint of cfg must hold, in
// checkpoint order.
func ExpectedTensors(cfg *config.Config) ([]TensorSpec, error) {
	switch cfg.Arch {
	case config.ArchLlama:
		return llamaTensors(cfg), nil
	case config.ArchChatGLM:
		return chatglmTensors(cfg), nil
	default:
		return nil, unsupportedArch(cfg)
	}
}

// Logits is the forward pass: tokens [B, S] (int32) and mask [B, S] (bool, true = real token,
// right padding; nil = all real) → logits [B, S, V] (float32). Weights are read from scope's store
// through hooks (nil = defaults). It panics on graph-building errors, as graph code does.
func Logits(scope *model.Scope, cfg *config.Config, tokens, mask *Node, hooks *Hooks) *Node {
	checkTokens(tokens, mask)
	switch cfg.Arch {
	case config.ArchLlama:
		return llamaLogits(&llama{cfg: cfg, w: newWeights(scope, tokens.Graph(), hooks)}, tokens, mask)
	case config.ArchChatGLM:
		return chatglmLogits(&chatglm{cfg: cfg, w: newWeights(scope, tokens.Graph(), hooks)}, tokens, mask)
	default:
		panic(unsupportedArch(cfg))
	}
}

func checkTokens(tokens, mask *Node) {
	if tokens.Rank() != 2 {
		exceptions.Panicf("tokens must be [batch, seq], got shape %s", tokens.Shape())
	}
	if mask != nil && (mask.DType() != dtypes.Bool || !mask.Shape().Equal(shapes.Make(dtypes.Bool, tokens.Shape().Dimensions...))) {
		exceptions.Panicf("mask must be bool %v like the tokens, got %s", tokens.Shape().Dimensions, mask.Shape())
	}
}

// nextTokenTargets returns, for logits [B, S, V] and tokens [B, S], the log-probability of each
// next token logp[b, t] = log p(tokens[b, t+1] | tokens[b, ≤t]) and the shifted validity mask
// (position t counts when tokens t and t+1 are both real): both [B, S-1].
func nextTokenTargets(logits, tokens, mask *Node) (logp, valid *Node) {
	g := logits.Graph()
	B, S, V := logits.Shape().Dim(0), logits.Shape().Dim(1), logits.Shape().Dim(2)
	if S < 2 {
		exceptions.Panicf("next-token scores need at least 2 positions, got %d", S)
	}
	N := B * (S - 1)
	pred := Reshape(Slice(logits, AxisRange(), AxisRange(0, S-1)), N, V)                       // [N, V]
	target := Reshape(ConvertDType(Slice(tokens, AxisRange(), AxisRange(1)), dtypes.Int32), N) // [N]
	rows := Iota(g, shapes.Make(dtypes.Int32, N), 0)
	picked := Gather(LogSoftmax(pred, -1), Stack([]*Node{rows, target}, -1)) // [N]
	logp = Reshape(picked, B, S-1)
	if mask == nil {
		return logp, nil
	}
	valid = LogicalAnd(Slice(mask, AxisRange(), AxisRange(0, S-1)), Slice(mask, AxisRange(), AxisRange(1)))
	return logp, valid
}

// LMLoss is the next-token cross-entropy in the Hugging Face convention (labels = input ids):
// the mean over batch rows and positions t of -log p(tokens[t+1] | tokens[≤t]), counting position t
// only when tokens t and t+1 are both real (mask nil = all real). logits [B, S, V], tokens [B, S],
// mask [B, S] bool → scalar float32.
func LMLoss(logits, tokens, mask *Node) *Node {
	logp, valid := nextTokenTargets(logits, tokens, mask)
	if valid == nil {
		return Neg(ReduceAllMean(logp))
	}
	w := ConvertDType(valid, dtypes.Float32)
	return Neg(Div(ReduceAllSum(Mul(logp, w)), ReduceAllSum(w)))
}

// TokenScores returns, for logits [B, S, V] and tokens [B, S], logp [B, S-1] (float32) with
// logp[b, t] = log p(tokens[b, t+1] | tokens[b, ≤t]), and greedy [B, S-1] (bool): whether
// tokens[b, t+1] is the argmax of logits[b, t].
func TokenScores(logits, tokens *Node) (logp, greedy *Node) {
	logp, _ = nextTokenTargets(logits, tokens, nil)
	S := logits.Shape().Dim(1)
	best := ArgMax(Slice(logits, AxisRange(), AxisRange(0, S-1)), -1, dtypes.Int32) // [B, S-1]
	target := ConvertDType(Slice(tokens, AxisRange(), AxisRange(1)), dtypes.Int32)
	return logp, Equal(best, target)
}
