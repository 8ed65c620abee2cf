package data

import (
	"math/rand/v2"
	"strings"

	"github.com/llmpruner/llmpruner/lib/tokenizer"
	"github.com/pkg/errors"
)

// SplitDocuments splits text into documents at blank lines (lines that are empty or hold only
// whitespace): the paragraphs of TinyStories text or of Alpaca outputs. Each document keeps its
// inner line breaks and loses surrounding whitespace; empty documents are dropped.
func SplitDocuments(text string) []string {
	var (
		docs    []string
		current []string
	)
	flush := func() {
		if doc := strings.TrimSpace(strings.Join(current, "\n")); doc != "" {
			docs = append(docs, doc)
		}
		current = current[:0]
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		current = append(current, line)
	}
	flush()
	return docs
}

// CalibrationSamples draws n calibration samples of seqLen token ids from text, following
// LLM-Pruner's example_samples.py (there on BookCorpus rows; here on the blank-line separated
// documents of text, see SplitDocuments): for each sample pick, uniformly at random, a document
// not used before whose tokenization (with BOS, as HF's tokenizer call adds it) has at least
// seqLen tokens, then a uniformly random window of seqLen consecutive tokens from it (so BOS
// appears only when the window starts at 0).
//
// The original's rejection loop (random index, retry when too short or already used) draws
// uniformly among the unused eligible documents; this draws the same distribution with an
// incremental Fisher–Yates shuffle, which also terminates when the text cannot yield n samples.
// The random stream is math/rand/v2's PCG seeded with seed: deterministic for a seed, but not the
// same numbers as Python's random module.
func CalibrationSamples(tok tokenizer.Tokenizer, text string, n, seqLen int, seed int64) ([][]int, error) {
	if n <= 0 {
		return nil, errors.Errorf("calibration: number of samples %d must be positive", n)
	}
	if seqLen < 2 {
		return nil, errors.Errorf("calibration: sample length %d must be at least 2 tokens", seqLen)
	}
	docs := SplitDocuments(text)
	if len(docs) == 0 {
		return nil, errors.New("calibration text shorter than one sample: the text is empty")
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6c6c6d7072756e72)) // second word: "llmprunr"
	order := make([]int, len(docs))
	for i := range order {
		order[i] = i
	}
	samples := make([][]int, 0, n)
	longest := 0
	for k := range order {
		j := k + rng.IntN(len(order)-k)
		order[k], order[j] = order[j], order[k]
		ids, err := tokenizer.ModelInputs(tok, docs[order[k]])
		if err != nil {
			return nil, errors.Wrapf(err, "calibration: tokenizing document %d", order[k])
		}
		longest = max(longest, len(ids))
		if len(ids) < seqLen {
			continue
		}
		start := rng.IntN(len(ids) - seqLen + 1)
		samples = append(samples, append([]int(nil), ids[start:start+seqLen]...))
		if len(samples) == n {
			return samples, nil
		}
	}
	if len(samples) == 0 {
		return nil, errors.Errorf("calibration text shorter than one sample: none of its %d documents (blank-line separated paragraphs) "+
			"has %d tokens; the longest has %d", len(docs), seqLen, longest)
	}
	return nil, errors.Errorf("calibration text too short: only %d of its %d documents (blank-line separated paragraphs) have "+
		"at least %d tokens, and %d samples from distinct documents were asked for", len(samples), len(docs), seqLen, n)
}
