package models

// Benchmarks: forward and forward+backward (gradients of every weight) throughput, reported as
// tokens/s and effective GFLOP/s with FLOPs = 2·MACs of the matmuls (attention counted over the
// full S×S score matrix, as dense implementations compute it) and backward ≈ 2× forward.
//
//	go test ./lib/models -run '^$' -bench . -benchtime 5x

import (
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/internal/testdata"
)

// layerMACs is the multiply-accumulates of decoder layer l over B×S tokens.
func layerMACs(cfg *config.Config, l, B, S int) float64 {
	D, HD := float64(cfg.Hidden), float64(cfg.HeadDim)
	q, kv, inter := float64(cfg.Heads[l])*HD, float64(cfg.KVHeads[l])*HD, float64(cfg.Inter[l])
	tokens := float64(B * S)
	proj := tokens * (2*D*q + 2*D*kv + 3*D*inter)
	attn := float64(B) * 2 * float64(S) * float64(S) * q
	return proj + attn
}

// modelFLOPs is the forward FLOPs of the whole model (layers and LM head) over B×S tokens.
func modelFLOPs(cfg *config.Config, B, S int) float64 {
	var macs float64
	for l := range cfg.NumLayers() {
		macs += layerMACs(cfg, l, B, S)
	}
	macs += float64(B*S) * float64(cfg.Hidden) * float64(cfg.Vocab)
	return 2 * macs
}

// weightNodes records the float32 weight nodes of a graph, to differentiate against them.
type weightNodes struct{ nodes []*Node }

func (w *weightNodes) hooks(store *model.Store) *Hooks {
	return &Hooks{Weight: func(g *Graph, name string) *Node {
		n := VariableF32(store, g, name)
		w.nodes = append(w.nodes, n)
		return n
	}}
}

// gradSums returns one scalar per gradient (keeps the outputs small; gradients are computed).
func gradSums(loss *Node, nodes []*Node) []*Node {
	out := []*Node{loss}
	for _, g := range Gradient(loss, nodes...) {
		out = append(out, ReduceAllSum(g))
	}
	return out
}

func runBench(b *testing.B, exec *model.Exec, flops float64, tokens int, args ...any) {
	b.Helper()
	outs, err := exec.Call(args...) // compile outside the timing
	if err != nil {
		b.Fatalf("%+v", err)
	}
	for _, o := range outs {
		_ = o.FinalizeAll()
	}
	b.ResetTimer()
	for range b.N {
		outs := exec.MustCall(args...)
		for _, o := range outs {
			_ = o.FinalizeAll()
		}
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(tokens)/sec, "tokens/s")
	b.ReportMetric(flops/sec/1e9, "GFLOP/s")
}

// BenchmarkStories260K: the real 260K-parameter model, batch 8 × 256 tokens.
func BenchmarkStories260K(b *testing.B) {
	m := mustLoad(b, testdata.Path(b, "models/stories260K/stories260K.bin"), LoadOptions{})
	const B, S = 8, 256
	rng := rand.New(rand.NewPCG(1, 2))
	tok := make([]int32, B*S)
	for i := range tok {
		tok[i] = int32(rng.IntN(m.Config.Vocab))
	}
	tokens := tensors.FromFlatDataAndDimensions(tok, B, S)
	fwd := modelFLOPs(m.Config, B, S)
	b.Run("forward", func(b *testing.B) {
		exec := model.MustNewExec(m.Backend, m.Store, func(scope *model.Scope, tokens *Node) *Node {
			return LMLoss(Logits(scope, m.Config, tokens, nil, nil), tokens, nil)
		})
		runBench(b, exec, fwd, B*S, tokens)
	})
	b.Run("forward+backward", func(b *testing.B) {
		exec := model.MustNewExec(m.Backend, m.Store, func(scope *model.Scope, tokens *Node) []*Node {
			var w weightNodes
			loss := LMLoss(Logits(scope, m.Config, tokens, nil, w.hooks(m.Store)), tokens, nil)
			return gradSums(loss, w.nodes)
		})
		runBench(b, exec, 3*fwd, B*S, tokens)
	})
}

// llama7BLayerConfig is one LLaMA-7B decoder layer.
func llama7BLayerConfig() *config.Config {
	return &config.Config{Arch: arch.Llama, Hidden: 4096, Vocab: 32000, HeadDim: 128,
		Heads: []int{32}, KVHeads: []int{32}, Inter: []int{11008}, RMSNormEps: 1e-6, RopeTheta: 10000, MaxPositions: 4096}
}

// randomLayerStore creates layer 0's weights (float32, N(0, 0.02²)).
func randomLayerStore(b *testing.B, cfg *config.Config) *model.Store {
	rng := rand.New(rand.NewPCG(7, 7))
	store := model.NewStore()
	specs, _ := ExpectedTensors(cfg)
	for _, s := range specs {
		if len(s.Name) < 13 || s.Name[:13] != "model.layers." {
			continue
		}
		n := 1
		for _, d := range s.Shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(0.02 * rng.NormFloat64())
		}
		if _, err := store.CreateVariable(VarPath(s.Name), tensors.FromFlatDataAndDimensions(v, s.Shape...)); err != nil {
			b.Fatal(err)
		}
	}
	return store
}

// Benchmark7BLayer: one LLaMA-7B-shaped decoder layer (d 4096, 32 heads × 128, ffn 11008) on
// 1 × 128 tokens, random weights.
func Benchmark7BLayer(b *testing.B) {
	cfg := llama7BLayerConfig()
	const B, S = 1, 128
	store := randomLayerStore(b, cfg)
	rng := rand.New(rand.NewPCG(3, 3))
	xs := make([]float32, B*S*cfg.Hidden)
	for i := range xs {
		xs[i] = float32(rng.NormFloat64())
	}
	x := tensors.FromFlatDataAndDimensions(xs, B, S, cfg.Hidden)
	fwd := 2 * layerMACs(cfg, 0, B, S)
	layer := func(scope *model.Scope, x *Node, hooks *Hooks) *Node {
		g := x.Graph()
		m := &llama{cfg: cfg, w: newWeights(scope, g, hooks)}
		r := newRoPE(Iota(g, shapes.Make(dtypes.Int32, S), 0), cfg.InvFrequencies())
		return m.layer(0, x, r, causalMask(g, S, nil), noCache)
	}
	b.Run("forward", func(b *testing.B) {
		exec := model.MustNewExec(backend(b), store, func(scope *model.Scope, x *Node) *Node {
			return ReduceAllSum(layer(scope, x, nil))
		})
		runBench(b, exec, fwd, B*S, x)
	})
	b.Run("forward+backward", func(b *testing.B) {
		exec := model.MustNewExec(backend(b), store, func(scope *model.Scope, x *Node) []*Node {
			var w weightNodes
			out := layer(scope, x, w.hooks(store))
			return gradSums(ReduceAllMean(Square(out)), w.nodes)
		})
		runBench(b, exec, 3*fwd, B*S, x)
	})
}

// BenchmarkGenerateStories260K: KV-cache greedy decoding speed (256 new tokens from BOS).
func BenchmarkGenerateStories260K(b *testing.B) {
	m := mustLoad(b, testdata.Path(b, "models/stories260K/stories260K.bin"), LoadOptions{})
	const n = 256
	opts := GenerateOptions{MaxNewTokens: n, IgnoreEOS: true}
	if _, err := m.Generate([]int{1}, opts); err != nil { // compile outside the timing
		b.Fatalf("%+v", err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := m.Generate([]int{1}, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tokens/s")
}
