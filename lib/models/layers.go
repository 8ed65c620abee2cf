package models

// Graph building blocks shared by the architectures: weight access through hooks, RMSNorm,
// rotary position embedding (HF rotate_half), causal/padded attention with grouped KV heads.
// Everything here computes in float32, except the projections under Hooks.MatMulDType.

import (
	"math"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/gobackend"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/nn"
	"github.com/gomlx/gomlx/support/exceptions"
)

// weights resolves the Hooks of one graph into two always-set functions.
type weights struct {
	g      *Graph
	weight func(g *Graph, hfName string) *Node
	linear func(x *Node, module string, weight, bias *Node) *Node
}

// newWeights fills in the default hooks: variables of scope's store converted to float32, and
// x·Wᵀ+b projections.
func newWeights(scope *model.Scope, g *Graph, hooks *Hooks) *weights {
	w := &weights{g: g, weight: func(g *Graph, hfName string) *Node { return VariableF32(scope.Store(), g, hfName) }, linear: Linear}
	if hooks != nil {
		if hooks.Weight != nil {
			w.weight = hooks.Weight
		}
		if hooks.Linear != nil {
			w.linear = hooks.Linear
		}
		if dt := hooks.MatMulDType; dt != dtypes.InvalidDType && dt != dtypes.Float32 {
			w.linear = autocast(w.linear, dt)
		}
	}
	return w
}

// autocast runs linear on x, weight and bias rounded to dt and returns the projection in
// float32, as PyTorch's autocast does for matrix products: the residual stream, norms, attention
// and the loss stay float32. Gradients flow back through the conversions to the float32 nodes.
//
// On XLA the product runs in dt (bf16/f16 operands, float32 accumulation, a dt result). On the
// pure-Go backend the operands are rounded to dt but multiplied in float32 and the result rounded
// to dt: the same numbers (dt operands, float32 products and sums, a dt result), because the Go
// backend's half-precision kernels for CPUs without AVX-512 (compute v0.1.14, AVX2 "large"
// kernel, taken from lhsRows·rhsCols·contracting ≥ 4Mi) give wrong sums in every 4th output row
// (README, "Half-precision matrix products on the pure-Go backend"); its float32 kernels are
// correct on every CPU and about as fast (256×1024 by 1024×1024, AMD EPYC AVX-512: 7.8 ms vs
// 8.5 ms for bf16).
func autocast(linear func(x *Node, module string, weight, bias *Node) *Node, dt dtypes.DType) func(x *Node, module string, weight, bias *Node) *Node {
	return func(x *Node, module string, weight, bias *Node) *Node {
		if emulatesHalfMatMul(x.Graph().Backend()) {
			round := func(n *Node) *Node { return ConvertDType(ConvertDType(n, dt), dtypes.Float32) }
			if bias != nil {
				bias = round(bias)
			}
			return round(linear(round(x), module, round(weight), bias))
		}
		if bias != nil {
			bias = ConvertDType(bias, dt)
		}
		y := linear(ConvertDType(x, dt), module, ConvertDType(weight, dt), bias)
		return ConvertDType(y, dtypes.Float32)
	}
}

// emulatesHalfMatMul reports whether autocast multiplies dt-rounded operands in float32 on
// backend instead of running a half-precision product: on the pure-Go backend (see autocast).
func emulatesHalfMatMul(backend compute.Backend) bool {
	return backend.String() == gobackend.BackendName
}

// get returns the float32 node of the named tensor.
func (w *weights) get(hfName string) *Node { return w.weight(w.g, hfName) }

// proj applies the projection module ("model.layers.0.self_attn.q_proj") to x, with its bias when
// hasBias.
func (w *weights) proj(x *Node, module string, hasBias bool) *Node {
	var bias *Node
	if hasBias {
		bias = w.get(module + ".bias")
	}
	return w.linear(x, module, w.get(module+".weight"), bias)
}

// VariableF32 returns the store variable of the Hugging Face tensor hfName as a float32 node of g
// (the default Hooks.Weight). It panics (graph-building convention) if the variable is missing.
func VariableF32(store *model.Store, g *Graph, hfName string) *Node {
	v := store.GetVariable(VarPath(hfName))
	if v == nil {
		exceptions.Panicf("model has no tensor %q (variable %s)", hfName, VarPath(hfName))
	}
	n := VariableNode(store, v, g)
	if n.DType() != dtypes.Float32 {
		n = ConvertDType(n, dtypes.Float32)
	}
	return n
}

// VariableNode returns the node in g of v (a variable of store) as a graph parameter, never as an embedded constant.
//
// In graphs not marked as training, GoMLX embeds variable values as constants on backends that
// prefer it (the Go backend does): every compiled graph would then hold its own copy of all the
// weights and keep computing with the values of compile time even after Variable.SetValue.
// Marking the graph as training while the node is created (the node is then cached per graph)
// keeps the weights as parameters; the previous training flag is restored.
func VariableNode(store *model.Store, v *model.Variable, g *Graph) *Node {
	if store.IsTraining(g) {
		return v.NodeValue(g)
	}
	store.SetTraining(g, true)
	defer store.SetTraining(g, false)
	return v.NodeValue(g)
}

// Linear is the default Hooks.Linear: x·Wᵀ + b for a PyTorch-layout weight [out, in] and an
// optional bias [out]. x is [..., in]; the result is [..., out].
func Linear(x *Node, module string, weight, bias *Node) *Node {
	return nn.Dense(x, weight, bias, compute.DenseLayoutOutputsInput)
}

// rmsNorm is HF's LlamaRMSNorm in float32: x · 1/sqrt(mean(x²)+eps) · w. Reciprocal(Sqrt) rather
// than Rsqrt, which has no gradient in GoMLX. x [..., D], w [D].
func rmsNorm(x, w *Node, eps float64) *Node {
	variance := ReduceAndKeep(Square(x), ReduceMean, -1)   // [..., 1]
	inv := Reciprocal(Sqrt(AddScalar(variance, eps)))      // [..., 1]
	return Mul(Mul(x, inv), ExpandLeftToRank(w, x.Rank())) // [..., D]
}

// rope holds the cos/sin tables of rotary embeddings for a set of positions, shaped
// [1 or B, S, 1, HD/2] to broadcast over [B, S, H, HD/2].
type rope struct{ cos, sin *Node }

// newRoPE computes the rotation angles positions × invFreq in float32, as HF does.
// positions is [S] (shared by every row) or [B, S] (int32).
func newRoPE(positions *Node, invFreq []float64) *rope {
	g := positions.Graph()
	half := len(invFreq)
	inv32 := make([]float32, half)
	for i, f := range invFreq {
		inv32[i] = float32(f)
	}
	B, S := 1, positions.Shape().Dim(-1)
	if positions.Rank() == 2 {
		B = positions.Shape().Dim(0)
	}
	pos := Reshape(ConvertDType(positions, dtypes.Float32), B*S, 1) // [B·S, 1]
	angles := Mul(pos, Reshape(Const(g, inv32), 1, half))           // [B·S, HD/2]
	angles = Reshape(angles, B, S, 1, half)                         // [B, S, 1, HD/2]
	return &rope{cos: Cos(angles), sin: Sin(angles)}
}

// apply rotates x [B, S, H, HD] with HF's rotate_half convention: the first and second halves of
// each head are the (real, imaginary) parts.
func (r *rope) apply(x *Node) *Node {
	HD := x.Shape().Dim(-1)
	x1 := Slice(x, AxisRange(), AxisRange(), AxisRange(), AxisRange(0, HD/2)) // [B, S, H, HD/2]
	x2 := Slice(x, AxisRange(), AxisRange(), AxisRange(), AxisRange(HD/2))    // [B, S, H, HD/2]
	out1 := Sub(Mul(x1, r.cos), Mul(x2, r.sin))
	out2 := Add(Mul(x2, r.cos), Mul(x1, r.sin))
	return Concatenate([]*Node{out1, out2}, -1) // [B, S, H, HD]
}

// attend is scaled dot-product attention with grouped key/value heads (query head h uses KV head
// h / (H/KV), as HF's repeat_kv). q is [B, Sq, H, HD]; k and v are [B, KV, Sk, HD]; allowed is
// [B or 1, Sq, Sk] (true = query may attend to key). Returns [B, Sq, H·HD].
func attend(q, k, v, allowed *Node) *Node {
	B, Sq, H, HD := q.Shape().Dim(0), q.Shape().Dim(1), q.Shape().Dim(2), q.Shape().Dim(3)
	KV, Sk := k.Shape().Dim(1), k.Shape().Dim(2)
	if H%KV != 0 {
		exceptions.Panicf("attention: %d query heads is not a multiple of %d key/value heads", H, KV)
	}
	G := H / KV
	q5 := Reshape(q, B, Sq, KV, G, HD)
	scores := DotGeneral(q5, []int{4}, []int{0, 2}, k, []int{3}, []int{0, 1}) // [B, KV, Sq, G, Sk]
	scores = MulScalar(scores, 1/math.Sqrt(float64(HD)))
	// Additive mask as HF uses: 0 where allowed, the lowest float32 elsewhere. It is built at the
	// mask's small shape and broadcast by Add (a Where over a broadcast condition is very slow on
	// the Go backend).
	g := scores.Graph()
	small := Reshape(allowed, allowed.Shape().Dim(0), 1, Sq, 1, Sk)
	bias := Where(small, ScalarZero(g, dtypes.Float32), Scalar(g, dtypes.Float32, -math.MaxFloat32))
	scores = Add(scores, bias)
	probs := Softmax(scores, -1)                                              // [B, KV, Sq, G, Sk]
	out := DotGeneral(probs, []int{4}, []int{0, 1}, v, []int{2}, []int{0, 1}) // [B, KV, Sq, G, HD]
	out = TransposeAllAxes(out, 0, 2, 1, 3, 4)                                // [B, Sq, KV, G, HD]
	return Reshape(out, B, Sq, H*HD)
}

// causalMask returns allowed[b, i, j] = j ≤ i and mask[b, j] (mask [B, S] bool, nil = all real):
// [B or 1, S, S].
func causalMask(g *Graph, S int, mask *Node) *Node {
	rows := Iota(g, shapes.Make(dtypes.Int32, 1, S, S), 1)
	cols := Iota(g, shapes.Make(dtypes.Int32, 1, S, S), 2)
	allowed := LessOrEqual(cols, rows) // [1, S, S]
	if mask == nil {
		return allowed
	}
	B := mask.Shape().Dim(0)
	keys := BroadcastToShape(Reshape(mask, B, 1, S), shapes.Make(dtypes.Bool, B, S, S))
	return LogicalAnd(BroadcastToShape(allowed, keys.Shape()), keys) // [B, S, S]
}

// slidingWindow restricts allowed [B or 1, S, Sk] to keys less than w positions before their query
// (Mistral's sliding window: i − j < w); qpos [S] or [B, S] and kpos [Sk] or [B, Sk] (int32) are
// the query and key positions. w ≤ 0 leaves allowed as it is.
func slidingWindow(allowed, qpos, kpos *Node, w int) *Node {
	if w <= 0 {
		return allowed
	}
	g := allowed.Graph()
	full := shapes.Make(dtypes.Int32, allowed.Shape().Dimensions...)
	rows := func(p *Node, axis int) *Node { // [S] or [B, S] → broadcast along axis of full
		if p.Rank() == 1 {
			p = InsertAxes(p, 0)
		}
		return BroadcastToShape(InsertAxes(ConvertDType(p, dtypes.Int32), axis), shapes.Make(dtypes.Int32, p.Shape().Dim(0), full.Dim(1), full.Dim(2)))
	}
	dist := Sub(rows(qpos, -1), rows(kpos, 1)) // [1 or B, S, Sk]: i − j
	near := LessThan(dist, Scalar(g, dtypes.Int32, w))
	return LogicalAnd(allowed, BroadcastToShape(near, allowed.Shape()))
}
