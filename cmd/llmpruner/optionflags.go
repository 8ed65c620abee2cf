package main

import (
	stderrors "errors"

	"github.com/llmpruner/llmpruner/lib/data"
	"github.com/llmpruner/llmpruner/lib/eval"
	"github.com/llmpruner/llmpruner/lib/lora"
	"github.com/llmpruner/llmpruner/lib/option"
	"github.com/llmpruner/llmpruner/lib/prune"
)

// optionFlags maps the library options that error messages name (option.Error) to the flags
// that set them, so that the command line reports "--ratio 1.5 must be in [0, 1)" where a
// notebook sees "prune.Options.Ratio 1.5 must be in [0, 1)".
var optionFlags = map[option.Name]string{
	prune.OptStrategy:       "--strategy",
	prune.OptRatio:          "--ratio",
	prune.OptIterativeSteps: "--iterative-steps",
	prune.OptRoundTo:        "--round-to",
	prune.OptGlobal:         "--global",
	prune.OptAttnLayers:     "--attn-layers",
	prune.OptMLPLayers:      "--mlp-layers",
	prune.OptKeepLayers:     "--keep-layers",
	prune.OptSampler:        "--calib or --calib-ids",
	prune.OptCriterion:      "--criterion",
	prune.OptTaylor:         "--taylor",
	lora.OptR:               "--lora-r",
	lora.OptAlpha:           "--lora-alpha",
	lora.OptDropout:         "--lora-dropout",
	lora.OptLearningRate:    "--lr",
	lora.OptBatchSize:       "--batch",
	lora.OptMicroBatch:      "--micro-batch",
	lora.OptPPLSeqLen:       "the --eval-data window",
	lora.OptCutoffLen:       "--cutoff-len",
	lora.OptValSize:         "--val-size",
	eval.OptSeqLen:          "--seq-len",
	data.OptCutoff:          "--cutoff-len",
	data.OptTextSet:         "--data",
}

// errorMessage is err's message with the library's option names said as flags.
func errorMessage(err error) string {
	return option.Rename(err, func(n option.Name) string { return optionFlags[n] })
}

// asFlag is err with the option name said as flag, for a library call whose option another flag
// than optionFlags' sets (finetune's --eval-data is a data.ParseTextSet spec, as eval's --data).
func asFlag(err error, name option.Name, flag string) error {
	var oe *option.Error
	if !stderrors.As(err, &oe) {
		return err
	}
	return &renamedError{msg: option.Rename(err, func(n option.Name) string {
		if n == name {
			return flag
		}
		return optionFlags[n]
	}), err: err}
}

// renamedError is an error whose message has been said with flags; it still wraps the original.
type renamedError struct {
	msg string
	err error
}

func (e *renamedError) Error() string { return e.msg }
func (e *renamedError) Unwrap() error { return e.err }
