package prune

import (
	"math"

	"github.com/pkg/errors"
)

// stepTarget is the linear schedule: target sparsity Ratio·k/steps after step k (1-based), computed
// as the original's linear_scheduler ((k/steps)·ratio).
func stepTarget(ratio float64, k, steps int) float64 {
	return float64(k) / float64(steps) * ratio
}

// counter holds what the count rule needs about one family.
type counter struct {
	initUnits int // units (heads / kv heads, channels) at the start
	unit      int // root channels per unit (head_dim for heads, 1 for channels)
	roundUnit int // kept units must be a multiple of this for RoundTo (1 = off)
}

// kept returns how many of current units the family keeps at target sparsity:
// n_pruned = current − int(init·(1 − target)) root channels, n_pruned/unit units (rounded down),
// then RoundTo rounding of the kept count. It errors when nothing would be left.
func (c counter) kept(current int, target float64, name string) (int, error) {
	keepCh := int(float64(c.initUnits*c.unit) * (1 - target))
	prunedCh := current*c.unit - keepCh
	keep := current
	if prunedCh > 0 {
		keep = current - prunedCh/c.unit
	}
	keep = roundKept(keep, current, c.roundUnit)
	if keep < 1 {
		return 0, errors.Errorf("%s: the ratio would remove all %d of them; lower the ratio", name, current)
	}
	return keep, nil
}

// roundKept rounds keep to the nearest multiple of r (ties up), at least r and at most current
// (current itself when it is below r).
func roundKept(keep, current, r int) int {
	if r <= 1 {
		return keep
	}
	k := int(math.Floor(float64(keep)/float64(r)+0.5)) * r
	k = max(k, r)
	if k > current {
		k = current / r * r
		if k == 0 {
			k = current
		}
	}
	return k
}

// roundUnitFor returns the number of units whose multiples give channel counts that are multiples
// of roundTo, when each unit is channelsPerUnit channels: roundTo / gcd(roundTo, channelsPerUnit).
func roundUnitFor(roundTo, channelsPerUnit int) int {
	if roundTo <= 1 {
		return 1
	}
	a, b := roundTo, channelsPerUnit
	for b != 0 {
		a, b = b, a%b
	}
	return roundTo / a
}
