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

// stringsFlag is a repeatable string flag (--data a --data b).
type stringsFlag []string

func (f *stringsFlag) String() string { return strings.Join(*f, " ") }

func (f *stringsFlag) Set(s string) error {
	*f = append(*f, s)
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
