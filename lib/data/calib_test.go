package data

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestSplitDocuments(t *testing.T) {
	got := SplitDocuments("\n\n a\nb \n\n\n  \t\nc\n \nd\n")
	want := []string{"a\nb", "c", "d"}
	if !slices.Equal(got, want) {
		t.Fatalf("SplitDocuments = %q, want %q", got, want)
	}
}

// calibText has documents "d0"… of known byte lengths; under byteTok a document of n bytes is
// n+1 tokens with BOS.
func calibText(lengths []int) (string, []string) {
	docs := make([]string, len(lengths))
	for i, n := range lengths {
		docs[i] = strings.Repeat(string(rune('a'+i)), n)
	}
	return strings.Join(docs, "\n\n"), docs
}

func TestCalibrationSamplesFollowProtocol(t *testing.T) {
	// seqLen 8: documents with ≥ 7 bytes qualify (BOS makes 8 tokens).
	lengths := []int{3, 7, 20, 6, 12, 30, 2, 9}
	text, docs := calibText(lengths)
	const seqLen = 8
	eligible := map[int]bool{}
	for i, n := range lengths {
		eligible[i] = n+1 >= seqLen
	}
	samples, err := CalibrationSamples(byteTok{}, text, 5, seqLen, 42)
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 5 {
		t.Fatalf("%d samples, want 5", len(samples))
	}
	used := map[int]bool{}
	for s, sample := range samples {
		if len(sample) != seqLen {
			t.Fatalf("sample %d has %d tokens", s, len(sample))
		}
		// Every sample is a window of one document's BOS+bytes; its letter names the document.
		letter := sample[len(sample)-1] - 3 - 'a'
		full := bytesWithBOS(docs[letter])
		found := false
		for start := 0; start+seqLen <= len(full); start++ {
			if slices.Equal(full[start:start+seqLen], sample) {
				found = true
			}
		}
		if !found || !eligible[letter] {
			t.Errorf("sample %d %v is not a window of an eligible document", s, sample)
		}
		if used[letter] {
			t.Errorf("document %d used twice", letter)
		}
		used[letter] = true
	}
	again, _ := CalibrationSamples(byteTok{}, text, 5, seqLen, 42)
	if !slices.EqualFunc(samples, again, slices.Equal) {
		t.Error("same seed gave different samples")
	}
	other, _ := CalibrationSamples(byteTok{}, text, 5, seqLen, 43)
	if slices.EqualFunc(samples, other, slices.Equal) {
		t.Error("seeds 42 and 43 gave the same samples")
	}
}

// With one sample per draw, documents are picked uniformly among the eligible ones and window
// starts uniformly in [0, len-seqLen] (so BOS is included exactly when the start is 0).
func TestCalibrationSamplesUniform(t *testing.T) {
	text, _ := calibText([]int{2, 9, 2, 9, 9, 1})
	const seqLen, draws = 8, 3000
	docCount := map[int]int{}
	atBOS := 0
	for seed := range int64(draws) {
		s, err := CalibrationSamples(byteTok{}, text, 1, seqLen, seed)
		if err != nil {
			t.Fatal(err)
		}
		docCount[s[0][seqLen-1]-3-'a']++
		if s[0][0] == 1 {
			atBOS++
		}
	}
	if len(docCount) != 3 || docCount[0]+docCount[2]+docCount[5] != 0 {
		t.Fatalf("documents drawn: %v, want only 1, 3, 4", docCount)
	}
	for _, d := range []int{1, 3, 4} {
		if f := float64(docCount[d]) / draws; f < 0.30 || f > 0.37 {
			t.Errorf("document %d drawn %.3f of the time, want ≈ 1/3", d, f)
		}
	}
	// 10 tokens, window 8: starts 0, 1, 2 equally likely → BOS in ≈ 1/3 of samples.
	if f := float64(atBOS) / draws; f < 0.30 || f > 0.37 {
		t.Errorf("window starts at BOS %.3f of the time, want ≈ 1/3", f)
	}
}

func TestCalibrationSamplesErrors(t *testing.T) {
	text, _ := calibText([]int{3, 10, 4})
	for _, c := range []struct {
		text      string
		n, seqLen int
		want      string
	}{
		{"", 1, 8, "calibration text shorter than one sample"},
		{" \n\n \n", 1, 8, "calibration text shorter than one sample"},
		{text, 1, 64, "calibration text shorter than one sample: none of its 3 documents"},
		{text, 2, 8, "only 1 of its 3 documents"},
		{text, 0, 8, "must be positive"},
		{text, 1, 1, "at least 2 tokens"},
	} {
		_, err := CalibrationSamples(byteTok{}, c.text, c.n, c.seqLen, 1)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("n=%d seqLen=%d: error %v, want one containing %q", c.n, c.seqLen, err, c.want)
		}
	}
}

func TestReadCalibIDs(t *testing.T) {
	got, err := ReadCalibIDs(writeTemp(t, "ids.json", "[[1, 2, 3],\n [0, 5, 31999]]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]int{{1, 2, 3}, {0, 5, 31999}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if err := CheckTokenIDs(got, 32000, "ids.json"); err != nil {
		t.Error(err)
	}
	if err := CheckTokenIDs(got, 512, "ids.json"); err == nil || !strings.Contains(err.Error(), "sample 1 position 2: token id 31999") {
		t.Errorf("CheckTokenIDs: %v", err)
	}
	for i, c := range []struct{ content, want string }{
		{"", "want a JSON array"},
		{"[]", "no samples"},
		{"[[]]", "sample 0 is empty"},
		{"[[1,2],[3]]", "sample 1 has 1 tokens but sample 0 has 2"},
		{"[[1,-2]]", "negative token id -2"},
		{"[[1,2.5]]", "want a JSON array"},
		{`{"ids": [1]}`, "want a JSON array"},
		{"[[1]] [[2]]", "unexpected data after"},
	} {
		_, err := ReadCalibIDs(writeTemp(t, fmt.Sprintf("bad%d.json", i), c.content))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one containing %q", c.content, err, c.want)
		}
	}
}

func TestReadCalibrationText(t *testing.T) {
	alpaca := writeTemp(t, "data.json", `[{"instruction": "i", "input": "", "output": "first\n\nsecond"}, {"instruction": "j", "output": "third"}]`)
	text, err := ReadCalibrationText(alpaca)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"first", "second", "third"}; !slices.Equal(SplitDocuments(text), want) {
		t.Errorf("documents %q, want %q", SplitDocuments(text), want)
	}
	plain := writeTemp(t, "stories.txt", "a\r\n\r\nb")
	if text, err := ReadCalibrationText(plain); err != nil || text != "a\n\nb" {
		t.Errorf("plain text: %q %v", text, err)
	}
	if _, err := ReadCalibrationText(writeTemp(t, "bad.json", `[{"output": "x"}]`)); err == nil ||
		!strings.Contains(err.Error(), `record 0: missing field "instruction"`) {
		t.Errorf("bad Alpaca: %v", err)
	}
}
