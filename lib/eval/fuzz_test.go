package eval

import (
	"testing"

	"github.com/llmpruner/llmpruner/internal/fuzzcheck"
)

// FuzzLoadDocs: zero-shot task files (<task>.jsonl in the Hugging Face datasets layout) for the
// seven paper tasks; the first input byte picks the task. Properties: no panic; bounded time and
// allocation; every document that loads has at least one request, a gold index among them, and
// (for acc_norm tasks) one choice text per request.
func FuzzLoadDocs(f *testing.F) {
	for i, task := range PaperTasks {
		if head := fuzzcheck.HeadLines("zeroshot/lm-eval-docs/"+task+".jsonl", 3); head != nil {
			f.Add(uint8(i), head)
		}
	}
	if b := fuzzcheck.DataFile("zeroshot/format_samples/superglue_boolq_val_dummy.jsonl"); b != nil {
		f.Add(uint8(0), b)
	}
	f.Add(uint8(2), []byte(`{"activity_label":"a","ctx_a":"b","ctx_b":"c","endings":["1","2","3","4"],"label":"7"}`+"\n"))
	f.Add(uint8(4), []byte(`{"question":"q","choices":{"text":["x","y"],"label":["A","B"]},"answerKey":"C"}`+"\n"))
	scratch := fuzzcheck.NewScratch(f)
	f.Fuzz(func(t *testing.T, task uint8, data []byte) {
		name := PaperTasks[int(task)%len(PaperTasks)]
		scratch.Write(t, name+".jsonl", data)
		fuzzcheck.Bounded(t, len(data), 32, func() {
			docs, err := LoadDocs(scratch.Dir, name, NoLimit)
			if err != nil {
				return
			}
			for _, d := range docs {
				if len(d.Requests) == 0 || d.Gold < 0 || d.Gold >= len(d.Requests) {
					t.Fatalf("%s doc %d: gold %d with %d requests", name, d.Index, d.Gold, len(d.Requests))
				}
				if d.Choices != nil && len(d.Choices) != len(d.Requests) {
					t.Fatalf("%s doc %d: %d choices for %d requests", name, d.Index, len(d.Choices), len(d.Requests))
				}
			}
		})
	})
}
