package models

import (
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// TestGradientsMatchFiniteDifferences: gradients of LMLoss with respect to the weight nodes the
// Weight hook hands out (what importance estimation differentiates against) agree with central
// finite differences of the float64 reference loss.
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	cfg := nonUniformConfig()
	r := randomWeights(cfg, 5)
	m := modelFromReader(t, cfg, r)
	ref := &refModel{cfg: cfg, w: r.vals}
	seq := randomSeqs(rand.New(rand.NewPCG(8, 8)), cfg.Vocab, 9)[0]
	refLoss := func() float64 {
		lg := ref.logits(seq)
		var s float64
		for p := 1; p < len(seq); p++ {
			s += nll(lg[p-1], seq[p])
		}
		return s / float64(len(seq)-1)
	}

	var names []string
	exec := model.MustNewExec(backend(t), m.Store, func(scope *model.Scope, tokens *Node) []*Node {
		var w weightNodes
		names = names[:0]
		hooks := w.hooks(m.Store)
		inner := hooks.Weight
		hooks.Weight = func(g *Graph, name string) *Node { names = append(names, name); return inner(g, name) }
		loss := LMLoss(Logits(scope, cfg, tokens, nil, hooks), tokens, nil)
		return append([]*Node{loss}, Gradient(loss, w.nodes...)...)
	})
	tok := make([]int32, len(seq))
	for i, id := range seq {
		tok[i] = int32(id)
	}
	outs := exec.MustCall(tensors.FromFlatDataAndDimensions(tok, 1, len(seq)))
	grads := map[string][]float32{}
	for i, name := range names {
		grads[name] = tensors.MustCopyFlatData[float32](outs[1+i]) // untied config: each tensor is used once

	}
	rng := rand.New(rand.NewPCG(1, 9))
	checked := 0
	for _, name := range []string{"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
		"model.layers.0.self_attn.k_proj.bias", "model.layers.0.self_attn.v_proj.weight", "model.layers.0.input_layernorm.weight",
		"model.layers.1.self_attn.o_proj.weight", "model.layers.1.mlp.gate_proj.weight", "model.layers.1.mlp.down_proj.bias",
		"model.norm.weight", "lm_head.weight"} {
		g, ok := grads[name]
		if !ok {
			t.Fatalf("no gradient recorded for %s", name)
		}
		var gmax float64
		for _, v := range g {
			gmax = math.Max(gmax, math.Abs(float64(v)))
		}
		for range 4 {
			i := rng.IntN(len(g))
			if name == "model.embed_tokens.weight" { // pick a row that is used
				i = seq[rng.IntN(len(seq))]*cfg.Hidden + rng.IntN(cfg.Hidden)
			}
			orig := r.vals[name][i]
			const eps = 1e-5
			r.vals[name][i] = orig + eps
			up := refLoss()
			r.vals[name][i] = orig - eps
			down := refLoss()
			r.vals[name][i] = orig
			fd := (up - down) / (2 * eps)
			if d := math.Abs(fd - float64(g[i])); d > 1e-3*math.Max(gmax, 1e-3) {
				t.Errorf("%s[%d]: gradient %.6g, finite difference %.6g", name, i, g[i], fd)
			}
			checked++
		}
	}
	t.Logf("%d gradient entries checked against finite differences", checked)
}
