package importance

import (
	"math"

	"github.com/llmpruner/llmpruner/lib/groups"
	"github.com/pkg/errors"
)

// Salience maps each (tensor, axis) a member cuts to one value per index along that axis.
type Salience map[groups.TensorAxis][]float64

// NeededAxes lists the distinct (tensor, axis) pairs whose salience the families' scored members need.
func NeededAxes(fams []*groups.Family) []groups.TensorAxis {
	seen := map[groups.TensorAxis]bool{}
	var out []groups.TensorAxis
	for _, f := range fams {
		for _, g := range f.Groups {
			for _, m := range g.Members {
				ta := groups.TensorAxis{Tensor: m.Tensor, Axis: m.Axis}
				if m.Bias || m.Axis < 0 || seen[ta] {
					continue
				}
				seen[ta] = true
				out = append(out, ta)
			}
		}
	}
	return out
}

// GroupScores folds and reduces member saliences into one score per group (see package doc).
func GroupScores(fams []*groups.Family, sal Salience, red Reduction) ([][]float64, error) {
	out := make([][]float64, len(fams))
	var vecs [][]float64
	for fi, f := range fams {
		out[fi] = make([]float64, len(f.Groups))
		for gi, g := range f.Groups {
			vecs = vecs[:0]
			minLen := math.MaxInt
			for _, m := range g.Members {
				if m.Bias || m.Axis < 0 {
					continue
				}
				s, ok := sal[groups.TensorAxis{Tensor: m.Tensor, Axis: m.Axis}]
				if !ok {
					return nil, errors.Errorf("importance: no salience for %s axis %d", m.Tensor, m.Axis)
				}
				v := make([]float64, len(m.Indices))
				for k, i := range m.Indices {
					if i < 0 || i >= len(s) {
						return nil, errors.Errorf("importance: %s axis %d index %d out of range [0,%d)", m.Tensor, m.Axis, i, len(s))
					}
					v[k] = s[i]
				}
				vecs = append(vecs, v)
				minLen = min(minLen, len(v))
			}
			if len(vecs) == 0 {
				return nil, errors.Errorf("importance: %s group %d has no scored member", f.Name(), g.Unit)
			}
			score, err := reduceGroup(vecs, minLen, red)
			if err != nil {
				return nil, errors.WithMessagef(err, "%s group %d", f.Name(), g.Unit)
			}
			out[fi][gi] = score
		}
	}
	return out, nil
}

// reduceGroup folds each vector to minLen, reduces across vectors elementwise and sums the result.
func reduceGroup(vecs [][]float64, minLen int, red Reduction) (float64, error) {
	folded := make([][]float64, len(vecs))
	for i, v := range vecs {
		if len(v)%minLen != 0 {
			return 0, errors.Errorf("member of length %d cannot fold onto %d", len(v), minLen)
		}
		f := make([]float64, minLen)
		for k, x := range v {
			f[k%minLen] += x
		}
		folded[i] = f
	}
	total := 0.0
	for c := range minLen {
		var r float64
		switch red {
		case ReductionSum, ReductionMean:
			for _, f := range folded {
				r += f[c]
			}
			if red == ReductionMean {
				r /= float64(len(folded))
			}
		case ReductionMax:
			r = math.Inf(-1)
			for _, f := range folded {
				r = math.Max(r, f[c])
			}
		case ReductionProd:
			r = 1
			for _, f := range folded {
				r *= f[c]
			}
		case ReductionFirst:
			r = folded[0][c]
		default:
			return 0, errors.Errorf("reduction %v not resolved", red)
		}
		total += r
	}
	return total, nil
}
