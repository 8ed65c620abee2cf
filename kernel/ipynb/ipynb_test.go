package ipynb

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// repoNotebooks lists every .ipynb under tutorials/ and notebooks/ of the repository.
func repoNotebooks(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, dir := range []string{"../../tutorials", "../../notebooks"} {
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == ".ipynb_checkpoints" {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(path, ".ipynb") {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(files) == 0 {
		t.Fatal("no notebooks found under tutorials/ and notebooks/")
	}
	sort.Strings(files)
	return files
}

// TestRepositoryNotebooks: every committed notebook is valid nbformat 4.5 and stored as Format writes
// it (no outputs, Jupyter's layout), so Jupyter opens it without a validation dialog.
func TestRepositoryNotebooks(t *testing.T) {
	for _, path := range repoNotebooks(t) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := Check(data); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
}

// A valid notebook with one cell of each type and one output of each type.
const validNotebook = `{
 "cells": [
  {"cell_type": "markdown", "id": "a", "metadata": {"tags": ["x"]}, "source": ["# Title\n", "text"]},
  {"cell_type": "raw", "id": "b", "metadata": {}, "source": "raw"},
  {"cell_type": "code", "id": "c-1_x", "metadata": {"jupyter": {"source_hidden": true}}, "source": "x := 1",
   "execution_count": 3, "outputs": [
    {"output_type": "stream", "name": "stdout", "text": ["hi\n"]},
    {"output_type": "display_data", "data": {"text/html": "<b>x</b>", "application/json": {"k": 1}}, "metadata": {}},
    {"output_type": "execute_result", "data": {"text/plain": ["1"]}, "metadata": {}, "execution_count": 3},
    {"output_type": "error", "ename": "E", "evalue": "v", "traceback": ["t"]}
   ]}
 ],
 "metadata": {"kernelspec": {"name": "llmpruner", "display_name": "Go (llmpruner)"}, "language_info": {"name": "go"}},
 "nbformat": 4,
 "nbformat_minor": 5
}`

// Broken notebooks: each edit (old → new substring of validNotebook) makes it invalid.
var brokenEdits = map[string][2]string{
	"md cell":              {`"cell_type": "markdown"`, `"cell_type": "md"`},
	"unknown cell type":    {`"cell_type": "raw"`, `"cell_type": "text"`},
	"code without outputs": {`"execution_count": 3, "outputs": [`, `"execution_count": 3, "outputz": [`},
	"markdown with outputs": {`"metadata": {"tags": ["x"]}, "source"`,
		`"metadata": {"tags": ["x"]}, "outputs": [], "source"`},
	"no id":               {`"id": "b", `, ``},
	"bad id":              {`"id": "c-1_x"`, `"id": "c 1"`},
	"duplicate id":        {`"id": "b"`, `"id": "a"`},
	"source number":       {`"source": "raw"`, `"source": 7`},
	"source mixed":        {`"source": ["# Title\n", "text"]`, `"source": ["# Title\n", 1]`},
	"negative count":      {`"source": "x := 1",` + "\n   " + `"execution_count": 3`, `"source": "x := 1",` + "\n   " + `"execution_count": -1`},
	"stream without name": {`"name": "stdout", `, ``},
	"unknown output":      {`"output_type": "error"`, `"output_type": "failure"`},
	"extra output key":    {`"output_type": "stream",`, `"output_type": "stream", "extra": 1,`},
	"bad traceback":       {`"traceback": ["t"]`, `"traceback": "t"`},
	"html as number":      {`"text/html": "<b>x</b>"`, `"text/html": 5`},
	"kernelspec no name":  {`"name": "llmpruner", `, ``},
	"nbformat 3":          {`"nbformat": 4,`, `"nbformat": 3,`},
	"extra top key":       {`"nbformat": 4,`, `"nbformat": 4, "worksheets": [],`},
	"bad tags":            {`"tags": ["x"]`, `"tags": ["x,y"]`},
}

func broken(t *testing.T, name string) string {
	e := brokenEdits[name]
	if strings.Count(validNotebook, e[0]) != 1 {
		t.Fatalf("%s: edit %q does not match exactly once", name, e[0])
	}
	return strings.Replace(validNotebook, e[0], e[1], 1)
}

func TestValidate(t *testing.T) {
	if errs := Validate([]byte(validNotebook)); len(errs) > 0 {
		t.Fatalf("valid notebook: %v", errs)
	}
	for name := range brokenEdits {
		if errs := Validate([]byte(broken(t, name))); len(errs) == 0 {
			t.Errorf("%s: no error", name)
		}
	}
	errs := Validate([]byte(broken(t, "md cell")))
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `cells[0].cell_type: "md"`) {
		t.Errorf("md cell: errors %v, want one naming cells[0].cell_type", errs)
	}
	for _, bad := range []string{"", "[]", "{} {}", "{"} {
		if errs := Validate([]byte(bad)); len(errs) == 0 {
			t.Errorf("Validate(%q): no error", bad)
		}
	}
}

// TestValidateMatchesNbformat runs Python's nbformat.validate (Debian python3-nbformat, the
// independent reference) on the same valid and broken notebooks and requires the same verdicts.
func TestValidateMatchesNbformat(t *testing.T) {
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import nbformat").Run(); err != nil {
		if os.Getenv("LLMPRUNER_REQUIRE_NBFORMAT") == "1" {
			t.Fatalf("%s cannot import nbformat (LLMPRUNER_REQUIRE_NBFORMAT=1): %v", py, err)
		}
		t.Skipf("%s cannot import nbformat (Debian: apt-get install python3-nbformat)", py)
	}
	dir := t.TempDir()
	cases := map[string]string{"valid": validNotebook}
	for name := range brokenEdits {
		cases[name] = broken(t, name)
	}
	var names []string
	for name, text := range cases {
		file := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".ipynb")
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, file)
	}
	sort.Strings(names)
	// One line per file: "valid" or "invalid" by nbformat.validate (reading as version 4 without
	// upgrading, so a v3 notebook is judged as written). nbformat 5.5 repairs a missing or duplicate
	// cell id with a warning ("will become a hard error"); warnings count as invalid here.
	script := `
import json, sys, warnings, nbformat
warnings.simplefilter("error")
for path in sys.argv[1:]:
    try:
        nb = nbformat.from_dict(json.load(open(path)))
        if nb.get("nbformat") != 4:
            raise nbformat.ValidationError("not nbformat 4")
        nbformat.validate(nb, version=4)
        print("valid")
    except Exception:
        print("invalid")
`
	out, err := exec.Command(py, append([]string{"-c", script}, names...)...).Output()
	if err != nil {
		t.Fatalf("nbformat: %v\n%s", err, out)
	}
	verdicts := strings.Fields(string(out))
	if len(verdicts) != len(names) {
		t.Fatalf("nbformat printed %q for %d files", out, len(names))
	}
	for i, file := range names {
		data, _ := os.ReadFile(file)
		goValid := len(Validate(data)) == 0
		if pyValid := verdicts[i] == "valid"; goValid != pyValid {
			t.Errorf("%s: Validate says valid=%v, nbformat.validate says %s", filepath.Base(file), goValid, verdicts[i])
		}
	}
}

func TestFormat(t *testing.T) {
	in := `{"cells": [
  {"cell_type": "md", "metadata": {}, "source": "# A <b> & c\nline 2\n"},
  {"cell_type": "code", "source": "fmt.Println(1)", "id": "dup", "outputs": [{"output_type": "stream", "name": "stdout", "text": "1"}], "execution_count": 2},
  {"cell_type": "code", "id": "dup", "metadata": {"scrolled": true}, "source": [], "outputs": [], "execution_count": null}
 ], "metadata": {"kernelspec": {"name": "llmpruner", "display_name": "Go (llmpruner)"}}, "nbformat": 4, "nbformat_minor": 4}`
	got, err := Format([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := `{
 "cells": [
  {
   "cell_type": "markdown",
   "id": "c00",
   "metadata": {},
   "source": [
    "# A <b> & c\n",
    "line 2\n"
   ]
  },
  {
   "cell_type": "code",
   "execution_count": null,
   "id": "dup",
   "metadata": {},
   "outputs": [],
   "source": [
    "fmt.Println(1)"
   ]
  },
  {
   "cell_type": "code",
   "execution_count": null,
   "id": "c02",
   "metadata": {
    "scrolled": true
   },
   "outputs": [],
   "source": []
  }
 ],
 "metadata": {
  "kernelspec": {
   "display_name": "Go (llmpruner)",
   "name": "llmpruner"
  }
 },
 "nbformat": 4,
 "nbformat_minor": 5
}
`
	if string(got) != want {
		t.Errorf("Format:\n%s\nwant:\n%s", got, want)
	}
	if err := Check(got); err != nil {
		t.Errorf("Check(Format(x)): %v", err)
	}
	if err := Check([]byte(in)); err == nil {
		t.Error("Check of an md-cell notebook: no error")
	}
	if _, err := Format([]byte(broken(t, "unknown cell type"))); err == nil || !strings.Contains(err.Error(), `"text"`) {
		t.Errorf("Format of an unknown cell type: err = %v", err)
	}
}

// TestFormatMatchesJupyter: Format lays a notebook out byte for byte as nbformat.writes does.
func TestFormatMatchesJupyter(t *testing.T) {
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import nbformat").Run(); err != nil {
		t.Skipf("%s cannot import nbformat", py)
	}
	data, err := os.ReadFile(repoNotebooks(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	ours, err := Format(data)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", "import sys, nbformat; sys.stdout.write(nbformat.writes(nbformat.reads(sys.stdin.read(), as_version=4)) + '\\n')")
	cmd.Stdin = strings.NewReader(string(ours))
	theirs, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(theirs) != string(ours) {
		t.Errorf("nbformat.writes differs from Format (first notebook):\n%s", firstDiff(string(ours), string(theirs)))
	}
}

func firstDiff(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(la) && i < len(lb); i++ {
		if la[i] != lb[i] {
			return "line " + strconv.Itoa(i+1) + ":\n  Format:   " + la[i] + "\n  nbformat: " + lb[i]
		}
	}
	return "lengths differ"
}
