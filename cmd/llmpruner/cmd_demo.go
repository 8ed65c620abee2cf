package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/data"
	"github.com/llmpruner/llmpruner/lib/eval"
	"github.com/llmpruner/llmpruner/lib/importance"
	"github.com/llmpruner/llmpruner/lib/lora"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/llmpruner/llmpruner/lib/prune"
	"github.com/pkg/errors"
)

var demoCmd = &command{
	name:     "demo",
	summary:  "stories260K end to end: prune 50% → recover with LoRA → evaluate, with a summary table",
	synopsis: "demo [--steps 100] [--ppl-kb 80] [--max-new-tokens 200] [--no-prune] [--no-recover] [--json]",
	details: `Runs llmpruner on stories260K, the real 260K-parameter TinyStories LLaMA by the author of
llama2.c. The model is taken from $LLMPRUNER_DATA/models/stories260K (stories260K.bin, tok512.bin),
else downloaded from the Hugging Face Hub (karpathy/tinyllamas) into the HF cache.
The TinyStories text ($LLMPRUNER_DATA/` + tinyStoriesText + `) is split at a story boundary: the
last --ppl-kb kilobytes are held out for perplexity (128-token windows, LLM-Pruner's protocol);
calibration and LoRA training use only the text before them.
Steps: the dense model's perplexity and a greedy story; block-wise pruning of 50% of the attention
heads (kv-head groups) and MLP channels of layers 1-4 (the first layer is kept, as the paper
keeps the first layers) with first-order Taylor importance on 10 samples × 64 tokens; LoRA
recovery (r 8, alpha 16, dropout 0.05 on all seven projections, lr 3e-3, --steps optimizer steps
of 16 windows × 128 tokens, 10% warm-up), merged into the weights; then perplexity and a story
of the recovered model, and a table of dense / pruned / recovered perplexity and parameters.
Without the TinyStories text, only the model, a story and no pruning are shown.`,
	examples: []string{
		"llmpruner demo",
		"llmpruner demo --steps 40 --max-new-tokens 60",
		"LLMPRUNER_DATA=/path/to/data llmpruner demo --json",
	},
	run: runDemo,
}

func init() { register(demoCmd) }

// Demo settings (see the command's details).
const (
	demoPruneRatio   = 0.5
	demoLoRARank     = 8
	demoLoRAAlpha    = 16
	demoLoRALR       = 3e-3
	demoLoRABatch    = 16
	demoLoRASeqLen   = 128
	demoDefaultSteps = 100
	demoHeldOutKB    = 80
)

// demoResult is the --json output of demo.
type demoResult struct {
	Model        modelInfo          `json:"model"`
	Text         string             `json:"ppl_text,omitempty"`
	HeldOutBytes int                `json:"held_out_bytes,omitempty"`
	TrainBytes   int                `json:"train_bytes,omitempty"`
	PPL          *eval.PPLResult    `json:"ppl,omitempty"`
	Story        string             `json:"story"`
	Pruned       *demoPruneResult   `json:"pruned,omitempty"`
	Recovered    *demoRecoverResult `json:"recovered,omitempty"`
	Table        []demoRow          `json:"table,omitempty"`
	TotalSeconds float64            `json:"seconds"`
}

// demoPruneResult is the pruning part of demoResult.
type demoPruneResult struct {
	ParamsBefore int64          `json:"params_before"`
	ParamsAfter  int64          `json:"params_after"`
	Heads        []int          `json:"heads_per_layer"`
	KVHeads      []int          `json:"kv_heads_per_layer"`
	Inter        []int          `json:"intermediate_per_layer"`
	PPL          eval.PPLResult `json:"ppl"`
	Story        string         `json:"story"`
}

// demoRecoverResult is the LoRA recovery part of demoResult.
type demoRecoverResult struct {
	Steps         int            `json:"steps"`
	BatchSize     int            `json:"batch_size"`
	SeqLen        int            `json:"seq_len"`
	LearningRate  float64        `json:"learning_rate"`
	R             int            `json:"r"`
	Alpha         float64        `json:"lora_alpha"`
	AdapterParams int            `json:"adapter_params"`
	TrainWindows  int            `json:"train_windows"`
	FirstLoss     float64        `json:"first_loss"`
	LastLoss      float64        `json:"last_loss"`
	TrainTokens   int            `json:"train_tokens"`
	TokensPerSec  float64        `json:"tokens_per_second"`
	Seconds       float64        `json:"seconds"`
	PPL           eval.PPLResult `json:"ppl"`
	Story         string         `json:"story"`
}

// demoRow is one row of the summary table.
type demoRow struct {
	Name   string  `json:"name"`
	Params int64   `json:"params"`
	PPL    float64 `json:"ppl"`
}

func runDemo(e *env, args []string) error {
	e.addJSON()
	steps := e.fs.Int("steps", demoDefaultSteps, "LoRA recovery `steps` (16 windows × 128 tokens each)")
	pplKB := e.fs.Int("ppl-kb", demoHeldOutKB, "hold out the last `KB` kilobytes of the TinyStories text for perplexity")
	maxNew := e.fs.Int("max-new-tokens", 200, "length of the generated stories in `tokens`")
	noPrune := e.fs.Bool("no-prune", false, "skip pruning and recovery")
	noRecover := e.fs.Bool("no-recover", false, "skip the LoRA recovery")
	if err := e.parse(args); err != nil {
		return err
	}
	if *pplKB < 1 || *maxNew < 1 || *steps < 1 {
		return usageErrorf("--ppl-kb, --steps and --max-new-tokens must be ≥ 1")
	}
	start := time.Now()
	w := e.stdout
	if e.json {
		w = io.Discard // the text report is replaced by one JSON document at the end
	}
	files, err := findStories260K(e)
	if err != nil {
		return err
	}
	m, err := e.loadModelAt(files.model, files.tokenizer)
	if err != nil {
		return err
	}
	var res demoResult
	res.Model = describeModel(m)
	section(w, "Model")
	printModelInfo(w, res.Model)

	split, err := demoText(e, *pplKB)
	if err != nil {
		return err
	}
	section(w, "Perplexity")
	if split.heldOut == "" {
		fmt.Fprintf(w, "skipped: TinyStories text not found (set LLMPRUNER_DATA to a folder holding %s)\n", tinyStoriesText)
	} else {
		fmt.Fprintf(w, "held-out text: the last %d KB of %s (%d KB before it are used for calibration and training)\n",
			len(split.heldOut)/1024, filepath.Base(split.path), len(split.train)/1024)
		ppl, err := demoPPL(e, w, m, split.heldOut, split.path)
		if err != nil {
			return err
		}
		res.PPL, res.Text = &ppl, split.path
		res.HeldOutBytes, res.TrainBytes = len(split.heldOut), len(split.train)
		res.Table = append(res.Table, demoRow{"dense", arch.NumParams(m.Config), ppl.PPL})
	}

	section(w, "A story (greedy, from BOS)")
	if res.Story, err = demoStory(w, m, *maxNew); err != nil {
		return err
	}

	if !*noPrune {
		if split.heldOut == "" {
			section(w, "Pruning")
			fmt.Fprintln(w, "skipped: Taylor importance needs TinyStories calibration text (set LLMPRUNER_DATA)")
		} else {
			if res.Pruned, err = demoPrune(e, w, m, split, res.PPL.PPL, *maxNew); err != nil {
				return err
			}
			res.Table = append(res.Table, demoRow{"pruned", res.Pruned.ParamsAfter, res.Pruned.PPL.PPL})
			if !*noRecover {
				if res.Recovered, err = demoRecover(e, w, m, split, *steps, *maxNew); err != nil {
					return err
				}
				res.Table = append(res.Table, demoRow{"recovered", arch.NumParams(m.Config), res.Recovered.PPL.PPL})
			}
		}
	}
	if len(res.Table) > 1 {
		section(w, "Summary: perplexity on the held-out TinyStories text")
		printDemoTable(w, res.Table, res.Recovered)
	}
	res.TotalSeconds = time.Since(start).Seconds()
	e.logf("demo finished in %s", time.Since(start).Round(time.Millisecond))
	if e.json {
		return e.printJSON(res)
	}
	return nil
}

// printDemoTable prints the dense / pruned / recovered rows and how much of the lost perplexity
// the recovery regained.
func printDemoTable(w io.Writer, rows []demoRow, rec *demoRecoverResult) {
	fmt.Fprintf(w, "| %-9s | %10s | %9s |\n", "model", "parameters", "PPL")
	fmt.Fprintf(w, "|-%s-|-%s:|-%s:|\n", strings.Repeat("-", 9), strings.Repeat("-", 10), strings.Repeat("-", 9))
	for _, r := range rows {
		fmt.Fprintf(w, "| %-9s | %10d | %9.3f |\n", r.Name, r.Params, r.PPL)
	}
	if len(rows) == 3 {
		lost, regained := rows[1].PPL-rows[0].PPL, rows[1].PPL-rows[2].PPL
		if lost > 0 {
			fmt.Fprintf(w, "LoRA regained %.1f%% of the perplexity lost by pruning (%d steps, %d adapter parameters merged into the weights).\n",
				100*regained/lost, rec.Steps, rec.AdapterParams)
		}
	}
}

func section(w io.Writer, title string) {
	fmt.Fprintf(w, "\n== %s ==\n", title)
}

// demoSplit is the TinyStories text cut in two at a story boundary: the held-out end (perplexity
// only) and the part before it (calibration and LoRA training).
type demoSplit struct {
	path, train, heldOut string
}

// demoText reads the TinyStories text and holds out its last kb kilobytes (cut at a blank line);
// an empty split when the file is not there.
func demoText(e *env, kb int) (demoSplit, error) {
	root := os.Getenv("LLMPRUNER_DATA")
	if root == "" {
		return demoSplit{}, nil
	}
	path := filepath.Join(root, tinyStoriesText)
	t, err := data.ReadText(path)
	if err != nil {
		e.logf("cannot read %s: %v", path, err)
		return demoSplit{}, nil
	}
	n := kb * 1024
	if n > len(t)/2 {
		return demoSplit{}, usageErrorf("--ppl-kb %d: the held-out part must be at most half of %s (%d KB)", kb, path, len(t)/1024)
	}
	i := strings.Index(t[len(t)-n:], "\n\n")
	if i < 0 {
		return demoSplit{}, errors.Errorf("%s: no blank line in its last %d KB to cut the held-out text at", path, kb)
	}
	cut := len(t) - n + i
	return demoSplit{path: path, train: t[:cut], heldOut: strings.TrimLeft(t[cut:], "\n")}, nil
}

// demoPPL prints and returns the perplexity of m on text.
func demoPPL(e *env, w io.Writer, m *models.Model, text, path string) (eval.PPLResult, error) {
	start := time.Now()
	res, err := e.perplexity(m, m, data.TextSet{Name: "tinystories", Path: path}, text, eval.DefaultPPLSeqLen, eval.DefaultPPLBatch)
	if err != nil {
		return res, err
	}
	fmt.Fprintf(w, "TinyStories (%s, %d KB): PPL %.3f over %d tokens (%d windows of %d) in %s\n",
		filepath.Base(path), len(text)/1024, res.PPL, res.Tokens, res.Windows, eval.DefaultPPLSeqLen, time.Since(start).Round(time.Millisecond))
	return res, nil
}

// demoStory prints and returns a greedy story from BOS.
func demoStory(w io.Writer, m *models.Model, maxNew int) (string, error) {
	tok, err := modelTokenizer(m)
	if err != nil {
		return "", err
	}
	out, err := m.Generate([]int{tok.BOS()}, models.GenerateOptions{MaxNewTokens: maxNew})
	if err != nil {
		return "", errors.WithMessage(err, "generating a story")
	}
	story := strings.TrimSpace(tok.Decode(out))
	fmt.Fprintln(w, story)
	return story, nil
}

// demoPrune prunes 50% of the heads and MLP channels of layers 1-4 with Taylor importance
// (calibration from the training part of the text) and prints the perplexity and a story of the
// pruned model.
func demoPrune(e *env, w io.Writer, m *models.Model, split demoSplit, before float64, maxNew int) (*demoPruneResult, error) {
	section(w, "Pruning: block-wise, 50% of layers 1-4, Taylor (param_first), 10 TinyStories samples × 64 tokens")
	tok, err := modelTokenizer(m)
	if err != nil {
		return nil, err
	}
	layers := &prune.Range{Start: 1, End: m.Config.NumLayers()}
	opts := prune.Options{
		Strategy: prune.Block, Ratio: demoPruneRatio, AttnLayers: layers, MLPLayers: layers,
		Importance: importance.Options{Criterion: importance.Taylor, Taylor: importance.ParamFirst},
		Sampler: func(step int) ([][]int, error) {
			return data.CalibrationSamples(tok, split.train, 10, 64, 42+int64(step-1))
		},
	}
	if err := opts.Validate(m.Config); err != nil {
		return nil, err
	}
	rep, err := e.runPruning(m, opts)
	if err != nil {
		return nil, err
	}
	c := m.Config
	res := &demoPruneResult{ParamsBefore: rep.ParamsBefore, ParamsAfter: rep.ParamsAfter,
		Heads: slices.Clone(c.Heads), KVHeads: slices.Clone(c.KVHeads), Inter: slices.Clone(c.Inter)}
	fmt.Fprintf(w, "parameters: %d → %d (%.1f%% removed)\n", rep.ParamsBefore, rep.ParamsAfter,
		100*(1-float64(rep.ParamsAfter)/float64(rep.ParamsBefore)))
	fmt.Fprintf(w, "per layer now: heads %v, kv heads %v, MLP %v\n", c.Heads, c.KVHeads, c.Inter)
	if res.PPL, err = demoPPL(e, w, m, split.heldOut, split.path); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "PPL before %.3f → after %.3f (no recovery training)\n", before, res.PPL.PPL)
	section(w, "A story from the pruned model (greedy, from BOS)")
	if res.Story, err = demoStory(w, m, maxNew); err != nil {
		return nil, err
	}
	return res, nil
}

// demoRecover trains a LoRA adapter on the training part of the text (windows of 128 tokens, none
// from the held-out part), merges it and prints the perplexity and a story of the recovered model.
func demoRecover(e *env, w io.Writer, m *models.Model, split demoSplit, steps, maxNew int) (*demoRecoverResult, error) {
	section(w, fmt.Sprintf("Recovery: LoRA r %d, alpha %d, lr %g, %d steps × %d windows of %d tokens",
		demoLoRARank, demoLoRAAlpha, demoLoRALR, steps, demoLoRABatch, demoLoRASeqLen))
	tok, err := modelTokenizer(m)
	if err != nil {
		return nil, err
	}
	ds, err := lora.PrepareText(tok, split.train, lora.DataOptions{CutoffLen: demoLoRASeqLen, ValSize: 32, Seed: 42})
	if err != nil {
		return nil, err
	}
	start := time.Now()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fin, err := lora.Finetune(ctx, m, ds, lora.TrainOptions{
		LoRA:     lora.Config{R: demoLoRARank, Alpha: demoLoRAAlpha, Dropout: 0.05},
		MaxSteps: steps, LearningRate: demoLoRALR, BatchSize: demoLoRABatch, MicroBatch: demoLoRABatch,
		WarmupSteps: max(steps/10, 1), EvalEvery: max(steps/4, 1), SaveEvery: -1,
		Progress: e.finetuneProgress(),
	})
	if err != nil {
		return nil, errors.WithMessage(err, "LoRA recovery")
	}
	res := &demoRecoverResult{Steps: fin.Steps, BatchSize: demoLoRABatch, SeqLen: demoLoRASeqLen, LearningRate: demoLoRALR,
		R: demoLoRARank, Alpha: demoLoRAAlpha, AdapterParams: fin.Adapter.NumParams(m), TrainWindows: len(ds.Train),
		FirstLoss: fin.Losses[0], LastLoss: fin.Losses[len(fin.Losses)-1], TrainTokens: fin.TrainTokens,
		TokensPerSec: fin.TokensPerSec, Seconds: time.Since(start).Seconds()}
	if err := lora.Merge(m); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "%d training windows; loss %.3f → %.3f in %.1fs (%.0f tokens/s); %d adapter parameters merged into the weights\n",
		res.TrainWindows, res.FirstLoss, res.LastLoss, res.Seconds, res.TokensPerSec, res.AdapterParams)
	if res.PPL, err = demoPPL(e, w, m, split.heldOut, split.path); err != nil {
		return nil, err
	}
	section(w, "A story from the recovered model (greedy, from BOS)")
	if res.Story, err = demoStory(w, m, maxNew); err != nil {
		return nil, err
	}
	return res, nil
}
