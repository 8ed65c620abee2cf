package data

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/llmpruner/llmpruner/lib/option"
	"github.com/pkg/errors"
)

// TextFormat says how a text set's file is read.
type TextFormat int

const (
	// FormatText is any plain UTF-8 file, read with ReadText.
	FormatText TextFormat = iota
	// FormatWikiText2 is the "\n\n"-joined WikiText-2 test file, read with ReadWikiText2.
	FormatWikiText2
	// FormatPTB is a Mikolov-layout Penn Treebank file, read with ReadPTB.
	FormatPTB
)

// String names the format as the CLI does.
func (f TextFormat) String() string {
	switch f {
	case FormatWikiText2:
		return "wikitext2"
	case FormatPTB:
		return "ptb"
	default:
		return "text"
	}
}

// TextSet is one evaluation text named on the command line (`--data NAME=PATH`).
type TextSet struct {
	Name   string     // label shown in results, e.g. "wikitext2"
	Format TextFormat // how Path is read
	Path   string     // the file
}

// DataDirEnv is the environment variable naming the data folder (laid out like ../shared/data).
const DataDirEnv = "LLMPRUNER_DATA"

// defaultSetFiles are the files that `--data wikitext2` / `--data ptb` resolve to under the
// data folder. "ptb" is the validation split because that is what LLM-Pruner reports as PTB;
// "ptb-test" names the test split.
var defaultSetFiles = map[string]string{
	"wikitext2": WikiText2TestFile,
	"ptb":       PTBValidFile,
	"ptb-test":  PTBTestFile,
}

// OptTextSet is ParseTextSet's spec as error messages name it (option.Error).
const OptTextSet option.Name = "data.ParseTextSet spec"

// ParseTextSet resolves a `--data` value. Forms:
//
//	wikitext2=PATH   WikiText-2 joined test file (ReadWikiText2)
//	ptb=PATH         Mikolov PTB file (ReadPTB); ptb-test=PATH likewise
//	text=PATH        any plain UTF-8 file (ReadText); any other NAME=PATH is plain text labelled NAME
//	wikitext2 | ptb | ptb-test
//	                 the file under dataDir (usually $LLMPRUNER_DATA, see DataDirEnv):
//	                 text/wikitext2/wikitext2_test_joined_crlf.txt, text/ptb/ptb.valid.txt
//	                 (LLM-Pruner's PTB split), text/ptb/ptb.test.txt
//
// dataDir may be empty when every spec has a PATH. The file is not read here (see TextSet.Read);
// its existence is checked so that a typo fails before any model is loaded.
func ParseTextSet(spec, dataDir string) (TextSet, error) {
	name, path, hasPath := strings.Cut(spec, "=")
	name = strings.TrimSpace(name)
	if name == "" {
		return TextSet{}, option.Errorf("%s %q: want NAME=PATH (NAME wikitext2, ptb or text) or wikitext2|ptb", OptTextSet, spec)
	}
	set := TextSet{Name: name, Format: formatOf(name), Path: path}
	if !hasPath {
		rel, ok := defaultSetFiles[name]
		if !ok {
			return TextSet{}, option.Errorf("%s %q: only wikitext2, ptb and ptb-test can be given without a path; use NAME=PATH", OptTextSet, spec)
		}
		if dataDir == "" {
			return TextSet{}, option.Errorf("%s %s: no path given and %s is not set; set it to the llmpruner data folder or use %s=PATH",
				OptTextSet, name, DataDirEnv, name)
		}
		set.Path = filepath.Join(dataDir, rel)
	}
	if set.Path == "" {
		return TextSet{}, option.Errorf("%s %q: empty path", OptTextSet, spec)
	}
	if st, err := os.Stat(set.Path); err != nil {
		return TextSet{}, option.Errorf("%s %s: %w", OptTextSet, name, err)
	} else if st.IsDir() {
		return TextSet{}, option.Errorf("%s %s: %q is a directory, want a text file", OptTextSet, name, set.Path)
	}
	return set, nil
}

// formatOf maps a set name to its reader: wikitext2 and ptb/ptb-* get their dataset readers,
// every other name is plain text.
func formatOf(name string) TextFormat {
	switch {
	case name == "wikitext2":
		return FormatWikiText2
	case name == "ptb" || strings.HasPrefix(name, "ptb-"):
		return FormatPTB
	default:
		return FormatText
	}
}

// Read returns the evaluation string of the set (see ReadText, ReadWikiText2, ReadPTB).
func (s TextSet) Read() (string, error) {
	var (
		text string
		err  error
	)
	switch s.Format {
	case FormatWikiText2:
		text, err = ReadWikiText2(s.Path)
	case FormatPTB:
		text, err = ReadPTB(s.Path)
	default:
		text, err = ReadText(s.Path)
	}
	if err != nil {
		return "", errors.Wrapf(err, "data set %s", s.Name)
	}
	return text, nil
}
