package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeDataDir lays out a data folder with small stand-ins for the named sets.
func fakeDataDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for rel, content := range map[string]string{
		WikiText2TestFile: "\r\n\r\n = A = \r\n\r\n",
		PTBValidFile:      " valid one \n valid two \n",
		PTBTestFile:       " test one \n",
	} {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestParseTextSetDefaults(t *testing.T) {
	dir := fakeDataDir(t)
	for _, c := range []struct {
		spec, text string
		format     TextFormat
	}{
		{"wikitext2", "\n\n = A = \n\n", FormatWikiText2},
		{"ptb", "valid one\n\nvalid two", FormatPTB},
		{"ptb-test", "test one", FormatPTB},
	} {
		set, err := ParseTextSet(c.spec, dir)
		if err != nil {
			t.Fatalf("%s: %v", c.spec, err)
		}
		if set.Name != c.spec || set.Format != c.format {
			t.Errorf("%s: got %+v", c.spec, set)
		}
		text, err := set.Read()
		if err != nil {
			t.Fatal(err)
		}
		if text != c.text {
			t.Errorf("%s: text %q, want %q", c.spec, text, c.text)
		}
	}
}

func TestParseTextSetWithPath(t *testing.T) {
	dir := fakeDataDir(t)
	plain := writeTemp(t, "stories.txt", " a \r\n b ")
	for _, c := range []struct {
		spec, text string
		format     TextFormat
	}{
		{"text=" + plain, " a \n b ", FormatText},
		{"tinystories=" + plain, " a \n b ", FormatText},
		{"ptb=" + plain, "a\n\nb", FormatPTB},
		{"wikitext2=" + filepath.Join(dir, WikiText2TestFile), "\n\n = A = \n\n", FormatWikiText2},
	} {
		set, err := ParseTextSet(c.spec, "") // no data dir needed with a path
		if err != nil {
			t.Fatalf("%s: %v", c.spec, err)
		}
		text, err := set.Read()
		if err != nil {
			t.Fatal(err)
		}
		if set.Format != c.format || text != c.text {
			t.Errorf("%s: format %v text %q, want %v %q", c.spec, set.Format, text, c.format, c.text)
		}
	}
}

func TestParseTextSetErrors(t *testing.T) {
	dir := fakeDataDir(t)
	for _, c := range []struct{ spec, dataDir, want string }{
		{"", dir, "want NAME=PATH"},
		{"=x.txt", dir, "want NAME=PATH"},
		{"c4", dir, "only wikitext2, ptb and ptb-test"},
		{"wikitext2", "", "LLMPRUNER_DATA is not set"},
		{"text=", dir, "empty path"},
		{"text=" + filepath.Join(dir, "missing.txt"), dir, "missing.txt"},
		{"text=" + dir, dir, "is a directory"},
		{"ptb", t.TempDir(), "ptb.valid.txt"},
	} {
		_, err := ParseTextSet(c.spec, c.dataDir)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseTextSet(%q): error %v, want one containing %q", c.spec, err, c.want)
		}
	}
}
