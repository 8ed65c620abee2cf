package main

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// intsFlag is a comma-separated list of integers ("1,2,3").
type intsFlag struct {
	vals []int
	set  bool
}

func (f *intsFlag) String() string {
	parts := make([]string, len(f.vals))
	for i, v := range f.vals {
		parts[i] = strconv.Itoa(v)
	}
	return strings.Join(parts, ",")
}

func (f *intsFlag) Set(s string) error {
	f.vals, f.set = nil, true
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		v, err := strconv.Atoi(part)
		if err != nil {
			return fmt.Errorf("%q is not an integer", part)
		}
		f.vals = append(f.vals, v)
	}
	if len(f.vals) == 0 {
		return fmt.Errorf("empty list of integers")
	}
	return nil
}

// namedPath is one NAME=PATH pair.
type namedPath struct{ name, path string }

// namedPathsFlag is a repeatable NAME=PATH flag (--data wikitext2=wiki.txt --data ptb=ptb.txt).
type namedPathsFlag []namedPath

func (f *namedPathsFlag) String() string {
	parts := make([]string, len(*f))
	for i, np := range *f {
		parts[i] = np.name + "=" + np.path
	}
	return strings.Join(parts, " ")
}

func (f *namedPathsFlag) Set(s string) error {
	name, path, ok := strings.Cut(s, "=")
	if !ok || name == "" || path == "" {
		return fmt.Errorf("%q is not NAME=PATH", s)
	}
	for _, np := range *f {
		if np.name == name {
			return fmt.Errorf("name %q given twice", name)
		}
	}
	*f = append(*f, namedPath{name, path})
	return nil
}

// layerRange is a half-open range of decoder layers "A:B" (B exclusive), as the original's
// --block_attention_layer_start/end.
type layerRange struct {
	start, end int
	set        bool
}

func (r *layerRange) String() string {
	if !r.set {
		return ""
	}
	return fmt.Sprintf("%d:%d", r.start, r.end)
}

func (r *layerRange) Set(s string) error {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return fmt.Errorf("%q is not a layer range START:END (END exclusive)", s)
	}
	start, err1 := strconv.Atoi(strings.TrimSpace(a))
	end, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil {
		return fmt.Errorf("%q is not a layer range START:END of integers", s)
	}
	if start < 0 {
		return fmt.Errorf("range %q starts below layer 0", s)
	}
	if end <= start {
		return fmt.Errorf("range %q is empty or reversed (END is exclusive and must be > START)", s)
	}
	r.start, r.end, r.set = start, end, true
	return nil
}

// checkText rejects text that is not valid UTF-8, naming where it came from.
func checkText(what, text string) error {
	if utf8.ValidString(text) {
		return nil
	}
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		if r == utf8.RuneError && size <= 1 {
			return fmt.Errorf("%s is not valid UTF-8 (invalid byte 0x%02x at offset %d)", what, text[i], i)
		}
		i += size
	}
	return fmt.Errorf("%s is not valid UTF-8", what)
}
