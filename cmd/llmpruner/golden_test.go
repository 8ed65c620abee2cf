package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// storiesGolden is ../shared/golden/stories260K_greedy.json: llama2.c's run.c greedy ids and the
// model author's published text.
type storiesGolden struct {
	IDs           []int  `json:"greedy_ids_after_bos_64"`
	PublishedText string `json:"published_greedy_text"`
}

func readStoriesGolden(t *testing.T) storiesGolden {
	t.Helper()
	raw, err := os.ReadFile(goldenPath(t, "stories260K_greedy.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g storiesGolden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.IDs) != 64 {
		t.Fatalf("golden has %d ids, want 64", len(g.IDs))
	}
	return g
}

// TestGenerateGreedyMatchesLlama2C: `generate --json` at temperature 0 from BOS reproduces the
// ids of llama2.c's reference C implementation, and its text is a prefix of the published story.
func TestGenerateGreedyMatchesLlama2C(t *testing.T) {
	model := stories260K(t)
	g := readStoriesGolden(t)
	res := mustSucceed(t, "generate", "--model", model, "--max-new-tokens", "64", "--temperature", "0", "--json")
	var out map[string]json.RawMessage
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, res.stdout)
	}
	if len(out) != 2 || out["ids"] == nil || out["text"] == nil {
		t.Fatalf("want exactly {\"ids\":[...],\"text\":\"...\"}, got %s", res.stdout)
	}
	var ids []int
	var text string
	_ = json.Unmarshal(out["ids"], &ids)
	_ = json.Unmarshal(out["text"], &text)
	if !slices.Equal(ids, g.IDs) {
		t.Errorf("greedy ids differ from llama2.c:\n got %v\nwant %v", ids, g.IDs)
	}
	if !strings.HasPrefix(g.PublishedText, text) || len(text) < 150 {
		t.Errorf("decoded text is not a prefix of the published story:\n%q", text)
	}
}

// TestGenerateFromIDsAndPrompt: --ids continues exactly the given ids (no BOS added); --prompt
// adds BOS. Both give the golden continuation after the golden prefix.
func TestGenerateFromIDsAndPrompt(t *testing.T) {
	model := stories260K(t)
	g := readStoriesGolden(t)
	prefix := append([]int{1}, g.IDs[:10]...)
	strs := make([]string, len(prefix))
	for i, id := range prefix {
		strs[i] = strconv.Itoa(id)
	}
	res := mustSucceed(t, "generate", "--model", model, "--ids", strings.Join(strs, ","), "--max-new-tokens", "20", "--json")
	var out generateOutput
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out.IDs, g.IDs[10:30]) {
		t.Errorf("--ids continuation:\n got %v\nwant %v", out.IDs, g.IDs[10:30])
	}
	res = mustSucceed(t, "generate", "--model", model, "--prompt", "Once upon a time, there was a little girl named Lily.", "--max-new-tokens", "10", "--json")
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out.IDs, g.IDs[15:25]) {
		t.Errorf("--prompt continuation:\n got %v\nwant %v", out.IDs, g.IDs[15:25])
	}
}

// TestTokenizeMatchesGolden: the llama2.c tokenizer encodes the story's first sentence to the
// first 15 greedy ids (the sentence the model itself generated), with and without a model.
func TestTokenizeMatchesGolden(t *testing.T) {
	model := stories260K(t)
	tok := dataPath(t, "models/stories260K/tok512.bin")
	g := readStoriesGolden(t)
	const text = "Once upon a time, there was a little girl named Lily."
	for _, args := range [][]string{
		{"tokenize", "--tokenizer", tok, "--text", text, "--no-bos", "--json"},
		{"tokenize", "--model", model, "--text", text, "--no-bos", "--json"},
	} {
		res := mustSucceed(t, args...)
		var out tokenizeOutput
		if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(out.IDs, g.IDs[:15]) {
			t.Errorf("%v:\n got %v\nwant %v", args[1:3], out.IDs, g.IDs[:15])
		}
		if len(out.Pieces) != 15 || out.Pieces[0] != " Once" {
			t.Errorf("pieces %q", out.Pieces)
		}
	}
	// With BOS (the default) the same ids follow BOS = 1.
	res := mustSucceed(t, "tokenize", "--tokenizer", tok, "--text", text, "--json")
	var out tokenizeOutput
	_ = json.Unmarshal([]byte(res.stdout), &out)
	if !slices.Equal(out.IDs, append([]int{1}, g.IDs[:15]...)) {
		t.Errorf("with BOS: %v", out.IDs)
	}
}

// TestGenerateTinyRandomLlamaMatchesCandle: the third-party HF checkpoint tiny-random-llama
// continues the prompt ids [1,2,3] greedily with the ids its README records (candle's output).
func TestGenerateTinyRandomLlamaMatchesCandle(t *testing.T) {
	dir := dataPath(t, "models/tiny-random-llama")
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`generated token ids: \[(.*)\]`).FindSubmatch(readme)
	if line == nil {
		t.Fatal("README.md has no \"generated token ids\" line")
	}
	var want []int
	for _, m := range regexp.MustCompile(`TokenId\((\d+)\)`).FindAllSubmatch(line[1], -1) {
		id, _ := strconv.Atoi(string(m[1]))
		want = append(want, id)
	}
	res := mustSucceed(t, "generate", "--model", dir, "--ids", "1,2,3", "--max-new-tokens", strconv.Itoa(len(want)), "--json")
	var out generateOutput
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if len(want) != 8 || !slices.Equal(out.IDs, want) {
		t.Errorf("greedy ids from [1,2,3]:\n got %v\nwant %v", out.IDs, want)
	}
}

// TestGenerateTextModeContinuesPrompt: in text mode the prompt is printed and continued with the
// right spacing, reproducing the published story.
func TestGenerateTextModeContinuesPrompt(t *testing.T) {
	model := stories260K(t)
	g := readStoriesGolden(t)
	const prompt = "Once upon a time, there was a little girl"
	res := mustSucceed(t, "generate", "--model", model, "--prompt", prompt, "--max-new-tokens", "20")
	text := strings.TrimSuffix(res.stdout, "\n")
	if !strings.HasPrefix(g.PublishedText, text) || len(text) < len(prompt)+40 {
		t.Errorf("text mode output is not a prefix of the published story:\n%q", res.stdout)
	}
}
