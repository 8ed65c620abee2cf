package prune

import (
	"sort"

	"github.com/llmpruner/llmpruner/lib/groups"
)

// lowest returns the indices of the n lowest scores (ties: lower index first).
func lowest(scores []float64, n int) []int {
	order := make([]int, len(scores))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return scores[order[a]] < scores[order[b]] })
	out := append([]int{}, order[:n]...)
	sort.Ints(out)
	return out
}

// globalThreshold is MetaPruner's global selection: over all families' unit scores, n_pruned =
// current − int(initTotal·(1 − target)); the n_pruned-th smallest score is the threshold and every
// unit scoring ≤ it is removed. Unlike the original, each family keeps at least one unit (and
// RoundTo is applied per family afterwards by the caller).
func globalThreshold(scores [][]float64, initTotal int, target float64) (remove [][]int) {
	var all []float64
	for _, s := range scores {
		all = append(all, s...)
	}
	remove = make([][]int, len(scores))
	n := len(all) - int(float64(initTotal)*(1-target))
	if n <= 0 {
		return remove
	}
	sorted := append([]float64{}, all...)
	sort.Float64s(sorted)
	thr := sorted[n-1]
	for f, s := range scores {
		for i, x := range s {
			if x <= thr {
				remove[f] = append(remove[f], i)
			}
		}
		if len(remove[f]) >= len(s) { // keep the best unit
			remove[f] = lowest(s, len(s)-1)
		}
	}
	return remove
}

// pick returns the groups of fam with the given unit indices.
func pick(fam *groups.Family, units []int) []groups.Group {
	out := make([]groups.Group, len(units))
	for i, u := range units {
		out[i] = fam.Groups[u]
	}
	return out
}
