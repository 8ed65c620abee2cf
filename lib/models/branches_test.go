package models

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/internal/testdata"
)

// branchReqs is a test batch of BranchLogProbs requests.
type branchReqs struct {
	prefixes [][]int
	conts    [][][]int
}

// randomBranches draws requests with prefixes and continuations of the given lengths.
func randomBranches(rng *rand.Rand, vocab int, prefixLens []int, contLens [][]int) branchReqs {
	var r branchReqs
	for i, n := range prefixLens {
		r.prefixes = append(r.prefixes, randomSeqs(rng, vocab, n)[0])
		r.conts = append(r.conts, randomSeqs(rng, vocab, contLens[i]...))
	}
	return r
}

// checkBranchesAgainst compares BranchLogProbs with want(prefix ++ continuation), the per-token
// NLLs of the plain sequence, on the continuation positions.
func checkBranchesAgainst(t *testing.T, m *Model, reqs branchReqs, tol float64, want func(seq []int) []float64) {
	t.Helper()
	logp, greedy, err := m.BranchLogProbs(reqs.prefixes, reqs.conts)
	if err != nil {
		t.Fatalf("BranchLogProbs: %+v", err)
	}
	var maxDiff float64
	for i, prefix := range reqs.prefixes {
		for j, c := range reqs.conts[i] {
			seq := append(append([]int{}, prefix...), c...)
			w := want(seq)
			if len(logp[i][j]) != len(c) || len(greedy[i][j]) != len(c) {
				t.Fatalf("request %d continuation %d: %d scores for %d tokens", i, j, len(logp[i][j]), len(c))
			}
			for k := range c {
				maxDiff = math.Max(maxDiff, math.Abs(logp[i][j][k]-w[len(prefix)-1+k]))
			}
		}
	}
	t.Logf("max |Δ log p| = %.2e", maxDiff)
	if maxDiff > tol {
		t.Errorf("continuation log-probs differ from the plain sequences' by %.2e (tolerance %.0e)", maxDiff, tol)
	}
}

// TestBranchLogProbsMatchesReference: random non-uniform models (GQA, biases, tied and untied), a
// batch of requests with 1–5 continuations of 1–6 tokens, one of them filling the context + 1,
// against the float64 reference run on each prefix ++ continuation.
func TestBranchLogProbsMatchesReference(t *testing.T) {
	tied := nonUniformConfig()
	tied.TieEmbed, tied.AttnBias, tied.MLPBias = true, false, false
	tied.Heads, tied.KVHeads = []int{2, 6}, []int{1, 3}
	for name, cfg := range map[string]*config.Config{"untied-biases": nonUniformConfig(), "tied-gqa": tied} {
		t.Run(name, func(t *testing.T) {
			r := randomWeights(cfg, 5)
			m := modelFromReader(t, cfg, r)
			ref := &refModel{cfg: cfg, w: r.vals}
			rng := rand.New(rand.NewPCG(1, 2))
			reqs := randomBranches(rng, cfg.Vocab, []int{7, 1, 12, cfg.MaxPositions - 2, 30, 2},
				[][]int{{1, 3, 2, 6}, {4}, {2, 2, 1, 5, 3}, {3, 1}, {1, 2, 1}, {30, 30}})
			packs := 0
			for i, p := range reqs.prefixes {
				if m.branchCost().pack(p, reqs.conts[i]) <= m.branchCost().split(p, reqs.conts[i]) {
					packs++
				}
			}
			if packs == 0 || packs == len(reqs.prefixes) {
				t.Fatalf("%d of %d requests packed: the test should cover both row layouts", packs, len(reqs.prefixes))
			}
			checkBranchesAgainst(t, m, reqs, 1e-4, func(seq []int) []float64 {
				lg := ref.logits(seq)
				out := make([]float64, len(seq)-1)
				for p := 1; p < len(seq); p++ {
					out[p-1] = -nll(lg[p-1], seq[p])
				}
				return out
			})
		})
	}
}

// TestBranchLogProbsStories260K: on the real stories260K (GQA 8/4), the packed scores equal
// TokenLogProbs of each plain sequence, greedy flags included.
func TestBranchLogProbsStories260K(t *testing.T) {
	m := mustLoad(t, testdata.Path(t, "models/stories260K/stories260K.bin"), LoadOptions{})
	rng := rand.New(rand.NewPCG(3, 3))
	reqs := randomBranches(rng, m.Config.Vocab, []int{60, 5, 200, 6, 300}, [][]int{{8, 9, 7, 10}, {1, 2}, {30, 2, 2}, {100, 90}, {2, 3, 2, 2}})
	// Both row layouts occur: context and continuations packed in one row, and one row per
	// continuation where the longer packed row would cost more attention than it saves.
	var packs, splits int
	for i, p := range reqs.prefixes {
		if m.branchCost().pack(p, reqs.conts[i]) <= m.branchCost().split(p, reqs.conts[i]) {
			packs++
		} else {
			splits++
		}
	}
	if packs == 0 || splits == 0 {
		t.Fatalf("%d packed and %d split requests: the test should cover both", packs, splits)
	}
	checkBranchesAgainst(t, m, reqs, 2e-5, func(seq []int) []float64 {
		lp, _, err := m.TokenLogProbs([][]int{seq})
		if err != nil {
			t.Fatal(err)
		}
		return lp[0]
	})
	logp, greedy, _ := m.BranchLogProbs(reqs.prefixes, reqs.conts)
	for i, prefix := range reqs.prefixes {
		for j, c := range reqs.conts[i] {
			_, g, _ := m.TokenLogProbs([][]int{append(append([]int{}, prefix...), c...)})
			for k := range c {
				if greedy[i][j][k] != g[0][len(prefix)-1+k] {
					t.Errorf("request %d continuation %d token %d: greedy %v, plain %v (log p %v)", i, j, k, greedy[i][j][k], g[0][len(prefix)-1+k], logp[i][j][k])
				}
			}
		}
	}
}

func TestBranchLogProbsErrors(t *testing.T) {
	m := mustLoad(t, testdata.GoldenPath(t, "tiny-llama-mha"), LoadOptions{})
	_, _, err := m.BranchLogProbs([][]int{nil}, [][][]int{{{1}}})
	wantError(t, err, "request 0: empty prefix")
	_, _, err = m.BranchLogProbs([][]int{{1}}, [][][]int{{{2}, {}}})
	wantError(t, err, "continuation 1 is empty")
	_, _, err = m.BranchLogProbs([][]int{make([]int, m.Config.MaxPositions)}, [][][]int{{{2, 3}}})
	wantError(t, err, "request 0", "+ 1 target token")
	_, _, err = m.BranchLogProbs([][]int{{1}}, [][][]int{{{32000}}})
	wantError(t, err, "outside the vocabulary")
	_, _, err = m.BranchLogProbs([][]int{{1}, {2}}, [][][]int{{{3}}})
	wantError(t, err, "2 prefixes but 1 continuation lists")
}

// TestCanScoreBranches: shared contexts are used where projections dominate (LLaMA-7B), not where
// attention does (stories260K, d 64), nor for ChatGLM.
func TestCanScoreBranches(t *testing.T) {
	llama7B := llama7BLayerConfig()
	llama7B.Heads, llama7B.KVHeads, llama7B.Inter = make([]int, 32), make([]int, 32), make([]int, 32)
	for l := range 32 {
		llama7B.Heads[l], llama7B.KVHeads[l], llama7B.Inter[l] = 32, 32, 11008
	}
	stories := mustLoad(t, testdata.Path(t, "models/stories260K/stories260K.bin"), LoadOptions{})
	glm := *llama7B
	glm.Arch = arch.ChatGLM
	for _, c := range []struct {
		name string
		cfg  *config.Config
		want bool
	}{{"LLaMA-7B", llama7B, true}, {"stories260K", stories.Config, false}, {"ChatGLM", &glm, false}} {
		if got := (&Model{Config: c.cfg}).CanScoreBranches(); got != c.want {
			t.Errorf("%s: CanScoreBranches = %v, want %v", c.name, got, c.want)
		}
	}
}
