package data

import (
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/lib/internal/testdata"
)

// The numbers below are properties of the public datasets (Hugging Face wikitext-2-raw-v1 test:
// 4358 rows, first rows "", " = Robert Boulter = \n", ""; Mikolov PTB test: 3761 sentences,
// 78669 words; validation: 3370 sentences), not outputs of this package.

func TestReadWikiText2(t *testing.T) {
	text, err := ReadWikiText2(testdata.Path(t, WikiText2TestFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(text) != 1296370 {
		t.Errorf("WikiText-2 test text is %d bytes, want 1296370", len(text))
	}
	if strings.Contains(text, "\r") {
		t.Error("CR left in the WikiText-2 text")
	}
	rows, err := WikiText2Rows(text)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows, "\n\n") != text {
		t.Fatal("rows do not join back to the text")
	}
	if len(rows) != 4358 {
		t.Fatalf("%d rows, want 4358", len(rows))
	}
	if rows[0] != "" || rows[1] != " = Robert Boulter = \n" || rows[2] != "" {
		t.Errorf("first rows %q, want \"\", \" = Robert Boulter = \\n\", \"\"", rows[:3])
	}
	if !strings.HasPrefix(rows[3], " Robert Boulter is an English film , television and theatre actor .") {
		t.Errorf("row 3 = %.60q", rows[3])
	}
	// The non-empty rows are the lines of the independently published non-empty-lines file.
	lines, err := ReadText(testdata.Path(t, "text/wikitext2/wiki.test.raw_nonempty_crlf.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var nonEmpty []string
	for _, r := range rows {
		if r != "" {
			nonEmpty = append(nonEmpty, r)
		}
	}
	if len(nonEmpty) != 2891 || strings.Join(nonEmpty, "") != lines {
		t.Errorf("%d non-empty rows (want 2891); equal to wiki.test.raw non-empty lines: %v", len(nonEmpty), strings.Join(nonEmpty, "") == lines)
	}
}

func TestReadPTB(t *testing.T) {
	for _, c := range []struct {
		file       string
		rows       int
		words      int
		first      string
		lastSuffix string
	}{
		{PTBTestFile, 3761, 78669, "no it was n't black monday", "we may not see them here with us"},
		{PTBValidFile, 3370, 70390, // 73760 tokens counting <eos>
			"consumers may want to move their telephones a little closer to the tv set", "from $ N million in fiscal N and $ N million in N"},
	} {
		text, err := ReadPTB(testdata.Path(t, c.file))
		if err != nil {
			t.Fatal(err)
		}
		rows := strings.Split(text, "\n\n")
		if len(rows) != c.rows {
			t.Errorf("%s: %d rows, want %d", c.file, len(rows), c.rows)
		}
		if rows[0] != c.first || !strings.HasSuffix(rows[len(rows)-1], c.lastSuffix) {
			t.Errorf("%s: first row %q, last row %q", c.file, rows[0], rows[len(rows)-1])
		}
		words := 0
		for _, r := range rows {
			if r != strings.TrimSpace(r) {
				t.Fatalf("%s: row %q not stripped", c.file, r)
			}
			words += len(strings.Fields(r))
		}
		if words != c.words {
			t.Errorf("%s: %d words, want %d", c.file, words, c.words)
		}
	}
}

func TestPTBRowsSynthetic(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{" a b \n c \n", "a b\n\nc"},
		{" a b \n c ", "a b\n\nc"},
		{" a \r\n\r\n b \r\n", "a\n\n\n\nb"}, // an empty line is an empty row
	} {
		p := writeTemp(t, "ptb.txt", c.in)
		got, err := ReadPTB(p)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("ReadPTB(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if _, err := ReadPTB(writeTemp(t, "empty.txt", "")); err == nil {
		t.Error("empty PTB file: want an error")
	}
}

func TestWikiText2RowsSynthetic(t *testing.T) {
	rows, err := WikiText2Rows("\n\n = A = \n\n\n\n\n b \n\n\n")
	if want := []string{"", " = A = \n", "", " b \n", ""}; err != nil || strings.Join(rows, "|") != strings.Join(want, "|") {
		t.Errorf("rows %q, %v; want %q", rows, err, want)
	}
	for _, bad := range []string{"a", "a\nb\n", "\n"} {
		if _, err := WikiText2Rows(bad); err == nil {
			t.Errorf("WikiText2Rows(%q): want an error", bad)
		}
	}
}
