package main

import (
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
	synopsis: "eval zeroshot --model M [--adapter DIR] [--tasks boolq,piqa,hellaswag,winogrande,arc_easy,arc_challenge,openbookqa] [--data-dir DIR] [--limit N] [--batch B] [--json]",
	details: `Each task is read from DIR/<task>.jsonl in the field layout the Hugging Face datasets give
lm-eval (default DIR: $LLMPRUNER_DATA/zeroshot/lm-eval-docs). The table shows the paper's metric
per task (acc_norm for PIQA, HellaSwag, ARC-e, ARC-c, OBQA; acc for BoolQ, WinoGrande).
--limit N evaluates the first N documents of each task in file order. Note: lm-eval's own --limit
first shuffles the documents with Python's seed-42 RNG, so its quick runs pick different documents.`,
	examples: []string{
		"llmpruner eval zeroshot --model $LLMPRUNER_DATA/models/stories260K/stories260K.bin --limit 50",
		"llmpruner eval zeroshot --model ./llama-7b-pruned --tasks boolq,piqa --data-dir ./lm-eval-docs --json",
	},
	run: runEvalZeroShot,
}

func init() { register(evalZeroShotCmd) }

// defaultZeroShotDir is where the task files live under $LLMPRUNER_DATA.
const defaultZeroShotDir = "zeroshot/lm-eval-docs"

func runEvalZeroShot(e *env, args []string) error {
	e.addModel()
	e.addJSON()
	e.addAdapter()
	taskList := e.fs.String("tasks", strings.Join(eval.PaperTasks, ","), "comma-separated lm-eval task `names`")
	dataDir := e.fs.String("data-dir", "", "`DIR` holding <task>.jsonl files (default $LLMPRUNER_DATA/"+defaultZeroShotDir+")")
	limit := e.fs.Int("limit", eval.NoLimit, "evaluate only the first `N` documents of each task (file order; -1 = all)")
	batch := e.fs.Int("batch", eval.DefaultBatchSize, "sequences per forward pass `B` (does not change the result)")
	stderrCols := e.fs.Bool("stderr", false, "show the standard errors in the table")
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
	m, err := e.loadModel()
	if err != nil {
		return err
	}
	tok, err := modelTokenizer(m)
	if err != nil {
		return err
	}
	// lm-eval keeps max_length+1 tokens of context+continuation and feeds the first max_length;
	// the harness hands the scorer the whole max_length+1 window, which the model refuses when it
	// exceeds the context, so the window is capped one token earlier (this only changes requests
	// longer than the context).
	maxLen := m.Config.MaxPositions - 1
	bar := e.progress(0, "zero-shot")
	res, err := eval.ZeroShot(m, tok, eval.ZeroShotOptions{
		DataDir: dir, Tasks: names, Limit: *limit, BatchSize: *batch, MaxLength: maxLen,
		Progress: func(p eval.Progress) {
			bar.ChangeMax(p.Total)
			_ = bar.Set(p.Done)
		},
	})
	_ = bar.Finish()
	if err != nil {
		return err
	}
	e.logf("%d requests (%d sequences, %d tokens) in %s: %.1f requests/s",
		res.Requests, res.Sequences, res.Tokens, res.Elapsed.Round(1e6), res.RequestsPerSecond())
	if e.json {
		out, err := res.JSON()
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "%s\n", out)
		return err
	}
	table, err := eval.MarkdownTable([]eval.ModelResult{{Name: filepath.Base(m.Source), Result: res}}, *stderrCols)
	if err != nil {
		return err
	}
	fmt.Fprint(e.stdout, table)
	fmt.Fprintln(e.stdout)
	fmt.Fprintln(e.stdout, eval.MetricNote(res))
	return nil
}
