package eval

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/pkg/errors"
)

// pplByteTok is a test tokenizer: byte b → id b+3; BOS=1, EOS=2.
type pplByteTok struct{}

func (pplByteTok) Encode(text string) ([]int, error) {
	ids := make([]int, len(text))
	for i := 0; i < len(text); i++ {
		ids[i] = int(text[i]) + 3
	}
	return ids, nil
}
func (pplByteTok) Decode(ids []int) string { return "" }
func (pplByteTok) Piece(id int) string     { return "" }
func (pplByteTok) BOS() int                { return 1 }
func (pplByteTok) EOS() int                { return 2 }
func (pplByteTok) VocabSize() int          { return 259 }

// pplStubScorer gives log p(s[t] | s[<t]) = -0.1·(s[t]-99) and records the windows it saw.
type pplStubScorer struct {
	calls [][][]int
	err   error
	short bool // return one log-prob too few
}

func (s *pplStubScorer) TokenLogProbs(seqs [][]int) ([][]float64, [][]bool, error) {
	if s.err != nil {
		return nil, nil, s.err
	}
	s.calls = append(s.calls, slices.Clone(seqs))
	logp := make([][]float64, len(seqs))
	greedy := make([][]bool, len(seqs))
	for i, seq := range seqs {
		for _, tok := range seq[1:] {
			logp[i] = append(logp[i], -0.1*float64(tok-99))
			greedy[i] = append(greedy[i], false)
		}
		if s.short {
			logp[i] = logp[i][1:]
		}
	}
	return logp, greedy, nil
}

func TestPerplexityWindowing(t *testing.T) {
	// "abcdefghij" → [BOS, 100..109]: 11 tokens. Windows of 4: [1 100 101 102] [103 104 105 106],
	// the partial [107 108 109] is dropped. Predicted: 100 101 102 | 104 105 106 (BOS and 103
	// start windows) → NLL 0.1 0.2 0.3 0.5 0.6 0.7, mean 0.4.
	for _, batch := range []int{0, 1, 2, 5} {
		scorer := &pplStubScorer{}
		var progress [][2]int
		res, err := Perplexity(scorer, pplByteTok{}, "abcdefghij", PPLOptions{
			SeqLen: 4, Batch: batch,
			Progress: func(done, total int) { progress = append(progress, [2]int{done, total}) },
		})
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(res.NLL-0.4) > 1e-12 || math.Abs(res.PPL-math.Exp(0.4)) > 1e-12 || res.Tokens != 6 || res.Windows != 2 {
			t.Errorf("batch %d: %+v, want NLL 0.4, PPL %.6f, 6 tokens, 2 windows", batch, res, math.Exp(0.4))
		}
		var seen [][]int
		for _, c := range scorer.calls {
			seen = append(seen, c...)
		}
		if want := [][]int{{1, 100, 101, 102}, {103, 104, 105, 106}}; !slices.EqualFunc(seen, want, slices.Equal) {
			t.Errorf("batch %d: scored windows %v, want %v", batch, seen, want)
		}
		wantCalls := map[int]int{0: 1, 1: 2, 2: 1, 5: 1}[batch]
		if len(scorer.calls) != wantCalls || len(progress) != wantCalls || progress[len(progress)-1] != [2]int{2, 2} {
			t.Errorf("batch %d: %d calls, progress %v", batch, len(scorer.calls), progress)
		}
	}
}

func TestPerplexityDefaultWindow(t *testing.T) {
	// 300 bytes + BOS = 301 tokens: two windows of 128, 45 dropped; 254 predicted tokens.
	text := strings.Repeat("e", 300) // id 104 → NLL 0.5 everywhere
	scorer := &pplStubScorer{}
	res, err := Perplexity(scorer, pplByteTok{}, text, PPLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Windows != 2 || res.Tokens != 254 || math.Abs(res.NLL-0.5) > 1e-12 {
		t.Errorf("%+v", res)
	}
	if len(scorer.calls) != 1 || scorer.calls[0][0][0] != 1 || scorer.calls[0][1][0] != 104 || len(scorer.calls[0][1]) != 128 {
		t.Error("want one batch with BOS only at the start of the first window")
	}
}

func TestPerplexityErrors(t *testing.T) {
	for _, c := range []struct {
		text   string
		opts   PPLOptions
		scorer *pplStubScorer
		want   string
	}{
		{"", PPLOptions{}, &pplStubScorer{}, "the text is empty"},
		{"abc", PPLOptions{SeqLen: 8}, &pplStubScorer{}, "4 tokens long, shorter than one window (eval.PPLOptions.SeqLen 8)"},
		{"abcdefghij", PPLOptions{SeqLen: 1}, &pplStubScorer{}, "at least 2"},
		{"abcdefghij", PPLOptions{SeqLen: 4, Batch: -1}, &pplStubScorer{}, "batch size"},
		{"abcdefghij", PPLOptions{SeqLen: 4}, &pplStubScorer{err: errors.New("boom")}, "scoring windows 0..1: boom"},
		{"abcdefghij", PPLOptions{SeqLen: 4}, &pplStubScorer{short: true}, "returned 2 log-probs for a window of 4 tokens"},
	} {
		_, err := Perplexity(c.scorer, pplByteTok{}, c.text, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q %+v: error %v, want one containing %q", c.text, c.opts, err, c.want)
		}
	}
}

func TestPerplexityOfIDs(t *testing.T) {
	res, err := PerplexityOfIDs(&pplStubScorer{}, []int{1, 100, 101, 102, 103, 104, 105, 106, 107}, PPLOptions{SeqLen: 4})
	if err != nil || res.Windows != 2 || math.Abs(res.NLL-0.4) > 1e-12 {
		t.Errorf("%+v %v, want 2 windows, NLL 0.4", res, err)
	}
	if _, err := PerplexityOfIDs(&pplStubScorer{}, nil, PPLOptions{}); err == nil || !strings.Contains(err.Error(), "0 tokens long") {
		t.Errorf("no ids: %v", err)
	}
}
