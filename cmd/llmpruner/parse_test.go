package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestReadScoreInput(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, filepath.Join(dir, "good.jsonl"), "{\"ids\":[1,2,3]}\n\n  {\"text\":\"héllo\"}  \n")
	items, err := readScoreInput(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || !slices.Equal(items[0].ids, []int{1, 2, 3}) || items[0].line != 1 ||
		items[1].ids != nil || items[1].text != "héllo" || items[1].line != 3 {
		t.Errorf("items %+v", items)
	}
	for _, tc := range []struct{ content, want string }{
		{`{"ids":[1,2],"text":"a"}`, "good.jsonl:1: give either"},
		{`{"ids":[]}`, `"ids" is empty`},
		{`{}`, `neither "ids" nor "text"`},
		{`{"ids":[1,"a"]}`, "not a JSON object"},
		{`{"ids":[1]} {"ids":[2]}`, "more than one JSON value"},
		{`{"idz":[1]}`, "unknown field"},
		{`[1,2,3]`, "not a JSON object"},
		{"{\"text\":\"caf\xe9\"}", "not valid UTF-8 (invalid byte 0xe9 at offset 12)"},
		{"\n\n", "no input lines"},
	} {
		p := writeFile(t, filepath.Join(dir, "good.jsonl"), tc.content)
		if _, err := readScoreInput(p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to mention %q", tc.content, err, tc.want)
		}
	}
}

func TestIntsFlag(t *testing.T) {
	var f intsFlag
	if err := f.Set(" 1, 2 ,3 "); err != nil || !slices.Equal(f.vals, []int{1, 2, 3}) || f.String() != "1,2,3" {
		t.Errorf("Set: %v %v", err, f.vals)
	}
	for _, bad := range []string{"", ",", "1,x", "1.5"} {
		if err := f.Set(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestOneLine(t *testing.T) {
	got := oneLine("checkpoint does not match:\n  2 tensors missing:\n    a\n    b\nsee above\n")
	if want := "checkpoint does not match: 2 tensors missing: a; b; see above"; got != want {
		t.Errorf("oneLine = %q, want %q", got, want)
	}
}

func TestCheckOutDir(t *testing.T) {
	dir := t.TempDir()
	model := writeFile(t, filepath.Join(dir, "m.bin"), "x")
	if err := checkOutDir(filepath.Join(dir, "new"), model, false); err != nil {
		t.Errorf("new dir: %v", err)
	}
	if err := checkOutDir(dir, model, true); err == nil || !strings.Contains(err.Error(), "overwrite the input") {
		t.Errorf("the model's own directory must be refused even with --force: %v", err)
	}
	if err := checkOutDir(model, filepath.Join(dir, "other"), false); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a file as --out: %v", err)
	}
	if err := checkOutDir("", model, false); err == nil || !isUsage(err) {
		t.Errorf("empty --out: %v", err)
	}
}
