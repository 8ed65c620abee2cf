package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/llmpruner/llmpruner/lib/tokenizer"
	"github.com/pkg/errors"
)

var generateCmd = &command{
	name:     "generate",
	summary:  "continue a prompt with the model (greedy or sampled)",
	synopsis: "generate --model M [--adapter DIR] [--prompt S | --ids 1,2,3] [--max-new-tokens N] [--temperature T] [--top-p P] [--top-k K] [--seed S] [--json]",
	details: `The prompt is BOS + the encoded --prompt, or exactly the --ids given; with neither, generation
starts from BOS alone. --temperature 0 (the default) is greedy decoding. Generation stops at EOS,
after --max-new-tokens, or at the end of the model's context.
With --json the output is {"ids": [...generated ids...], "text": "..."}: the generated tokens only, and
their text as it continues the prompt.`,
	examples: []string{
		"llmpruner generate --model $LLMPRUNER_DATA/models/stories260K/stories260K.bin --max-new-tokens 64",
		`llmpruner generate --model ./llama-7b --prompt "The capital of France is" --temperature 0.8 --top-p 0.9 --seed 7`,
		"llmpruner generate --model ./tiny-random-llama --ids 1,2,3 --max-new-tokens 10 --json",
	},
	run: runGenerate,
}

func init() { register(generateCmd) }

// generateOutput is the --json output of generate.
type generateOutput struct {
	IDs  []int  `json:"ids"`
	Text string `json:"text"`
}

func runGenerate(e *env, args []string) error {
	e.addModel()
	e.addMatMulDType()
	e.addJSON()
	prompt := e.fs.String("prompt", "", "prompt text `S` (encoded with BOS)")
	var ids intsFlag
	e.fs.Var(&ids, "ids", "prompt as comma-separated token `ids` (used as given, no BOS added)")
	maxNew := e.fs.Int("max-new-tokens", 128, "generate at most `N` tokens (0: until EOS or the context is full)")
	temp := e.fs.Float64("temperature", 0, "sampling temperature `T`; 0 = greedy")
	topP := e.fs.Float64("top-p", 0, "nucleus sampling: keep the most likely tokens up to probability `P` (0 or 1 = all)")
	topK := e.fs.Int("top-k", 0, "sample only among the `K` most likely tokens (0 = all)")
	seed := e.fs.Uint64("seed", 42, "random `seed` for sampling")
	if err := e.parse(args); err != nil {
		return err
	}
	switch {
	case e.flagSet("prompt") && ids.set:
		return usageErrorf("give either --prompt or --ids, not both")
	case *maxNew < 0:
		return usageErrorf("--max-new-tokens %d must be ≥ 0", *maxNew)
	case *temp < 0:
		return usageErrorf("--temperature %g must be ≥ 0", *temp)
	case *topP < 0 || *topP > 1:
		return usageErrorf("--top-p %g must be in [0, 1]", *topP)
	case *topK < 0:
		return usageErrorf("--top-k %d must be ≥ 0", *topK)
	}
	if err := checkText("--prompt", *prompt); err != nil {
		return err
	}
	m, err := e.loadModel()
	if err != nil {
		return err
	}
	promptIDs, err := promptTokens(m, *prompt, ids)
	if err != nil {
		return err
	}
	if err := m.CheckSequences([][]int{promptIDs}, 1); err != nil {
		return errors.WithMessage(err, "prompt")
	}
	tok := m.Tokenizer
	stream := newTextStream(e, tok, promptIDs)
	if !e.json && tok != nil && e.flagSet("prompt") {
		fmt.Fprint(e.stdout, *prompt)
	}
	out, err := m.Generate(promptIDs, models.GenerateOptions{
		MaxNewTokens: *maxNew, Temperature: *temp, TopK: *topK, TopP: *topP, Seed: *seed,
		OnToken: stream.add,
	})
	if err != nil {
		return errors.WithMessage(err, "generating")
	}
	if e.json {
		return e.printJSON(generateOutput{IDs: nonNil(out), Text: continuation(tok, promptIDs, out)})
	}
	if tok == nil {
		fmt.Fprintln(e.stdout, joinInts(out, " "))
		return nil
	}
	stream.finish(continuation(tok, promptIDs, out))
	return nil
}

// continuation is the text of generated as it continues prompt: decode(prompt + generated) minus
// decode(prompt), so that the space a SentencePiece word-start piece carries is kept (decoding the
// generated ids alone would drop it, as HF's decode does at the start of a text).
func continuation(tok tokenizer.Tokenizer, prompt, generated []int) string {
	if tok == nil {
		return ""
	}
	base := tok.Decode(prompt)
	full := tok.Decode(append(slices.Clone(prompt), generated...))
	if strings.HasPrefix(full, base) {
		return full[len(base):]
	}
	return tok.Decode(generated)
}

// promptTokens builds the prompt: --ids as given, else BOS + encoded --prompt, else BOS.
func promptTokens(m *models.Model, prompt string, ids intsFlag) ([]int, error) {
	if ids.set {
		return ids.vals, nil
	}
	tok, err := modelTokenizer(m)
	if err != nil {
		return nil, err
	}
	if prompt == "" {
		if tok.BOS() < 0 {
			return nil, errors.New("the tokenizer has no BOS token: give --prompt or --ids")
		}
		return []int{tok.BOS()}, nil
	}
	p, err := tokenizer.ModelInputs(tok, prompt)
	return p, errors.WithMessage(err, "encoding --prompt")
}

// textStream prints generated text on stdout as tokens arrive (text mode only).
type textStream struct {
	e       *env
	tok     tokenizer.Tokenizer
	prompt  []int
	ids     []int
	printed string
}

func newTextStream(e *env, tok tokenizer.Tokenizer, prompt []int) *textStream {
	return &textStream{e: e, tok: tok, prompt: prompt}
}

// add receives one generated token; it prints the newly decoded text when it extends what was
// printed (a partial UTF-8 sequence waits for its next byte token).
func (s *textStream) add(id int) bool {
	s.ids = append(s.ids, id)
	if s.e.json || s.tok == nil {
		return true
	}
	text := continuation(s.tok, s.prompt, s.ids)
	if strings.HasPrefix(text, s.printed) && !strings.HasSuffix(text, "\uFFFD") {
		fmt.Fprint(s.e.stdout, text[len(s.printed):])
		s.printed = text
	}
	return true
}

// finish prints whatever of the final text was not printed yet, and a newline.
func (s *textStream) finish(text string) {
	if strings.HasPrefix(text, s.printed) {
		fmt.Fprint(s.e.stdout, text[len(s.printed):])
	}
	fmt.Fprintln(s.e.stdout)
}

// nonNil makes an empty id list marshal as [] rather than null.
func nonNil(ids []int) []int {
	if ids == nil {
		return []int{}
	}
	return ids
}
