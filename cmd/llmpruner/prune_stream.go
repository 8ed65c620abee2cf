package main

// prune --stream / --max-memory: pruning a model without loading it (lib/prune StreamScore,
// Select, WriteStreamed), chosen explicitly or when the loaded model would not fit the limit.

import (
	"strconv"
	"strings"
	"time"

	"github.com/gomlx/compute/dtypes"
	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/importance"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/llmpruner/llmpruner/lib/prune"
	"github.com/pkg/errors"
)

// parseByteSize reads sizes like "8GB", "512MB", "1.5GiB", "24G" or a plain byte count.
func parseByteSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	units := []struct {
		suffix string
		mult   float64
	}{{"TIB", 1 << 40}, {"GIB", 1 << 30}, {"MIB", 1 << 20}, {"KIB", 1 << 10},
		{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"T", 1e12}, {"G", 1e9}, {"M", 1e6}, {"K", 1e3}, {"B", 1}}
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 {
		return 0, errors.Errorf("%q is not a size (e.g. 8GB, 512MB, 1.5GiB)", s)
	}
	return int64(v * mult), nil
}

// storedDType is the dtype most of r's tensors are stored in.
func storedDType(r checkpoint.Reader) dtypes.DType {
	count := map[dtypes.DType]int64{}
	best := dtypes.Float32
	for _, ti := range r.Tensors() {
		n := int64(1)
		for _, d := range ti.Shape {
			n *= int64(d)
		}
		count[ti.DType] += n
		if count[ti.DType] > count[best] {
			best = ti.DType
		}
	}
	return best
}

// streamChoice opens --model without its weights and decides whether to stream: always with
// --stream, with --max-memory when the loaded model's estimate exceeds it. It refuses a limit
// that even streaming cannot meet. The returned model (no weights) and reader are for the
// streamed path; sampler is the calibration sampler (also valid for the loaded model).
func (e *env) streamChoice(f *pruneFlags, opts *prune.Options, saved *prune.Plan) (stream bool, m *models.Model, r checkpoint.Reader, err error) {
	be, err := backend()
	if err != nil {
		return false, nil, nil, err
	}
	m, r, err = models.OpenStreamed(be, e.model, models.LoadOptions{Tokenizer: e.tokenizer, Quiet: true})
	if err != nil {
		return false, nil, nil, errors.WithMessagef(err, "--model %s", e.model)
	}
	fail := func(err error) (bool, *models.Model, checkpoint.Reader, error) {
		_ = r.Close()
		return false, nil, nil, err
	}
	job := importance.MemoryJob{Stored: storedDType(r)}
	if saved == nil {
		if err := opts.Validate(m.Config); err != nil {
			return fail(errors.WithMessagef(err, "model %s", e.model))
		}
		if opts.Sampler, err = f.sampler(m, opts); err != nil {
			return fail(err)
		}
		job.Criterion, job.Taylor, job.Hidden = opts.Importance.Criterion, opts.Importance.Taylor, opts.Strategy == prune.Channel
		if opts.Sampler != nil {
			calib, err := opts.Sampler(1)
			if err != nil {
				return fail(err)
			}
			job.Samples, job.SeqLen = len(calib), len(calib[0])
		}
		if opts.Strategy == prune.Layer && !opts.RankLayers || opts.Strategy != prune.Layer && opts.Importance.Criterion == importance.Random {
			job.Criterion = importance.Random // no weights needed for scoring
		}
		if opts.Strategy == prune.Layer && opts.RankLayers { // a forward-only sweep
			job.Criterion, job.Streams = importance.L1, m.Config.NumLayers()+1
			if opts.LayerCriterion == prune.LayerBI {
				job.Streams = 1
			}
		}
	} else {
		job.Criterion = importance.Random // replaying a plan scores nothing
	}
	var limit int64
	if f.maxMemory != "" {
		if limit, err = parseByteSize(f.maxMemory); err != nil {
			return fail(usageErrorf("--max-memory: %v", err))
		}
	}
	need, streamNeed := importance.InMemoryBytes(m.Config, job), importance.StreamBytes(m.Config, job)
	if saved == nil && opts.Reconstruct {
		streamNeed = max(streamNeed, prune.ReconstructStreamBytes(m.Config, int64(job.Stored.Size()), job.Samples, job.SeqLen))
	}
	if !f.stream && need <= limit {
		e.logf("loading the model: about %s needed, --max-memory %s", humanBytes(need), f.maxMemory)
		_ = r.Close()
		return false, nil, nil, nil
	}
	if limit > 0 && streamNeed > limit {
		return fail(errors.Errorf("--max-memory %s is too small for %s even streamed one layer at a time: that needs about %s (loaded whole: %s)",
			f.maxMemory, e.model, humanBytes(streamNeed), humanBytes(need)))
	}
	if e.adapter != "" {
		return fail(usageErrorf("--adapter cannot be merged into a streamed model (about %s needed to load it): merge it first with finetune's output, then prune the merged model", humanBytes(need)))
	}
	if saved == nil {
		if err := prune.CheckStreamable(m.Config, *opts); err != nil {
			return fail(errors.WithMessagef(err, "--stream (model %s, about %s needed to load it)", e.model, humanBytes(need)))
		}
	}
	e.logf("streaming the model layer by layer: about %s needed (loaded whole: %s)", humanBytes(streamNeed), humanBytes(need))
	return true, m, r, nil
}

// runStreamedPrune scores (unless a plan is replayed), selects and writes the pruned model from the
// checkpoint without loading it.
func (e *env) runStreamedPrune(f *pruneFlags, opts prune.Options, saved *prune.Plan, m *models.Model, r checkpoint.Reader) (*prune.Plan, error) {
	defer r.Close()
	plan := saved
	if plan != nil {
		if err := plan.CheckModel(m.Config); err != nil {
			return nil, errors.WithMessagef(err, "--plan %s (model %s)", f.plan, e.model)
		}
	} else {
		start := time.Now()
		e.logf("pruning (streamed): %s, ratio %g, criterion %s", opts.Strategy, opts.Ratio, opts.Importance.Criterion)
		stop := e.spinner("scoring layer by layer")
		src := &importance.StreamSource{Backend: m.Backend, Config: m.Config, Reader: r}
		scores, err := prune.StreamScore(src, opts)
		stop()
		if err != nil {
			return nil, errors.WithMessage(err, "pruning")
		}
		if plan, err = prune.Select(m.Config, scores, opts); err != nil {
			return nil, errors.WithMessage(err, "pruning")
		}
		e.logf("scored and selected in %s: %d → %d parameters", time.Since(start).Round(time.Millisecond), plan.ParamsBefore, plan.ParamsAfter)
	}
	dt, _ := models.ParseSaveDType(f.dtype)
	save := checkpoint.SaveOptions{DType: dt, TokenizerFiles: m.TokenizerFiles, GenerationConfig: true}
	if opts.Reconstruct && saved == nil {
		calib, err := opts.Sampler(1)
		if err != nil {
			return nil, errors.WithMessage(err, "calibration samples for reconstruction")
		}
		stop := e.spinner("reconstructing layer by layer and writing " + f.out)
		_, err = prune.WriteReconstructedStreamed(m.Backend, m.Config, r, plan, prune.ReconstructOptions{Calibration: calib, Damp: opts.ReconstructDamp}, f.out, save)
		stop()
		if err != nil {
			return nil, errors.WithMessagef(err, "writing %s", f.out)
		}
		return plan, nil
	}
	stop := e.spinner("writing " + f.out)
	_, err := prune.WriteStreamed(m.Config, r, plan, f.out, save)
	stop()
	if err != nil {
		return nil, errors.WithMessagef(err, "writing %s", f.out)
	}
	return plan, nil
}
