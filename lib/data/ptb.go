package data

import (
	"strings"

	"github.com/pkg/errors"
)

// PTB files under $LLMPRUNER_DATA (see ParseTextSet).
const (
	PTBTestFile  = "text/ptb/ptb.test.txt"
	PTBValidFile = "text/ptb/ptb.valid.txt"
)

// ReadPTB reads a Penn Treebank file in Mikolov's "simple-examples" layout (one sentence per
// line, e.g. ptb.test.txt or ptb.valid.txt) and returns the string LLM-Pruner evaluates:
// the rows of Hugging Face `ptb_text_only` joined with "\n\n". A row is one line of the file
// with surrounding whitespace removed (the dataset script's `line.strip()`), so
//
//	" no it was n't black monday \n but while ...\n"  →  "no it was n't black monday\n\nbut while ..."
//
// Line ends are "\n" (CRLF is accepted); a final newline at the end of the file does not make an
// extra empty row, while empty lines inside the file do (as in Python's line iteration). Note that
// LLM-Pruner's "ptb" numbers use the validation split (ptb.valid.txt).
func ReadPTB(path string) (string, error) {
	text, err := ReadText(path)
	if err != nil {
		return "", errors.Wrap(err, "reading PTB")
	}
	rows := PTBRows(text)
	if len(rows) == 0 {
		return "", errors.Errorf("PTB file %q is empty", path)
	}
	return strings.Join(rows, "\n\n"), nil
}

// PTBRows splits a Mikolov-format PTB text into its rows as Hugging Face ptb_text_only yields
// them: one per line (a trailing newline does not start a new line), each stripped of
// surrounding whitespace.
func PTBRows(text string) []string {
	if text == "" {
		return nil
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return lines
}
