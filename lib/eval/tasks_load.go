package eval

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pkg/errors"
)

// NoLimit asks LoadDocs / ZeroShot for every document of a task file.
const NoLimit = -1

// TaskFile is where a task's documents live under a data dir: <dir>/<task>.jsonl, one JSON object
// per line with the fields the Hugging Face dataset gives lm-eval (see LoadDocs).
func TaskFile(dataDir, task string) string { return filepath.Join(dataDir, task+".jsonl") }

// LoadDocs reads the first limit documents (file order) of a task from <dataDir>/<task>.jsonl and
// builds lm-eval's requests for them. limit = NoLimit reads all; limit 0 is an error.
//
// Fields per task (the Hugging Face datasets layout lm-eval reads):
//
//	boolq         question, passage, label (0 = no, 1 = yes)
//	piqa          goal, sol1, sol2, label
//	hellaswag     activity_label, ctx_a, ctx_b, endings[4], label ("0".."3")
//	winogrande    sentence (with one "_"), option1, option2, answer ("1"/"2")
//	arc_easy      question, choices{text,label}, answerKey ("A".."E" or "1".."5")
//	arc_challenge same as arc_easy
//	openbookqa    question_stem, choices{text,label}, answerKey ("A".."D")
//
// Unlike lm-eval's own --limit, which shuffles the documents with Python's random.Random(42)
// before taking the first N, this takes the first N in file order.
func LoadDocs(dataDir, task string, limit int) ([]Doc, error) {
	t, err := LookupTask(task)
	if err != nil {
		return nil, err
	}
	if limit == 0 || limit < NoLimit {
		return nil, errors.Errorf("task %s: limit must be a positive number of documents (got %d); use NoLimit (-1) for all", t.Name, limit)
	}
	path := TaskFile(dataDir, t.Name)
	f, err := os.Open(path)
	if err != nil {
		return nil, errors.Wrapf(err, "task %s: cannot open its documents (expected %s in the lm-eval-docs jsonl layout)", t.Name, path)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var docs []Doc
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var rec record
		if err := json.Unmarshal(text, &rec); err != nil {
			return nil, errors.Wrapf(err, "%s:%d: not a JSON object", path, line)
		}
		d, err := t.parse(rec)
		if err != nil {
			return nil, errors.WithMessagef(err, "%s:%d (task %s)", path, line, t.Name)
		}
		d.Index = len(docs)
		docs = append(docs, d)
		if limit > 0 && len(docs) == limit {
			break
		}
	}
	if err := sc.Err(); err != nil {
		return nil, errors.Wrapf(err, "reading %s", path)
	}
	if len(docs) == 0 {
		return nil, errors.Errorf("task %s: %s holds no documents", t.Name, path)
	}
	return docs, nil
}

// record is one jsonl line, decoded lazily field by field.
type record map[string]json.RawMessage

func (r record) raw(field string) (json.RawMessage, error) {
	v, ok := r[field]
	if !ok || string(v) == "null" {
		return nil, errors.Errorf("field %q is missing", field)
	}
	return v, nil
}

// str reads a string field.
func (r record) str(field string) (string, error) {
	v, err := r.raw(field)
	if err != nil {
		return "", err
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", errors.Errorf("field %q must be a string, got %s", field, abbrev(v))
	}
	return s, nil
}

// strFields reads several string fields, in order; the error names the first missing or ill-typed one.
func (r record) strFields(fields ...string) ([]string, error) {
	out := make([]string, len(fields))
	for i, f := range fields {
		s, err := r.str(f)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// strings reads a list-of-strings field.
func (r record) strs(field string) ([]string, error) {
	v, err := r.raw(field)
	if err != nil {
		return nil, err
	}
	var s []string
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, errors.Errorf("field %q must be a list of strings, got %s", field, abbrev(v))
	}
	return s, nil
}

// integer reads a field holding an integer, a string of an integer ("3") or a boolean.
func (r record) integer(field string) (int, error) {
	v, err := r.raw(field)
	if err != nil {
		return 0, err
	}
	var n int
	if json.Unmarshal(v, &n) == nil {
		return n, nil
	}
	var b bool
	if json.Unmarshal(v, &b) == nil {
		if b {
			return 1, nil
		}
		return 0, nil
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
			return n, nil
		}
	}
	return 0, errors.Errorf("field %q must be an integer, got %s", field, abbrev(v))
}

// choiceTexts reads the {"text": [...], "label": [...]} object of ARC and OpenBookQA.
func (r record) choiceTexts(field string) ([]string, error) {
	v, err := r.raw(field)
	if err != nil {
		return nil, err
	}
	var c struct {
		Text []string `json:"text"`
	}
	if err := json.Unmarshal(v, &c); err != nil || len(c.Text) == 0 {
		return nil, errors.Errorf("field %q must be an object with a non-empty \"text\" list, got %s", field, abbrev(v))
	}
	return c.Text, nil
}

func abbrev(v json.RawMessage) string {
	const max = 60
	if len(v) > max {
		return string(v[:max]) + "…"
	}
	return string(v)
}

func checkGold(gold, n int) error {
	if gold < 0 || gold >= n {
		return errors.Errorf("gold answer index %d is out of range for %d choices", gold, n)
	}
	return nil
}
