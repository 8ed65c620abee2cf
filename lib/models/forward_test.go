package models

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/internal/testdata"
)

// modelFromReader builds a Model from an in-memory checkpoint.
func modelFromReader(t *testing.T, cfg *config.Config, r *memReader) *Model {
	t.Helper()
	store, err := LoadStore(backend(t), cfg, r, "memory")
	if err != nil {
		t.Fatalf("LoadStore: %+v", err)
	}
	return &Model{Config: cfg, Store: store, Backend: backend(t), Source: "memory"}
}

func randomSeqs(rng *rand.Rand, vocab int, lengths ...int) [][]int {
	out := make([][]int, len(lengths))
	for i, n := range lengths {
		for range n {
			out[i] = append(out[i], rng.IntN(vocab))
		}
	}
	return out
}

// TestNonUniformMatchesReference: random non-uniform models (per-layer heads, GQA, MLP widths,
// biases; untied and tied heads) against the naive float64 reference, batched with padding.
func TestNonUniformMatchesReference(t *testing.T) {
	tied := nonUniformConfig()
	tied.TieEmbed, tied.AttnBias, tied.MLPBias = true, false, false
	tied.Heads, tied.KVHeads = []int{2, 6}, []int{1, 3}
	for name, cfg := range map[string]*config.Config{"untied-biases": nonUniformConfig(), "tied-gqa": tied} {
		t.Run(name, func(t *testing.T) {
			r := randomWeights(cfg, 42)
			m := modelFromReader(t, cfg, r)
			ref := &refModel{cfg: cfg, w: r.vals}
			seqs := randomSeqs(rand.New(rand.NewPCG(3, 4)), cfg.Vocab, 7, 19, 2)
			logits, err := m.Logits(seqs)
			if err != nil {
				t.Fatalf("Logits: %+v", err)
			}
			logp, _, err := m.TokenLogProbs(seqs)
			if err != nil {
				t.Fatalf("TokenLogProbs: %+v", err)
			}
			var maxDiff, maxRef, maxNLL float64
			var sumNLL float64
			var count int
			for i, seq := range seqs {
				want := ref.logits(seq)
				for pos := range seq {
					for v := range want[pos] {
						maxDiff = math.Max(maxDiff, math.Abs(float64(logits[i][pos][v])-want[pos][v]))
						maxRef = math.Max(maxRef, math.Abs(want[pos][v]))
					}
					if pos > 0 {
						n := nll(want[pos-1], seq[pos])
						maxNLL = math.Max(maxNLL, math.Abs(-logp[i][pos-1]-n))
						sumNLL += n
						count++
					}
				}
			}
			t.Logf("logits max|Δ|/max|ref| = %.2e, token NLL max|Δ| = %.2e", maxDiff/maxRef, maxNLL)
			if maxDiff/maxRef > 1e-5 || maxNLL > 1e-4 {
				t.Errorf("mismatch with the reference: logits %.2e, NLL %.2e", maxDiff/maxRef, maxNLL)
			}
			loss, err := m.Loss(seqs)
			if err != nil || math.Abs(loss-sumNLL/float64(count)) > 1e-5 {
				t.Errorf("Loss = %v (err %v), reference %v", loss, err, sumNLL/float64(count))
			}
		})
	}
}

// TestTokenLogProbsContextPlusOne: a sequence of max_position_embeddings+1 tokens (lm-eval's
// max_length+1 window, the last token only a target) scores every token as the float64 reference
// does, batched with a shorter one.
func TestTokenLogProbsContextPlusOne(t *testing.T) {
	cfg := nonUniformConfig()
	r := randomWeights(cfg, 11)
	m := modelFromReader(t, cfg, r)
	ref := &refModel{cfg: cfg, w: r.vals}
	seqs := randomSeqs(rand.New(rand.NewPCG(8, 1)), cfg.Vocab, cfg.MaxPositions+1, 9)
	logp, _, err := m.TokenLogProbs(seqs)
	if err != nil {
		t.Fatalf("TokenLogProbs: %+v", err)
	}
	var maxNLL float64
	for i, seq := range seqs {
		want := ref.logits(seq)
		if len(logp[i]) != len(seq)-1 {
			t.Fatalf("sequence %d: %d scores for %d tokens", i, len(logp[i]), len(seq))
		}
		for p := 1; p < len(seq); p++ {
			maxNLL = math.Max(maxNLL, math.Abs(-logp[i][p-1]-nll(want[p-1], seq[p])))
		}
	}
	t.Logf("token NLL max|Δ| = %.2e over %d+%d tokens", maxNLL, len(seqs[0]), len(seqs[1]))
	if maxNLL > 1e-4 {
		t.Errorf("token NLL differs from the reference by %.2e", maxNLL)
	}
}

// TestLMLossPadded: the graph LMLoss on a right-padded batch equals the reference mean NLL over
// positions whose next token is real.
func TestLMLossPadded(t *testing.T) {
	cfg := nonUniformConfig()
	r := randomWeights(cfg, 7)
	m := modelFromReader(t, cfg, r)
	ref := &refModel{cfg: cfg, w: r.vals}
	seqs := randomSeqs(rand.New(rand.NewPCG(5, 6)), cfg.Vocab, 6, 3)
	const L = 8
	tok := make([]int32, 2*L)
	mask := make([]bool, 2*L)
	var sum float64
	var n int
	for i, s := range seqs {
		want := ref.logits(s)
		for p, id := range s {
			tok[i*L+p], mask[i*L+p] = int32(id), true
			if p > 0 {
				sum += nll(want[p-1], id)
				n++
			}
		}
		for p := len(s); p < L; p++ {
			tok[i*L+p] = int32(cfg.Vocab - 1) // padding ids that must not matter
		}
	}
	exec := model.MustNewExec(backend(t), m.Store, func(scope *model.Scope, tokens, mask *Node) *Node {
		return LMLoss(Logits(scope, cfg, tokens, mask, nil), tokens, mask)
	})
	got := tensors.ToScalar[float32](exec.MustCall1(tensors.FromFlatDataAndDimensions(tok, 2, L), tensors.FromFlatDataAndDimensions(mask, 2, L)))
	if math.Abs(float64(got)-sum/float64(n)) > 1e-5 {
		t.Errorf("LMLoss = %.7f, reference %.7f", got, sum/float64(n))
	}
}

// TestPaddedBatchEqualsSingle: scoring sequences of different lengths together (padded batch)
// gives the same numbers as scoring each alone, on the real stories260K (GQA 8/4).
func TestPaddedBatchEqualsSingle(t *testing.T) {
	m := mustLoad(t, testdata.Path(t, "models/stories260K/stories260K.bin"), LoadOptions{})
	seqs := randomSeqs(rand.New(rand.NewPCG(9, 9)), m.Config.Vocab, 40, 5, 17, 2)
	batched, greedyB, err := m.TokenLogProbs(seqs)
	if err != nil {
		t.Fatalf("TokenLogProbs: %+v", err)
	}
	for i, s := range seqs {
		single, greedyS, err := m.TokenLogProbs([][]int{s})
		if err != nil {
			t.Fatalf("TokenLogProbs: %+v", err)
		}
		if len(single[0]) != len(s)-1 || len(batched[i]) != len(s)-1 {
			t.Fatalf("sequence %d: %d and %d scores for %d tokens", i, len(single[0]), len(batched[i]), len(s))
		}
		for p := range single[0] {
			if math.Abs(single[0][p]-batched[i][p]) > 1e-5 || greedyS[0][p] != greedyB[i][p] {
				t.Errorf("sequence %d position %d: batched %v/%v, single %v/%v", i, p, batched[i][p], greedyB[i][p], single[0][p], greedyS[0][p])
			}
		}
	}
}

// TestBF16AgreesWithUpcast: a bf16 store computes exactly what its float32 upcast computes
// (conversion happens in-graph; weights stay bf16 in the store).
func TestBF16AgreesWithUpcast(t *testing.T) {
	cfg := nonUniformConfig()
	r := randomWeights(cfg, 11)
	r.dtype = dtypes.BFloat16
	mb := modelFromReader(t, cfg, r)
	if v := mb.Store.GetVariable(VarPath("model.layers.0.self_attn.q_proj.weight")); v.DType() != dtypes.BFloat16 {
		t.Fatalf("stored dtype %s, want BFloat16", v.DType())
	}
	up := &memReader{vals: map[string][]float64{}, shapes: r.shapes, dtype: dtypes.Float32}
	for n, v := range r.vals {
		rounded := make([]float64, len(v))
		for i, x := range v {
			rounded[i] = float64(float32(x))
		}
		t16, _ := r.Read(n)
		for i, b := range tensors.MustCopyFlatData[bfloat16.BFloat16](t16) {
			rounded[i] = float64(b.Float32())
		}
		up.vals[n] = rounded
	}
	mf := modelFromReader(t, cfg, up)
	seqs := randomSeqs(rand.New(rand.NewPCG(1, 2)), cfg.Vocab, 9)
	lb, err := mb.Logits(seqs)
	if err != nil {
		t.Fatal(err)
	}
	lf, err := mf.Logits(seqs)
	if err != nil {
		t.Fatal(err)
	}
	for p := range lb[0] {
		if e := relErr(lb[0][p], lf[0][p]); e > 1e-6 {
			t.Errorf("position %d: bf16 vs f32 upcast relative error %.2e", p, e)
		}
	}
}

// TestVariableUpdatesReachCompiledGraphs: changing a weight's value (same shape) changes what an
// already compiled graph computes — weights are graph parameters, not embedded constants.
func TestVariableUpdatesReachCompiledGraphs(t *testing.T) {
	cfg := nonUniformConfig()
	m := modelFromReader(t, cfg, randomWeights(cfg, 13))
	seqs := [][]int{{1, 5, 7}}
	before, err := m.Logits(seqs)
	if err != nil {
		t.Fatal(err)
	}
	v := m.Store.GetVariable(VarPath("model.norm.weight"))
	if err := v.SetValue(tensors.FromFlatDataAndDimensions(make([]float32, cfg.Hidden), cfg.Hidden)); err != nil {
		t.Fatal(err)
	}
	after, err := m.Logits(seqs)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range after[0][2] {
		if x != 0 { // a zero final norm zeroes every logit
			t.Fatalf("logits after zeroing model.norm.weight: %v (before: %v)", after[0][2][:4], before[0][2][:4])
		}
	}
}

// TestHooksSeeEveryWeightAndProjection: the Weight hook is asked for every tensor of the model
// and the Linear hook for every projection (q/k/v/o, gate/up/down per layer, lm_head), so
// importance estimation and LoRA can hook in without copying the forward.
func TestHooksSeeEveryWeightAndProjection(t *testing.T) {
	cfg := nonUniformConfig()
	m := modelFromReader(t, cfg, randomWeights(cfg, 21))
	weights, modules := map[string]bool{}, map[string]bool{}
	hooks := &Hooks{
		Weight: func(g *Graph, name string) *Node { weights[name] = true; return VariableF32(m.Store, g, name) },
		Linear: func(x *Node, module string, w, b *Node) *Node {
			modules[module] = true
			return MulScalar(Linear(x, module, w, b), 2) // visible change
		},
	}
	exec := model.MustNewExec(backend(t), m.Store, func(scope *model.Scope, tokens *Node) *Node {
		return Logits(scope, cfg, tokens, nil, hooks)
	})
	tok := tensors.FromFlatDataAndDimensions([]int32{1, 4, 9}, 1, 3)
	hooked := tensors.MustCopyFlatData[float32](exec.MustCall1(tok))
	specs, _ := ExpectedTensors(cfg)
	for _, s := range specs {
		if !weights[s.Name] {
			t.Errorf("Weight hook never asked for %s", s.Name)
		}
	}
	if want := 7*cfg.NumLayers() + 1; len(modules) != want || !modules["lm_head"] || !modules["model.layers.1.mlp.down_proj"] {
		t.Errorf("Linear hook saw %d modules %v, want %d", len(modules), modules, want)
	}
	plain, err := m.Logits([][]int{{1, 4, 9}})
	if err != nil {
		t.Fatal(err)
	}
	if hooked[0] == plain[0][0][0] {
		t.Error("the Linear hook did not change the output")
	}
}

// TestLoadedWeightsAreShared: with a backend that shares host memory, loading reads every tensor
// straight into a shared buffer, so running the model does not copy the weights again.
func TestLoadedWeightsAreShared(t *testing.T) {
	m := mustLoad(t, testdata.Path(t, "models/stories260K/stories260K.bin"), LoadOptions{})
	if !m.Backend.HasSharedBuffers() {
		t.Skipf("backend %s has no shared buffers", m.Backend.Name())
	}
	n := 0
	for v := range m.Store.IterVariables() {
		val, err := v.Value()
		if err != nil {
			t.Fatal(err)
		}
		if !val.IsShared() {
			t.Errorf("%s: loaded into a host-only tensor (copied on first use)", v.Path())
		}
		n++
	}
	if _, err := m.Loss([][]int{{1, 2, 3, 4}}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d tensors in shared buffers", n)
}

// TestReadConcurrently: every index is read once; the reported error is the lowest failing index's,
// and no read starts after a failure is seen.
func TestReadConcurrently(t *testing.T) {
	for _, workers := range []int{1, 3, 16} {
		var seen [100]atomic.Int32
		if err := readConcurrently(len(seen), workers, func(i int) error { seen[i].Add(1); return nil }); err != nil {
			t.Fatal(err)
		}
		for i := range seen {
			if n := seen[i].Load(); n != 1 {
				t.Fatalf("workers=%d: index %d read %d times", workers, i, n)
			}
		}
		var calls atomic.Int32
		err := readConcurrently(100, workers, func(i int) error {
			calls.Add(1)
			if i == 7 || i == 9 {
				return fmt.Errorf("bad %d", i)
			}
			return nil
		})
		if err == nil || err.Error() != "bad 7" {
			t.Errorf("workers=%d: err = %v, want bad 7", workers, err)
		}
		if c := calls.Load(); c > int32(10+workers) {
			t.Errorf("workers=%d: %d reads after a failure at index 7", workers, c)
		}
	}
}
