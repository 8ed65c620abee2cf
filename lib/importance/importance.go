// Package importance scores pruning groups (package groups): random, weight magnitude (l1, l2),
// first/second-order Taylor expansions of the next-token loss, with gradients from GoMLX autodiff,
// and two forward-only activation criteria on the output projections' inputs (CollectInputStats):
// FLAP's fluctuation (FLAPEstimator, with its bias compensation) and Wanda-sp (WandaSPEstimator).
// The rest of this comment describes the weight-based criteria (random, l1, l2, Taylor).
//
// Every estimator first computes a salience vector per (tensor, axis) that a group member cuts:
// one number per row or column of a [out, in] weight, per element of an RMSNorm weight, per column of
// the embedding. A member's score vector is that salience at the member's indices. The scores of the
// members of one group are then combined as in LLM-Pruner (hf_llama_pruner.py):
//
//  1. folding: a member vector longer than the shortest one (length m) by a whole factor r is folded
//     as out[c] = Σ_{k<r} v[k·m + c];
//  2. reduction across members, elementwise: sum | mean | max | prod | first (the root member);
//  3. the group score is the sum of the reduced vector (a head scores as the sum of its channels'
//     scores, as MetaPruner's consecutive_groups).
//
// GQA: the original (llama3.py) concatenates all query channels of a layer in natural order before
// folding, so kv channel c of kv head k receives the query channels of heads k, k+n_kv, k+2·n_kv, …
// — query heads that read other kv heads. Here a kv-head group lists the query rows of the heads it
// really serves (k·n_rep … k·n_rep+n_rep−1) head by head, so the same fold adds to kv channel c
// exactly the query channels that attend with it. With MHA both agree.
//
// Bias members are pruned but not scored (the original reads only weights). Estimators return
// only small per-group vectors; Taylor reduces gradients to salience vectors inside the graph.
package importance

import (
	"strings"

	"github.com/llmpruner/llmpruner/lib/groups"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/pkg/errors"
)

// Estimator scores groups.
type Estimator interface {
	// Scores returns scores[f][i], the importance of fams[f].Groups[i] (higher = more important),
	// for the model as it is now.
	Scores(m *models.Model, fams []*groups.Family) ([][]float64, error)
}

// Criterion selects an estimator.
type Criterion int

const (
	// Random scores are uniform in [0,1), seeded.
	Random Criterion = iota
	// L1 is Σ|W| over each member row/column.
	L1
	// L2 is Σ W² over each member row/column (as the original: no square root).
	L2
	// Taylor is the first/second-order Taylor expansion of the calibration loss (see TaylorMode).
	Taylor
	// FLAP is FLAP's fluctuation criterion, standardized per layer (FLAPEstimator; forward only).
	FLAP
	// WandaSP is Wanda's structured variant |W|·‖X_j‖₂ (WandaSPEstimator; forward only).
	WandaSP
)

var criterionNames = []string{"random", "l1", "l2", "taylor", "flap", "wanda-sp"}

// String is the CLI name.
func (c Criterion) String() string { return nameOf(criterionNames, int(c)) }

// ParseCriterion reads random | l1 | l2 | taylor | flap | wanda-sp.
func ParseCriterion(s string) (Criterion, error) {
	i, err := parse("criterion", criterionNames, s)
	return Criterion(i), err
}

// TaylorMode is the Taylor salience S (W = weight, g = gradient of the batch loss,
// A = (1/N) Σ_j g_j² over per-sample gradients):
//
//	Vectorize:   S = W⊙g,            member score |Σ S| over the cut-off axis
//	ParamFirst:  S = W⊙g,            member score Σ|S|
//	ParamSecond: S = W⊙A⊙W,          member score Σ|S|
//	ParamMix:    S = W⊙g − ½ W⊙A⊙W,  member score Σ|S|
//
// RMSNorm elements score |S_k|.
type TaylorMode int

const (
	// DefaultTaylor means "not set": ParamFirst, the original's code default (--taylor param_first).
	DefaultTaylor TaylorMode = iota
	// ParamFirst: Σ|W⊙g| (element-wise first order, the paper's Element¹).
	ParamFirst
	// Vectorize: |Σ W⊙g| (the paper's Vector).
	Vectorize
	// ParamSecond: Σ|W⊙A⊙W| (element-wise second order only).
	ParamSecond
	// ParamMix: Σ|W⊙g − ½W⊙A⊙W| (first order minus half the second-order term).
	ParamMix
)

var taylorNames = []string{"default", "param_first", "vectorize", "param_second", "param_mix"}

// String is the CLI name.
func (t TaylorMode) String() string { return nameOf(taylorNames, int(t)) }

// ParseTaylorMode reads vectorize | param_first | param_second | param_mix ("" = default).
func ParseTaylorMode(s string) (TaylorMode, error) {
	if s == "" {
		return DefaultTaylor, nil
	}
	i, err := parse("taylor mode", taylorNames, s)
	return TaylorMode(i), err
}

// Reduction combines the (folded) member score vectors of a group elementwise.
type Reduction int

const (
	// DefaultReduction is the criterion's default: ReductionSum for Taylor, ReductionMean for l1/l2 (as hf_prune.py).
	DefaultReduction Reduction = iota
	// ReductionSum adds the members' scores.
	ReductionSum
	// ReductionMean averages them.
	ReductionMean
	// ReductionMax takes the largest.
	ReductionMax
	// ReductionProd multiplies them.
	ReductionProd
	// ReductionFirst keeps the root member's scores.
	ReductionFirst
)

var reductionNames = []string{"default", "sum", "mean", "max", "prod", "first"}

// String is the CLI name.
func (r Reduction) String() string { return nameOf(reductionNames, int(r)) }

// ParseReduction reads sum | mean | max | prod | first ("" = default).
func ParseReduction(s string) (Reduction, error) {
	if s == "" {
		return DefaultReduction, nil
	}
	i, err := parse("reduction", reductionNames, s)
	return Reduction(i), err
}

// Options configures New.
type Options struct {
	Criterion Criterion
	// Taylor is the Taylor variant (Criterion Taylor only).
	Taylor TaylorMode
	// Reduction across the members of a group.
	Reduction Reduction
	// Seed of the Random criterion.
	Seed int64
	// Calibration holds the token ids of the calibration samples [N][L] (Taylor, FLAP, Wanda-sp; all
	// rows the same length). Taylor's first-order gradient is taken over all N at once, as the original.
	Calibration [][]int
}

// New returns the estimator the options describe.
func New(opts Options) (Estimator, error) {
	red := opts.Reduction
	switch opts.Criterion {
	case Random:
		return &RandomEstimator{Seed: opts.Seed}, nil
	case L1, L2:
		if red == DefaultReduction {
			red = ReductionMean
		}
		p := 1
		if opts.Criterion == L2 {
			p = 2
		}
		return &Magnitude{P: p, Reduction: red}, nil
	case Taylor:
		if red == DefaultReduction {
			red = ReductionSum
		}
		if err := checkCalibration(opts.Calibration); err != nil {
			return nil, err
		}
		mode := opts.Taylor
		if mode == DefaultTaylor {
			mode = ParamFirst
		}
		return &TaylorEstimator{Mode: mode, Reduction: red, Calibration: opts.Calibration}, nil
	case FLAP, WandaSP:
		if red != DefaultReduction {
			return nil, errors.Errorf("importance: %s has its own group reduction (reduction %s is for random, l1, l2 and taylor)", opts.Criterion, red)
		}
		if err := checkCalibration(opts.Calibration); err != nil {
			return nil, err
		}
		if opts.Criterion == FLAP {
			return &FLAPEstimator{Calibration: opts.Calibration}, nil
		}
		return &WandaSPEstimator{Calibration: opts.Calibration}, nil
	}
	return nil, errors.Errorf("importance: unknown criterion %d", opts.Criterion)
}

func checkCalibration(calib [][]int) error {
	if len(calib) == 0 {
		return errors.New("importance: the criterion needs calibration samples (none given)")
	}
	for i, row := range calib {
		if len(row) < 2 {
			return errors.Errorf("importance: calibration sample %d has %d tokens; next-token loss needs at least 2", i, len(row))
		}
		if len(row) != len(calib[0]) {
			return errors.Errorf("importance: calibration sample %d has %d tokens, sample 0 has %d (all must be equal)", i, len(row), len(calib[0]))
		}
	}
	return nil
}

func nameOf(names []string, i int) string {
	if i >= 0 && i < len(names) {
		return names[i]
	}
	return "unknown"
}

func parse(what string, names []string, s string) (int, error) {
	for i, n := range names {
		if n == s && n != "default" {
			return i, nil
		}
	}
	valid := make([]string, 0, len(names))
	for _, n := range names {
		if n != "default" {
			valid = append(valid, n)
		}
	}
	return 0, errors.Errorf("unknown %s %q (valid: %s)", what, s, strings.Join(valid, ", "))
}
