package eval

import (
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/llmpruner/llmpruner/lib/internal/testdata"
	"github.com/pkg/errors"
)

// zsByteTok is a test tokenizer: a dummy-prefix space, then byte b → id b+3; EOS = 2.
type zsByteTok struct{}

func (zsByteTok) Encode(text string) ([]int, error) {
	text = " " + text
	ids := make([]int, len(text))
	for i := 0; i < len(text); i++ {
		ids[i] = int(text[i]) + 3
	}
	return ids, nil
}
func (zsByteTok) EOS() int { return 2 }

// zsLogProb is a deterministic causal "model": log p(s[t] | s[<t]) depends on s[:t+1] only.
func zsLogProb(prefix []int) (float64, bool) {
	h := fnv.New64a()
	for _, id := range prefix {
		h.Write([]byte{byte(id), byte(id >> 8)})
	}
	v := h.Sum64()
	return -float64(v%5000) / 1000, v%7 == 0
}

// zsStubScorer implements Scorer with zsLogProb and records what it was asked.
type zsStubScorer struct {
	calls  int
	maxLen int // longest sequence seen
	seen   [][]int
	err    error
	short  bool
}

func (s *zsStubScorer) TokenLogProbs(seqs [][]int) ([][]float64, [][]bool, error) {
	if s.err != nil {
		return nil, nil, s.err
	}
	s.calls++
	lp := make([][]float64, len(seqs))
	gr := make([][]bool, len(seqs))
	for i, seq := range seqs {
		s.maxLen = max(s.maxLen, len(seq))
		s.seen = append(s.seen, slices.Clone(seq))
		for t := 1; t < len(seq); t++ {
			v, g := zsLogProb(seq[:t+1])
			lp[i] = append(lp[i], v)
			gr[i] = append(gr[i], g)
		}
		if s.short {
			lp[i] = lp[i][1:]
		}
	}
	return lp, gr, nil
}

// handLogLikelihood scores a request directly: encode both parts, concatenate, sum the stub's
// log-probs over the continuation positions.
func handLogLikelihood(req Request) float64 {
	ctx, _ := zsByteTok{}.Encode(req.Context)
	cont, _ := zsByteTok{}.Encode(req.Continuation)
	whole := append(slices.Clone(ctx), cont...)
	var ll float64
	for t := len(ctx); t < len(whole); t++ {
		v, _ := zsLogProb(whole[:t+1])
		ll += v
	}
	return ll
}

func firstMax(x []float64) int {
	best := 0
	for i := range x {
		if x[i] > x[best] {
			best = i
		}
	}
	return best
}

// acc and acc_norm of ZeroShot equal a direct count of documents whose argmax is the gold answer.
func TestZeroShotAccEqualsArgmaxCount(t *testing.T) {
	dir := testdata.Path(t, lmEvalDocsDir)
	const limit = 25
	scorer := &zsStubScorer{}
	var last Progress
	res, err := ZeroShot(scorer, zsByteTok{}, ZeroShotOptions{DataDir: dir, Limit: limit, BatchSize: 7, Progress: func(p Progress) { last = p }})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Order, PaperTasks) {
		t.Errorf("order %v", res.Order)
	}
	if last.Done != last.Total || last.Total != res.Sequences || last.DoneTokens != last.TotalTokens || last.ETA != 0 {
		t.Errorf("final progress %+v, %d sequences", last, res.Sequences)
	}
	var avg float64
	for _, task := range PaperTasks {
		docs, err := LoadDocs(dir, task, limit)
		if err != nil {
			t.Fatal(err)
		}
		var nAcc, nNorm int
		for _, d := range docs {
			ll := make([]float64, len(d.Requests))
			norm := make([]float64, len(d.Requests))
			for i, r := range d.Requests {
				ll[i] = handLogLikelihood(r)
				if d.Choices != nil {
					norm[i] = ll[i] / float64(utf8.RuneCountInString(strings.TrimPrefix(r.Continuation, " ")))
				}
			}
			if firstMax(ll) == d.Gold {
				nAcc++
			}
			if firstMax(norm) == d.Gold {
				nNorm++
			}
		}
		got := res.Tasks[task]
		p := float64(nAcc) / limit
		if got.N != limit || math.Abs(got.Acc-p) > 1e-12 || math.Abs(got.AccStderr-math.Sqrt(p*(1-p)/(limit-1))) > 1e-12 {
			t.Errorf("%s: got acc %.4f ± %.4f (n=%d), want %d/%d", task, got.Acc, got.AccStderr, got.N, nAcc, limit)
		}
		wantMetric := map[bool]Metric{true: MetricAccNorm, false: MetricAcc}[task != "boolq" && task != "winogrande"]
		if got.Metric != wantMetric || (got.AccNorm != nil) != (wantMetric == MetricAccNorm) {
			t.Fatalf("%s: metric %s, acc_norm set %v", task, got.Metric, got.AccNorm != nil)
		}
		score := p
		if got.AccNorm != nil {
			score = float64(nNorm) / limit
			if math.Abs(*got.AccNorm-score) > 1e-12 || math.Abs(*got.AccNormStderr-math.Sqrt(score*(1-score)/(limit-1))) > 1e-12 {
				t.Errorf("%s: acc_norm %.4f, want %d/%d", task, *got.AccNorm, nNorm, limit)
			}
		}
		if got.Score() != score {
			t.Errorf("%s: Score %v, want %v", task, got.Score(), score)
		}
		avg += score / float64(len(PaperTasks))
	}
	if math.Abs(res.Average-avg) > 1e-12 {
		t.Errorf("average %v, want %v", res.Average, avg)
	}
	// The batch size does not change anything.
	res1, err := ZeroShot(&zsStubScorer{}, zsByteTok{}, ZeroShotOptions{DataDir: dir, Limit: limit, BatchSize: 1, Tasks: []string{"hellaswag", "boolq"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range []string{"hellaswag", "boolq"} {
		for i, d := range res1.Tasks[task].Docs {
			if !slices.Equal(d.LogLikelihoods, res.Tasks[task].Docs[i].LogLikelihoods) {
				t.Fatalf("%s doc %d: batch 1 gives %v, batch 7 %v", task, i, d.LogLikelihoods, res.Tasks[task].Docs[i].LogLikelihoods)
			}
		}
	}
	if !slices.Equal(res1.Order, []string{"boolq", "hellaswag"}) {
		t.Errorf("order %v, want paper order", res1.Order)
	}
}

// Sequences are scored longest first, identical requests once, and is_greedy is the AND over the
// continuation tokens.
func TestZeroShotOrderDedupAndGreedy(t *testing.T) {
	dir := t.TempDir()
	line := `{"goal": "g", "sol1": "aa", "sol2": "bbbbbb", "label": 1}` + "\n"
	writeFile(t, filepath.Join(dir, "piqa.jsonl"), line+line+line)
	scorer := &zsStubScorer{}
	res, err := ZeroShot(scorer, zsByteTok{}, ZeroShotOptions{DataDir: dir, Tasks: []string{"piqa"}, Limit: NoLimit})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 6 || res.Sequences != 2 || len(scorer.seen) != 2 {
		t.Fatalf("%d requests, %d sequences, scorer saw %d", res.Requests, res.Sequences, len(scorer.seen))
	}
	if len(scorer.seen[0]) < len(scorer.seen[1]) {
		t.Errorf("not longest first: %d then %d tokens", len(scorer.seen[0]), len(scorer.seen[1]))
	}
	req := Request{"Question: g\nAnswer:", " bbbbbb"}
	tz, _ := TokenizeRequest(zsByteTok{}, req, 2048)
	seq, contLen := tz.Tokens, tz.ContLen
	wantGreedy := true
	for t := len(seq) - contLen; t < len(seq); t++ {
		_, g := zsLogProb(seq[:t+1])
		wantGreedy = wantGreedy && g
	}
	d := res.Tasks["piqa"].Docs[2]
	if d.Greedy[1] != wantGreedy || d.LogLikelihoods[1] != handLogLikelihood(req) {
		t.Errorf("doc 2 choice 1: ll %v greedy %v, want %v %v", d.LogLikelihoods[1], d.Greedy[1], handLogLikelihood(req), wantGreedy)
	}
	if res.Tasks["piqa"].Acc != 1 && res.Tasks["piqa"].Acc != 0 {
		t.Errorf("identical documents must all agree, acc %v", res.Tasks["piqa"].Acc)
	}
}

// Left truncation to MaxLength+1 tokens, as lm-eval's (context_enc + continuation_enc)[-(max_length+1):].
func TestTokenizeRequestTruncation(t *testing.T) {
	req := Request{"abcdefghij", " xyz"}
	tz, err := TokenizeRequest(zsByteTok{}, req, 6)
	if err != nil {
		t.Fatal(err)
	}
	// context " abcdefghij", continuation "  xyz" (dummy prefix + delimiter): 11 + 5 tokens → last 7.
	want := []int{'i' + 3, 'j' + 3, ' ' + 3, ' ' + 3, 'x' + 3, 'y' + 3, 'z' + 3}
	if !slices.Equal(tz.Tokens, want) || tz.ContLen != 5 || !tz.ContextCut || tz.ContinuationCut {
		t.Errorf("got %+v, want %v (cont 5, context cut)", tz, want)
	}
	// A continuation longer than the context length (lm-eval asserts): its last 4 tokens are scored.
	tz, err = TokenizeRequest(zsByteTok{}, Request{"a", " too long"}, 4)
	if err != nil || tz.ContLen != 4 || !tz.ContinuationCut || !slices.Equal(tz.Tokens, []int{' ' + 3, 'l' + 3, 'o' + 3, 'n' + 3, 'g' + 3}) {
		t.Errorf("long continuation: %+v, %v", tz, err)
	}
	tz, err = TokenizeRequest(zsByteTok{}, Request{"", " a"}, 8)
	if err != nil || tz.Tokens[0] != 2 || tz.ContextCut {
		t.Errorf("empty context must become [EOS]: %+v %v", tz, err)
	}
	if _, err := TokenizeRequest(zsByteTok{}, Request{"a", " b"}, 0); err == nil {
		t.Error("context length 0 accepted")
	}
	// Through ZeroShot the scorer never sees more than MaxLength+1 tokens.
	scorer := &zsStubScorer{}
	dir := testdata.Path(t, lmEvalDocsDir)
	res, err := ZeroShot(scorer, zsByteTok{}, ZeroShotOptions{DataDir: dir, Tasks: []string{"boolq"}, Limit: 3, MaxLength: 40})
	if err != nil {
		t.Fatal(err)
	}
	if scorer.maxLen != 41 {
		t.Errorf("longest scored sequence %d tokens, want 41", scorer.maxLen)
	}
	if r := res.Tasks["boolq"]; r.ContextCut != 6 || r.ContinuationCut != 0 {
		t.Errorf("boolq: %d contexts cut, %d continuations cut; want 6, 0", r.ContextCut, r.ContinuationCut)
	}
}

func TestArgmaxNumpy(t *testing.T) {
	cases := []struct {
		x    []float64
		want int
	}{
		{[]float64{-1, -1}, 0},
		{[]float64{-3, -1, -1}, 1},
		{[]float64{-1, math.Inf(-1)}, 0},
		{[]float64{-1, math.NaN(), -0.5}, 1},
	}
	for _, c := range cases {
		if got := argmaxNumpy(c.x); got != c.want {
			t.Errorf("argmax(%v) = %d, want %d", c.x, got, c.want)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestZeroShotBadInput(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "boolq.jsonl"), `{"question": "q", "passage": "p", "label": 1}`+"\n"+`{"question": "q", "passage"`+"\n")
	writeFile(t, filepath.Join(dir, "piqa.jsonl"), "\n\n")
	writeFile(t, filepath.Join(dir, "arc_easy.jsonl"), `{"question": "q", "choices": {"text": ["a"], "label": ["A"]}, "answerKey": "F"}`)
	writeFile(t, filepath.Join(dir, "winogrande.jsonl"), `{"sentence": "no blank", "option1": "a", "option2": "b", "answer": "1"}`)
	writeFile(t, filepath.Join(dir, "openbookqa.jsonl"), `{"id": "1", "choices": {"text": ["a"]}, "answerKey": "A"}`)
	writeFile(t, filepath.Join(dir, "hellaswag.jsonl"), `{"activity_label": "a", "ctx_a": "b", "ctx_b": "", "endings": ["x", "y"], "label": "2"}`)
	cases := []struct {
		opts ZeroShotOptions
		want string
	}{
		{ZeroShotOptions{DataDir: dir, Tasks: []string{"lambada"}, Limit: NoLimit}, `unknown task "lambada"`},
		{ZeroShotOptions{DataDir: dir, Tasks: []string{"boolq"}, Limit: 0}, "limit must be a positive number"},
		{ZeroShotOptions{DataDir: dir, Tasks: []string{"boolq"}, Limit: -5}, "limit must be a positive number"},
		{ZeroShotOptions{DataDir: dir, Tasks: []string{"arc_challenge"}, Limit: NoLimit}, "arc_challenge.jsonl"},
		{ZeroShotOptions{DataDir: dir, Tasks: []string{"boolq"}, Limit: NoLimit}, "boolq.jsonl:2: not a JSON object"},
		{ZeroShotOptions{DataDir: dir, Tasks: []string{"piqa"}, Limit: NoLimit}, "holds no documents"},
		{ZeroShotOptions{DataDir: dir, Tasks: []string{"arc_easy"}, Limit: NoLimit}, `answerKey "F"`},
		{ZeroShotOptions{DataDir: dir, Tasks: []string{"winogrande"}, Limit: NoLimit}, `has no "_" blank`},
		{ZeroShotOptions{DataDir: dir, Tasks: []string{"openbookqa"}, Limit: NoLimit}, `field "question_stem" is missing`},
		{ZeroShotOptions{DataDir: dir, Tasks: []string{"hellaswag"}, Limit: NoLimit}, "gold answer index 2 is out of range for 2 choices"},
		{ZeroShotOptions{DataDir: dir, Tasks: []string{"boolq", "BoolQ"}, Limit: 1}, "listed twice"},
	}
	for _, c := range cases {
		_, err := ZeroShot(&zsStubScorer{}, zsByteTok{}, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want it to mention %q", c.opts.Tasks, err, c.want)
		}
	}
	// The first boolq line alone is fine.
	if _, err := ZeroShot(&zsStubScorer{}, zsByteTok{}, ZeroShotOptions{DataDir: dir, Tasks: []string{"boolq"}, Limit: 1}); err != nil {
		t.Errorf("limit 1 stops before the garbled line: %v", err)
	}
	// Scorer failures.
	_, err := ZeroShot(&zsStubScorer{err: errors.New("out of memory")}, zsByteTok{}, ZeroShotOptions{DataDir: dir, Tasks: []string{"boolq"}, Limit: 1})
	if err == nil || !strings.Contains(err.Error(), "out of memory") {
		t.Errorf("scorer error: %v", err)
	}
	_, err = ZeroShot(&zsStubScorer{short: true}, zsByteTok{}, ZeroShotOptions{DataDir: dir, Tasks: []string{"boolq"}, Limit: 1})
	if err == nil || !strings.Contains(err.Error(), "log-probs") {
		t.Errorf("short scorer rows: %v", err)
	}
	if _, err := ZeroShot(nil, zsByteTok{}, ZeroShotOptions{DataDir: dir}); err == nil {
		t.Error("nil scorer accepted")
	}
	if _, err := ParseTaskList("boolq,,piqa"); err == nil {
		t.Error("empty task name accepted")
	}
	if names, err := ParseTaskList(" ARC_Easy ,piqa"); err != nil || !slices.Equal(names, []string{"arc_easy", "piqa"}) {
		t.Errorf("ParseTaskList = %v, %v", names, err)
	}
}

// zsBranchScorer adds BranchLogProbs to the stub, scoring P ++ c with zsLogProb and counting the
// tokens a packed model would run (each prefix once).
type zsBranchScorer struct {
	zsStubScorer
	enabled   bool
	branchRun int64
}

func (s *zsBranchScorer) CanScoreBranches() bool { return s.enabled }

func (s *zsBranchScorer) BranchLogProbs(prefixes [][]int, conts [][][]int) ([][][]float64, [][][]bool, error) {
	lp := make([][][]float64, len(prefixes))
	gr := make([][][]bool, len(prefixes))
	for i, p := range prefixes {
		s.branchRun += int64(len(p))
		for _, c := range conts[i] {
			s.branchRun += int64(len(c) - 1)
			whole := append(slices.Clone(p), c...)
			var l []float64
			var g []bool
			for t := len(p); t < len(whole); t++ {
				v, gg := zsLogProb(whole[:t+1])
				l, g = append(l, v), append(g, gg)
			}
			lp[i], gr[i] = append(lp[i], l), append(gr[i], g)
		}
	}
	return lp, gr, nil
}

// A scorer that computes each shared context once gets exactly the per-choice log-likelihoods and
// greedy flags of plain scoring, with fewer model tokens; one that declines falls back.
func TestZeroShotBranchScoringEqualsPlain(t *testing.T) {
	dir := testdata.Path(t, lmEvalDocsDir)
	opts := ZeroShotOptions{DataDir: dir, Limit: 20, BatchSize: 9, MaxLength: 300}
	plain, err := ZeroShot(&zsStubScorer{}, zsByteTok{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	branch := &zsBranchScorer{enabled: true}
	var last Progress
	opts.Progress = func(p Progress) { last = p }
	got, err := ZeroShot(branch, zsByteTok{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if branch.calls != 0 {
		t.Errorf("TokenLogProbs called %d times although the scorer scores branches", branch.calls)
	}
	for _, task := range PaperTasks {
		a, b := plain.Tasks[task].Docs, got.Tasks[task].Docs
		for d := range a {
			if !slices.Equal(a[d].LogLikelihoods, b[d].LogLikelihoods) || !slices.Equal(a[d].Greedy, b[d].Greedy) {
				t.Errorf("%s doc %d: branch %v/%v, plain %v/%v", task, d, b[d].LogLikelihoods, b[d].Greedy, a[d].LogLikelihoods, a[d].Greedy)
			}
		}
	}
	if branch.branchRun >= got.Tokens {
		t.Errorf("shared contexts ran %d tokens, plain scoring %d", branch.branchRun, got.Tokens)
	}
	if last.Done != last.Total || last.Total != got.Sequences || last.DoneTokens != last.TotalTokens {
		t.Errorf("final progress %+v, %d sequences", last, got.Sequences)
	}
	t.Logf("%d requests, %d sequences: %d tokens plain, %d with shared contexts", got.Requests, got.Sequences, got.Tokens, branch.branchRun)

	declined := &zsBranchScorer{enabled: false}
	if _, err := ZeroShot(declined, zsByteTok{}, opts); err != nil || declined.calls == 0 || declined.branchRun != 0 {
		t.Errorf("declining scorer: err %v, %d plain calls, %d branch tokens", err, declined.calls, declined.branchRun)
	}
}
