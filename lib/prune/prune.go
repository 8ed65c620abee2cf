package prune

import (
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/groups"
	"github.com/llmpruner/llmpruner/lib/importance"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/pkg/errors"
)

// Prune prunes m in place (m.Store's variables are sliced, m.Config replaced, compiled graphs
// dropped) and returns the report. On error the model may be partly pruned (a step that failed
// leaves the store as it was before that step); callers should not save it.
func Prune(m *models.Model, opts Options) (rep *Report, err error) {
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
	switch opts.Strategy {
	case Layer:
		err = pruneLayers(m, &opts, t)
	default:
		for k := 1; k <= opts.steps() && err == nil; k++ {
			err = pruneStep(m, &opts, t, k)
		}
	}
	if err != nil {
		return nil, err
	}
	return t.report(m.Config), nil
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

// counterOf is the count rule of a family, relative to the unpruned config.
func counterOf(orig *config.Config, f *groups.Family, roundTo int) counter {
	switch f.Kind {
	case groups.Head:
		return headCounter(orig, f.Layer, roundTo)
	case groups.MLPChannel:
		return counter{initUnits: orig.Inter[f.Layer], unit: 1, roundUnit: roundTo}
	default:
		return counter{initUnits: orig.Hidden, unit: 1, roundUnit: roundTo}
	}
}

// pruneStep scores and removes groups for iterative step k.
func pruneStep(m *models.Model, o *Options, t *tracker, k int) error {
	fams, err := familiesOf(m.Config, o)
	if err != nil {
		return err
	}
	impOpts := o.Importance
	if impOpts.Criterion == importance.Taylor {
		if impOpts.Calibration, err = o.Sampler(k); err != nil {
			return errors.WithMessagef(err, "calibration samples for step %d", k)
		}
	}
	est, err := importance.New(impOpts)
	if err != nil {
		return err
	}
	scores, err := est.Scores(m, fams)
	if err != nil {
		return errors.WithMessagef(err, "step %d", k)
	}
	target := stepTarget(o.Ratio, k, o.steps())
	removeUnits := make([][]int, len(fams))
	if o.Global {
		initTotal := 0
		for _, f := range fams {
			c := counterOf(t.orig, f, 1)
			initTotal += c.initUnits
		}
		removeUnits = globalThreshold(scores, initTotal, target)
		for i, f := range fams {
			cur := len(f.Groups)
			keepN := roundKept(cur-len(removeUnits[i]), cur, counterOf(t.orig, f, o.roundTo()).roundUnit)
			removeUnits[i] = lowest(scores[i], cur-keepN)
		}
	} else {
		for i, f := range fams {
			keepN, err := counterOf(t.orig, f, o.roundTo()).kept(len(f.Groups), target, f.Name())
			if err != nil {
				return err
			}
			removeUnits[i] = lowest(scores[i], len(f.Groups)-keepN)
		}
	}
	var remove []groups.Group
	for i, f := range fams {
		t.recordScores(f, scores[i])
		remove = append(remove, pick(f, removeUnits[i])...)
	}
	next, err := RemoveGroups(m.Store, m.Config, remove)
	if err != nil {
		return errors.WithMessagef(err, "step %d", k)
	}
	for i, f := range fams {
		t.keepUnits(f, groups.Kept(len(f.Groups), removeUnits[i]))
	}
	m.Config = next
	m.ResetExecs()
	return nil
}

// recordScores stores a family's scores under unpruned unit indices.
func (t *tracker) recordScores(f *groups.Family, s []float64) {
	switch f.Kind {
	case groups.Head:
		record(&t.kvScores[t.layers[f.Layer]], t.orig.KVHeads[t.layers[f.Layer]], t.kv[t.layers[f.Layer]], s)
	case groups.MLPChannel:
		record(&t.mlpScores[t.layers[f.Layer]], t.orig.Inter[t.layers[f.Layer]], t.mlp[t.layers[f.Layer]], s)
	case groups.HiddenChannel:
		record(&t.hiddenScores, t.orig.Hidden, t.hidden, s)
	}
}

// keepUnits narrows a family's index map to the kept current units.
func (t *tracker) keepUnits(f *groups.Family, kept []int) {
	switch f.Kind {
	case groups.Head:
		l := t.layers[f.Layer]
		t.kv[l] = keep(t.kv[l], kept)
	case groups.MLPChannel:
		l := t.layers[f.Layer]
		t.mlp[l] = keep(t.mlp[l], kept)
	case groups.HiddenChannel:
		t.hidden = keep(t.hidden, kept)
	}
}

// pruneLayers keeps the first KeepLayers layers, or with RankLayers the most important ones.
func pruneLayers(m *models.Model, o *Options, t *tracker) error {
	L := m.Config.NumLayers()
	n := o.keepLayers(L)
	var remove []int
	if o.RankLayers {
		calib, err := o.Sampler(1)
		if err != nil {
			return errors.WithMessage(err, "calibration samples for layer ranking")
		}
		_, delta, err := importance.LayerSkipLoss(m, calib)
		if err != nil {
			return err
		}
		t.layerScores = delta
		remove = lowest(delta, L-n)
	} else {
		for l := n; l < L; l++ {
			remove = append(remove, l)
		}
	}
	next, kept, err := RemoveLayers(m.Store, m.Config, remove)
	if err != nil {
		return err
	}
	t.layers = kept
	m.Config = next
	return nil
}
