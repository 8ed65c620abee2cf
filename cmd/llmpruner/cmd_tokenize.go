package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/llmpruner/llmpruner/lib/tokenizer"
	"github.com/pkg/errors"
)

var tokenizeCmd = &command{
	name:     "tokenize",
	summary:  "encode text into token ids and pieces",
	synopsis: "tokenize (--model M [--adapter DIR] | --tokenizer T) --text S [--no-bos] [--json]",
	details: `With --tokenizer alone no model is loaded. Ids include the BOS token unless --no-bos is given
(HF LlamaTokenizer's add_special_tokens=True).`,
	examples: []string{
		`llmpruner tokenize --tokenizer $LLMPRUNER_DATA/models/stories260K/tok512.bin --text "Once upon a time"`,
		`llmpruner tokenize --model ./llama-7b --text "Hello world" --no-bos --json`,
	},
	run: runTokenize,
}

func init() { register(tokenizeCmd) }

// tokenizeOutput is the --json output of tokenize.
type tokenizeOutput struct {
	IDs    []int    `json:"ids"`
	Pieces []string `json:"pieces"`
}

func runTokenize(e *env, args []string) error {
	e.addModel()
	e.addJSON()
	text := e.fs.String("text", "", "the text `S` to encode (UTF-8)")
	noBOS := e.fs.Bool("no-bos", false, "do not prepend the BOS token")
	if err := e.parse(args); err != nil {
		return err
	}
	if e.model == "" && e.tokenizer == "" {
		return usageErrorf("give --model M or --tokenizer T")
	}
	if !e.flagSet("text") {
		return usageErrorf("--text is required")
	}
	if err := checkText("--text", *text); err != nil {
		return err
	}
	tok, err := e.loadTokenizer()
	if err != nil {
		return err
	}
	var ids []int
	if *noBOS {
		ids, err = tok.Encode(*text)
	} else {
		ids, err = tokenizer.ModelInputs(tok, *text)
	}
	if err != nil {
		return errors.WithMessage(err, "encoding --text")
	}
	out := tokenizeOutput{IDs: ids, Pieces: make([]string, len(ids))}
	for i, id := range ids {
		out.Pieces[i] = tok.Piece(id)
	}
	if e.json {
		return e.printJSON(out)
	}
	fmt.Fprintf(e.stdout, "%d tokens\n", len(ids))
	fmt.Fprintf(e.stdout, "ids:    %s\n", joinInts(ids, " "))
	quoted := make([]string, len(out.Pieces))
	for i, p := range out.Pieces {
		quoted[i] = fmt.Sprintf("%q", p)
	}
	fmt.Fprintf(e.stdout, "pieces: %s\n", strings.Join(quoted, " "))
	return nil
}

// loadTokenizer returns --tokenizer's tokenizer when given without --model, else the model's.
func (e *env) loadTokenizer() (tokenizer.Tokenizer, error) {
	if e.model == "" {
		if _, err := os.Stat(e.tokenizer); err != nil {
			return nil, errors.Errorf("--tokenizer %s: no such file", e.tokenizer)
		}
		tok, _, err := tokenizer.Load(e.tokenizer)
		if err != nil {
			return nil, errors.WithMessagef(err, "--tokenizer %s", e.tokenizer)
		}
		return tok, nil
	}
	m, err := e.loadModel()
	if err != nil {
		return nil, err
	}
	return modelTokenizer(m)
}

// joinInts writes ids separated by sep.
func joinInts(ids []int, sep string) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprint(id)
	}
	return strings.Join(parts, sep)
}
