package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"

	"github.com/pkg/errors"
)

// scoreLine is one input line of "score": exactly one of ids or text.
type scoreLine struct {
	IDs  []int   `json:"ids"`
	Text *string `json:"text"`
}

// scoreItem is one parsed input line: the line number (1-based) and its ids or text.
type scoreItem struct {
	line int
	ids  []int // nil when text is given
	text string
}

// readScoreInput reads a JSON-lines file of {"ids":[...]} or {"text":"..."} objects; blank
// lines are skipped. Errors name the file and the line.
func readScoreInput(path string) ([]scoreItem, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errors.Wrap(err, "--input")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	var items []scoreItem
	for n := 1; sc.Scan(); n++ {
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		item, err := parseScoreLine(raw)
		if err != nil {
			return nil, errors.Errorf("%s:%d: %v", path, n, err)
		}
		item.line = n
		items = append(items, item)
	}
	if err := sc.Err(); err != nil {
		return nil, errors.Wrapf(err, "reading %s", path)
	}
	if len(items) == 0 {
		return nil, errors.Errorf("%s: no input lines (want one JSON object per line, {\"ids\":[...]} or {\"text\":\"...\"})", path)
	}
	return items, nil
}

func parseScoreLine(raw []byte) (scoreItem, error) {
	// encoding/json silently replaces invalid UTF-8 by U+FFFD: check the raw bytes first.
	if err := checkText("the line", string(raw)); err != nil {
		return scoreItem{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var l scoreLine
	if err := dec.Decode(&l); err != nil {
		return scoreItem{}, errors.Errorf("not a JSON object {\"ids\":[...]} or {\"text\":\"...\"}: %v", err)
	}
	if dec.More() {
		return scoreItem{}, errors.New("more than one JSON value on the line")
	}
	switch {
	case l.IDs != nil && l.Text != nil:
		return scoreItem{}, errors.New(`give either "ids" or "text", not both`)
	case l.IDs != nil:
		if len(l.IDs) == 0 {
			return scoreItem{}, errors.New(`"ids" is empty`)
		}
		return scoreItem{ids: l.IDs}, nil
	case l.Text != nil:
		if err := checkText(`"text"`, *l.Text); err != nil {
			return scoreItem{}, err
		}
		return scoreItem{text: *l.Text}, nil
	}
	return scoreItem{}, errors.New(`the object has neither "ids" nor "text"`)
}
