package experiment

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gomlx/compute"
	"github.com/llmpruner/llmpruner/lib/data"
	"github.com/llmpruner/llmpruner/lib/eval"
	"github.com/llmpruner/llmpruner/lib/importance"
	"github.com/llmpruner/llmpruner/lib/lora"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/llmpruner/llmpruner/lib/notebook"
	"github.com/llmpruner/llmpruner/lib/prune"
	"github.com/pkg/errors"
)

// Measurement is one evaluated model: a row of the result and statistics tables.
type Measurement struct {
	Name     string               `json:"name"`
	PPL      map[string]float64   `json:"ppl"`
	ZeroShot *eval.ZeroShotResult `json:"zero_shot,omitempty"`
	Stats    *eval.Statistics     `json:"stats"`
	Latency  *eval.Latency        `json:"latency,omitempty"`
	Seconds  float64              `json:"seconds"` // wall time of the evaluation
}

// Curve is a LoRA training run's loss per optimizer step and validation loss per evaluation.
type Curve struct {
	Loss      []float64 `json:"loss"`
	EvalSteps []float64 `json:"eval_steps"`
	ValLoss   []float64 `json:"val_loss"`
	Seconds   float64   `json:"seconds"`
}

// Results are the measurements of a Run, in table order.
type Results struct {
	Settings     Settings
	Measurements []Measurement
	// Curves holds the LoRA training curves by method name.
	Curves map[string]Curve
	// Reports holds the pruning reports by method name.
	Reports map[string]*prune.Plan
	// Cached and Computed count the steps read from the cache and computed by this Run.
	Cached, Computed int
}

// runner carries a Run's state.
type runner struct {
	backend compute.Backend
	s       *Settings
	res     *Results
	say     func(string)
	texts   map[string]string // PPL column → text
	calib   string
}

// Run executes the experiment: dense evaluation, then per method pruning (cached directory),
// evaluation without tuning, LoRA recovery (cached merged model) and evaluation with it. say, when
// non-nil, receives progress messages.
func Run(backend compute.Backend, s Settings, say func(string)) (*Results, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if say == nil {
		say = func(string) {}
	}
	r := &runner{backend: backend, s: &s, say: say,
		res: &Results{Settings: s, Curves: map[string]Curve{}, Reports: map[string]*prune.Plan{}}}
	dense, err := r.measure("dense", key("dense", "eval"), s.Model)
	if err != nil {
		return nil, err
	}
	r.res.Measurements = append(r.res.Measurements, dense)
	pct := s.Label
	if pct == "" {
		pct = fmt.Sprintf("ratio %g", s.Ratio)
	}
	for _, m := range s.Methods {
		dir, err := r.pruned(m)
		if err != nil {
			return nil, err
		}
		if m.WithoutFT {
			meas, err := r.measure(pct+" "+m.Name+", w/o tune", key(m.Name, "pruned", "eval"), dir)
			if err != nil {
				return nil, err
			}
			r.res.Measurements = append(r.res.Measurements, meas)
		}
		if m.WithLoRA {
			dir, err := r.recovered(m, dir)
			if err != nil {
				return nil, err
			}
			meas, err := r.measure(pct+" "+m.Name+", w/ LoRA", key(m.Name, "lora", "eval"), dir)
			if err != nil {
				return nil, err
			}
			r.res.Measurements = append(r.res.Measurements, meas)
		}
	}
	say(fmt.Sprintf("%s: done (%d steps computed, %d read from %s)", s.Name, r.res.Computed, r.res.Cached, s.CacheDir))
	return r.res, nil
}

// load loads a model with the settings' tokenizer choice.
func (r *runner) load(path string) (*models.Model, error) {
	m, err := models.Load(r.backend, path, models.LoadOptions{Tokenizer: r.s.Tokenizer, Quiet: true})
	if err != nil {
		return nil, err
	}
	if r.s.ByteTokenizer {
		m.Tokenizer = NewByteTokenizer(m.Config.Vocab, m.EOSTokens()[0])
	}
	if m.Tokenizer == nil {
		return nil, errors.Errorf("model %s: no tokenizer (%v); set Settings.Tokenizer", path, m.TokenizerErr)
	}
	return m, nil
}

// measure evaluates the model at path (cached under k).
func (r *runner) measure(name, k, path string) (Measurement, error) {
	computed := false
	meas, err := notebook.Cache(r.s.CacheDir, k, func() (Measurement, error) {
		computed = true
		return r.evaluate(name, path)
	})
	if err != nil {
		return meas, errors.WithMessagef(err, "evaluating %s", name)
	}
	r.count(computed, name+": evaluation")
	meas.Name = name
	if zs := meas.ZeroShot; zs != nil && len(zs.Order) == 0 { // Order is not stored in the cache's JSON
		for _, t := range eval.PaperTasks {
			if _, ok := zs.Tasks[t]; ok {
				zs.Order = append(zs.Order, t)
			}
		}
	}
	return meas, nil
}

func (r *runner) count(computed bool, what string) {
	if computed {
		r.res.Computed++
	} else {
		r.res.Cached++
		r.say(what + " read from the cache")
	}
}

// evaluate measures perplexities, zero-shot accuracy and statistics of the model at path.
func (r *runner) evaluate(name, path string) (Measurement, error) {
	start := time.Now()
	meas := Measurement{Name: name, PPL: map[string]float64{}}
	m, err := r.load(path)
	if err != nil {
		return meas, err
	}
	for _, te := range r.s.PPL {
		text, err := r.text(te)
		if err != nil {
			return meas, err
		}
		res, err := eval.Perplexity(m, m.Tokenizer, text, eval.PPLOptions{SeqLen: te.SeqLen, Progress: func(done, total int) {
			r.say(fmt.Sprintf("%s: %s perplexity, window %d/%d", name, te.Column, done, total))
		}})
		if err != nil {
			return meas, errors.WithMessagef(err, "%s perplexity of %s", te.Column, name)
		}
		meas.PPL[te.Column] = res.PPL
	}
	if r.s.ZeroShotDir != "" {
		zs, err := eval.ZeroShot(m, m.Tokenizer, eval.ZeroShotOptions{DataDir: r.s.ZeroShotDir, Tasks: r.s.Tasks, Limit: r.s.Limit,
			MaxLength: m.Config.MaxPositions, Progress: func(p eval.Progress) {
				r.say(fmt.Sprintf("%s: zero-shot %d/%d sequences, ETA %s", name, p.Done, p.Total, p.ETA.Round(time.Second)))
			}})
		if err != nil {
			return meas, errors.WithMessagef(err, "zero-shot evaluation of %s", name)
		}
		meas.ZeroShot = zs
	}
	seqLen := max(r.s.StatsSeqLen, 1)
	if meas.Stats, err = eval.Stats(m.Config, seqLen, 1); err != nil {
		return meas, err
	}
	if r.s.LatencyRepeats > 0 {
		ids := make([]int, min(seqLen, m.Config.MaxPositions))
		for i := range ids {
			ids[i] = (i * 7) % m.Config.Vocab
		}
		lat, err := eval.MeasureLatency(func() error { _, err := m.Logits([][]int{ids}); return err }, 1, r.s.LatencyRepeats)
		if err != nil {
			return meas, errors.WithMessagef(err, "latency of %s", name)
		}
		meas.Latency = &lat
	}
	meas.Seconds = time.Since(start).Seconds()
	r.say(fmt.Sprintf("%s: evaluated in %.1fs", name, meas.Seconds))
	return meas, nil
}

// text reads (once) the text of a perplexity column.
func (r *runner) text(te TextEval) (string, error) {
	if t, ok := r.texts[te.Column]; ok {
		return t, nil
	}
	set, err := data.ParseTextSet(te.Spec, os.Getenv(data.DataDirEnv))
	if err != nil {
		return "", errors.WithMessagef(err, "perplexity column %s", te.Column)
	}
	t, err := set.Read()
	if err != nil {
		return "", err
	}
	if te.MaxChars > 0 && len(t) > te.MaxChars {
		t = t[:te.MaxChars]
	}
	if r.texts == nil {
		r.texts = map[string]string{}
	}
	r.texts[te.Column] = t
	return t, nil
}

// pruned returns the directory of the dense model pruned with m (cached).
func (r *runner) pruned(meth Method) (string, error) {
	s := r.s
	dir, cached, err := notebook.CacheDir(s.CacheDir, key(meth.Name, "pruned"), func(tmp string) error {
		r.say(fmt.Sprintf("pruning with %s ...", meth.Name))
		m, err := r.load(s.Model)
		if err != nil {
			return err
		}
		if r.calib == "" {
			if r.calib, err = data.ReadCalibrationText(s.CalibText); err != nil {
				return err
			}
		}
		ratio := s.Ratio
		if meth.Ratio > 0 {
			ratio = meth.Ratio
		}
		opts := prune.Options{Strategy: meth.Strategy, Ratio: ratio, AttnLayers: s.AttnLayers, MLPLayers: s.MLPLayers,
			RoundTo: meth.RoundTo, IterativeSteps: meth.Iterations,
			Importance: importance.Options{Criterion: meth.Criterion, Taylor: meth.Taylor, Seed: s.Seed},
			Sampler: func(step int) ([][]int, error) {
				return data.CalibrationSamples(m.Tokenizer, r.calib, s.CalibN, s.CalibLen, s.Seed+int64(step-1))
			}}
		opts.Structure, opts.Reconstruct = meth.Structure, meth.Reconstruct
		if meth.Strategy != prune.Block || meth.AllLayers {
			opts.AttnLayers, opts.MLPLayers = nil, nil
		}
		rep, err := prune.Prune(m, opts)
		if err != nil {
			return errors.WithMessagef(err, "pruning with %s", meth.Name)
		}
		if err := m.Save(tmp, ""); err != nil {
			return err
		}
		return rep.Save(filepath.Join(tmp, "prune_report.json"))
	})
	if err != nil {
		return "", err
	}
	r.count(!cached, meth.Name+": pruned model")
	if b, err := os.ReadFile(filepath.Join(dir, "prune_report.json")); err == nil {
		var rep prune.Plan
		if json.Unmarshal(b, &rep) == nil {
			r.res.Reports[meth.Name] = &rep
		}
	}
	return dir, nil
}

// recovered returns the directory of the pruned model after LoRA recovery, merged (cached); the
// adapter is kept beside it (adapter/) and the training curve in curve.json.
func (r *runner) recovered(meth Method, prunedDir string) (string, error) {
	s, ls := r.s, r.s.LoRA
	dir, cached, err := notebook.CacheDir(s.CacheDir, key(meth.Name, "lora"), func(tmp string) error {
		m, err := r.load(prunedDir)
		if err != nil {
			return err
		}
		ds, err := lora.LoadDataset(m.Tokenizer, ls.Data, ls.Format, lora.DataOptions{CutoffLen: ls.Cutoff, ValSize: ls.ValSize, Seed: s.Seed})
		if err != nil {
			return err
		}
		start := time.Now()
		var curve Curve
		res, err := lora.Finetune(context.Background(), m, ds, lora.TrainOptions{
			LoRA:     lora.Config{R: ls.R, Alpha: ls.Alpha, Dropout: ls.Dropout, BaseModel: s.Model},
			MaxSteps: ls.Steps, Epochs: ls.Epochs, LearningRate: ls.LR, BatchSize: ls.BatchSize, MicroBatch: ls.MicroBatch,
			WarmupSteps: ls.Warmup, EvalEvery: evalEvery(ls), SaveEvery: -1, Seed: s.Seed,
			Progress: func(p lora.Progress) {
				r.say(fmt.Sprintf("LoRA (%s): step %d/%d, loss %.4f", meth.Name, p.Step, p.TotalSteps, p.Loss))
			},
		})
		if err != nil {
			return errors.WithMessagef(err, "LoRA recovery of %s", meth.Name)
		}
		curve.Loss, curve.Seconds = res.Losses, time.Since(start).Seconds()
		for _, e := range res.Evals {
			curve.EvalSteps = append(curve.EvalSteps, float64(e.Step))
			curve.ValLoss = append(curve.ValLoss, e.ValLoss)
		}
		if err := lora.SaveAdapter(m, filepath.Join(tmp, "adapter")); err != nil {
			return err
		}
		if err := lora.Merge(m); err != nil {
			return err
		}
		if err := m.Save(filepath.Join(tmp, "merged"), ""); err != nil {
			return err
		}
		b, err := json.Marshal(curve)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(tmp, "curve.json"), b, 0o644)
	})
	if err != nil {
		return "", err
	}
	r.count(!cached, meth.Name+": LoRA-recovered model")
	if b, err := os.ReadFile(filepath.Join(dir, "curve.json")); err == nil {
		var c Curve
		if json.Unmarshal(b, &c) == nil {
			r.res.Curves[meth.Name] = c
		}
	}
	return filepath.Join(dir, "merged"), nil
}

// evalEvery evaluates four times during a run of fixed Steps, else every 100 steps (lib/lora's default).
func evalEvery(ls LoRASettings) int {
	if ls.Steps > 0 {
		return max(ls.Steps/4, 1)
	}
	return 100
}
