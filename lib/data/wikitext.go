package data

import (
	"strings"

	"github.com/pkg/errors"
)

// WikiText2TestFile is the WikiText-2 test file under $LLMPRUNER_DATA (see ParseTextSet).
const WikiText2TestFile = "text/wikitext2/wikitext2_test_joined_crlf.txt"

// ReadWikiText2 reads the WikiText-2 (raw, v1) test split stored as the "\n\n"-joined Hugging Face
// rows, the exact string LLM-Pruner's ppl_dataset.py tokenizes: `"\n\n".join(test["text"])`.
// The shipped file has CRLF line ends; they are turned into LF, which restores that string
// byte for byte (1,296,370 bytes, 4358 rows for the standard test split). A file already
// using LF is returned unchanged.
func ReadWikiText2(path string) (string, error) {
	text, err := ReadText(path)
	if err != nil {
		return "", errors.Wrap(err, "reading WikiText-2")
	}
	if strings.TrimSpace(text) == "" {
		return "", errors.Errorf("WikiText-2 file %q is empty", path)
	}
	return text, nil
}

// WikiText2Rows splits the joined WikiText-2 string back into its Hugging Face rows, the inverse
// of `"\n\n".join(rows)`. A plain split at "\n\n" is not that inverse (a row ending in "\n" followed
// by the separator makes "\n\n\n"), so it uses the rows' shape: a row is either empty or one line
// that starts with a character other than "\n" and ends with "\n". It fails when text does not
// have that shape.
func WikiText2Rows(joined string) ([]string, error) {
	var rows []string
	for p := 0; ; {
		row := ""
		if p < len(joined) && joined[p] != '\n' {
			end := strings.IndexByte(joined[p:], '\n')
			if end < 0 {
				return nil, errors.Errorf("WikiText-2 row %d at byte %d does not end in a newline", len(rows), p)
			}
			row = joined[p : p+end+1]
		}
		rows = append(rows, row)
		p += len(row)
		if p == len(joined) {
			return rows, nil
		}
		if !strings.HasPrefix(joined[p:], "\n\n") {
			return nil, errors.Errorf("WikiText-2 row %d at byte %d is not followed by the \"\\n\\n\" separator", len(rows)-1, p)
		}
		p += 2
	}
}
