package importance

// Layer-streamed Taylor importance: the scores of TaylorEstimator for a model that is never loaded
// whole. Memory is one half of a decoder layer (its weights, their gradients and its activations)
// plus the boundary activations x_l [N, T, D], whatever the depth. Below, "layer" is a half layer:
// the attention block (input_layernorm, q/k/v/o) or the MLP block (post_attention_layernorm,
// gate/up/down) of a decoder layer (models.HalfLayerStage). Streaming halves instead of whole
// layers is meant to cut the peak to the MLP block's working set (2/3 of a LLaMA layer); measured on
// 8 LLaMA-7B layers it lowered the peak only from 4.27 to 4.02 GB, the Go backend keeping buffers of
// both halves' graphs.
//
//	forward:  x_0 = embed(tokens); x_{l+1} = layer_l(x_l), keeping every x_l  (layer l read, used, dropped)
//	head:     loss = LMLoss(head(x_L)); dy = ∂loss/∂x_L
//	backward: for l = L−1 … 0: read layer l again, recompute y = layer_l(x_l) and take the
//	          vector-Jacobian product of Σ y⊙dy by autodiff: dx (the next dy) and the weight
//	          gradients g, reduced in-graph to the salience vectors (TaylorMode); drop the layer.
//
// The second-order term A = (1/N) Σ_j g_j² needs per-sample gradients: the loss is the mean of the
// N per-sample losses, so sample j's loss gradient at x_{l+1} is N·dy[j]; one backward of batch 1
// per sample through the layer gives g_j (the same per-sample backwards as the in-memory
// estimator, one layer at a time).
//
// The embedding, final norm and lm_head get gradients only when their salience is needed
// (hidden-channel groups). With tied embeddings and a second-order mode the head's per-sample
// gradients of the [V, D] table are kept until the embedding's own part is known (N·V·D floats).
//
// Chaining the staged graphs (models.EmbedStage, LayerStage, HeadStage) computes the same ops as
// the whole-model graph, so the scores equal the in-memory estimator's up to float32 rounding
// (TestStreamedTaylorEqualsInMemory). One graph is compiled per distinct layer shape and reused
// for every layer of that shape.

import (
	"fmt"
	"strings"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/groups"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/pkg/errors"
)

// StreamSource is a model that is read from its checkpoint when needed, never loaded whole.
type StreamSource struct {
	Backend compute.Backend
	Config  *config.Config
	Reader  checkpoint.Reader
	// Progress, when set, is told what is being done ("backward layer 3 of 32").
	Progress func(stage string)
}

// StreamScores returns the same scores as Scores(m, fams) for the model src describes, computed
// layer by layer from its checkpoint (see the top of stream.go). LLaMA family only.
func (e *TaylorEstimator) StreamScores(src *StreamSource, fams []*groups.Family) (scores [][]float64, err error) {
	defer func() {
		if r := recover(); r != nil { // graph-building panics
			err = errors.Errorf("streamed taylor importance: %v", r)
		}
	}()
	if err := checkCalibration(e.Calibration); err != nil {
		return nil, err
	}
	if err := models.CheckStaged(src.Config); err != nil {
		return nil, errors.WithMessage(err, "streamed taylor importance")
	}
	if err := models.CheckTensors(src.Config, src.Reader.Tensors()); err != nil {
		return nil, errors.WithMessage(err, "streamed taylor importance")
	}
	mode := e.Mode
	if mode == DefaultTaylor {
		mode = ParamFirst
	}
	s := newStreamer(src, mode, e.Calibration, NeededAxes(fams))
	defer models.ReleaseMemory()
	defer s.finalize()
	if err := s.run(); err != nil {
		return nil, errors.WithMessagef(err, "streamed taylor importance (%s)", mode)
	}
	return GroupScores(fams, s.sal, e.Reduction)
}

// streamer holds the state of one streamed computation.
type streamer struct {
	src    *StreamSource
	cfg    *config.Config
	mode   TaylorMode
	calib  [][]int
	N, T   int
	second bool // A = (1/N) Σ g_j² is needed
	first  bool // the batched weight gradient g is needed
	alloc  checkpoint.Allocator

	layerAxes [][]groups.TensorAxis // needed axes of each unit (half layer, see unitOf)
	outerAxes []groups.TensorAxis   // needed axes of embedding / final norm / lm_head

	execs map[string]*Exec
	sal   Salience
}

func newStreamer(src *StreamSource, mode TaylorMode, calib [][]int, axes []groups.TensorAxis) *streamer {
	cfg := src.Config
	s := &streamer{src: src, cfg: cfg, mode: mode, calib: calib, N: len(calib), T: len(calib[0]),
		second: mode == ParamSecond || mode == ParamMix, first: mode != ParamSecond,
		layerAxes: make([][]groups.TensorAxis, 2*cfg.NumLayers()), execs: map[string]*Exec{}, sal: Salience{}}
	if src.Backend.HasSharedBuffers() {
		s.alloc = func(shape shapes.Shape) (*tensors.Tensor, error) {
			return tensors.FromShapeForBackend(src.Backend, 0, shape)
		}
	}
	for _, ta := range axes {
		if l := models.TensorLayer(cfg, ta.Tensor); l >= 0 {
			u := 2 * l
			if models.IsMLPHalf(cfg, l, ta.Tensor) {
				u++
			}
			s.layerAxes[u] = append(s.layerAxes[u], ta)
		} else {
			s.outerAxes = append(s.outerAxes, ta)
		}
	}
	return s
}

func (s *streamer) finalize() {
	for _, e := range s.execs {
		e.Finalize()
	}
}

// stage starts a new step of the sweep: the memory of the previous one is released
// (models.ReleaseMemory) and the progress reported.
func (s *streamer) stage(format string, args ...any) {
	models.ReleaseMemory()
	s.progress(format, args...)
}

func (s *streamer) progress(format string, args ...any) {
	if s.src.Progress != nil {
		s.src.Progress(fmt.Sprintf(format, args...))
	}
}

// exec returns the Exec stored under key, building it on first use.
func (s *streamer) exec(key string, fn func(in []*Node) []*Node) (*Exec, error) {
	if e, ok := s.execs[key]; ok {
		return e, nil
	}
	e, err := NewExec(s.src.Backend, fn)
	if err != nil {
		return nil, errors.Wrapf(err, "building the %s graph", key)
	}
	s.execs[key] = e
	return e, nil
}

// read reads the named tensors from the checkpoint (stored dtype).
func (s *streamer) read(names []string) ([]*tensors.Tensor, error) {
	out := make([]*tensors.Tensor, len(names))
	for i, n := range names {
		t, err := checkpoint.ReadWith(s.src.Reader, n, s.alloc)
		if err != nil {
			freeAll(out[:i])
			return nil, err
		}
		out[i] = t
	}
	return out, nil
}

func freeAll(ts []*tensors.Tensor) {
	for _, t := range ts {
		if t != nil {
			_ = t.FinalizeAll()
		}
	}
}

// weightHooks returns hooks reading the tensors names from the parameter nodes params (in the
// same order), converted once to float32, and recording them in f32 for differentiation.
func weightHooks(names []string, params []*Node, f32 map[string]*Node) *models.Hooks {
	return &models.Hooks{Weight: models.ParamWeights(names, params, f32), Linear: dotLinear}
}

func specNames(specs []models.TensorSpec) []string {
	out := make([]string, len(specs))
	for i, sp := range specs {
		out[i] = sp.Name
	}
	return out
}

// tensorNames lists the distinct tensors of axes, in order.
func tensorNames(axes []groups.TensorAxis) []string {
	var out []string
	seen := map[string]bool{}
	for _, ta := range axes {
		if !seen[ta.Tensor] {
			seen[ta.Tensor] = true
			out = append(out, ta.Tensor)
		}
	}
	return out
}

// run computes s.sal.
func (s *streamer) run() error {
	L := 2 * s.cfg.NumLayers() // units: the attention and MLP halves of every layer
	tokens := tokensTensor(s.calib)
	defer tokens.FinalizeAll()

	// Forward, keeping every layer's input.
	xs := make([]*tensors.Tensor, L+1)
	defer func() { freeAll(xs) }()
	s.stage("forward: embedding")
	x, err := s.embedForward(tokens)
	if err != nil {
		return errors.WithMessage(err, "embedding")
	}
	xs[0] = x
	for l := range L {
		s.stage("forward: layer %d of %d", l/2+1, L/2)
		if xs[l+1], err = s.layerForward(l, xs[l]); err != nil {
			return errors.WithMessagef(err, "forward of layer %d", l)
		}
	}

	// Head: the loss and its gradient at the last layer's output.
	s.stage("loss and head gradients")
	outer, err := s.headBackward(xs[L], tokens)
	if err != nil {
		return errors.WithMessage(err, "head (final norm, lm_head, loss)")
	}
	defer outer.free()
	dy := outer.dy
	outer.dy = nil
	freeAll(xs[L : L+1])
	xs[L] = nil

	// Backward, one layer at a time, down to the lowest layer with needed salience (down to the
	// embedding when its salience is needed).
	stop := 0
	if len(s.outerAxes) == 0 {
		for stop < L && len(s.layerAxes[stop]) == 0 {
			stop++
		}
	}
	for l := L - 1; l >= stop; l-- {
		s.stage("backward: layer %d of %d", l/2+1, L/2)
		dx, err := s.layerBackward(l, xs[l], dy, l > stop || len(s.outerAxes) > 0)
		dy.FinalizeAll()
		if err != nil {
			return errors.WithMessagef(err, "backward of layer %d", l)
		}
		dy = dx // nil after the last layer unless the embedding's salience needs it
		if l > 0 {
			xs[l].FinalizeAll()
			xs[l] = nil
		}
	}
	if dy == nil {
		return nil
	}
	defer dy.FinalizeAll()
	if len(s.outerAxes) > 0 {
		s.stage("embedding gradients")
		if err := s.outerSalience(tokens, dy, outer); err != nil {
			return errors.WithMessage(err, "embedding / head salience")
		}
	}
	return nil
}

// embedForward returns x_0 = embed(tokens) [N, T, D].
func (s *streamer) embedForward(tokens *tensors.Tensor) (*tensors.Tensor, error) {
	names := []string{arch.LlamaEmbed}
	w, err := s.read(names)
	if err != nil {
		return nil, err
	}
	defer freeAll(w)
	e, err := s.exec("embed", func(in []*Node) []*Node {
		return []*Node{models.EmbedStage(s.cfg, in[0], weightHooks(names, in[1:], map[string]*Node{}))}
	})
	if err != nil {
		return nil, err
	}
	return call1(e, tokens, w[0])
}

// unitOf returns the decoder layer of unit u and whether u is its MLP half (units 2l and 2l+1 are
// layer l's attention and MLP halves: streaming half layers halves the peak working set).
func unitOf(u int) (l int, mlp bool) { return u / 2, u%2 == 1 }

// unitTensors lists the tensor names of unit u.
func (s *streamer) unitTensors(u int) []string {
	l, mlp := unitOf(u)
	return specNames(models.HalfLayerTensors(s.cfg, l, mlp))
}

// unitStage applies unit u to x.
func (s *streamer) unitStage(u int, x *Node, hooks *models.Hooks) *Node {
	l, mlp := unitOf(u)
	return models.HalfLayerStage(s.cfg, l, mlp, x, hooks)
}

// layerKey identifies the graphs that serve every unit of the same kind, sizes and needed axes.
func (s *streamer) layerKey(u int) string {
	l, mlp := unitOf(u)
	var b strings.Builder
	if mlp {
		fmt.Fprintf(&b, "mlp %d", s.cfg.Inter[l])
	} else {
		fmt.Fprintf(&b, "attention %d/%d", s.cfg.Heads[l], s.cfg.KVHeads[l])
	}
	prefix := arch.LlamaLayerTensor(l, "")
	for _, ta := range s.layerAxes[u] {
		fmt.Fprintf(&b, ",%s:%d", strings.TrimPrefix(ta.Tensor, prefix), ta.Axis)
	}
	return b.String()
}

// layerForward returns unit l applied to x.
func (s *streamer) layerForward(l int, x *tensors.Tensor) (*tensors.Tensor, error) {
	names := s.unitTensors(l)
	w, err := s.read(names)
	if err != nil {
		return nil, err
	}
	defer freeAll(w)
	e, err := s.exec("forward "+s.layerKey(l), func(in []*Node) []*Node {
		return []*Node{s.unitStage(l, in[0], weightHooks(names, in[1:], map[string]*Node{}))}
	})
	if err != nil {
		return nil, err
	}
	return call1(e, append([]any{x}, tensorArgs(w)...)...)
}

// vjp builds layer l's forward on x with the weights params and returns the gradients of Σ y⊙dy
// with respect to x (nil unless withX) and the float32 weight nodes of the needed tensors (in the
// order of needed; none unless withWeights), plus those weight nodes.
func (s *streamer) vjp(l int, names []string, x *Node, params []*Node, dy *Node, needed []string, withX, withWeights bool) (dx *Node, w, g []*Node) {
	f32 := map[string]*Node{}
	hooks := weightHooks(names, params, f32)
	y := s.unitStage(l, x, hooks)
	target := ReduceAllSum(Mul(y, dy))
	var wrt []*Node
	if withX {
		wrt = append(wrt, x)
	}
	w = make([]*Node, len(needed))
	for i, n := range needed {
		w[i] = hooks.Weight(x.Graph(), n)
	}
	if withWeights {
		wrt = append(wrt, w...)
	}
	if len(wrt) == 0 {
		return nil, w, nil
	}
	grads := Gradient(target, wrt...)
	if withX {
		return grads[0], w, grads[1:]
	}
	return nil, w, grads
}

// layerBackward reads layer l, accumulates A over the samples (second-order modes), stores the
// salience of the layer's needed axes and returns dx (nil unless withX).
func (s *streamer) layerBackward(l int, x, dy *tensors.Tensor, withX bool) (*tensors.Tensor, error) {
	names := s.unitTensors(l)
	axes := s.layerAxes[l]
	needed := tensorNames(axes)
	w, err := s.read(names)
	if err != nil {
		return nil, err
	}
	defer freeAll(w)
	k, key := len(names), s.layerKey(l)
	var accs []*tensors.Tensor
	defer func() { freeAll(accs) }()
	if s.second && len(needed) > 0 {
		if accs, err = s.layerFisher(l, key, names, needed, w, x, dy); err != nil {
			return nil, err
		}
	}
	if withX {
		key += ",dx"
	}
	e, err := s.exec("backward "+key, func(in []*Node) []*Node {
		x, params, dy, a := in[0], in[1:1+k], in[1+k], in[2+k:]
		dx, wn, g := s.vjp(l, names, x, params, dy, needed, withX, s.first && len(needed) > 0)
		var outs []*Node
		if withX {
			outs = append(outs, dx)
		}
		idx := map[string]int{}
		for i, n := range needed {
			idx[n] = i
		}
		for _, ta := range axes {
			i := idx[ta.Tensor]
			var gi, ai *Node
			if s.first {
				gi = g[i]
			}
			if s.second {
				ai = a[i]
			}
			outs = append(outs, axisSalience(s.mode, elementSalience(s.mode, wn[i], gi, ai), ta.Axis))
		}
		return outs
	})
	if err != nil {
		return nil, err
	}
	args := append([]any{x}, tensorArgs(w)...)
	args = append(args, dy)
	args = append(args, tensorArgs(accs)...)
	out, err := e.Call(args...)
	if err != nil {
		return nil, err
	}
	var dx *tensors.Tensor
	if withX {
		dx, out = out[0], out[1:]
	}
	if err := s.storeSalience(axes, out); err != nil {
		if dx != nil {
			dx.FinalizeAll()
		}
		return nil, err
	}
	return dx, nil
}

// layerFisher returns A_i = (1/N) Σ_j g_ij² for the needed tensors of layer l, one batch-1
// backward per sample (g_j = N · the gradient of Σ y_j⊙dy[j]).
func (s *streamer) layerFisher(l int, key string, names, needed []string, w []*tensors.Tensor, x, dy *tensors.Tensor) ([]*tensors.Tensor, error) {
	k, N := len(names), float64(s.N)
	e, err := s.exec("fisher "+key, func(in []*Node) []*Node {
		x, params, dy, a := in[0], in[1:1+k], in[1+k], in[2+k:]
		_, _, g := s.vjp(l, names, x, params, dy, needed, false, true)
		outs := make([]*Node, len(needed))
		for i := range needed {
			outs[i] = Add(a[i], MulScalar(Square(g[i]), N)) // (N·g')²/N
		}
		return outs
	})
	if err != nil {
		return nil, err
	}
	accs, err := s.zerosLike(w, names, needed)
	if err != nil {
		return nil, err
	}
	for j := range s.N {
		xj, dyj := row(x, j), row(dy, j)
		args := append([]any{xj}, tensorArgs(w)...)
		args = append(args, dyj)
		for _, a := range accs {
			d, err := DonateTensorBuffer(a, s.src.Backend, 0)
			if err != nil {
				freeAll(accs)
				return nil, err
			}
			args = append(args, d)
		}
		out, err := e.Call(args...)
		xj.FinalizeAll()
		dyj.FinalizeAll()
		if err != nil {
			freeAll(accs)
			return nil, errors.WithMessagef(err, "calibration sample %d", j)
		}
		accs = out
	}
	return accs, nil
}

// zerosLike returns float32 zeros shaped like the needed tensors (found among names/w).
func (s *streamer) zerosLike(w []*tensors.Tensor, names, needed []string) ([]*tensors.Tensor, error) {
	out := make([]*tensors.Tensor, len(needed))
	for i, n := range needed {
		j := indexOf(names, n)
		if j < 0 {
			return nil, errors.Errorf("tensor %s is not in its layer", n)
		}
		out[i] = tensors.FromShape(shapes.Make(dtypes.Float32, w[j].Shape().Dimensions...))
	}
	return out, nil
}

func indexOf(names []string, n string) int {
	for i, m := range names {
		if m == n {
			return i
		}
	}
	return -1
}

// storeSalience copies salience vectors into s.sal and frees them.
func (s *streamer) storeSalience(axes []groups.TensorAxis, res []*tensors.Tensor) error {
	sal, err := toSalience(axes, res)
	if err != nil {
		return err
	}
	for ta, v := range sal {
		s.sal[ta] = v
	}
	return nil
}

// elementSalience is S of TaylorMode for one tensor: w and the batched gradient g (nil for
// ParamSecond), a the second-order accumulator (nil for first-order modes).
func elementSalience(mode TaylorMode, w, g, a *Node) *Node {
	switch mode {
	case ParamSecond:
		return Mul(Mul(w, a), w)
	case ParamMix:
		return Sub(Mul(w, g), MulScalar(Mul(Mul(w, a), w), 0.5))
	default:
		return Mul(w, g)
	}
}

// axisSalience reduces the elementwise salience s to the vector of axis (see TaylorMode).
func axisSalience(mode TaylorMode, s *Node, axis int) *Node {
	switch {
	case s.Rank() == 1:
		return Abs(s)
	case mode == Vectorize:
		return Abs(reduceToAxis(s, axis))
	default:
		return reduceToAxis(Abs(s), axis)
	}
}

func tensorArgs(ts []*tensors.Tensor) []any {
	out := make([]any, len(ts))
	for i, t := range ts {
		out[i] = t
	}
	return out
}

func call1(e *Exec, args ...any) (*tensors.Tensor, error) {
	out, err := e.Call(args...)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// row returns row j of a float32 tensor [N, ...] as a new tensor [1, ...].
func row(t *tensors.Tensor, j int) *tensors.Tensor {
	dims := t.Shape().Dimensions
	out := tensors.FromShape(shapes.Make(t.DType(), append([]int{1}, dims[1:]...)...))
	n := t.Shape().Memory() / uintptr(dims[0])
	_ = t.ConstBytes(func(src []byte) {
		_ = out.MutableBytes(func(dst []byte) { copy(dst, src[uintptr(j)*n:uintptr(j+1)*n]) })
	})
	return out
}

// outerGrads are the head's results: dy at the last layer's output and, for the needed outer
// tensors the head reads (final norm, lm_head or the tied embedding), the batched gradient g and
// the head's part of A (per-sample gradients of the tied embedding kept aside).
type outerGrads struct {
	dy        *tensors.Tensor
	g, a      map[string]*tensors.Tensor
	perSample []*tensors.Tensor // tied embedding: the head's part of g_j, per sample
}

func (o *outerGrads) free() {
	if o.dy != nil {
		o.dy.FinalizeAll()
	}
	for _, m := range []map[string]*tensors.Tensor{o.g, o.a} {
		for _, t := range m {
			t.FinalizeAll()
		}
	}
	freeAll(o.perSample)
}

// headNames lists the tensors the head reads.
func (s *streamer) headNames() []string {
	if s.cfg.TieEmbed {
		return []string{arch.LlamaFinalNorm, arch.LlamaEmbed}
	}
	return []string{arch.LlamaFinalNorm, arch.LlamaLMHead}
}

// headBackward computes the loss of x_L and its gradients.
func (s *streamer) headBackward(xL, tokens *tensors.Tensor) (*outerGrads, error) {
	names := s.headNames()
	var needed []string
	for _, n := range tensorNames(s.outerAxes) {
		if indexOf(names, n) >= 0 {
			needed = append(needed, n)
		}
	}
	w, err := s.read(names)
	if err != nil {
		return nil, err
	}
	defer freeAll(w)
	e, err := s.exec("head", func(in []*Node) []*Node {
		x, tok, params := in[0], in[1], in[2:]
		hooks := weightHooks(names, params, map[string]*Node{})
		loss := models.LMLoss(models.HeadStage(s.cfg, x, hooks), tok, nil)
		wrt := []*Node{x}
		for _, n := range needed {
			wrt = append(wrt, hooks.Weight(x.Graph(), n))
		}
		return append([]*Node{loss}, Gradient(loss, wrt...)...)
	})
	if err != nil {
		return nil, err
	}
	out, err := e.Call(append([]any{xL, tokens}, tensorArgs(w)...)...)
	if err != nil {
		return nil, err
	}
	if loss, err := tensors.CopyFlatData[float32](out[0]); err == nil {
		s.progress("calibration loss %.4f", loss[0])
	}
	out[0].FinalizeAll()
	o := &outerGrads{dy: out[1], g: map[string]*tensors.Tensor{}, a: map[string]*tensors.Tensor{}}
	for i, n := range needed {
		o.g[n] = out[2+i]
	}
	if !s.second || len(needed) == 0 {
		return o, nil
	}
	for j := range s.N {
		xj, tj := row(xL, j), tokensTensor(s.calib[j:j+1])
		out, err := e.Call(append([]any{xj, tj}, tensorArgs(w)...)...)
		xj.FinalizeAll()
		tj.FinalizeAll()
		if err != nil {
			o.free()
			return nil, errors.WithMessagef(err, "calibration sample %d", j)
		}
		freeAll(out[:2])
		for i, n := range needed {
			gj := out[2+i]
			if n == arch.LlamaEmbed { // tied: completed by the embedding's part later
				o.perSample = append(o.perSample, gj)
				continue
			}
			if o.a[n], err = s.addSquare(o.a[n], gj); err != nil {
				o.free()
				return nil, err
			}
		}
	}
	return o, nil
}

// addSquare returns a + g²/N (a nil: zeros) and frees a and g.
func (s *streamer) addSquare(a, g *tensors.Tensor) (*tensors.Tensor, error) {
	defer g.FinalizeAll()
	if a == nil {
		a = tensors.FromShape(g.Shape())
	}
	N := float64(s.N)
	e, err := s.exec("add square", func(in []*Node) []*Node {
		return []*Node{Add(in[0], DivScalar(Square(in[1]), N))}
	})
	if err != nil {
		return nil, err
	}
	d, err := DonateTensorBuffer(a, s.src.Backend, 0)
	if err != nil {
		return nil, err
	}
	return call1(e, d, g)
}

// outerSalience completes the embedding's gradient with its lookup part (from dy0, the gradient at
// x_0) and stores the salience of every needed outer axis.
func (s *streamer) outerSalience(tokens, dy0 *tensors.Tensor, o *outerGrads) error {
	needed := tensorNames(s.outerAxes)
	if indexOf(needed, arch.LlamaEmbed) >= 0 {
		if err := s.embedGrads(tokens, dy0, o); err != nil {
			return err
		}
	}
	for _, n := range needed {
		var axes []groups.TensorAxis
		for _, ta := range s.outerAxes {
			if ta.Tensor == n {
				axes = append(axes, ta)
			}
		}
		w, err := s.read([]string{n})
		if err != nil {
			return err
		}
		e, err := s.exec("outer salience "+n, func(in []*Node) []*Node {
			wn := in[0]
			if wn.DType() != dtypes.Float32 {
				wn = ConvertDType(wn, dtypes.Float32)
			}
			var g, a *Node
			rest := in[1:]
			if s.first {
				g, rest = rest[0], rest[1:]
			}
			if s.second {
				a = rest[0]
			}
			outs := make([]*Node, len(axes))
			for i, ta := range axes {
				outs[i] = axisSalience(s.mode, elementSalience(s.mode, wn, g, a), ta.Axis)
			}
			return outs
		})
		if err != nil {
			freeAll(w)
			return err
		}
		args := []any{w[0]}
		if s.first {
			args = append(args, o.g[n])
		}
		if s.second {
			args = append(args, o.a[n])
		}
		out, err := e.Call(args...)
		freeAll(w)
		if err != nil {
			return err
		}
		if err := s.storeSalience(axes, out); err != nil {
			return err
		}
	}
	return nil
}

// embedGrads adds the embedding lookup's part to o.g / o.a of the embedding table: the batched
// gradient is lookup(dy0) (+ the head's when tied); sample j's is N·lookup(dy0[j]) (+ its head part).
func (s *streamer) embedGrads(tokens, dy0 *tensors.Tensor, o *outerGrads) error {
	names := []string{arch.LlamaEmbed}
	w, err := s.read(names)
	if err != nil {
		return err
	}
	defer freeAll(w)
	lookupGrad := func(tok, dy, w *Node) *Node {
		hooks := weightHooks(names, []*Node{w}, map[string]*Node{})
		x := models.EmbedStage(s.cfg, tok, hooks)
		return Gradient(ReduceAllSum(Mul(x, dy)), hooks.Weight(tok.Graph(), arch.LlamaEmbed))[0]
	}
	batched, err := s.exec("embedding gradient", func(in []*Node) []*Node {
		g := lookupGrad(in[0], in[1], in[2])
		if len(in) > 3 {
			g = Add(g, in[3])
		}
		return []*Node{g}
	})
	if err != nil {
		return err
	}
	args := []any{tokens, dy0, w[0]}
	if h := o.g[arch.LlamaEmbed]; h != nil {
		args = append(args, h)
	}
	if s.first {
		g, err := call1(batched, args...)
		if err != nil {
			return err
		}
		if h := o.g[arch.LlamaEmbed]; h != nil {
			h.FinalizeAll()
		}
		o.g[arch.LlamaEmbed] = g
	}
	if !s.second {
		return nil
	}
	N := float64(s.N)
	fisher, err := s.exec("embedding fisher", func(in []*Node) []*Node {
		g := MulScalar(lookupGrad(in[0], in[1], in[2]), N)
		if len(in) > 4 {
			g = Add(g, in[4])
		}
		return []*Node{Add(in[3], DivScalar(Square(g), N))}
	})
	if err != nil {
		return err
	}
	a := tensors.FromShape(shapes.Make(dtypes.Float32, w[0].Shape().Dimensions...))
	for j := range s.N {
		tj, dyj := tokensTensor(s.calib[j:j+1]), row(dy0, j)
		d, err := DonateTensorBuffer(a, s.src.Backend, 0)
		if err != nil {
			return err
		}
		args := []any{tj, dyj, w[0], d}
		if j < len(o.perSample) {
			args = append(args, o.perSample[j])
		}
		a, err = call1(fisher, args...)
		tj.FinalizeAll()
		dyj.FinalizeAll()
		if err != nil {
			return errors.WithMessagef(err, "calibration sample %d", j)
		}
	}
	o.a[arch.LlamaEmbed] = a
	return nil
}

// StreamEstimator is an Estimator that also scores a model read from its checkpoint (StreamSource)
// without loading it whole. TaylorEstimator, Magnitude and RandomEstimator implement it.
type StreamEstimator interface {
	Estimator
	StreamScores(src *StreamSource, fams []*groups.Family) ([][]float64, error)
}

// StreamScores implements StreamEstimator: random scores need no weights.
func (e *RandomEstimator) StreamScores(_ *StreamSource, fams []*groups.Family) ([][]float64, error) {
	return e.Scores(nil, fams)
}

// StreamScores implements StreamEstimator: each scored tensor is read from the checkpoint, reduced
// in-graph and dropped (the same graph as Scores, one tensor at a time).
func (e *Magnitude) StreamScores(src *StreamSource, fams []*groups.Family) ([][]float64, error) {
	if err := models.CheckTensors(src.Config, src.Reader.Tensors()); err != nil {
		return nil, errors.WithMessage(err, "streamed magnitude importance")
	}
	axes := NeededAxes(fams)
	sal := Salience{}
	s := &streamer{src: src, execs: map[string]*Exec{}}
	defer s.finalize()
	if src.Backend.HasSharedBuffers() {
		s.alloc = func(shape shapes.Shape) (*tensors.Tensor, error) {
			return tensors.FromShapeForBackend(src.Backend, 0, shape)
		}
	}
	for _, n := range tensorNames(axes) {
		var mine []groups.TensorAxis
		for _, ta := range axes {
			if ta.Tensor == n {
				mine = append(mine, ta)
			}
		}
		models.ReleaseMemory() // the previous tensor's buffers
		w, err := s.read([]string{n})
		if err != nil {
			return nil, errors.WithMessage(err, "streamed magnitude importance")
		}
		key := fmt.Sprint("magnitude ", e.P)
		for _, ta := range mine {
			key += fmt.Sprint(" ", ta.Axis)
		}
		exec, err := s.exec(key, func(in []*Node) []*Node {
			a := Abs(ConvertDType(in[0], dtypes.Float32))
			if e.P != 1 {
				a = PowScalar(a, float64(e.P))
			}
			outs := make([]*Node, len(mine))
			for i, ta := range mine {
				outs[i] = reduceToAxis(a, ta.Axis)
			}
			return outs
		})
		if err != nil {
			freeAll(w)
			return nil, err
		}
		out, err := exec.Call(w[0])
		freeAll(w)
		if err != nil {
			return nil, errors.WithMessagef(err, "streamed magnitude importance of %s", n)
		}
		got, err := toSalience(mine, out)
		if err != nil {
			return nil, err
		}
		for ta, v := range got {
			sal[ta] = v
		}
	}
	return GroupScores(fams, sal, e.Reduction)
}
