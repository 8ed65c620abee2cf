package models

// Architecture-independent entry points of the forward pass: logits, next-token loss and
// per-token log-probabilities.

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/pkg/errors"
)

// TensorSpec names one tensor a model needs (Hugging Face name) and its shape.
type TensorSpec = arch.Tensor

// ExpectedTensors lists the tensors (names and shapes) a checkpoint of cfg must hold, in
// checkpoint order.
func ExpectedTensors(cfg *config.Config) ([]TensorSpec, error) {
	fam, err := arch.ByName(cfg.Arch)
	if err != nil {
		return nil, err
	}
	return fam.Tensors(cfg), nil
}

// layout is the forward pass of one tensor layout (arch.Family.Layout), registered by its file
// (llama.go, chatglm.go): families that share a layout share it.
type layout struct {
	// logits is Logits for the layout.
	logits func(scope *model.Scope, cfg *config.Config, tokens, mask *Node, hooks *Hooks) *Node
	// decode is DecodeStep for the layout.
	decode func(scope *model.Scope, cfg *config.Config, tokens, pos0, last *Node, buffers []*Node, hooks *Hooks) (*Node, []*Node)
	// cacheExtra are buffers of the generation cache after the per-layer keys and values.
	cacheExtra []shapes.Shape
	// reader, when set, adapts a checkpoint before loading (e.g. hides a stored tied copy).
	reader func(cfg *config.Config, r checkpoint.Reader) checkpoint.Reader
	// checkPrompt, when set, checks a generation prompt.
	checkPrompt func(cfg *config.Config, prompt []int) error
	// startPrompt, when set, is the shortest prompt generation accepts (default: BOS).
	startPrompt func(cfg *config.Config) []int
	// staged: EmbedStage, LayerStage and HeadStage (stages.go) run the layout.
	staged bool
	// branchScores, when set, is the graph of BranchLogProbs (layouts whose positions the caller
	// gives: 1D RoPE).
	branchScores func(scope *model.Scope, cfg *config.Config, hooks *Hooks, tokens, positions, allowed, rows, targets *Node) (logp, greedy *Node)
}

// layouts are the registered forward passes by arch.Family.Layout name.
var layouts = map[string]*layout{}

// layoutOf returns the forward pass of cfg's family.
func layoutOf(cfg *config.Config) (*layout, error) {
	fam, err := arch.ByName(cfg.Arch)
	if err != nil {
		return nil, err
	}
	l, ok := layouts[fam.Layout()]
	if !ok {
		return nil, errors.Errorf("architecture %q (layout %q) has no forward pass in the models package", cfg.Arch, fam.Layout())
	}
	return l, nil
}

// mustLayout is layoutOf for graph code, which panics.
func mustLayout(cfg *config.Config) *layout {
	l, err := layoutOf(cfg)
	if err != nil {
		panic(err)
	}
	return l
}

// Logits is the forward pass: tokens [B, S] (int32) and mask [B, S] (bool, true = real token,
// right padding; nil = all real) → logits [B, S, V] (float32). Weights are read from scope's store
// through hooks (nil = defaults). It panics on graph-building errors, as graph code does.
func Logits(scope *model.Scope, cfg *config.Config, tokens, mask *Node, hooks *Hooks) *Node {
	checkTokens(tokens, mask)
	return mustLayout(cfg).logits(scope, cfg, tokens, mask, hooks)
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
