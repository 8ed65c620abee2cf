package main

import (
	"fmt"
	"os"

	"github.com/llmpruner/llmpruner/lib/data"
	"github.com/llmpruner/llmpruner/lib/eval"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/pkg/errors"
)

var evalPPLCmd = &command{
	name:     "eval ppl",
	summary:  "perplexity on text sets, exactly as LLM-Pruner measures it",
	synopsis: "eval ppl --model M [--adapter DIR] --data NAME=PATH [--data NAME=PATH ...] [--seq-len 128] [--batch 4] [--stream] [--max-memory SIZE] [--json]",
	details: `Each set's text is tokenized once with one BOS at the start, cut into non-overlapping windows of
--seq-len tokens (the last partial window is dropped); PPL = exp(mean next-token NLL).
--data forms: wikitext2=PATH (WikiText-2 joined test file), ptb=PATH (Mikolov PTB file), any
other NAME=PATH (plain UTF-8 text), or wikitext2 | ptb | ptb-test alone (files under $LLMPRUNER_DATA).
Evaluate on text the model was not calibrated (prune --calib) or fine-tuned on: llmpruner does not
check the overlap.
--stream evaluates a model larger than memory: the windows go through one decoder layer at a time,
each layer read from the checkpoint once per sweep, the head last; as many windows share a sweep as
--max-memory allows (without it, 1 GiB of activations between layers). The result is the loaded
model's (LLaMA family; not GGUF files or --adapter). --max-memory SIZE alone streams only when the
loaded model would not fit.`,
	examples: []string{
		"llmpruner eval ppl --model $LLMPRUNER_DATA/models/stories260K/stories260K.bin --data tinystories=$LLMPRUNER_DATA/text/tinystories/tinystories_val_head.txt",
		"llmpruner eval ppl --model ./llama-7b --data wikitext2 --data ptb --json",
	},
	run: runEvalPPL,
}

func init() { register(evalPPLCmd) }

// pplOutput is one set's result in --json output.
type pplOutput struct {
	Name string `json:"name"`
	Path string `json:"path"`
	eval.PPLResult
}

func runEvalPPL(e *env, args []string) error {
	e.addModel()
	e.addMatMulDType()
	e.addJSON()
	var specs stringsFlag
	e.fs.Var(&specs, "data", "text set `NAME=PATH` (repeatable); see above for the forms")
	seqLen := e.fs.Int("seq-len", eval.DefaultPPLSeqLen, "window length in `tokens`")
	batch := e.fs.Int("batch", eval.DefaultPPLBatch, "windows scored per forward pass (does not change the result)")
	sf := e.addEvalStream()
	if err := e.parse(args); err != nil {
		return err
	}
	if len(specs) == 0 {
		return usageErrorf("--data is required (e.g. --data wikitext2=PATH)")
	}
	if *seqLen < 2 {
		return usageErrorf("--seq-len %d must be at least 2", *seqLen)
	}
	if *batch < 1 {
		return usageErrorf("--batch %d must be at least 1", *batch)
	}
	if err := e.requireModel(); err != nil {
		return err
	}
	// Every set is read before the model is loaded, so that a bad file fails fast.
	sets := make([]data.TextSet, len(specs))
	texts := make([]string, len(specs))
	for i, spec := range specs {
		set, err := data.ParseTextSet(spec, os.Getenv(data.DataDirEnv))
		if err != nil {
			return err
		}
		if texts[i], err = set.Read(); err != nil {
			return err
		}
		sets[i] = set
	}
	if err := e.checkAdapterDir(); err != nil {
		return err
	}
	m, err := e.openEval(e.model, e.adapter, sf, *batch, *seqLen)
	if err != nil {
		return err
	}
	defer m.close()
	var results []pplOutput
	for i, set := range sets {
		perCall := *batch // windows per scorer call
		if m.streamed != nil {
			perCall = m.streamed.SweepSequences(*seqLen) // one sweep through the layers per call
		}
		res, err := e.perplexity(m.scorer(), m.Model, set, texts[i], *seqLen, perCall)
		if err != nil {
			return err
		}
		results = append(results, pplOutput{Name: set.Name, Path: set.Path, PPLResult: res})
		if !e.json {
			fmt.Fprintf(e.stdout, "%-12s PPL %.4f  (NLL %.5f over %d tokens, %d windows of %d)\n",
				set.Name, res.PPL, res.NLL, res.Tokens, res.Windows, *seqLen)
		}
	}
	if e.json {
		return e.printJSON(map[string]any{"seq_len": *seqLen, "sets": results})
	}
	return nil
}

// perplexity measures the perplexity of scorer (the model m, loaded or streamed) on the text of a
// set, with a progress bar.
func (e *env) perplexity(scorer eval.Scorer, m *models.Model, set data.TextSet, text string, seqLen, batch int) (eval.PPLResult, error) {
	tok, err := modelTokenizer(m)
	if err != nil {
		return eval.PPLResult{}, err
	}
	if text == "" {
		return eval.PPLResult{}, errors.Errorf("data set %s (%s) is empty", set.Name, set.Path)
	}
	bar := e.progress(0, "PPL "+set.Name)
	defer bar.Finish()
	if s, ok := scorer.(*models.Streamed); ok { // the stage of the sweep under way
		s.Progress = func(stage string) { bar.Describe("PPL " + set.Name + ": " + stage) }
		defer func() { s.Progress = nil }()
	}
	res, err := eval.Perplexity(scorer, tok, text, eval.PPLOptions{
		SeqLen: seqLen, Batch: batch,
		Progress: func(done, total int) {
			bar.ChangeMax(total)
			_ = bar.Set(done)
		},
	})
	if err != nil {
		return eval.PPLResult{}, errors.WithMessagef(err, "data set %s (%s)", set.Name, set.Path)
	}
	return res, nil
}
