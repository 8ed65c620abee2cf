package eval

import (
	"math"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/llmpruner/llmpruner/lib/internal/testdata"
)

// The harness on the real stories260K model, a few documents per task: every request's
// log-likelihood equals a direct TokenLogProbs call on the hand-concatenated ids (context and
// continuation encoded separately, no BOS), and the continuation ids carry the tokenizer's
// dummy-prefix space in front of the delimiter space.
func TestStories260KZeroShotMatchesDirectScoring(t *testing.T) {
	m := loadStories260K(t)
	dir := testdata.Path(t, lmEvalDocsDir)
	const limit = 2
	res, err := ZeroShot(m, m.Tokenizer, ZeroShotOptions{DataDir: dir, Limit: limit, MaxLength: m.Config.MaxPositions})
	if err != nil {
		t.Fatal(err)
	}
	space, err := m.Tokenizer.Encode(" ")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range PaperTasks {
		docs, err := LoadDocs(dir, task, limit)
		if err != nil {
			t.Fatal(err)
		}
		for di, d := range docs {
			for ci, r := range d.Requests {
				ctx, _ := m.Tokenizer.Encode(r.Context)
				cont, _ := m.Tokenizer.Encode(r.Continuation)
				if ctx[0] == m.Tokenizer.BOS() {
					t.Fatalf("context starts with BOS")
				}
				whole := append(slices.Clone(ctx), cont...)
				if window := m.Config.MaxPositions + 1; len(whole) > window { // lm-eval: [-(max_length+1):]
					whole = whole[len(whole)-window:]
				}
				lp, _, err := m.TokenLogProbs([][]int{whole})
				if err != nil {
					t.Fatal(err)
				}
				var want float64
				for _, v := range lp[0][len(lp[0])-len(cont):] {
					want += v
				}
				got := res.Tasks[task].Docs[di].LogLikelihoods[ci]
				if math.Abs(got-want) > 1e-4*max(1, math.Abs(want)) {
					t.Errorf("%s doc %d choice %d: ll %.5f, direct %.5f", task, di, ci, got, want)
				}
			}
		}
	}
	yes, _ := m.Tokenizer.Encode(" yes")
	bare, _ := m.Tokenizer.Encode("yes")
	t.Logf("tok512: Encode(\" \") = %v, Encode(\" yes\") = %v, Encode(\"yes\") = %v", space, yes, bare)
	if slices.Equal(yes, bare) {
		t.Errorf("the continuation's leading space was lost: Encode(\" yes\") = Encode(\"yes\") = %v", yes)
	}
}

// TestStories260KZeroShotFull runs the seven paper tasks in full on stories260K (about 20k
// documents; minutes on CPU) and logs the paper-style table and the throughput. It runs only with
// LLMPRUNER_ZEROSHOT_FULL=1; LLMPRUNER_ZEROSHOT_LIMIT=N limits the documents per task.
func TestStories260KZeroShotFull(t *testing.T) {
	if os.Getenv("LLMPRUNER_ZEROSHOT_FULL") != "1" {
		t.Skip("set LLMPRUNER_ZEROSHOT_FULL=1 to run the full zero-shot evaluation on stories260K")
	}
	limit := NoLimit
	if s := os.Getenv("LLMPRUNER_ZEROSHOT_LIMIT"); s != "" {
		var err error
		if limit, err = strconv.Atoi(s); err != nil {
			t.Fatal(err)
		}
	}
	batch := DefaultBatchSize
	if s := os.Getenv("LLMPRUNER_ZEROSHOT_BATCH"); s != "" {
		batch, _ = strconv.Atoi(s)
	}
	m := loadStories260K(t)
	lastLog := time.Now()
	res, err := ZeroShot(m, m.Tokenizer, ZeroShotOptions{
		DataDir: testdata.Path(t, lmEvalDocsDir), Limit: limit, BatchSize: batch,
		MaxLength: m.Config.MaxPositions, // lm-eval's max_length: windows of up to 513 tokens
		Progress: func(p Progress) {
			if time.Since(lastLog) > 30*time.Second || p.Done == p.Total {
				lastLog = time.Now()
				t.Logf("%d/%d sequences, %d/%d tokens, elapsed %v, ETA %v", p.Done, p.Total, p.DoneTokens, p.TotalTokens,
					p.Elapsed.Round(time.Second), p.ETA.Round(time.Second))
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	table, err := MarkdownTable([]ModelResult{{"stories260K", res}}, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s%s\n%d requests (%d distinct sequences, %d tokens) in %v: %.1f requests/s",
		table, MetricNote(res), res.Requests, res.Sequences, res.Tokens, res.Elapsed.Round(time.Second), res.RequestsPerSecond())
	js, _ := res.JSON()
	t.Logf("%s", js)
	for name, r := range res.Tasks {
		if r.Score() < 0.1 || r.Score() > 0.9 {
			t.Errorf("%s: %.4f is implausible for a 260K-parameter model", name, r.Score())
		}
	}
}

// BenchmarkStories260KZeroShot scores the first 10 documents of every task on stories260K and
// reports lm-eval requests per second.
func BenchmarkStories260KZeroShot(b *testing.B) {
	m := loadStories260K(b)
	dir := testdata.Path(b, lmEvalDocsDir)
	var requests int
	var elapsed time.Duration
	for b.Loop() {
		res, err := ZeroShot(m, m.Tokenizer, ZeroShotOptions{DataDir: dir, Limit: 10, MaxLength: m.Config.MaxPositions})
		if err != nil {
			b.Fatal(err)
		}
		requests += res.Requests
		elapsed += res.Elapsed
	}
	b.ReportMetric(PerSecond(requests, elapsed), "requests/s")
}

// Stats of the real stories260K agree with the loaded store, and a forward pass is timed.
func TestStories260KStatsAndLatency(t *testing.T) {
	m := loadStories260K(t)
	s, err := Stats(m.Config, 64, 1)
	if err != nil {
		t.Fatal(err)
	}
	if int(s.Params) != m.Store.NumParameters() {
		t.Errorf("Stats counts %d parameters, the loaded store holds %d", s.Params, m.Store.NumParameters())
	}
	seq := make([]int, 64)
	for i := range seq {
		seq[i] = 1 // all-ones input, as test_speedup.py
	}
	lat, err := MeasureLatency(func() error {
		_, _, err := m.TokenLogProbs([][]int{seq})
		return err
	}, 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stories260K: %s params, %s MACs at (1, 64); forward+scoring latency %v (%.0f tokens/s)",
		FormatParams(s.Params), FormatMACs(s.MACs), lat, PerSecond(64, lat.Median))
}
