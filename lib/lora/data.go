package lora

// Training data: Alpaca records or plain text turned into token sequences with labels, a
// seeded validation split, and padded micro-batches.

import (
	"strings"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/data"
	"github.com/llmpruner/llmpruner/lib/option"
	"github.com/llmpruner/llmpruner/lib/tokenizer"
	"github.com/pkg/errors"
)

// Example is one training sequence: input ids and labels of the same length, where
// data.IgnoreLabel (-100) excludes a position from the loss. Labels nil means "= IDs".
type Example struct {
	IDs    []int
	Labels []int
}

// Dataset is a training set and a validation set.
type Dataset struct {
	Train, Val []Example
	// Skipped counts Alpaca records dropped because their prompt fills the whole cutoff length.
	Skipped int
}

// DataOptions configure PrepareAlpaca and PrepareText.
type DataOptions struct {
	CutoffLen     int   // tokens per sequence (post_training.py --cutoff_len; 0 = 256)
	ValSize       int   // records (Alpaca) or windows (text) held out for validation (the CLI's default is 2000); 0 = none
	Seed          int64 // seed of the validation split (0 = 42)
	TrainOnInputs bool  // Alpaca: also train on the prompt tokens
}

// withDefaults fills a zero CutoffLen (256) and Seed (42).
func (o DataOptions) withDefaults() DataOptions {
	if o.CutoffLen == 0 {
		o.CutoffLen = 256
	}
	if o.Seed == 0 {
		o.Seed = 42
	}
	return o
}

// PrepareAlpaca tokenizes Alpaca records as post_training.py does (data.TokenizeAlpaca: template,
// BOS, EOS, truncation at CutoffLen, prompt labels -100 unless TrainOnInputs) after a seeded
// split of ValSize records for validation (data.TrainValSplit). Records whose prompt leaves no
// response token under the cutoff are skipped and counted in Skipped (the original would train
// on nothing for them); it is an error when no training record is left.
func PrepareAlpaca(tok tokenizer.Tokenizer, records []data.AlpacaRecord, opts DataOptions) (*Dataset, error) {
	opts = opts.withDefaults()
	if len(records) == 0 {
		return nil, errors.New("Alpaca data: no records")
	}
	trainIdx, valIdx, err := data.TrainValSplit(len(records), opts.ValSize, opts.Seed)
	if err != nil {
		return nil, option.Errorf("Alpaca data, %s %d: %w", OptValSize, opts.ValSize, err)
	}
	ds := &Dataset{}
	convert := func(idx []int) ([]Example, error) {
		var out []Example
		for _, i := range idx {
			ids, labels, err := data.TokenizeAlpaca(tok, records[i], opts.CutoffLen, opts.TrainOnInputs)
			if errors.Is(err, data.ErrPromptTooLong) {
				ds.Skipped++
				continue
			}
			if err != nil {
				return nil, errors.WithMessagef(err, "Alpaca record %d", i)
			}
			out = append(out, Example{IDs: ids, Labels: labels})
		}
		return out, nil
	}
	if ds.Train, err = convert(trainIdx); err != nil {
		return nil, err
	}
	if ds.Val, err = convert(valIdx); err != nil {
		return nil, err
	}
	if len(ds.Train) == 0 {
		return nil, option.Errorf("Alpaca data: all %d training records were skipped: their prompts are longer than %s %d (raise it)",
			len(trainIdx), OptCutoffLen, opts.CutoffLen)
	}
	return ds, nil
}

// PrepareText cuts text into windows of CutoffLen tokens (data.TextWindows: one BOS at the
// start of the stream, last partial window dropped), trains on every token, and holds ValSize
// windows out for validation, drawn with the seed.
func PrepareText(tok tokenizer.Tokenizer, text string, opts DataOptions) (*Dataset, error) {
	opts = opts.withDefaults()
	windows, err := data.TextWindows(tok, text, opts.CutoffLen)
	if err != nil {
		return nil, errors.WithMessage(err, "text data")
	}
	trainIdx, valIdx, err := data.TrainValSplit(len(windows), opts.ValSize, opts.Seed)
	if err != nil {
		return nil, option.Errorf("text data: %d windows of %d tokens, %s %d: %w", len(windows), opts.CutoffLen, OptValSize, opts.ValSize, err)
	}
	ds := &Dataset{}
	for _, i := range trainIdx {
		ds.Train = append(ds.Train, Example{IDs: windows[i]})
	}
	for _, i := range valIdx {
		ds.Val = append(ds.Val, Example{IDs: windows[i]})
	}
	return ds, nil
}

// validate checks every example against the vocabulary and context length.
func validateExamples(what string, exs []Example, vocab, maxLen int) error {
	for i, ex := range exs {
		if len(ex.IDs) < 2 {
			return errors.Errorf("%s example %d has %d tokens; at least 2 needed", what, i, len(ex.IDs))
		}
		if maxLen > 0 && len(ex.IDs) > maxLen {
			return errors.Errorf("%s example %d has %d tokens, more than the model's context of %d", what, i, len(ex.IDs), maxLen)
		}
		if ex.Labels != nil && len(ex.Labels) != len(ex.IDs) {
			return errors.Errorf("%s example %d: %d labels for %d tokens", what, i, len(ex.Labels), len(ex.IDs))
		}
		for t, id := range ex.IDs {
			if id < 0 || id >= vocab {
				return errors.Errorf("%s example %d, position %d: token id %d is outside the vocabulary [0, %d)", what, i, t, id, vocab)
			}
		}
	}
	return nil
}

// padMultiple is the padded length granularity. post_training.py pads to a multiple of 8
// (DataCollatorForSeq2Seq's pad_to_multiple_of); 32 keeps that property while compiling 4×
// fewer graph shapes (padding never changes the loss: padded positions are masked).
const padMultiple = 32

// batch is one padded micro-batch.
type batch struct {
	tokens, mask, labels *tensors.Tensor // [rows, L] int32, bool, int32
	realTokens           int             // non-padding input tokens
}

// makeBatch right-pads exs (plus empty rows up to rows) to the longest length rounded up to a
// multiple of padMultiple, with pad id 0, mask false and label -100 on padding. (The original pads on
// the left; right padding keeps every sequence at positions 0…n-1, which is what the model saw
// in pre-training, and changes nothing else.)
func makeBatch(exs []Example, rows int) batch {
	L := 0
	for _, ex := range exs {
		L = max(L, len(ex.IDs))
	}
	L = (L + padMultiple - 1) / padMultiple * padMultiple
	tok := make([]int32, rows*L)
	mask := make([]bool, rows*L)
	lab := make([]int32, rows*L)
	for i := range lab {
		lab[i] = data.IgnoreLabel
	}
	real := 0
	for r, ex := range exs {
		for t, id := range ex.IDs {
			tok[r*L+t] = int32(id)
			mask[r*L+t] = true
			if ex.Labels != nil {
				lab[r*L+t] = int32(ex.Labels[t])
			} else {
				lab[r*L+t] = int32(id)
			}
		}
		real += len(ex.IDs)
	}
	return batch{
		tokens:     tensors.FromFlatDataAndDimensions(tok, rows, L),
		mask:       tensors.FromFlatDataAndDimensions(mask, rows, L),
		labels:     tensors.FromFlatDataAndDimensions(lab, rows, L),
		realTokens: real,
	}
}

func (b batch) finalize() {
	_ = b.tokens.FinalizeAll()
	_ = b.mask.FinalizeAll()
	_ = b.labels.FinalizeAll()
}

// Data formats of LoadDataset (--data-format).
const (
	FormatAlpaca = "alpaca"
	FormatText   = "text"
)

// LoadDataset reads training data from path in format "alpaca" (a JSON array of
// {instruction, input, output}, data.ReadAlpaca) or "text" (a UTF-8 text file, data.ReadText;
// "" picks alpaca for .json files and text otherwise) and prepares it with PrepareAlpaca or
// PrepareText.
func LoadDataset(tok tokenizer.Tokenizer, path, format string, opts DataOptions) (*Dataset, error) {
	if tok == nil {
		return nil, errors.New("preparing training data: the model has no tokenizer")
	}
	if format == "" {
		format = FormatText
		if strings.HasSuffix(strings.ToLower(path), ".json") {
			format = FormatAlpaca
		}
	}
	switch format {
	case FormatAlpaca:
		records, err := data.ReadAlpaca(path)
		if err != nil {
			return nil, err
		}
		ds, err := PrepareAlpaca(tok, records, opts)
		return ds, errors.WithMessagef(err, "%s", path)
	case FormatText:
		text, err := data.ReadText(path)
		if err != nil {
			return nil, err
		}
		ds, err := PrepareText(tok, text, opts)
		return ds, errors.WithMessagef(err, "%s", path)
	}
	return nil, errors.Errorf("unknown data format %q (want alpaca or text)", format)
}
