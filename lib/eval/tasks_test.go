package eval

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/lib/internal/testdata"
)

// The expected requests below are written out from lm-evaluation-harness 4d21ab6's task code
// (superglue.py BoolQ, piqa.py, hellaswag.py, winogrande.py, arc.py, openbookqa.py and
// base.py MultipleChoiceTask) by hand, reading the raw jsonl fields with encoding/json into
// maps, without going through the package's builders.

const lmEvalDocsDir = "zeroshot/lm-eval-docs"

// readRawDocs returns the first n lines of a task file as generic JSON maps.
func readRawDocs(t *testing.T, dir, task string, n int) []map[string]any {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, task+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	var out []map[string]any
	for sc.Scan() && len(out) < n {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

type wantDoc struct {
	reqs    []Request
	choices []string // acc_norm lengths; nil when the task has no acc_norm
	gold    int
}

// lm-eval's HellaSwag.preprocess written out with plain loops (no regexp): strip, " [title]" →
// ". ", drop every "[...]" on one line, "  " → " ".
func handHellaswagPreprocess(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, " [title]", ". ")
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '[' {
			if j := strings.IndexAny(s[i:], "]\n"); j > 0 && s[i+j] == ']' {
				i += j
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return strings.ReplaceAll(b.String(), "  ", " ")
}

func handCapitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + strings.ToLower(s[1:])
}

func mcWant(query string, choices []string, gold int) wantDoc {
	w := wantDoc{choices: choices, gold: gold}
	for _, c := range choices {
		w.reqs = append(w.reqs, Request{query, " " + c})
	}
	return w
}

func anyStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// handRequests builds lm-eval's requests for one raw document.
func handRequests(t *testing.T, task string, d map[string]any) wantDoc {
	t.Helper()
	switch task {
	case "boolq":
		ctx := fmt.Sprintf("%s\nQuestion: %s?\nAnswer:", d["passage"], d["question"])
		return wantDoc{reqs: []Request{{ctx, " no"}, {ctx, " yes"}}, gold: int(d["label"].(float64))}
	case "piqa":
		return mcWant(fmt.Sprintf("Question: %s\nAnswer:", d["goal"]),
			[]string{d["sol1"].(string), d["sol2"].(string)}, int(d["label"].(float64)))
	case "hellaswag":
		ctx := d["ctx_a"].(string) + " " + handCapitalize(d["ctx_b"].(string))
		var endings []string
		for _, e := range anyStrings(d["endings"]) {
			endings = append(endings, handHellaswagPreprocess(e))
		}
		gold, _ := strconv.Atoi(d["label"].(string))
		return mcWant(handHellaswagPreprocess(fmt.Sprintf("%s: %s", d["activity_label"], ctx)), endings, gold)
	case "winogrande":
		sentence := d["sentence"].(string)
		before, after, ok := strings.Cut(sentence, "_")
		if !ok {
			t.Fatalf("no blank in %q", sentence)
		}
		target := " " + strings.TrimSpace(after)
		gold := map[string]int{"1": 0, "2": 1}[d["answer"].(string)]
		return wantDoc{reqs: []Request{{before + d["option1"].(string), target}, {before + d["option2"].(string), target}}, gold: gold}
	case "arc_easy", "arc_challenge":
		gold := map[string]int{"A": 0, "B": 1, "C": 2, "D": 3, "E": 4, "1": 0, "2": 1, "3": 2, "4": 3, "5": 4}[d["answerKey"].(string)]
		choices := anyStrings(d["choices"].(map[string]any)["text"])
		return mcWant(fmt.Sprintf("Question: %s\nAnswer:", d["question"]), choices, gold)
	case "openbookqa":
		gold := map[string]int{"A": 0, "B": 1, "C": 2, "D": 3}[strings.TrimSpace(d["answerKey"].(string))]
		return mcWant(d["question_stem"].(string), anyStrings(d["choices"].(map[string]any)["text"]), gold)
	}
	t.Fatalf("no hand builder for %s", task)
	return wantDoc{}
}

func compareDoc(t *testing.T, label string, got Doc, want wantDoc) {
	t.Helper()
	if len(got.Requests) != len(want.reqs) {
		t.Fatalf("%s: %d requests, want %d", label, len(got.Requests), len(want.reqs))
	}
	for i := range want.reqs {
		if got.Requests[i] != want.reqs[i] {
			t.Errorf("%s request %d:\n got  %q\n want %q", label, i, got.Requests[i], want.reqs[i])
		}
	}
	if got.Gold != want.gold {
		t.Errorf("%s: gold %d, want %d", label, got.Gold, want.gold)
	}
	if strings.Join(got.Choices, "\x00") != strings.Join(want.choices, "\x00") || (got.Choices == nil) != (want.choices == nil) {
		t.Errorf("%s: acc_norm choices %q, want %q", label, got.Choices, want.choices)
	}
}

func TestFirst20RequestsMatchLMEval(t *testing.T) {
	dir := testdata.Path(t, lmEvalDocsDir)
	for _, task := range PaperTasks {
		t.Run(task, func(t *testing.T) {
			docs, err := LoadDocs(dir, task, 20)
			if err != nil {
				t.Fatal(err)
			}
			raw := readRawDocs(t, dir, task, 20)
			if len(docs) != 20 || len(raw) != 20 {
				t.Fatalf("%d docs, %d raw lines; want 20", len(docs), len(raw))
			}
			for i := range docs {
				if docs[i].Index != i {
					t.Errorf("doc %d has index %d", i, docs[i].Index)
				}
				compareDoc(t, fmt.Sprintf("%s doc %d", task, i), docs[i], handRequests(t, task, raw[i]))
			}
		})
	}
}

// Literal spot checks of the first document of each file, typed from lm-eval's templates.
func TestFirstDocumentLiterals(t *testing.T) {
	dir := testdata.Path(t, lmEvalDocsDir)
	first := func(task string) Doc {
		docs, err := LoadDocs(dir, task, 1)
		if err != nil {
			t.Fatal(err)
		}
		return docs[0]
	}
	wg := first("winogrande")
	if wg.Requests[0] != (Request{"Sarah was a much better surgeon than Maria so Sarah", " always got the easier cases."}) ||
		wg.Requests[1] != (Request{"Sarah was a much better surgeon than Maria so Maria", " always got the easier cases."}) || wg.Gold != 1 {
		t.Errorf("winogrande doc 0: %+v", wg)
	}
	hs := first("hellaswag")
	if hs.Requests[3] != (Request{"Roof shingle removal: A man is sitting on a roof. he", " starts pulling up roofing on a roof."}) || hs.Gold != 3 {
		t.Errorf("hellaswag doc 0: %+v", hs)
	}
	arc := first("arc_challenge")
	want := "Question: An astronomer observes that a planet rotates faster after a meteorite impact. Which is the most likely effect of this increase in rotation?\nAnswer:"
	if arc.Requests[2] != (Request{want, " Planetary days will become shorter."}) || arc.Gold != 2 {
		t.Errorf("arc_challenge doc 0: %+v", arc)
	}
	ob := first("openbookqa")
	if ob.Requests[1].Continuation != " quit eating lunch out" || !strings.HasSuffix(ob.Requests[1].Context, "the best way to save money is to") || ob.Gold != 1 {
		t.Errorf("openbookqa doc 0: %+v", ob)
	}
	pq := first("piqa")
	if pq.Requests[0].Context != "Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:" || pq.Gold != 0 {
		t.Errorf("piqa doc 0: %+v", pq)
	}
	bq := first("boolq")
	if !strings.HasPrefix(bq.Requests[0].Context, "All biomass goes through") ||
		!strings.HasSuffix(bq.Requests[0].Context, "\nQuestion: does ethanol take more energy make that produces?\nAnswer:") ||
		bq.Requests[0].Continuation != " no" || bq.Requests[1].Continuation != " yes" || bq.Gold != 0 {
		t.Errorf("boolq doc 0: %+v", bq.Requests[0].Continuation)
	}
}

// Full document counts of the splits lm-eval evaluates (MANIFEST §5).
func TestDocumentCounts(t *testing.T) {
	if testing.Short() {
		t.Skip("reads all seven splits")
	}
	dir := testdata.Path(t, lmEvalDocsDir)
	want := map[string]int{"boolq": 3270, "piqa": 1838, "hellaswag": 10042, "winogrande": 1267, "arc_easy": 2376, "arc_challenge": 1172, "openbookqa": 500}
	for task, n := range want {
		docs, err := LoadDocs(dir, task, NoLimit)
		if err != nil {
			t.Fatal(err)
		}
		if len(docs) != n {
			t.Errorf("%s: %d documents, want %d", task, len(docs), n)
		}
	}
}

// HellaSwag preprocessing on the cases the real split does not exercise in this export (ctx_b is
// empty there): tags, " [title]", ctx_b capitalization that lower-cases the rest, double spaces.
func TestHellaSwagPreprocessEdgeCases(t *testing.T) {
	docs, err := LoadDocs("testdata", "hellaswag", NoLimit)
	if err != nil {
		t.Fatal(err)
	}
	want := []Request{
		// "Home and Garden: [title] Clean a roof. [step] Then, the man Climbs onto the roof."
		// → " [title]" becomes ". " → "[step]" deleted → double spaces folded.
		{"Home and Garden:. Clean a roof. Then, the man Climbs onto the roof.", " sweeps it."},
		{"Sports: A boy runs. He", " jumps over it."},
	}
	for i, w := range want {
		if docs[i].Requests[0] != w {
			t.Errorf("doc %d: got %q, want %q", i, docs[i].Requests[0], w)
		}
	}
	// strip runs before the tag removal, so "[step] falls." keeps the space after the tag.
	if got := docs[1].Choices[1]; got != " falls." || docs[1].Requests[1].Continuation != "  falls." || docs[1].Gold != 1 {
		t.Errorf("doc 1 ending 1 preprocessed to %q (continuation %q), want %q", got, docs[1].Requests[1].Continuation, " falls.")
	}
}

func TestPythonStringHelpers(t *testing.T) {
	for _, c := range [][2]string{{"the LADY", "The lady"}, {"", ""}, {"émile ZOLA", "Émile zola"}, {"1st PLACE", "1st place"}} {
		if got := pyCapitalize(c[0]); got != c[1] {
			t.Errorf("capitalize(%q) = %q, want %q", c[0], got, c[1])
		}
	}
	if got := pyStrip("\x1c\t a b \u00a0\n"); got != "a b" {
		t.Errorf("strip = %q", got)
	}
	// One pass of "  " → " " leaves a double space from a triple one, as Python's str.replace.
	if got := hellaswagPreprocess("a   b [x]c[y] d"); got != "a  b c d" {
		t.Errorf("preprocess = %q", got)
	}
}
