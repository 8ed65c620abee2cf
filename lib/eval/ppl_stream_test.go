package eval

import (
	"math"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/data"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/internal/testdata"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/llmpruner/llmpruner/lib/tokenizer"
)

// openStreamed opens the checkpoint at path without its weights, as a streamed scorer.
func openStreamed(t *testing.T, path string) *models.Streamed {
	t.Helper()
	m, r, err := models.OpenStreamed(pplTestBackend(t), path, models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	s, err := models.NewStreamed(m, r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Finalize)
	return s
}

// checkStreamedPPL compares the perplexity of the streamed model (layer by layer, several chunk
// sizes — windows per sweep — and graph batch sizes) with the loaded model's: ≤ 1e-5 relative, equal token counts.
func checkStreamedPPL(t *testing.T, loaded *models.Model, s *models.Streamed, ids []int, seqLen int) {
	t.Helper()
	want, err := PerplexityOfIDs(loaded, ids, PPLOptions{SeqLen: seqLen})
	if err != nil {
		t.Fatal(err)
	}
	for i, chunk := range []int{1, 3, 64} {
		s.Batch = []int{0, 2, 5}[i] // sequences per graph batch
		s.SweepTokens = []int64{0, 100, 1}[i]
		got, err := PerplexityOfIDs(s, ids, PPLOptions{SeqLen: seqLen, Batch: chunk})
		if err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		rel := math.Abs(got.PPL-want.PPL) / want.PPL
		if rel > 1e-5 || got.Tokens != want.Tokens || got.Windows != want.Windows {
			t.Errorf("chunk %d: streamed PPL %.8g (%d tokens, %d windows), loaded %.8g (%d tokens, %d windows): relative difference %.3g",
				chunk, got.PPL, got.Tokens, got.Windows, want.PPL, want.Tokens, want.Windows, rel)
		}
		t.Logf("chunk %d: PPL %.8g streamed, %.8g loaded (relative difference %.2g)", chunk, got.PPL, want.PPL, rel)
	}
}

// TestStreamedPerplexityStories260K: eval ppl of the real stories260K checkpoint (llama2.c .bin,
// GQA, tied embeddings) streamed layer by layer equals the loaded model's on TinyStories text.
func TestStreamedPerplexityStories260K(t *testing.T) {
	loaded := loadStories260K(t)
	defer loaded.Store.Finalize()
	text, err := data.ReadText(testdata.Path(t, tinyStoriesPath))
	if err != nil {
		t.Fatal(err)
	}
	if len(text) > 20000 {
		text = text[:20000]
	}
	s := openStreamed(t, testdata.Path(t, stories260KPath))
	ids, err := tokenizer.ModelInputs(s.Model.Tokenizer, text)
	if err != nil {
		t.Fatal(err)
	}
	checkStreamedPPL(t, loaded, s, ids, 128)
}

// TestStreamedPerplexityRandom: the same on random LLaMAs with GQA and layers of different sizes,
// float32 and bf16 checkpoints, untied and tied embeddings with attention biases, with the
// projections under --matmul-dtype bf16, and Mistral with a sliding window shorter than the windows.
func TestStreamedPerplexityRandom(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fields map[string]any
		dtype  string
	}{
		{"untied-f32", nil, "f32"},
		{"tied-bias-f32", map[string]any{"tie_word_embeddings": true, "attention_bias": true}, "f32"},
		{"untied-bf16", nil, "bf16"},
		{"mistral-sliding-window", map[string]any{"model_type": "mistral", "sliding_window": 5}, "f32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := groupstest.Tiny4(t, tc.fields)
			dir := t.TempDir()
			if err := groupstest.RandomModel(t, cfg, 4, 0.5).Save(dir, tc.dtype); err != nil {
				t.Fatal(err)
			}
			loaded, err := models.Load(pplTestBackend(t), dir, models.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer loaded.Store.Finalize()
			ids := groupstest.Tokens(1, 20*24+7, cfg.Vocab, 9)[0]
			s := openStreamed(t, dir)
			checkStreamedPPL(t, loaded, s, ids, 24)
			if tc.dtype == "bf16" {
				loaded.Hooks = &models.Hooks{MatMulDType: dtypes.BFloat16}
				loaded.ResetExecs()
				s.Model.Hooks = &models.Hooks{MatMulDType: dtypes.BFloat16}
				s.Finalize()
				checkStreamedPPL(t, loaded, s, ids, 24)
			}
		})
	}
}

// TestStreamedTokenLogProbsVariableLengths: the streamed scorer's per-token log-probabilities and
// greedy flags of sequences of different lengths (padded batches, as zero-shot scores them; up to
// the context plus one target token) equal the loaded model's: ≤ 1e-5 relative per token.
func TestStreamedTokenLogProbsVariableLengths(t *testing.T) {
	fields := map[string]any{"hidden_size": 16, "intermediate_size": 12, "num_hidden_layers": 3,
		"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 4, "vocab_size": 40,
		"max_position_embeddings": 40, config.KeyHeadsPerLayer: []int{4, 2, 4},
		config.KeyKVHeadsPerLayer: []int{2, 1, 4}, config.KeyInterPerLayer: []int{12, 8, 10}}
	cfg := groupstest.Config(t, fields)
	dir := t.TempDir()
	if err := groupstest.RandomModel(t, cfg, 5, 0.5).Save(dir, "bf16"); err != nil {
		t.Fatal(err)
	}
	loaded, err := models.Load(pplTestBackend(t), dir, models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer loaded.Store.Finalize()
	var seqs [][]int
	for i, n := range []int{2, 41, 7, 17, 33, 5, 16, 29, 3, 40, 12} {
		seqs = append(seqs, groupstest.Tokens(1, n, cfg.Vocab, uint64(i))[0])
	}
	want, wantGreedy, err := loaded.TokenLogProbs(seqs)
	if err != nil {
		t.Fatal(err)
	}
	s := openStreamed(t, dir)
	s.Batch, s.SweepTokens = 3, 100
	got, gotGreedy, err := s.TokenLogProbs(seqs)
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for i := range seqs {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("sequence %d: %d scores streamed, %d loaded", i, len(got[i]), len(want[i]))
		}
		for j := range want[i] {
			worst = math.Max(worst, math.Abs(got[i][j]-want[i][j])/math.Abs(want[i][j]))
			if gotGreedy[i][j] != wantGreedy[i][j] {
				t.Errorf("sequence %d, token %d: greedy %v streamed, %v loaded", i, j, gotGreedy[i][j], wantGreedy[i][j])
			}
		}
	}
	if worst > 1e-5 {
		t.Errorf("max relative difference of the log-probabilities streamed vs loaded %.3g", worst)
	}
	t.Logf("max relative difference %.2g", worst)
	if _, _, err := s.TokenLogProbs([][]int{make([]int, 42)}); err == nil {
		t.Error("a sequence longer than the context + 1 was accepted")
	}
}
