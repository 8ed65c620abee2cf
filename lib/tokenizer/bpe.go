package tokenizer

// mergeLookup reports whether piece (the concatenation of two adjacent symbols, the left one
// piece[:split]) may be merged, and with what priority: the highest priority merges first
// (SentencePiece: the piece score; tiktoken: minus the rank; tokenizer.json: minus the rank of
// the merge rule of the pair).
type mergeLookup func(piece string, split int) (priority float64, ok bool)

// bpeSymbol is one live or dead symbol of a BPE merge run: a byte range of the working string,
// linked to its live neighbours.
type bpeSymbol struct {
	start, end int
	prev, next int  // indices of the live neighbours, -1 at the ends
	frozen     bool // never merged (SentencePiece user-defined symbols)
}

// bpeCandidate is a possible merge of symbols left and left's next neighbour.
type bpeCandidate struct {
	left, right int
	length      int // byte length of the merged piece: detects stale candidates
	priority    float64
}

// bpeQueue is a binary max-heap of candidates (typed, to avoid container/heap's boxing).
type bpeQueue []bpeCandidate

// before reports whether a is merged before b: higher priority, then the leftmost pair.
func (a bpeCandidate) before(b bpeCandidate) bool {
	if a.priority != b.priority {
		return a.priority > b.priority
	}
	return a.left < b.left
}

func (q *bpeQueue) push(c bpeCandidate) {
	h := append(*q, c)
	for i := len(h) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h[i].before(h[parent]) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
	*q = h
}

func (q *bpeQueue) pop() bpeCandidate {
	h := *q
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		best, l, r := i, 2*i+1, 2*i+2
		if l < len(h) && h[l].before(h[best]) {
			best = l
		}
		if r < len(h) && h[r].before(h[best]) {
			best = r
		}
		if best == i {
			break
		}
		h[i], h[best] = h[best], h[i]
		i = best
	}
	*q = h
	return top
}

// bpeMerge runs byte-pair merging over s, whose initial symbols end at the offsets in bounds
// (increasing, the last one len(s)); frozen (optional, one flag per initial symbol) marks symbols
// that never merge; suggested (optional) is called with each candidate pair as it is queued.
// At every step it merges the adjacent pair of highest priority, the leftmost
// among equals — exactly the greedy loop of SentencePiece's BPE model, llama2.c's run.c and
// tiktoken — but with a priority queue, so it costs O(n log n) instead of O(n²).
// It returns the end offsets of the final symbols.
func bpeMerge(s string, bounds []int, frozen []bool, lookup mergeLookup, suggested func(left, right string)) []int {
	n := len(bounds)
	if n == 0 {
		return nil
	}
	syms := make([]bpeSymbol, n)
	start := 0
	for i, end := range bounds {
		syms[i] = bpeSymbol{start: start, end: end, prev: i - 1, next: i + 1}
		if frozen != nil {
			syms[i].frozen = frozen[i]
		}
		start = end
	}
	syms[n-1].next = -1

	q := make(bpeQueue, 0, n)
	suggest := func(left, right int) {
		if left < 0 || right < 0 || syms[left].frozen || syms[right].frozen {
			return
		}
		piece := s[syms[left].start:syms[right].end]
		if p, ok := lookup(piece, syms[left].end-syms[left].start); ok {
			if suggested != nil {
				suggested(s[syms[left].start:syms[left].end], s[syms[right].start:syms[right].end])
			}
			q.push(bpeCandidate{left: left, right: right, length: len(piece), priority: p})
		}
	}
	for i := 1; i < n; i++ {
		suggest(i-1, i)
	}
	alive := func(i int) bool { return syms[i].end > syms[i].start }
	for len(q) > 0 {
		c := q.pop()
		l, r := &syms[c.left], &syms[c.right]
		if !alive(c.left) || !alive(c.right) || l.next != c.right || r.end-l.start != c.length {
			continue // stale: one side was merged into something else since
		}
		l.end = r.end
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = c.left
		}
		r.start, r.end = 0, 0 // dead
		suggest(l.prev, c.left)
		suggest(c.left, l.next)
	}
	ends := make([]int, 0, n)
	for i := 0; i >= 0; i = syms[i].next {
		ends = append(ends, syms[i].end)
	}
	return ends
}
