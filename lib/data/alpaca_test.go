package data

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/lib/internal/testdata"
)

func TestReadAlpacaReal(t *testing.T) {
	recs, err := ReadAlpaca(testdata.Path(t, "text/alpaca/alpaca_cleaned_first5000.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5000 {
		t.Fatalf("%d records, want 5000", len(recs))
	}
	if recs[0].Instruction != "Give three tips for staying healthy." || recs[0].Input != "" ||
		!strings.HasPrefix(recs[0].Output, "1. Eat a balanced and nutritious diet:") {
		t.Errorf("record 0 = %+v", recs[0])
	}
	withInput := 0
	for _, r := range recs {
		if r.Input != "" {
			withInput++
		}
	}
	if withInput != 1990 {
		t.Errorf("%d records with input, want 1990", withInput)
	}
}

func TestReadAlpacaMalformed(t *testing.T) {
	good := `{"instruction": "a", "input": "", "output": "b"}`
	for i, c := range []struct{ content, want string }{
		{`[]`, "no records"},
		{`{"instruction": "a"}`, "want a JSON array"},
		{`[` + good + `, 3]`, "record 1: not a JSON object"},
		{`[` + good + `, {"instruction": 3, "output": "x"}]`, `record 1: field "instruction" must be a string`},
		{`[` + good + `,` + good + `, {"instruction": "x"}]`, `record 2: missing field "output"`},
		{`[{"instruction": " ", "output": "x"}]`, `record 0: field "instruction" is empty`},
		{`[{"instruction": "i", "input": ["x"], "output": "x"}]`, `record 0: field "input" must be a string`},
		{`[` + good, "want a JSON array"},
	} {
		_, err := ReadAlpaca(writeTemp(t, fmt.Sprintf("a%d.json", i), c.content))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.content, err, c.want)
		}
	}
	// "input" may be absent or null; extra fields are ignored.
	recs, err := ReadAlpaca(writeTemp(t, "ok.json", `[{"instruction": "i", "output": "o", "id": 7}, {"instruction": "j", "input": null, "output": "p"}]`))
	if err != nil || len(recs) != 2 || recs[0] != (AlpacaRecord{"i", "", "o"}) || recs[1].Input != "" {
		t.Errorf("got %+v, %v", recs, err)
	}
}

// The expected strings are Alpaca-LoRA's template (tloen/alpaca-lora templates/alpaca.json, the
// same text as LLM-Pruner's LLMPruner/utils/prompter.py), written out by hand.
func TestAlpacaPrompt(t *testing.T) {
	withInput := AlpacaRecord{Instruction: "Add the numbers.", Input: "2 and 3", Output: "5"}
	want := "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\nAdd the numbers.\n\n### Input:\n2 and 3\n\n### Response:\n"
	if got := AlpacaPrompt(withInput, false); got != want {
		t.Errorf("prompt with input:\n%q\nwant\n%q", got, want)
	}
	if got := AlpacaPrompt(withInput, true); got != want+"5" {
		t.Errorf("full prompt with input: %q", got)
	}
	noInput := AlpacaRecord{Instruction: "Say {hi}.", Output: "hi"}
	want = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nSay {hi}.\n\n### Response:\n"
	if got := AlpacaPrompt(noInput, false); got != want {
		t.Errorf("prompt without input:\n%q\nwant\n%q", got, want)
	}
	if got := AlpacaPrompt(noInput, true); got != want+"hi" {
		t.Errorf("full prompt without input: %q", got)
	}
}

func TestTokenizeAlpaca(t *testing.T) {
	rec := AlpacaRecord{Instruction: "Say hi.", Output: "hi there"}
	user := bytesWithBOS(AlpacaPrompt(rec, false))
	full := bytesWithBOS(AlpacaPrompt(rec, true)) // user + 8 response bytes
	masked := func(ids []int, n int) []int {
		l := slices.Clone(ids)
		for i := range n {
			l[i] = IgnoreLabel
		}
		return l
	}
	t.Run("fits: EOS appended, prompt masked", func(t *testing.T) {
		ids, labels, err := TokenizeAlpaca(byteTok{}, rec, 256, false)
		if err != nil {
			t.Fatal(err)
		}
		wantIDs := append(slices.Clone(full), 2)
		if !slices.Equal(ids, wantIDs) || !slices.Equal(labels, masked(wantIDs, len(user))) {
			t.Errorf("ids %v\nlabels %v", ids, labels)
		}
	})
	t.Run("exactly full: no room for EOS", func(t *testing.T) {
		ids, labels, err := TokenizeAlpaca(byteTok{}, rec, len(full), false)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids, full) || !slices.Equal(labels, masked(full, len(user))) {
			t.Errorf("ids %v\nlabels %v", ids, labels)
		}
	})
	t.Run("one below full+EOS: EOS appended", func(t *testing.T) {
		ids, _, _ := TokenizeAlpaca(byteTok{}, rec, len(full)+1, false)
		if len(ids) != len(full)+1 || ids[len(ids)-1] != 2 {
			t.Errorf("ids %v", ids)
		}
	})
	t.Run("truncated response", func(t *testing.T) {
		cutoff := len(user) + 3
		ids, labels, err := TokenizeAlpaca(byteTok{}, rec, cutoff, false)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids, full[:cutoff]) || !slices.Equal(labels, masked(full[:cutoff], len(user))) {
			t.Errorf("ids %v\nlabels %v", ids, labels)
		}
	})
	t.Run("train on inputs", func(t *testing.T) {
		ids, labels, err := TokenizeAlpaca(byteTok{}, rec, 256, true)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids, labels) || len(ids) != len(full)+1 {
			t.Errorf("ids %v\nlabels %v", ids, labels)
		}
		// The prompt may exceed the cutoff when inputs are trained on.
		if _, _, err := TokenizeAlpaca(byteTok{}, rec, 10, true); err != nil {
			t.Error(err)
		}
	})
	t.Run("prompt longer than cutoff", func(t *testing.T) {
		for _, cutoff := range []int{10, len(user)} {
			_, _, err := TokenizeAlpaca(byteTok{}, rec, cutoff, false)
			if !errors.Is(err, ErrPromptTooLong) || !strings.Contains(err.Error(), string(OptCutoff)+" "+strconv.Itoa(cutoff)) {
				t.Errorf("cutoff %d: error %v, want ErrPromptTooLong", cutoff, err)
			}
		}
		if _, _, err := TokenizeAlpaca(byteTok{}, rec, len(user)+1, false); err != nil {
			t.Errorf("one response token fits: %v", err)
		}
	})
	if _, _, err := TokenizeAlpaca(byteTok{}, rec, 1, false); err == nil {
		t.Error("cutoff 1: want an error")
	}
}

func TestTrainValSplit(t *testing.T) {
	train, val, err := TrainValSplit(100, 20, 42)
	if err != nil {
		t.Fatal(err)
	}
	if len(train) != 80 || len(val) != 20 {
		t.Fatalf("sizes %d/%d", len(train), len(val))
	}
	all := slices.Sorted(slices.Values(append(slices.Clone(train), val...)))
	for i, v := range all {
		if v != i {
			t.Fatalf("train ∪ val is not a partition of 0..99: %v", all)
		}
	}
	if slices.IsSorted(val) && slices.IsSorted(train) {
		t.Error("split is not shuffled")
	}
	train2, val2, _ := TrainValSplit(100, 20, 42)
	_, val3, _ := TrainValSplit(100, 20, 7)
	if !slices.Equal(train, train2) || !slices.Equal(val, val2) || slices.Equal(val, val3) {
		t.Error("split not determined by the seed")
	}
	if tr, v, err := TrainValSplit(5, 0, 1); err != nil || len(tr) != 5 || len(v) != 0 {
		t.Errorf("valSize 0: %v %v %v", tr, v, err)
	}
	for _, c := range [][2]int{{0, 0}, {5, 5}, {5, -1}} {
		if _, _, err := TrainValSplit(c[0], c[1], 1); err == nil {
			t.Errorf("TrainValSplit(%d, %d): want an error", c[0], c[1])
		}
	}
}

func TestTextWindows(t *testing.T) {
	w, err := TextWindows(byteTok{}, "abcdefghij", 4) // BOS + 10 = 11 tokens → 2 windows, 3 dropped
	if err != nil {
		t.Fatal(err)
	}
	want := [][]int{{1, 100, 101, 102}, {103, 104, 105, 106}}
	if !slices.EqualFunc(w, want, slices.Equal) {
		t.Errorf("windows %v, want %v", w, want)
	}
	for _, c := range []struct {
		text   string
		cutoff int
		want   string
	}{
		{"", 4, "empty"},
		{"ab", 4, "3 tokens long, shorter than one window of 4"},
		{"abc", 1, "at least 2"},
	} {
		if _, err := TextWindows(byteTok{}, c.text, c.cutoff); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("TextWindows(%q, %d): %v, want %q", c.text, c.cutoff, err, c.want)
		}
	}
}
