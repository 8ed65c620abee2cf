package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/llmpruner/llmpruner/lib/eval"
	"github.com/pkg/errors"
)

var evalZeroShotCmd = &command{
	name:     "eval zeroshot",
	summary:  "zero-shot accuracy on the paper's 7 tasks (lm-eval-harness 4d21ab6 protocol)",
	synopsis: "eval zeroshot --model M [--compare NAME=PATH ...] [--adapter DIR] [--tasks boolq,piqa,hellaswag,winogrande,arc_easy,arc_challenge,openbookqa] [--data-dir DIR] [--limit N] [--batch B] [--stream] [--max-memory SIZE] [--json]",
	details: `Each task is read from DIR/<task>.jsonl in the field layout the Hugging Face datasets give
lm-eval (default DIR: $LLMPRUNER_DATA/zeroshot/lm-eval-docs). The table shows the paper's metric
per task (acc_norm for PIQA, HellaSwag, ARC-e, ARC-c, OBQA; acc for BoolQ, WinoGrande).
--compare adds further models (e.g. pruned, recovered) as rows of the same table; --adapter applies
to --model only (write NAME=PATH+ADAPTER_DIR to compare a model with an adapter).
--limit N evaluates the first N documents of each task in file order. Note: lm-eval's own --limit
first shuffles the documents with Python's seed-42 RNG, so its quick runs pick different documents.
--stream evaluates models larger than memory: the requests go through one decoder layer at a time
(each layer read from the checkpoint once per sweep of requests, as many as --max-memory allows),
giving the loaded model's scores (LLaMA family; not GGUF files or adapters). --max-memory SIZE
alone streams only the models that would not fit when loaded.`,
	examples: []string{
		"llmpruner eval zeroshot --model $LLMPRUNER_DATA/models/stories260K/stories260K.bin --limit 50",
		"llmpruner eval zeroshot --model ./llama-7b-pruned --tasks boolq,piqa --data-dir ./lm-eval-docs --json",
		"llmpruner eval zeroshot --model ./stories260K-hf --compare pruned=./stories-pruned --limit 100",
	},
	run: runEvalZeroShot,
}

func init() { register(evalZeroShotCmd) }

// defaultZeroShotDir is where the task files live under $LLMPRUNER_DATA.
const defaultZeroShotDir = "zeroshot/lm-eval-docs"

func runEvalZeroShot(e *env, args []string) error {
	e.addModel()
	e.addMatMulDType()
	e.addJSON()
	taskList := e.fs.String("tasks", strings.Join(eval.PaperTasks, ","), "comma-separated lm-eval task `names`")
	dataDir := e.fs.String("data-dir", "", "`DIR` holding <task>.jsonl files (default $LLMPRUNER_DATA/"+defaultZeroShotDir+")")
	limit := e.fs.Int("limit", eval.NoLimit, "evaluate only the first `N` documents of each task (file order; -1 = all)")
	batch := e.fs.Int("batch", eval.DefaultBatchSize, "sequences per forward pass `B` (does not change the result)")
	stderrCols := e.fs.Bool("stderr", false, "show the standard errors in the table")
	sf := e.addEvalStream()
	var compare stringsFlag
	e.fs.Var(&compare, "compare", "also evaluate the model at `NAME=PATH` and show it as another row (repeatable)")
	if err := e.parse(args); err != nil {
		return err
	}
	if *limit == 0 || *limit < eval.NoLimit {
		return usageErrorf("--limit %d must be positive (or -1 for all documents)", *limit)
	}
	if *batch < 1 {
		return usageErrorf("--batch %d must be at least 1", *batch)
	}
	names, err := eval.ParseTaskList(*taskList)
	if err != nil {
		return usageErrorf("--tasks: %v", err)
	}
	dir := *dataDir
	if dir == "" {
		root := os.Getenv("LLMPRUNER_DATA")
		if root == "" {
			return usageErrorf("--data-dir is required when LLMPRUNER_DATA is not set")
		}
		dir = filepath.Join(root, defaultZeroShotDir)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return errors.Errorf("--data-dir %s: not a directory", dir)
	}
	for _, n := range names {
		if _, err := os.Stat(eval.TaskFile(dir, n)); err != nil {
			return errors.Errorf("task %s: %s is missing (--data-dir)", n, eval.TaskFile(dir, n))
		}
	}
	if err := e.requireModel(); err != nil {
		return err
	}
	type entry struct{ name, path, adapter string }
	first := filepath.Base(filepath.Clean(e.model))
	if e.adapter != "" {
		first += "+" + filepath.Base(filepath.Clean(e.adapter))
	}
	entries := []entry{{first, e.model, e.adapter}}
	if err := e.checkAdapterDir(); err != nil {
		return err
	}
	for _, c := range compare {
		name, path, ok := strings.Cut(c, "=")
		if !ok || name == "" || path == "" {
			return usageErrorf("--compare %q: want NAME=PATH or NAME=PATH+ADAPTER_DIR", c)
		}
		var adapter string
		if _, err := os.Stat(path); err != nil {
			if i := strings.LastIndex(path, "+"); i > 0 {
				path, adapter = path[:i], path[i+1:]
			}
		}
		if _, err := os.Stat(path); err != nil {
			return errors.Errorf("--compare %s: %s: no such file or directory", name, path)
		}
		if adapter != "" {
			if err := (&env{adapter: adapter}).checkAdapterDir(); err != nil {
				return errors.WithMessagef(err, "--compare %s", name)
			}
		}
		entries = append(entries, entry{name, path, adapter})
	}
	var rows []eval.ModelResult
	for _, en := range entries {
		res, err := e.zeroShot(en.path, en.adapter, sf, dir, names, *limit, *batch)
		if err != nil {
			return err
		}
		rows = append(rows, eval.ModelResult{Name: en.name, Result: res})
	}
	if e.json {
		var out []byte
		var err error
		if len(rows) == 1 {
			out, err = rows[0].Result.JSON()
		} else {
			out, err = eval.ResultsJSON(rows)
		}
		if err != nil {
			return err
		}
		return e.printJSON(json.RawMessage(out))
	}
	table, err := eval.MarkdownTable(rows, *stderrCols)
	if err != nil {
		return err
	}
	fmt.Fprint(e.stdout, table)
	fmt.Fprintln(e.stdout)
	fmt.Fprintln(e.stdout, eval.MetricNote(rows[0].Result))
	return nil
}

// zeroShot loads the model at path (with the LoRA adapter directory adapter, if any), or opens it
// streamed (--stream, --max-memory), and evaluates it.
func (e *env) zeroShot(path, adapter string, sf *evalStreamFlags, dir string, names []string, limit, batch int) (*eval.ZeroShotResult, error) {
	m, err := e.openEval(path, adapter, sf, batch, 0)
	if err != nil {
		return nil, err
	}
	defer m.close()
	perCall := batch // sequences per scorer call
	if m.streamed != nil {
		perCall = m.streamed.SweepSequences(64) // sweeps of 64-token sequences (longer ones split further)
	}
	tok, err := modelTokenizer(m.Model)
	if err != nil {
		return nil, err
	}
	// lm-eval's max_length is the model's context: it keeps max_length+1 tokens of
	// context+continuation (the last only a target), which TokenLogProbs accepts.
	maxLen := m.Config.MaxPositions
	bar := e.progress(0, "zero-shot "+filepath.Base(path))
	if m.streamed != nil { // the stage of the sweep under way
		m.streamed.Progress = func(stage string) { bar.Describe("zero-shot " + filepath.Base(path) + ": " + stage) }
	}
	res, err := eval.ZeroShot(m.scorer(), tok, eval.ZeroShotOptions{
		DataDir: dir, Tasks: names, Limit: limit, BatchSize: perCall, MaxLength: maxLen,
		Progress: func(p eval.Progress) {
			bar.ChangeMax(p.Total)
			_ = bar.Set(p.Done)
		},
	})
	_ = bar.Finish()
	if err != nil {
		return nil, errors.WithMessagef(err, "model %s", path)
	}
	e.logf("%s: %d requests (%d sequences, %d tokens) in %s: %.1f requests/s", path,
		res.Requests, res.Sequences, res.Tokens, res.Elapsed.Round(1e6), res.RequestsPerSecond())
	return res, nil
}
