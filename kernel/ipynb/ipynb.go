// Package ipynb checks and writes Jupyter notebook files (.ipynb) in the nbformat 4.5 layout that
// Jupyter itself reads without a "Notebook validation failed" dialog.
//
// Validate implements the constraints of nbformat's v4.5 JSON schema (nbformat.v4.5.schema.json)
// that a notebook in this repository can break: the required and allowed keys of the notebook, of
// each cell type ("markdown", "code", "raw" — never "md") and of each output type, cell ids
// (^[a-zA-Z0-9-_]{1,64}$, unique), multiline strings (a string or an array of strings), and the
// kernelspec / language_info metadata. Its verdicts are cross-checked against Python's
// nbformat.validate in the tests.
//
// Format rewrites a notebook the way the repository stores them: nbformat 4.5, "md" cells renamed
// "markdown", outputs and execution counts cleared, missing ids and metadata filled in, sources as
// arrays of lines, and Jupyter's own JSON layout (keys sorted, one-space indent, trailing newline),
// so a notebook saved by Jupyter and one written by Format differ only where the content differs.
package ipynb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/pkg/errors"
)

// Version is the nbformat version Format writes and Validate checks: 4.5 (cells carry ids).
const (
	Major = 4
	Minor = 5
)

var idPattern = regexp.MustCompile(`^[a-zA-Z0-9-_]{1,64}$`)

// Allowed keys per object kind, from nbformat.v4.5.schema.json ("additionalProperties": false).
var (
	notebookKeys = keys("metadata", "nbformat_minor", "nbformat", "cells")
	cellKeys     = map[string]map[string]bool{
		"markdown": keys("id", "cell_type", "metadata", "source", "attachments"),
		"raw":      keys("id", "cell_type", "metadata", "source", "attachments"),
		"code":     keys("id", "cell_type", "metadata", "source", "outputs", "execution_count"),
	}
	cellRequired = map[string][]string{
		"markdown": {"id", "cell_type", "metadata", "source"},
		"raw":      {"id", "cell_type", "metadata", "source"},
		"code":     {"id", "cell_type", "metadata", "source", "outputs", "execution_count"},
	}
	outputKeys = map[string]map[string]bool{
		"execute_result": keys("output_type", "data", "metadata", "execution_count"),
		"display_data":   keys("output_type", "data", "metadata"),
		"stream":         keys("output_type", "name", "text"),
		"error":          keys("output_type", "ename", "evalue", "traceback"),
	}
)

func keys(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// decode parses a notebook keeping numbers as written (json.Number).
func decode(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var nb map[string]any
	if err := dec.Decode(&nb); err != nil {
		return nil, errors.Wrap(err, "not a JSON object")
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON object")
	}
	return nb, nil
}

// Validate returns every nbformat 4.5 violation in data (nil when the notebook is valid), each
// naming its location the way nbformat does ("cells[3].cell_type").
func Validate(data []byte) []error {
	nb, err := decode(data)
	if err != nil {
		return []error{err}
	}
	v := &validator{}
	v.notebook(nb)
	return v.errs
}

type validator struct{ errs []error }

func (v *validator) errorf(format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf(format, args...))
}

// object checks that obj has every required key and no key outside allowed (allowed nil: any).
func (v *validator) object(where string, obj map[string]any, required []string, allowed map[string]bool) {
	for _, k := range required {
		if _, ok := obj[k]; !ok {
			v.errorf("%s: missing required key %q", where, k)
		}
	}
	if allowed == nil {
		return
	}
	var extra []string
	for k := range obj {
		if !allowed[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		v.errorf("%s: key %q is not allowed", where, k)
	}
}

func (v *validator) notebook(nb map[string]any) {
	v.object("notebook", nb, []string{"metadata", "nbformat_minor", "nbformat", "cells"}, notebookKeys)
	if n, ok := integer(nb["nbformat"]); !ok || n != Major {
		v.errorf("nbformat: %v, want %d", nb["nbformat"], Major)
	}
	if n, ok := integer(nb["nbformat_minor"]); !ok || n != Minor {
		v.errorf("nbformat_minor: %v, want %d (cells with ids)", nb["nbformat_minor"], Minor)
	}
	if md, ok := nb["metadata"].(map[string]any); ok {
		v.notebookMetadata(md)
	} else if _, present := nb["metadata"]; present {
		v.errorf("metadata: not an object")
	}
	cells, ok := nb["cells"].([]any)
	if !ok {
		if _, present := nb["cells"]; present {
			v.errorf("cells: not an array")
		}
		return
	}
	ids := map[string]int{}
	for i, c := range cells {
		where := fmt.Sprintf("cells[%d]", i)
		cell, ok := c.(map[string]any)
		if !ok {
			v.errorf("%s: not an object", where)
			continue
		}
		v.cell(where, cell)
		if id, ok := cell["id"].(string); ok {
			if j, dup := ids[id]; dup {
				v.errorf("%s: id %q is also the id of cells[%d] (ids must be unique)", where, id, j)
			}
			ids[id] = i
		}
	}
}

func (v *validator) notebookMetadata(md map[string]any) {
	if ks, present := md["kernelspec"]; present {
		obj, ok := ks.(map[string]any)
		if !ok {
			v.errorf("metadata.kernelspec: not an object")
		} else {
			v.object("metadata.kernelspec", obj, []string{"name", "display_name"}, nil)
			v.stringKeys("metadata.kernelspec", obj, "name", "display_name")
		}
	}
	if li, present := md["language_info"]; present {
		obj, ok := li.(map[string]any)
		if !ok {
			v.errorf("metadata.language_info: not an object")
		} else {
			v.object("metadata.language_info", obj, []string{"name"}, nil)
			v.stringKeys("metadata.language_info", obj, "name", "file_extension", "mimetype", "pygments_lexer")
		}
	}
}

func (v *validator) stringKeys(where string, obj map[string]any, names ...string) {
	for _, k := range names {
		if x, present := obj[k]; present {
			if _, ok := x.(string); !ok {
				v.errorf("%s.%s: not a string", where, k)
			}
		}
	}
}

func (v *validator) cell(where string, cell map[string]any) {
	kind, _ := cell["cell_type"].(string)
	allowed, known := cellKeys[kind]
	if !known {
		v.errorf("%s.cell_type: %q is not one of \"markdown\", \"code\", \"raw\"", where, cell["cell_type"])
		return
	}
	v.object(where, cell, cellRequired[kind], allowed)
	if id, present := cell["id"]; present {
		if s, ok := id.(string); !ok || !idPattern.MatchString(s) {
			v.errorf("%s.id: %v does not match ^[a-zA-Z0-9-_]{1,64}$", where, id)
		}
	}
	if md, present := cell["metadata"]; present {
		v.cellMetadata(where+".metadata", md)
	}
	if src, present := cell["source"]; present && !multiline(src) {
		v.errorf("%s.source: neither a string nor an array of strings", where)
	}
	if att, present := cell["attachments"]; present {
		obj, ok := att.(map[string]any)
		if !ok {
			v.errorf("%s.attachments: not an object", where)
		}
		for name, bundle := range obj {
			v.mimeBundle(fmt.Sprintf("%s.attachments[%q]", where, name), bundle)
		}
	}
	if kind != "code" {
		return
	}
	if ec, present := cell["execution_count"]; present && !countOrNull(ec) {
		v.errorf("%s.execution_count: %v is neither a non-negative integer nor null", where, ec)
	}
	outs, present := cell["outputs"]
	if !present {
		return
	}
	list, ok := outs.([]any)
	if !ok {
		v.errorf("%s.outputs: not an array", where)
		return
	}
	for j, o := range list {
		v.output(fmt.Sprintf("%s.outputs[%d]", where, j), o)
	}
}

func (v *validator) cellMetadata(where string, md any) {
	obj, ok := md.(map[string]any)
	if !ok {
		v.errorf("%s: not an object", where)
		return
	}
	if name, present := obj["name"]; present {
		if s, ok := name.(string); !ok || s == "" {
			v.errorf("%s.name: must be a non-empty string", where)
		}
	}
	if tags, present := obj["tags"]; present {
		list, ok := tags.([]any)
		seen := map[string]bool{}
		for _, t := range list {
			s, isStr := t.(string)
			if !isStr || s == "" || strings.Contains(s, ",") || seen[s] {
				ok = false
			}
			seen[s] = true
		}
		if !ok {
			v.errorf("%s.tags: must be an array of unique non-empty strings without commas", where)
		}
	}
	if j, present := obj["jupyter"]; present {
		if _, ok := j.(map[string]any); !ok {
			v.errorf("%s.jupyter: not an object", where)
		}
	}
}

func (v *validator) output(where string, o any) {
	obj, ok := o.(map[string]any)
	if !ok {
		v.errorf("%s: not an object", where)
		return
	}
	kind, _ := obj["output_type"].(string)
	allowed, known := outputKeys[kind]
	if !known {
		v.errorf("%s.output_type: %q is not one of execute_result, display_data, stream, error", where, obj["output_type"])
		return
	}
	var required []string
	for k := range allowed {
		required = append(required, k)
	}
	sort.Strings(required)
	v.object(where, obj, required, allowed)
	switch kind {
	case "execute_result", "display_data":
		if d, present := obj["data"]; present {
			v.mimeBundle(where+".data", d)
		}
		if md, present := obj["metadata"]; present {
			if _, ok := md.(map[string]any); !ok {
				v.errorf("%s.metadata: not an object", where)
			}
		}
		if ec, present := obj["execution_count"]; present && !countOrNull(ec) {
			v.errorf("%s.execution_count: %v is neither a non-negative integer nor null", where, ec)
		}
	case "stream":
		if _, ok := obj["name"].(string); !ok {
			v.errorf("%s.name: not a string", where)
		}
		if t, present := obj["text"]; present && !multiline(t) {
			v.errorf("%s.text: neither a string nor an array of strings", where)
		}
	case "error":
		v.stringKeys(where, obj, "ename", "evalue")
		if tb, present := obj["traceback"]; present {
			if list, ok := tb.([]any); !ok || !allStrings(list) {
				v.errorf("%s.traceback: not an array of strings", where)
			}
		}
	}
}

// jsonMime matches the MIME types whose payload may be any JSON value (application/json, …+json).
var jsonMime = regexp.MustCompile(`^application/(.*\+)?json$`)

func (v *validator) mimeBundle(where string, b any) {
	obj, ok := b.(map[string]any)
	if !ok {
		v.errorf("%s: not an object", where)
		return
	}
	for mime, val := range obj {
		if !jsonMime.MatchString(mime) && !multiline(val) {
			v.errorf("%s[%q]: neither a string nor an array of strings", where, mime)
		}
	}
}

func multiline(x any) bool {
	switch x := x.(type) {
	case string:
		return true
	case []any:
		return allStrings(x)
	}
	return false
}

func allStrings(list []any) bool {
	for _, s := range list {
		if _, ok := s.(string); !ok {
			return false
		}
	}
	return true
}

func integer(x any) (int64, bool) {
	n, ok := x.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := n.Int64()
	return i, err == nil
}

func countOrNull(x any) bool {
	if x == nil {
		return true
	}
	n, ok := integer(x)
	return ok && n >= 0
}
