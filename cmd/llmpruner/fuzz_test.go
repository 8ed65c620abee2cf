package main

import (
	"testing"

	"github.com/llmpruner/llmpruner/internal/fuzzcheck"
)

// FuzzScoreInput: the JSON-lines input of "score" ({"ids":[...]} or {"text":"..."} per line).
// Properties: no panic; bounded time and allocation; every accepted line has non-empty ids or
// valid UTF-8 text, never both, and carries its 1-based line number.
func FuzzScoreInput(f *testing.F) {
	f.Add([]byte(`{"text":"Once upon a time"}` + "\n" + `{"ids":[1,2,3]}` + "\n\n"))
	f.Add([]byte(`{"ids":[1,2],"text":"x"}`))
	f.Add([]byte(`{"ids":[]}` + "\n" + `{"text":"\ud800"}`))
	f.Add([]byte("{\"text\":\"\xff\"}\n"))
	scratch := fuzzcheck.NewScratch(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		p := scratch.Write(t, "in.jsonl", data)
		fuzzcheck.Bounded(t, len(data), 32, func() {
			items, err := readScoreInput(p)
			if err != nil {
				return
			}
			prev := 0
			for _, it := range items {
				if it.line <= prev {
					t.Fatalf("line numbers not increasing: %d after %d", it.line, prev)
				}
				prev = it.line
				if it.ids == nil && checkText("text", it.text) != nil {
					t.Fatalf("line %d: accepted invalid text %q", it.line, it.text)
				}
				if it.ids != nil && (len(it.ids) == 0 || it.text != "") {
					t.Fatalf("line %d: ids %v with text %q", it.line, it.ids, it.text)
				}
			}
		})
	})
}
