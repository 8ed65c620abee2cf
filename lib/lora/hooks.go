package lora

import (
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/nn"
	"github.com/llmpruner/llmpruner/lib/models"
)

// hooks is the Hooks.Linear of an attached adapter.
type hooks struct {
	store   *model.Store
	scale   float64
	dropout float64
	adapted map[string]bool // module names
	// frozenBase marks training graphs: the base projection is built as a plain DotGeneral of a
	// StopGradient weight, so that no gradient of the frozen weight is computed (the fused dense
	// op's backward always produces dW).
	frozenBase bool

	mu  sync.Mutex
	rng map[*Graph]*Node // training graphs only: the current RNG state of the dropout masks
}

// setHooks installs the adapter's Linear hook on m (keeping any Weight hook) and drops the
// compiled graphs.
func setHooks(m *models.Model, cfg Config, modules []string) {
	h := newHooks(m.Store, cfg, modules)
	var hk models.Hooks
	if m.Hooks != nil {
		hk = *m.Hooks
	}
	hk.Linear = h.linear
	m.Hooks = &hk
	m.ResetExecs()
}

// newHooks builds the hooks of an adapter over modules of store.
func newHooks(store *model.Store, cfg Config, modules []string) *hooks {
	h := &hooks{store: store, scale: cfg.Scale(), dropout: cfg.Dropout, adapted: map[string]bool{}, rng: map[*Graph]*Node{}}
	for _, mod := range modules {
		h.adapted[mod] = true
	}
	return h
}

// modelHooks returns m's hooks with Linear replaced by h's.
func (h *hooks) modelHooks(m *models.Model) *models.Hooks {
	var hk models.Hooks
	if m.Hooks != nil {
		hk = *m.Hooks
	}
	hk.Linear = h.linear
	return &hk
}

// beginTraining makes the graph g apply dropout with the RNG state rng ([3]uint64, see
// graph.RNGStateShape); endTraining forgets it.
func (h *hooks) beginTraining(g *Graph, rng *Node) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rng[g] = rng
}

func (h *hooks) endTraining(g *Graph) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.rng, g)
}

// applyDropout returns x with PyTorch-style inverted dropout applied (kept values scaled by
// 1/(1-p)) when g is a training graph, else x.
func (h *hooks) applyDropout(x *Node) *Node {
	if h.dropout <= 0 {
		return x
	}
	g := x.Graph()
	h.mu.Lock()
	defer h.mu.Unlock()
	state, ok := h.rng[g]
	if !ok {
		return x
	}
	state, u := RandomUniform(state, x.Shape()) // u ∈ [0, 1), shaped like x
	h.rng[g] = state
	keep := ConvertDType(GreaterOrEqual(u, Scalar(g, x.DType(), h.dropout)), x.DType())
	return Mul(x, MulScalar(keep, 1/(1-h.dropout)))
}

// linear is x·Wᵀ + b + scale·(dropout(x)·Aᵀ)·Bᵀ for adapted modules, else the plain projection.
func (h *hooks) linear(x *Node, module string, weight, bias *Node) *Node {
	var y *Node // [..., out]
	if h.frozenBase {
		y = DotGeneral(x, []int{x.Rank() - 1}, nil, StopGradient(weight), []int{1}, nil)
		if bias != nil {
			y = Add(y, ExpandLeftToRank(StopGradient(bias), y.Rank()))
		}
	} else {
		y = models.Linear(x, module, weight, bias)
	}
	if !h.adapted[module] {
		return y
	}
	g := x.Graph()
	an, bn := loraNames(module)
	a := models.VariableF32(h.store, g, an) // [r, in]
	b := models.VariableF32(h.store, g, bn) // [out, r]
	if x.DType() != dtypes.Float32 {
		x = ConvertDType(x, dtypes.Float32)
	}
	low := nn.Dense(h.applyDropout(x), a, nil, compute.DenseLayoutOutputsInput)         // [..., r]
	delta := MulScalar(nn.Dense(low, b, nil, compute.DenseLayoutOutputsInput), h.scale) // [..., out]
	if y.DType() != delta.DType() {                                                     // a half-precision base product (Hooks.MatMulDType)
		delta = ConvertDType(delta, y.DType())
	}
	return Add(y, delta)
}
