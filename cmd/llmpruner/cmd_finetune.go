package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/atomicfile"
	"github.com/llmpruner/llmpruner/lib/data"
	"github.com/llmpruner/llmpruner/lib/lora"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/llmpruner/llmpruner/lib/tokenizer"
	"github.com/pkg/errors"
	"github.com/schollz/progressbar/v3"
)

var finetuneCmd = &command{
	name:    "finetune",
	summary: "recover a (pruned) model with LoRA; writes a PEFT adapter (and optionally the merged model)",
	synopsis: `finetune --model M --data PATH [--data-format alpaca|text] --out DIR
      [--lora-r 8 --lora-alpha 16 --lora-dropout 0.05 --lora-targets q,k,v,o,gate,up,down]
      [--epochs 2 | --max-steps N] [--lr 1e-4] [--batch 64 --micro-batch 4] [--warmup-steps 100]
      [--cutoff-len 256] [--train-on-inputs] [--val-size 2000] [--eval-every 100] [--eval-data NAME=PATH ...]
      [--save-every 200 --keep 20] [--resume DIR] [--keep-last] [--merge] [--seed 42] [--tensor-parallel N] [--json]`,
	details: `As LLM-Pruner's post_training.py (PEFT LoRA + the Hugging Face Trainer): AdamW, linear warm-up then
linear decay, gradient clipping at 1.0, --batch examples per optimizer step in micro-batches of
--micro-batch (gradient accumulation), validation loss every --eval-every steps.
Data: --data-format alpaca (JSON array of {instruction, input, output}; Alpaca-LoRA prompt, EOS,
prompt tokens masked unless --train-on-inputs, truncated at --cutoff-len; records whose prompt
fills the cutoff are skipped and counted) or text (a UTF-8 file cut into windows of --cutoff-len
tokens); default: alpaca for .json files, else text. --val-size examples (records or windows) are
held out for validation, drawn with --seed.
Targets: LLaMA q,k,v,o,gate,up,down (default all seven); ChatGLM query_key_value,dense,
dense_h_to_4h,dense_4h_to_h (default all four). PEFT names (q_proj, ...) are accepted too.
Output in --out: adapter_config.json + adapter_model.safetensors (PEFT format; the adapter with
the best validation loss unless --keep-last), training_log.json, and checkpoint-N/ every
--save-every steps (the last --keep kept). --resume DIR continues from DIR/checkpoint-N (or the
latest checkpoint of DIR) bit-identically; give the same flags and data. --merge also writes
--out/merged: a plain Hugging Face model with W + (alpha/r)·B·A folded in, written atomically.
Ctrl-C stops cleanly between steps (resume with --resume --out DIR).
--tensor-parallel N splits the model over N devices (heads and MLP channels per device, XLA's
partitioner; GPUs through the xla build, see README "Several GPUs"); the pure-Go CPU backend has
one device and refuses it.
Use the adapter with any command's --adapter DIR, or merge it later with convert --adapter.`,
	examples: []string{
		"llmpruner finetune --model ./llama-7b-pruned --data $LLMPRUNER_DATA/text/alpaca/alpaca_first5000.json --out ./lora --epochs 2 --merge",
		"llmpruner finetune --model ./stories-pruned --data stories.txt --data-format text --cutoff-len 128 --batch 16 --micro-batch 16 --lr 3e-3 --max-steps 100 --warmup-steps 10 --val-size 32 --out ./lora",
		"llmpruner finetune --model ./stories-pruned --data stories.txt --out ./lora --max-steps 100 --resume ./lora",
	},
	run: runFinetune,
}

func init() { register(finetuneCmd) }

// finetuneFlags are the parsed finetune options.
type finetuneFlags struct {
	data, format, out, resume, targets string
	r                                  int
	alpha, dropout, lr                 float64
	epochs, maxSteps, batch, micro     int
	warmup, cutoff, valSize            int
	evalEvery, saveEvery, keep         int
	seed                               int64
	tensorParallel                     int
	trainOnInputs, merge, keepLast     bool
	evalData                           stringsFlag
}

// finetuneOutput is the --json output of finetune.
type finetuneOutput struct {
	Out            string            `json:"out"`
	Merged         string            `json:"merged,omitempty"`
	Steps          int               `json:"steps"`
	TotalSteps     int               `json:"total_steps"`
	TrainExamples  int               `json:"train_examples"`
	ValExamples    int               `json:"val_examples"`
	Skipped        int               `json:"skipped_records"`
	FirstLoss      float64           `json:"first_loss"`
	LastLoss       float64           `json:"last_loss"`
	BestStep       int               `json:"best_step"`
	BestValLoss    *float64          `json:"best_val_loss"`
	Evals          []lora.EvalRecord `json:"evals"`
	AdapterParams  int               `json:"adapter_params"`
	ModelParams    int64             `json:"model_params"`
	OptimizerState int               `json:"optimizer_state_floats"`
	TrainTokens    int               `json:"train_tokens"`
	TokensPerSec   float64           `json:"tokens_per_second"`
	Seconds        float64           `json:"seconds"`
}

func runFinetune(e *env, args []string) error {
	e.addModel()
	e.addMatMulDType()
	e.addJSON()
	var f finetuneFlags
	fs := e.fs
	fs.StringVar(&f.data, "data", "", "training data `PATH`: Alpaca JSON or a UTF-8 text file")
	fs.StringVar(&f.format, "data-format", "", "`alpaca` or text (default: alpaca for .json files, else text)")
	fs.StringVar(&f.out, "out", "", "output `DIR` for the adapter, checkpoints and training log")
	fs.IntVar(&f.r, "lora-r", 8, "LoRA rank `r`")
	fs.Float64Var(&f.alpha, "lora-alpha", 16, "LoRA `alpha` (the update is scaled by alpha/r)")
	fs.Float64Var(&f.dropout, "lora-dropout", 0.05, "dropout `p` on the adapter input during training")
	fs.StringVar(&f.targets, "lora-targets", "", "comma-separated projections to adapt (default: all of the architecture's: LLaMA q,k,v,o,gate,up,down; ChatGLM query_key_value,dense,dense_h_to_4h,dense_4h_to_h)")
	fs.IntVar(&f.epochs, "epochs", 2, "passes over the training data (ignored with --max-steps)")
	fs.IntVar(&f.maxSteps, "max-steps", 0, "train for `N` optimizer steps instead of --epochs")
	fs.Float64Var(&f.lr, "lr", 1e-4, "peak learning `rate`")
	fs.IntVar(&f.batch, "batch", 64, "examples per optimizer step")
	fs.IntVar(&f.micro, "micro-batch", 4, "examples per forward/backward pass (--batch must be a multiple)")
	fs.IntVar(&f.warmup, "warmup-steps", 100, "linear warm-up `steps` (0 = none)")
	fs.IntVar(&f.cutoff, "cutoff-len", 256, "tokens per example (truncation / text window length)")
	fs.BoolVar(&f.trainOnInputs, "train-on-inputs", false, "alpaca: also train on the prompt tokens")
	fs.IntVar(&f.valSize, "val-size", 2000, "examples held out for validation (0 = none)")
	fs.IntVar(&f.evalEvery, "eval-every", 100, "evaluate every `N` steps (and at the end; 0 = only at the end)")
	fs.Var(&f.evalData, "eval-data", "also measure perplexity (128-token windows) on text set `NAME=PATH` at each evaluation (repeatable)")
	fs.IntVar(&f.saveEvery, "save-every", 200, "write a checkpoint every `N` steps (0 = never)")
	fs.IntVar(&f.keep, "keep", 20, "keep the last `K` checkpoints")
	fs.StringVar(&f.resume, "resume", "", "continue from a checkpoint `DIR` (or the latest checkpoint-N in it)")
	fs.BoolVar(&f.keepLast, "keep-last", false, "write the last adapter instead of the one with the best validation loss")
	fs.BoolVar(&f.merge, "merge", false, "also write --out/merged: the model with the adapter folded into its weights")
	fs.Int64Var(&f.seed, "seed", 42, "seed of the adapter init, validation split, data order and dropout")
	fs.IntVar(&f.tensorParallel, "tensor-parallel", 0, "split the model over `N` devices (XLA backends with several devices; 0 = one device, no mesh)")
	if err := e.parse(args); err != nil {
		return err
	}
	opts, cfg, err := f.validate(e)
	if err != nil {
		return err
	}
	if err := e.checkAdapterDir(); err != nil {
		return err
	}
	// Evaluation sets are read before the model is loaded, so that a bad file fails fast.
	evalSets, evalTexts, err := readEvalSets(f.evalData)
	if err != nil {
		return err
	}
	start := time.Now()
	m, err := e.loadModel()
	if err != nil {
		return err
	}
	tok, err := modelTokenizer(m)
	if err != nil {
		return err
	}
	if a, _ := lora.AdapterOf(m); a == nil {
		cfg.BaseModel = e.model
		opts.LoRA = cfg
	}
	ds, err := lora.LoadDataset(tok, f.data, f.format, lora.DataOptions{CutoffLen: f.cutoff, ValSize: f.valSize,
		Seed: f.seed, TrainOnInputs: f.trainOnInputs})
	if err != nil {
		return errors.WithMessage(err, "--data")
	}
	if ds.Skipped > 0 {
		e.logf("skipped %d records whose prompt fills --cutoff-len %d", ds.Skipped, f.cutoff)
	}
	e.logf("training data: %d examples, %d held out for validation", len(ds.Train), len(ds.Val))
	total := opts.MaxSteps
	if total == 0 {
		total = opts.Epochs * (len(ds.Train) / f.batch)
	}
	if f.warmup >= total && total > 0 {
		e.logf("note: --warmup-steps %d ≥ the run's %d steps: the learning rate never reaches --lr %g", f.warmup, total, f.lr)
	}
	for i, set := range evalSets {
		ids, err := tokenizer.ModelInputs(tok, evalTexts[i])
		if err != nil {
			return errors.WithMessagef(err, "--eval-data %s", set.Name)
		}
		opts.ExtraEval = append(opts.ExtraEval, lora.EvalSet{Name: set.Name, IDs: ids})
	}

	// A run killed while writing a checkpoint leaves its temporary directory in --out.
	if stale, err := atomicfile.RemoveStale(f.out); err != nil {
		return err
	} else if len(stale) > 0 {
		e.logf("removed %d temporary entries an interrupted run left in %s: %s", len(stale), f.out, strings.Join(stale, ", "))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts.Progress = e.finetuneProgress()
	res, err := lora.Finetune(ctx, m, ds, opts)
	if err != nil {
		if ctx.Err() != nil {
			msg := fmt.Sprintf("interrupted after step %d", 0)
			if res != nil {
				msg = fmt.Sprintf("interrupted after step %d of %d", res.Steps, res.TotalSteps)
			}
			if ck, cerr := lora.LatestCheckpoint(f.out); cerr == nil {
				return errors.Errorf("%s; continue from %s with --resume %s", msg, ck, f.out)
			}
			return errors.Errorf("%s; no checkpoint was written yet (--save-every %d)", msg, f.saveEvery)
		}
		return err
	}
	out := finetuneOutput{Out: f.out, Steps: res.Steps, TotalSteps: res.TotalSteps, TrainExamples: len(ds.Train),
		ValExamples: len(ds.Val), Skipped: res.Skipped, BestStep: res.BestStep, Evals: res.Evals,
		AdapterParams: res.Adapter.NumParams(m), ModelParams: arch.NumParams(m.Config), OptimizerState: res.OptimizerState,
		TrainTokens: res.TrainTokens, TokensPerSec: res.TokensPerSec}
	if n := len(res.Losses); n > 0 {
		out.FirstLoss, out.LastLoss = res.Losses[0], res.Losses[n-1]
	}
	if !math.IsNaN(res.BestLoss) {
		b := res.BestLoss
		out.BestValLoss = &b
	}
	e.logf("wrote the LoRA adapter to %s (%d parameters, %.3f%% of the model's)", f.out, out.AdapterParams,
		100*float64(out.AdapterParams)/float64(out.ModelParams))
	if f.merge {
		out.Merged = filepath.Join(f.out, mergedDir)
		if err := mergeAndSave(e, m, out.Merged); err != nil {
			return err
		}
	}
	out.Seconds = time.Since(start).Seconds()
	if e.json {
		return e.printJSON(out)
	}
	printFinetune(e, out)
	return nil
}

// mergedDir is where --merge writes the merged model, under --out.
const mergedDir = "merged"

// validate checks the flags and turns them into training options and a LoRA config.
func (f *finetuneFlags) validate(e *env) (lora.TrainOptions, lora.Config, error) {
	var o lora.TrainOptions
	switch {
	case f.data == "":
		return o, lora.Config{}, usageErrorf("--data is required (Alpaca JSON or a text file)")
	case f.format != "" && f.format != lora.FormatAlpaca && f.format != lora.FormatText:
		return o, lora.Config{}, usageErrorf("--data-format %q: want alpaca or text", f.format)
	case e.flagSet("epochs") && e.flagSet("max-steps"):
		return o, lora.Config{}, usageErrorf("give --epochs or --max-steps, not both")
	case f.epochs < 1 || f.maxSteps < 0:
		return o, lora.Config{}, usageErrorf("--epochs %d must be ≥ 1 and --max-steps %d ≥ 0", f.epochs, f.maxSteps)
	case f.batch < 1 || f.micro < 1:
		return o, lora.Config{}, usageErrorf("--batch %d and --micro-batch %d must be positive", f.batch, f.micro)
	case f.batch%f.micro != 0:
		return o, lora.Config{}, usageErrorf("--batch %d is not a multiple of --micro-batch %d", f.batch, f.micro)
	case f.cutoff < 2:
		return o, lora.Config{}, usageErrorf("--cutoff-len %d must be at least 2", f.cutoff)
	case f.valSize < 0 || f.warmup < 0 || f.evalEvery < 0 || f.saveEvery < 0 || f.keep < 1:
		return o, lora.Config{}, usageErrorf("--val-size, --warmup-steps, --eval-every and --save-every must be ≥ 0 and --keep ≥ 1")
	case f.tensorParallel < 0:
		return o, lora.Config{}, usageErrorf("--tensor-parallel %d must be ≥ 0", f.tensorParallel)
	case !(f.lr > 0) || math.IsInf(f.lr, 0):
		return o, lora.Config{}, usageErrorf("--lr %g must be a positive number", f.lr)
	}
	if e.flagSet("lora-targets") && len(lora.ParseTargets(f.targets)) == 0 {
		return o, lora.Config{}, usageErrorf("--lora-targets is empty")
	}
	cfg := lora.Config{R: f.r, Alpha: f.alpha, Dropout: f.dropout, Targets: lora.ParseTargets(f.targets)}
	if err := cfg.Validate(); err != nil {
		return o, cfg, usageErrorf("%w", err)
	}
	if e.adapter != "" {
		for _, name := range []string{"lora-r", "lora-alpha", "lora-dropout", "lora-targets"} {
			if e.flagSet(name) {
				return o, cfg, usageErrorf("--%s cannot be combined with --adapter (training continues with the adapter's own settings)", name)
			}
		}
	}
	if err := checkFinetuneOut(f.out, e.model, f.resume); err != nil {
		return o, cfg, err
	}
	if f.resume != "" {
		if _, err := lora.LatestCheckpoint(f.resume); err != nil {
			return o, cfg, errors.WithMessage(err, "--resume")
		}
	}
	o = lora.TrainOptions{LoRA: cfg, LearningRate: f.lr, BatchSize: f.batch, MicroBatch: f.micro,
		WarmupSteps: f.warmup, Seed: f.seed, OutDir: f.out, KeepCheckpoints: f.keep, Resume: f.resume,
		KeepLast: f.keepLast, EvalEvery: f.evalEvery, SaveEvery: f.saveEvery, TensorParallel: f.tensorParallel}
	if f.maxSteps > 0 {
		o.MaxSteps = f.maxSteps
	} else {
		o.Epochs = f.epochs
	}
	// lora.TrainOptions reads 0 as "default" and negative as "none".
	if f.warmup == 0 {
		o.WarmupSteps = -1
	}
	if f.evalEvery == 0 {
		o.EvalEvery = -1
	}
	if f.saveEvery == 0 {
		o.SaveEvery = -1
	}
	return o, cfg, nil
}

// checkFinetuneOut validates --out: required, not the model, and empty or absent unless the run
// resumes (a resumed run writes into the directory it continues).
func checkFinetuneOut(out, model, resume string) error {
	if out == "" {
		return usageErrorf("--out is required (the adapter directory)")
	}
	if resume != "" {
		absOut, _ := filepath.Abs(out)
		absModel, _ := filepath.Abs(model)
		if absOut == absModel {
			return usageErrorf("--out %s would overwrite the input model", out)
		}
		if st, err := os.Stat(out); err == nil && !st.IsDir() {
			return errors.Errorf("--out %s exists and is not a directory", out)
		}
		return nil
	}
	if err := checkOutDir(out, model, false); err != nil {
		if !isUsage(err) && strings.Contains(err.Error(), "not empty") {
			return errors.Errorf("--out %s exists and is not empty (continue a run in it with --resume %s, or pick a new directory)", out, out)
		}
		return err
	}
	return nil
}

// readEvalSets reads the --eval-data sets.
func readEvalSets(specs []string) ([]data.TextSet, []string, error) {
	sets := make([]data.TextSet, len(specs))
	texts := make([]string, len(specs))
	for i, spec := range specs {
		set, err := data.ParseTextSet(spec, os.Getenv(data.DataDirEnv))
		if err != nil {
			return nil, nil, asFlag(err, data.OptTextSet, "--eval-data")
		}
		if texts[i], err = set.Read(); err != nil {
			return nil, nil, errors.WithMessage(err, "--eval-data")
		}
		if texts[i] == "" {
			return nil, nil, errors.Errorf("--eval-data %s: %s is empty", set.Name, set.Path)
		}
		sets[i] = set
	}
	return sets, texts, nil
}

// finetuneProgress returns the Finetune progress callback: a progress bar with the loss and
// tokens/s on a terminal, else a log line every 5% of the run; evaluations are always logged.
func (e *env) finetuneProgress() func(lora.Progress) {
	var bar *progressbar.ProgressBar
	return func(p lora.Progress) {
		if bar == nil && e.progressEnabled() {
			bar = e.progress(p.TotalSteps, "finetune")
		}
		line := fmt.Sprintf("step %d/%d  loss %.4f  lr %.2e  %.0f tokens/s", p.Step, p.TotalSteps, p.Loss, p.LearningRate, p.TokensPerSec)
		if bar != nil {
			bar.Describe(fmt.Sprintf("loss %.4f  %.0f tok/s", p.Loss, p.TokensPerSec))
			_ = bar.Set(p.Step)
		} else if every := max(p.TotalSteps/20, 1); p.Step%every == 0 || p.Step == p.TotalSteps || p.Step == 1 {
			e.logf("%s", line)
		}
		if p.Eval != nil {
			if bar != nil {
				_ = bar.Clear()
			}
			e.logf("%s", evalLine(*p.Eval, p.TotalSteps))
		}
		if bar != nil && p.Step == p.TotalSteps {
			_ = bar.Finish()
		}
	}
}

// evalLine formats one evaluation record.
func evalLine(r lora.EvalRecord, total int) string {
	s := fmt.Sprintf("eval at step %d/%d:", r.Step, total)
	if !math.IsNaN(r.ValLoss) {
		s += fmt.Sprintf(" val loss %.4f (ppl %.3f)", r.ValLoss, math.Exp(r.ValLoss))
	}
	for name, ppl := range r.PPL {
		s += fmt.Sprintf(" %s PPL %.3f", name, ppl)
	}
	return s
}

// mergeAndSave folds m's adapter into its weights and writes the plain model to dir (atomically).
func mergeAndSave(e *env, m *models.Model, dir string) error {
	if err := lora.Merge(m); err != nil {
		return err
	}
	stop := e.spinner("saving " + dir)
	err := m.Save(dir, "")
	stop()
	if err != nil {
		return errors.WithMessage(err, "--merge")
	}
	e.logf("wrote the merged model to %s", dir)
	return nil
}

// printFinetune prints the run summary.
func printFinetune(e *env, o finetuneOutput) {
	w := e.stdout
	fmt.Fprintf(w, "adapter       %s (%d parameters, %.3f%% of %d)\n", o.Out, o.AdapterParams,
		100*float64(o.AdapterParams)/float64(o.ModelParams), o.ModelParams)
	fmt.Fprintf(w, "steps         %d/%d on %d examples (%d validation, %d skipped)\n", o.Steps, o.TotalSteps,
		o.TrainExamples, o.ValExamples, o.Skipped)
	fmt.Fprintf(w, "train loss    %.4f → %.4f\n", o.FirstLoss, o.LastLoss)
	if o.BestValLoss != nil {
		fmt.Fprintf(w, "best val loss %.4f at step %d\n", *o.BestValLoss, o.BestStep)
	}
	if n := len(o.Evals); n > 0 && len(o.Evals[n-1].PPL) > 0 {
		fmt.Fprintf(w, "final PPL    ")
		for name, ppl := range o.Evals[n-1].PPL {
			fmt.Fprintf(w, " %s %.3f", name, ppl)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "speed         %.0f tokens/s (%d tokens), %.1fs in all\n", o.TokensPerSec, o.TrainTokens, o.Seconds)
	if o.Merged != "" {
		fmt.Fprintf(w, "merged model  %s\n", o.Merged)
	}
}
