package prune

import (
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/groups"
	"github.com/llmpruner/llmpruner/lib/importance"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/pkg/errors"
)

// Prune prunes m in place (m.Store's variables are sliced, m.Config replaced, compiled graphs
// dropped) and returns the Plan it carried out: for each step, Score, Select and Apply (with several
// iterative steps the model is rescored between steps and the returned plan is their composition,
// which Apply turns the unpruned model into the same pruned one). On error the model may be partly
// pruned (a step that failed leaves the store as it was before that step); callers should not save it.
func Prune(m *models.Model, opts Options) (plan *Plan, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.Errorf("prune: %v", r)
		}
	}()
	if err := opts.Validate(m.Config); err != nil {
		return nil, err
	}
	if err := opts.checkSampler(); err != nil {
		return nil, err
	}
	t := newTracker(m.Config.Clone())
	defer m.ResetExecs()
	steps := opts.steps()
	if opts.Strategy == Layer {
		steps = 1
	}
	for k := 1; k <= steps; k++ {
		s, err := score(m, &opts, k)
		if err != nil {
			return nil, err
		}
		r, err := selectStep(t, m.Config, s, &opts, k)
		if err != nil {
			return nil, errors.WithMessagef(err, "step %d", k)
		}
		if opts.Reconstruct { // one step (Validate)
			calib, err := opts.Sampler(1)
			if err != nil {
				return nil, errors.WithMessage(err, "calibration samples for reconstruction")
			}
			plan := t.plan(&opts)
			if err := ApplyReconstructed(m, plan, ReconstructOptions{Calibration: calib, Damp: opts.ReconstructDamp}); err != nil {
				return nil, err
			}
			return plan, nil
		}
		if err := applyRemoval(m, r); err != nil {
			return nil, errors.WithMessagef(err, "step %d", k)
		}
	}
	return t.plan(&opts), nil
}

// Score computes the scores Select needs for opts on m as it is now: the importance (opts.Importance,
// calibration samples from opts.Sampler(1)) of the groups the strategy prunes — heads and MLP
// channels of the Block ranges, hidden channels for Channel —, or for Layer with RankLayers each
// layer's loss increase when skipped.
func Score(m *models.Model, opts Options) (s *Scores, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.Errorf("score: %v", r)
		}
	}()
	if err := opts.Validate(m.Config); err != nil {
		return nil, err
	}
	if err := opts.checkSampler(); err != nil {
		return nil, err
	}
	return score(m, &opts, 1)
}

// score is Score for iterative step k.
func score(m *models.Model, o *Options, k int) (*Scores, error) {
	L := m.Config.NumLayers()
	if o.Strategy == Layer {
		if !o.RankLayers {
			return &Scores{}, nil
		}
		calib, err := o.Sampler(k)
		if err != nil {
			return nil, errors.WithMessage(err, "calibration samples for layer ranking")
		}
		if o.LayerCriterion == LayerBI {
			bi, err := importance.BlockInfluence(m, calib)
			if err != nil {
				return nil, err
			}
			return &Scores{Layers: bi}, nil
		}
		_, delta, err := importance.LayerSkipLoss(m, calib)
		if err != nil {
			return nil, err
		}
		return &Scores{Layers: delta}, nil
	}
	fams, err := familiesOf(m.Config, o)
	if err != nil {
		return nil, err
	}
	impOpts := o.Importance
	if c := impOpts.Criterion; c == importance.Taylor || c == importance.FLAP || c == importance.WandaSP {
		if impOpts.Calibration, err = o.Sampler(k); err != nil {
			return nil, errors.WithMessagef(err, "calibration samples for step %d", k)
		}
	}
	est, err := importance.New(impOpts)
	if err != nil {
		return nil, err
	}
	raw, err := est.Scores(m, fams)
	if err != nil {
		return nil, errors.WithMessagef(err, "step %d", k)
	}
	s := scoresOf(L, fams, raw)
	if f, ok := est.(*importance.FLAPEstimator); ok {
		s.Compensate = f.Compensation(m)
	}
	return s, nil
}

// scoresOf files the estimator's per-family scores under Scores.
func scoresOf(L int, fams []*groups.Family, raw [][]float64) *Scores {
	s := &Scores{Heads: make([][]float64, L), MLP: make([][]float64, L)}
	for i, f := range fams {
		switch f.Kind {
		case groups.Head:
			s.Heads[f.Layer] = raw[i]
		case groups.MLPChannel:
			s.MLP[f.Layer] = raw[i]
		case groups.HiddenChannel:
			s.Hidden = raw[i]
		}
	}
	return s
}

// familiesOf builds the families the strategy prunes in the current model.
func familiesOf(cfg *config.Config, o *Options) ([]*groups.Family, error) {
	if o.Strategy == Channel {
		f, err := groups.HiddenChannels(cfg)
		return []*groups.Family{f}, err
	}
	L := cfg.NumLayers()
	attn, mlp := layerRange(o.AttnLayers, L), layerRange(o.MLPLayers, L)
	var fams []*groups.Family
	for l := range L {
		if l >= attn.Start && l < attn.End {
			f, err := groups.AttentionHeads(cfg, l)
			if err != nil {
				return nil, err
			}
			fams = append(fams, f)
		}
		if l >= mlp.Start && l < mlp.End {
			f, err := groups.MLPChannels(cfg, l)
			if err != nil {
				return nil, err
			}
			fams = append(fams, f)
		}
	}
	return fams, nil
}
