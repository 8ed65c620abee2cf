package eval

import (
	"testing"

	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/internal/testdata"
	"github.com/llmpruner/llmpruner/lib/tokenizer"
)

// plainScorer hides a model's BranchLogProbs: every request is scored as its own sequence.
type plainScorer struct{ Scorer }

// BenchmarkZeroShotStories260K compares zero-shot scoring of the seven paper tasks (the first 40
// documents of each) on stories260K as plain sequences (TokenLogProbs: every choice repeats its
// context) and through the model as a Scorer. stories260K's cost is attention (d 64), where shared
// contexts measured slower, so CanScoreBranches is false and both run plain: the difference is
// the first run's graph compilation. Metric: requests/s; both give the same average (checked).
func BenchmarkZeroShotStories260K(b *testing.B) {
	m := loadStories260K(b)
	benchZeroShot(b, m, m.Tokenizer, m.Config.MaxPositions, 40)
}

// BenchmarkZeroShotLlamaShaped is the same comparison on a random-weight model whose cost, like
// LLaMA-7B's, is in its projections (hidden 1024, 16 heads, MLP 2752, 2 layers, LLaMA-2's 32000-
// token vocabulary and tokenizer, context 2048), 10 documents per task: here the model scores each
// document's context once for its choices (BranchLogProbs) where that is cheaper.
func BenchmarkZeroShotLlamaShaped(b *testing.B) {
	cfg := groupstest.Config(b, map[string]any{"hidden_size": 1024, "intermediate_size": 2752, "num_hidden_layers": 2,
		"num_attention_heads": 16, "vocab_size": 32000, "max_position_embeddings": 2048})
	m := groupstest.RandomModel(b, cfg, 1, 0.02)
	tok, _, err := tokenizer.Load(testdata.Path(b, "tokenizers/llama2/tokenizer.model"))
	if err != nil {
		b.Fatal(err)
	}
	benchZeroShot(b, m, tok, cfg.MaxPositions, 10)
}

func benchZeroShot(b *testing.B, m Scorer, tok Encoder, maxLength, limit int) {
	opts := ZeroShotOptions{DataDir: testdata.Path(b, lmEvalDocsDir), Limit: limit, MaxLength: maxLength}
	avg := map[string]float64{}
	for _, c := range []struct {
		name   string
		scorer Scorer
	}{{"plain", plainScorer{m}}, {"shared", m}} {
		b.Run(c.name, func(b *testing.B) {
			var res *ZeroShotResult
			for range b.N {
				var err error
				if res, err = ZeroShot(c.scorer, tok, opts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(res.Requests)*float64(b.N)/b.Elapsed().Seconds(), "requests/s")
			avg[c.name] = res.Average
			if p, ok := avg["plain"]; ok && c.name == "shared" && abs(p-res.Average) > 1e-12 {
				b.Errorf("shared-context average %.6f differs from plain %.6f", res.Average, p)
			}
		})
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
