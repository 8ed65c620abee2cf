package data

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"

	"github.com/pkg/errors"
)

// AlpacaRecord is one instruction-following example of an Alpaca JSON file
// (e.g. yahma/alpaca-cleaned, the data LLM-Pruner's post_training.py recovers with).
type AlpacaRecord struct {
	Instruction string `json:"instruction"`
	Input       string `json:"input"` // may be empty
	Output      string `json:"output"`
}

// ReadAlpaca reads an Alpaca JSON file: an array of objects with string fields "instruction",
// "input" (may be empty or absent) and "output"; other fields are ignored. A malformed record
// (not an object, a missing or non-string field, an empty instruction or output) is an error
// naming the record's 0-based index. An empty array is an error too.
func ReadAlpaca(path string) ([]AlpacaRecord, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, errors.Wrapf(err, "reading Alpaca data %q", path)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, errors.Wrapf(err, "Alpaca data %q: want a JSON array of {instruction, input, output} objects", path)
	}
	if len(items) == 0 {
		return nil, errors.Errorf("Alpaca data %q: no records (empty array)", path)
	}
	records := make([]AlpacaRecord, len(items))
	for i, item := range items {
		rec, err := parseAlpacaRecord(item)
		if err != nil {
			return nil, errors.Wrapf(err, "Alpaca data %q: record %d", path, i)
		}
		records[i] = rec
	}
	return records, nil
}

// parseAlpacaRecord decodes and checks one record.
func parseAlpacaRecord(item json.RawMessage) (AlpacaRecord, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(item, &fields); err != nil || fields == nil {
		return AlpacaRecord{}, errors.Errorf("not a JSON object: %s", abbreviate(string(item), 60))
	}
	var rec AlpacaRecord
	for _, f := range []struct {
		name     string
		dst      *string
		required bool
	}{
		{"instruction", &rec.Instruction, true},
		{"input", &rec.Input, false},
		{"output", &rec.Output, true},
	} {
		value, ok := fields[f.name]
		if !ok || bytes.Equal(value, []byte("null")) {
			if f.required {
				return AlpacaRecord{}, errors.Errorf("missing field %q", f.name)
			}
			continue
		}
		if err := json.Unmarshal(value, f.dst); err != nil {
			return AlpacaRecord{}, errors.Errorf("field %q must be a string, got %s", f.name, abbreviate(string(value), 40))
		}
		if f.required && strings.TrimSpace(*f.dst) == "" {
			return AlpacaRecord{}, errors.Errorf("field %q is empty", f.name)
		}
	}
	return rec, nil
}

// abbreviate shortens s to at most n bytes for error messages.
func abbreviate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Pieces of the Alpaca-LoRA prompt template (LLM-Pruner's "alpaca" template,
// LLMPruner/utils/prompter.py), around the instruction and input.
const (
	alpacaHeadInput = "Below is an instruction that describes a task, paired with an input that provides further context. " +
		"Write a response that appropriately completes the request.\n\n### Instruction:\n"
	alpacaHeadNoInput = "Below is an instruction that describes a task. " +
		"Write a response that appropriately completes the request.\n\n### Instruction:\n"
	alpacaInputMark    = "\n\n### Input:\n"
	alpacaResponseMark = "\n\n### Response:\n"
)

// AlpacaPrompt fills the Alpaca-LoRA template with rec's instruction and, when non-empty, its
// input (the "no input" variant otherwise):
//
//	Below is an instruction that describes a task, paired with an input that provides further context.
//	Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}
//	\n\n### Input:\n{input}\n\n### Response:\n
//
// (one line in reality). With withOutput the response (rec.Output) is appended: that is the full
// training text; without it, the user prompt whose tokens are masked out of the loss.
func AlpacaPrompt(rec AlpacaRecord, withOutput bool) string {
	var b strings.Builder
	if rec.Input != "" {
		b.WriteString(alpacaHeadInput)
		b.WriteString(rec.Instruction)
		b.WriteString(alpacaInputMark)
		b.WriteString(rec.Input)
	} else {
		b.WriteString(alpacaHeadNoInput)
		b.WriteString(rec.Instruction)
	}
	b.WriteString(alpacaResponseMark)
	if withOutput {
		b.WriteString(rec.Output)
	}
	return b.String()
}
