package ipynb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/pkg/errors"
)

// Format returns data rewritten as the repository stores notebooks (see the package comment) and
// checks the result with Validate: it fixes what a hand- or script-written notebook typically gets
// wrong ("md" cells, missing ids/metadata/outputs, a source given as one string, an older 4.x minor)
// and refuses what it cannot fix (an unknown cell type, a malformed cell) with the violations.
func Format(data []byte) ([]byte, error) {
	nb, err := decode(data)
	if err != nil {
		return nil, err
	}
	nb["nbformat"], nb["nbformat_minor"] = json.Number(fmt.Sprint(Major)), json.Number(fmt.Sprint(Minor))
	if _, ok := nb["metadata"]; !ok {
		nb["metadata"] = map[string]any{}
	}
	cells, ok := nb["cells"].([]any)
	if !ok {
		return nil, errors.New("cells: missing or not an array")
	}
	used := map[string]bool{}
	for _, c := range cells {
		if cell, ok := c.(map[string]any); ok {
			if id, ok := cell["id"].(string); ok && idPattern.MatchString(id) && !used[id] {
				used[id] = true
			} else {
				delete(cell, "id") // replaced below by a fresh one
			}
		}
	}
	for i, c := range cells {
		cell, ok := c.(map[string]any)
		if !ok {
			continue // reported by Validate
		}
		if cell["cell_type"] == "md" {
			cell["cell_type"] = "markdown"
		}
		if _, ok := cell["id"]; !ok {
			cell["id"] = freshID(i, used)
		}
		if _, ok := cell["metadata"]; !ok {
			cell["metadata"] = map[string]any{}
		}
		if s, ok := cell["source"].(string); ok {
			cell["source"] = Lines(s)
		}
		if cell["cell_type"] == "code" {
			cell["outputs"] = []any{}
			cell["execution_count"] = nil
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // Jupyter writes <, > and & as they are
	enc.SetIndent("", " ")
	if err := enc.Encode(nb); err != nil { // map keys come out sorted, as with Python's sort_keys=True
		return nil, errors.Wrap(err, "encoding the notebook")
	}
	out := buf.Bytes()
	if errs := Validate(out); len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return out, nil
}

// Lines splits a cell source into the array of lines Jupyter stores: every line keeps its "\n"
// except the last.
func Lines(s string) []any {
	out := []any{}
	for s != "" {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}

func freshID(i int, used map[string]bool) string {
	for n := 0; ; n++ {
		id := fmt.Sprintf("c%02d", i)
		if n > 0 {
			id = fmt.Sprintf("c%02d-%d", i, n)
		}
		if !used[id] {
			used[id] = true
			return id
		}
	}
}

func joinErrors(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

// Check returns the problems of a stored notebook: its nbformat violations, or, when it is valid,
// whether Format would change it (outputs left in, a layout other than Jupyter's).
func Check(data []byte) error {
	if errs := Validate(data); len(errs) > 0 {
		return joinErrors(errs)
	}
	want, err := Format(data)
	if err != nil {
		return err
	}
	if !bytes.Equal(want, data) {
		return errors.New("valid, but not as stored in the repository (outputs, ids or layout): run `go run ./kernel fmt -w` on it")
	}
	return nil
}
