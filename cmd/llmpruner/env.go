package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"github.com/gomlx/compute/dtypes"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// env is what a running command writes to, plus the shared options it parsed.
type env struct {
	cmd    *command
	stdout io.Writer // results only (text or JSON)
	stderr io.Writer // progress bars, logs, warnings
	fs     *flag.FlagSet

	// Shared options; each command registers only the ones it uses (see the add* methods).
	model     string
	tokenizer string
	json      bool
	adapter   string
	// mergeAdapter makes loadModel fold --adapter into the weights (convert, prune) instead of
	// applying it unmerged.
	mergeAdapter bool
	// mergeFloat32 keeps the merged weights in float32 (convert --dtype rounds them once on save).
	mergeFloat32 bool
	// matmulDType is --matmul-dtype (f32, bf16 or f16; "" when the command has no such flag).
	matmulDType string
}

func newEnv(cmd *command, stdout, stderr io.Writer) *env {
	e := &env{cmd: cmd, stdout: stdout, stderr: stderr}
	e.fs = flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	e.fs.SetOutput(io.Discard) // we print errors and usage ourselves
	return e
}

// addModel registers --model, --tokenizer and --adapter with identical help in every command.
func (e *env) addModel() {
	e.fs.StringVar(&e.model, "model", "", "`M`: a Hugging Face model directory (config.json + safetensors or pytorch_model.bin), a llama2.c .bin or a llama.cpp GGUF file (llama/qwen2/deci; F32, F16, BF16, Q8_0)")
	e.fs.StringVar(&e.tokenizer, "tokenizer", "", "`T`: tokenizer file (or directory) for llama2.c models whose tokenizer is not beside the .bin")
	e.fs.StringVar(&e.adapter, "adapter", "", "LoRA adapter `DIR` (PEFT format: adapter_config.json + adapter_model.safetensors, as finetune writes) applied to --model")
}

// addMatMulDType registers --matmul-dtype for the commands that run the model.
func (e *env) addMatMulDType() {
	e.fs.StringVar(&e.matmulDType, "matmul-dtype", "f32", "`dtype` of the projections' matrix products: f32, or bf16 / f16 (mixed precision as PyTorch autocast: norms, attention and loss stay f32; for GPUs: the pure-Go backend rounds the operands and multiplies in f32)")
}

// addJSON registers --json.
func (e *env) addJSON() {
	e.fs.BoolVar(&e.json, "json", false, "print machine-readable JSON on stdout (progress and logs go to stderr)")
}

// parse parses the command's flags. --help prints the command help on stdout and returns
// flag.ErrHelp; other mistakes return a usageError naming the flag.
func (e *env) parse(args []string) error {
	if err := e.fs.Parse(args); err != nil {
		if isHelp(err) {
			printCommandHelp(e.stdout, e.cmd, e.fs)
			return err
		}
		return usageErrorf("%v", err)
	}
	if e.fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q (flags are written --name value)", e.fs.Arg(0))
	}
	if e.adapter != "" && e.model == "" {
		return usageErrorf("--adapter needs --model (the base model the adapter was trained on)")
	}
	if _, err := e.matmul(); err != nil {
		return err
	}
	return nil
}

// matmul resolves --matmul-dtype (float32 when the command has no such flag).
func (e *env) matmul() (dtypes.DType, error) {
	switch e.matmulDType {
	case "", "f32", "float32":
		return dtypes.Float32, nil
	case "bf16", "bfloat16":
		return dtypes.BFloat16, nil
	case "f16", "float16":
		return dtypes.Float16, nil
	}
	return dtypes.InvalidDType, usageErrorf("--matmul-dtype %q: want f32, bf16 or f16", e.matmulDType)
}

// requireModel checks that --model was given.
func (e *env) requireModel() error {
	if e.model == "" {
		return usageErrorf("--model is required (a Hugging Face model directory, a llama2.c .bin or a GGUF file)")
	}
	return nil
}

// flagSet reports whether the named flag was given on the command line.
func (e *env) flagSet(name string) bool {
	found := false
	e.fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			found = true
		}
	})
	return found
}

// printJSON writes v on stdout as one JSON document on a single line.
func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// logf writes a progress/log line on stderr.
func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.stderr, format+"\n", args...)
}

// progressEnabled reports whether progress bars are drawn: only when stderr is a terminal
// and --json was not given.
func (e *env) progressEnabled() bool {
	if e.json {
		return false
	}
	f, ok := e.stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress returns a progress bar of total steps on stderr; it draws nothing when progress
// is disabled, so callers may always use it. Call Finish (or Exit) when done.
func (e *env) progress(total int, description string) *progressbar.ProgressBar {
	if total <= 0 {
		total = -1 // spinner
	}
	return progressbar.NewOptions(total,
		progressbar.OptionSetWriter(e.stderr),
		progressbar.OptionSetVisibility(e.progressEnabled()),
		progressbar.OptionSetDescription(description),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100_000_000), // 100ms
		progressbar.OptionClearOnFinish(),
	)
}

// printCommandHelp prints the help of c: synopsis, details, flags (when fs is given) and examples.
func printCommandHelp(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "llmpruner %s: %s\n\nUsage:\n  llmpruner %s\n", c.name, c.summary, c.synopsis)
	if c.details != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.details))
	}
	if fs != nil {
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(w, "\nFlags:")
			printFlags(w, fs)
		}
	}
	if len(c.examples) > 0 {
		fmt.Fprintln(w, "\nExamples:")
		for _, ex := range c.examples {
			fmt.Fprintf(w, "  %s\n", ex)
		}
	}
}

// printFlags lists the flags as "--name value" with their help and non-zero defaults (the flag
// package's own listing writes single dashes).
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintln(w, line)
		if def := f.DefValue; def != "" && def != "0" && def != "false" {
			usage += fmt.Sprintf(" (default %s)", def)
		}
		fmt.Fprintf(w, "        %s\n", usage)
	})
}

// spinner shows an indeterminate progress indicator with description on stderr while slow work
// without progress reports runs (loading, pruning, saving); call the returned stop function when
// done. It draws nothing when progress is disabled.
func (e *env) spinner(description string) (stop func()) {
	if !e.progressEnabled() {
		return func() {}
	}
	bar := e.progress(-1, description)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				_ = bar.Finish()
				return
			case <-tick.C:
				_ = bar.Add(1)
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
