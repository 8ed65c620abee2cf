package eval

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/pkg/errors"
)

// sequence is one distinct token sequence to score; several requests may share it.
type sequence struct {
	Tokenized
	ll     float64
	greedy bool
}

// requestPlan holds the tokenized requests of a run, deduplicated and ordered for scoring.
type requestPlan struct {
	seqs        []*sequence              // distinct sequences, longest first
	refs        map[string][][]*sequence // task → doc → choice → its sequence
	numRequests int
	totalTokens int64          // tokens of all distinct sequences
	contextCut  map[string]int // task → requests whose context lost tokens on the left
	contCut     map[string]int // task → requests whose continuation was cut (lm-eval would fail)
}

// planRequests tokenizes every request. A document's context is encoded once for all its choices,
// every distinct continuation string once per run, and identical token sequences (lm-eval's
// Reorderer groups them too) are scored once.
func planRequests(tok Encoder, tasks []*Task, docs map[string][]Doc, maxLength int) (*requestPlan, error) {
	p := &requestPlan{refs: make(map[string][][]*sequence, len(tasks)), contextCut: map[string]int{}, contCut: map[string]int{}}
	contCache := map[string][]int{}
	bySeq := map[string]*sequence{}
	var key []byte
	for _, t := range tasks {
		refs := make([][]*sequence, len(docs[t.Name]))
		for di, d := range docs[t.Name] {
			ctxCache := map[string][]int{}
			refs[di] = make([]*sequence, len(d.Requests))
			for ci, req := range d.Requests {
				ctx, err := encodeCached(tok, ctxCache, req.Context, true)
				if err != nil {
					return nil, errors.WithMessagef(err, "task %s document %d", t.Name, d.Index)
				}
				cont, err := encodeCached(tok, contCache, req.Continuation, false)
				if err != nil {
					return nil, errors.WithMessagef(err, "task %s document %d", t.Name, d.Index)
				}
				tz, err := joinTokens(ctx, cont, maxLength, req)
				if err != nil {
					return nil, errors.WithMessagef(err, "task %s document %d", t.Name, d.Index)
				}
				if tz.ContextCut {
					p.contextCut[t.Name]++
				}
				if tz.ContinuationCut {
					p.contCut[t.Name]++
				}
				key = seqKey(key[:0], tz.Tokens, tz.ContLen)
				s, ok := bySeq[string(key)]
				if !ok {
					s = &sequence{Tokenized: tz}
					bySeq[string(key)] = s
					p.seqs = append(p.seqs, s)
					p.totalTokens += int64(len(tz.Tokens))
				}
				refs[di][ci] = s
				p.numRequests++
			}
		}
		p.refs[t.Name] = refs
	}
	// Longest first, as lm-eval: the first batch is the largest (memory errors show at once) and
	// the ETA errs on the safe side.
	slices.SortStableFunc(p.seqs, func(a, b *sequence) int {
		if d := len(b.Tokens) - len(a.Tokens); d != 0 {
			return d
		}
		return slices.Compare(a.Tokens, b.Tokens)
	})
	return p, nil
}

// encodeCached encodes text through cache (nil: no caching); an empty context becomes [EOS] as in
// lm-eval.
func encodeCached(tok Encoder, cache map[string][]int, text string, isContext bool) ([]int, error) {
	if ids, ok := cache[text]; ok {
		return ids, nil
	}
	var ids []int
	var err error
	if isContext && text == "" {
		if tok.EOS() < 0 {
			return nil, errors.New("empty context needs an end-of-text token, and the tokenizer has none")
		}
		ids = []int{tok.EOS()}
	} else if ids, err = tok.Encode(text); err != nil {
		return nil, errors.WithMessagef(err, "tokenizing %q", abbrevText(text))
	}
	if cache != nil {
		cache[text] = ids
	}
	return ids, nil
}

func seqKey(dst []byte, tokens []int, contLen int) []byte {
	dst = binary.AppendUvarint(dst, uint64(contLen))
	for _, t := range tokens {
		dst = binary.AppendUvarint(dst, uint64(t))
	}
	return dst
}

// score runs the scorer over all sequences in batches and stores each one's continuation
// log-likelihood and greediness. A BranchScorer scores the sequences that share a context (all
// tokens before the continuation) together, computing that context once.
func (p *requestPlan) score(scorer Scorer, batch int, progress func(Progress)) error {
	if bs, ok := scorer.(BranchScorer); ok && bs.CanScoreBranches() {
		return p.scoreBranches(bs, batch, progress)
	}
	start := time.Now()
	var doneTokens int64
	for lo := 0; lo < len(p.seqs); lo += batch {
		hi := min(lo+batch, len(p.seqs))
		chunk := p.seqs[lo:hi]
		inputs := make([][]int, len(chunk))
		for i, s := range chunk {
			inputs[i] = s.Tokens
		}
		lps, greedy, err := scorer.TokenLogProbs(inputs)
		if err != nil {
			return errors.WithMessagef(err, "scoring sequences %d-%d of %d", lo+1, hi, len(p.seqs))
		}
		if len(lps) != len(chunk) || len(greedy) != len(chunk) {
			return errors.Errorf("scorer returned %d log-prob rows and %d greedy rows for %d sequences", len(lps), len(greedy), len(chunk))
		}
		for i, s := range chunk {
			n := len(s.Tokens)
			if len(lps[i]) != n-1 || len(greedy[i]) != n-1 {
				return errors.Errorf("scorer returned %d log-probs and %d greedy flags for a sequence of %d tokens (want %d)",
					len(lps[i]), len(greedy[i]), n, n-1)
			}
			s.ll, s.greedy = 0, true
			for t := n - 1 - s.ContLen; t < n-1; t++ {
				s.ll += lps[i][t]
				s.greedy = s.greedy && greedy[i][t]
			}
			doneTokens += int64(n)
		}
		p.report(progress, start, hi, doneTokens)
	}
	return nil
}

// report calls progress (when set) after done sequences of doneTokens tokens.
func (p *requestPlan) report(progress func(Progress), start time.Time, done int, doneTokens int64) {
	if progress == nil {
		return
	}
	el := time.Since(start)
	var eta time.Duration
	if doneTokens > 0 {
		eta = time.Duration(float64(el) * float64(p.totalTokens-doneTokens) / float64(doneTokens))
	}
	progress(Progress{Done: done, Total: len(p.seqs), DoneTokens: doneTokens, TotalTokens: p.totalTokens, Elapsed: el, ETA: eta})
}

// contextGroup is the sequences that share one context (the tokens before their continuations).
type contextGroup struct {
	context []int
	seqs    []*sequence
}

// scoreBranches scores the plan's sequences grouped by context: one BranchLogProbs request per
// distinct context, with the continuations of all its sequences. Groups are taken in the plan's
// order (longest sequences first), about batch sequences per scorer call.
func (p *requestPlan) scoreBranches(scorer BranchScorer, batch int, progress func(Progress)) error {
	var groups []*contextGroup
	byContext := map[string]*contextGroup{}
	var key []byte
	for _, s := range p.seqs {
		ctx := s.Tokens[:len(s.Tokens)-s.ContLen]
		key = seqKey(key[:0], ctx, 0)
		g, ok := byContext[string(key)]
		if !ok {
			g = &contextGroup{context: ctx}
			byContext[string(key)] = g
			groups = append(groups, g)
		}
		g.seqs = append(g.seqs, s)
	}
	start := time.Now()
	var done int
	var doneTokens int64
	for lo := 0; lo < len(groups); {
		hi, n := lo, 0
		for hi < len(groups) && (n == 0 || n+len(groups[hi].seqs) <= batch) {
			n += len(groups[hi].seqs)
			hi++
		}
		chunk := groups[lo:hi]
		prefixes := make([][]int, len(chunk))
		conts := make([][][]int, len(chunk))
		for i, g := range chunk {
			prefixes[i] = g.context
			conts[i] = make([][]int, len(g.seqs))
			for j, s := range g.seqs {
				conts[i][j] = s.Tokens[len(s.Tokens)-s.ContLen:]
			}
		}
		lps, greedy, err := scorer.BranchLogProbs(prefixes, conts)
		if err != nil {
			return errors.WithMessagef(err, "scoring contexts %d-%d of %d", lo+1, hi, len(groups))
		}
		if len(lps) != len(chunk) || len(greedy) != len(chunk) {
			return errors.Errorf("scorer returned %d log-prob rows and %d greedy rows for %d contexts", len(lps), len(greedy), len(chunk))
		}
		for i, g := range chunk {
			if len(lps[i]) != len(g.seqs) || len(greedy[i]) != len(g.seqs) {
				return errors.Errorf("scorer returned %d continuations for a context with %d", len(lps[i]), len(g.seqs))
			}
			for j, s := range g.seqs {
				if len(lps[i][j]) != s.ContLen || len(greedy[i][j]) != s.ContLen {
					return errors.Errorf("scorer returned %d log-probs for a continuation of %d tokens", len(lps[i][j]), s.ContLen)
				}
				s.ll, s.greedy = 0, true
				for t := range s.ContLen {
					s.ll += lps[i][j][t]
					s.greedy = s.greedy && greedy[i][j][t]
				}
				done++
				doneTokens += int64(len(s.Tokens))
			}
		}
		p.report(progress, start, done, doneTokens)
		lo = hi
	}
	return nil
}

// docLogLikelihoods returns, per document of task, the log-likelihood and greediness of each choice.
func (p *requestPlan) docLogLikelihoods(task string) []DocScore {
	refs := p.refs[task]
	out := make([]DocScore, len(refs))
	for di, choices := range refs {
		out[di].LogLikelihoods = make([]float64, len(choices))
		out[di].Greedy = make([]bool, len(choices))
		for ci, s := range choices {
			out[di].LogLikelihoods[ci] = s.ll
			out[di].Greedy[ci] = s.greedy
		}
	}
	return out
}
