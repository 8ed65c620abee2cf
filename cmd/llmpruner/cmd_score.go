package main

import (
	"encoding/json"
	"fmt"

	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/llmpruner/llmpruner/lib/tokenizer"
	"github.com/pkg/errors"
)

var scoreCmd = &command{
	name:     "score",
	summary:  "next-token loss (and optionally logits) of sequences from a JSON-lines file",
	synopsis: "score --model M [--adapter DIR] --input F.jsonl [--logits] [--tokenizer T]",
	details: `Each input line is {"ids":[...]} (token ids used as given) or {"text":"..."} (encoded with BOS).
Each output line (stdout, JSON lines; --json is accepted and changes nothing) is
  {"tokens":N,"nll":mean next-token negative log-likelihood in nats}
and with --logits also "logits_first" and "logits_last": the full vocabulary rows of logits at
positions 0 and N-1. Sequences need at least 2 tokens and at most the model's context length.`,
	examples: []string{
		"llmpruner score --model $LLMPRUNER_DATA/models/stories260K/stories260K.bin --input in.jsonl   # in.jsonl: {\"text\":\"Once upon a time\"}",
		"llmpruner score --model ./llama-7b --input ids.jsonl --logits > scores.jsonl",
	},
	run: runScore,
}

func init() { register(scoreCmd) }

// scoreOutput is one output line of score.
type scoreOutput struct {
	Tokens      int       `json:"tokens"`
	NLL         float64   `json:"nll"`
	LogitsFirst []float32 `json:"logits_first,omitempty"`
	LogitsLast  []float32 `json:"logits_last,omitempty"`
}

func runScore(e *env, args []string) error {
	e.addModel()
	e.addMatMulDType()
	e.addJSON()
	input := e.fs.String("input", "", "JSON-lines `file` of {\"ids\":[...]} or {\"text\":\"...\"} objects")
	withLogits := e.fs.Bool("logits", false, "also print the logits rows of the first and last positions")
	if err := e.parse(args); err != nil {
		return err
	}
	if *input == "" {
		return usageErrorf("--input is required")
	}
	if err := e.requireModel(); err != nil {
		return err
	}
	items, err := readScoreInput(*input)
	if err != nil {
		return err
	}
	m, err := e.loadModel()
	if err != nil {
		return err
	}
	seqs, err := scoreSequences(m, items, *input)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(e.stdout)
	bar := e.progress(len(seqs), "scoring")
	defer bar.Finish()
	for i, seq := range seqs {
		out, err := scoreOne(m, seq, *withLogits)
		if err != nil {
			return errors.WithMessagef(err, "%s:%d", *input, items[i].line)
		}
		if err := enc.Encode(out); err != nil {
			return err
		}
		_ = bar.Add(1)
	}
	return nil
}

// scoreSequences turns the input lines into token sequences and validates them against the
// model (length ≥ 2, ≤ context, ids in the vocabulary) before any scoring starts.
func scoreSequences(m *models.Model, items []scoreItem, path string) ([][]int, error) {
	seqs := make([][]int, len(items))
	for i, it := range items {
		seq := it.ids
		if seq == nil {
			tok, err := modelTokenizer(m)
			if err != nil {
				return nil, errors.WithMessagef(err, "%s:%d has \"text\"", path, it.line)
			}
			if seq, err = tokenizer.ModelInputs(tok, it.text); err != nil {
				return nil, errors.WithMessagef(err, "%s:%d: encoding \"text\"", path, it.line)
			}
		}
		if err := m.CheckSequences([][]int{seq}, 2); err != nil {
			return nil, errors.WithMessagef(err, "%s:%d", path, it.line)
		}
		seqs[i] = seq
	}
	return seqs, nil
}

// scoreOne computes the mean next-token NLL of seq and, when asked, its first and last logits rows.
func scoreOne(m *models.Model, seq []int, withLogits bool) (scoreOutput, error) {
	logp, _, err := m.TokenLogProbs([][]int{seq})
	if err != nil {
		return scoreOutput{}, err
	}
	if len(logp) != 1 || len(logp[0]) != len(seq)-1 {
		return scoreOutput{}, errors.Errorf("the model returned %d log-probabilities for %d tokens", len(logp[0]), len(seq))
	}
	var sum float64
	for _, lp := range logp[0] {
		sum -= lp
	}
	out := scoreOutput{Tokens: len(seq), NLL: sum / float64(len(logp[0]))}
	if withLogits {
		logits, err := m.Logits([][]int{seq})
		if err != nil {
			return scoreOutput{}, err
		}
		if len(logits) != 1 || len(logits[0]) != len(seq) {
			return scoreOutput{}, fmt.Errorf("the model returned logits for %d positions, want %d", len(logits[0]), len(seq))
		}
		out.LogitsFirst, out.LogitsLast = logits[0][0], logits[0][len(seq)-1]
	}
	return out, nil
}
