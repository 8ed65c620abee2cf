package tokenizer

import "sort"

// byteTrie maps byte strings to ids and finds every key that prefixes a text (the common-prefix
// search of SentencePiece's unigram model). Nodes are numbered breadth-first, so the children of
// a node are contiguous and sorted by their byte label.
type byteTrie struct {
	firstChild []int32
	numChild   []int32
	label      []byte
	value      []int32 // id of the key ending at the node, or -1
}

// newByteTrie builds the trie of keys → ids.
func newByteTrie(keys map[string]int) *byteTrie {
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		if k != "" {
			sorted = append(sorted, k)
		}
	}
	sort.Strings(sorted)
	t := &byteTrie{}
	type span struct{ lo, hi, depth int } // sorted[lo:hi] share the node's prefix of length depth
	queue := []span{{0, len(sorted), 0}}
	t.label = append(t.label, 0)
	t.value = append(t.value, -1)
	for node := 0; node < len(queue); node++ {
		s := queue[node]
		lo := s.lo
		if lo < s.hi && len(sorted[lo]) == s.depth { // the key equal to the prefix sorts first
			t.value[node] = int32(keys[sorted[lo]])
			lo++
		}
		t.firstChild = append(t.firstChild, int32(len(queue)))
		children := 0
		for lo < s.hi {
			b := sorted[lo][s.depth]
			hi := lo + 1
			for hi < s.hi && sorted[hi][s.depth] == b {
				hi++
			}
			queue = append(queue, span{lo, hi, s.depth + 1})
			t.label = append(t.label, b)
			t.value = append(t.value, -1)
			children++
			lo = hi
		}
		t.numChild = append(t.numChild, int32(children))
	}
	return t
}

// prefixes calls visit(id, length) for each key that prefixes s, shortest first.
func (t *byteTrie) prefixes(s string, visit func(id, length int)) {
	node := int32(0)
	for i := 0; i < len(s); i++ {
		lo, n := t.firstChild[node], t.numChild[node]
		k := sort.Search(int(n), func(j int) bool { return t.label[lo+int32(j)] >= s[i] })
		if k == int(n) || t.label[lo+int32(k)] != s[i] {
			return
		}
		node = lo + int32(k)
		if t.value[node] >= 0 {
			visit(int(t.value[node]), i+1)
		}
	}
}
