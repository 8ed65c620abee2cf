package lora

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/llmpruner/llmpruner/lib/eval"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/llmpruner/llmpruner/lib/option"
	"github.com/pkg/errors"
)

// Result summarises a Finetune run.
type Result struct {
	Adapter    *Adapter
	Steps      int          // optimizer steps done (including those before a resume)
	TotalSteps int          // planned optimizer steps
	Losses     []float64    // training loss of every optimizer step (from step 1)
	Evals      []EvalRecord // evaluations in order
	BestStep   int          // step of the lowest validation loss (0 = none)
	BestLoss   float64      // lowest validation loss (NaN = none)
	// TrainTokens and TokensPerSec count input tokens (without padding) of this process's steps.
	TrainTokens  int
	TokensPerSec float64
	// OptimizerState is the number of float32 optimizer values (AdamW moments) held: 2 per adapter
	// parameter, none for the base model.
	OptimizerState int
	Skipped        int // Alpaca records skipped (Dataset.Skipped)
}

// trainer is the state of one Finetune run.
type trainer struct {
	ctx     context.Context
	m       *models.Model
	ds      *Dataset
	o       TrainOptions
	adapter *Adapter
	h       *hooks
	vars    []*model.Variable
	names   []string    // HF names of vars
	values  [][]float32 // host copy of the adapter parameters
	opt     *adamW

	accum, stepsPerEpoch, total int
	stepExec, evalExec          *model.Exec
	permEpoch                   int
	perm                        []int

	st         trainState
	bestValues [][]float32
	res        *Result
}

// Finetune trains m's LoRA adapter (attaching opts.LoRA first when m has none) on ds.Train, as
// post_training.py does with the Hugging Face Trainer (see the package doc): every optimizer step
// takes BatchSize examples of a seeded per-epoch permutation (the remainder of an epoch that does
// not fill a batch is dropped), split into micro-batches whose mean losses are averaged; then
// gradients are clipped and AdamW updates the adapter. Validation loss (and the perplexity of
// opts.ExtraEval) is measured every EvalEvery steps and at the end, checkpoints written every
// SaveEvery steps under OutDir/checkpoint-N (the last KeepCheckpoints kept), and the final
// adapter — the best by validation loss unless KeepLast — is left attached to m and written to
// OutDir in PEFT's format. Cancelling ctx stops between steps with ctx's error (the partial
// Result is returned too); opts.Resume continues a stopped run exactly.
func Finetune(ctx context.Context, m *models.Model, ds *Dataset, opts TrainOptions) (res *Result, err error) {
	o, err := opts.resolved()
	if err != nil {
		return nil, err
	}
	if ds == nil || len(ds.Train) == 0 {
		return nil, errors.New("finetune: no training examples")
	}
	if err := validateExamples("training", ds.Train, m.Config.Vocab, m.Config.MaxPositions); err != nil {
		return nil, err
	}
	if err := validateExamples("validation", ds.Val, m.Config.Vocab, m.Config.MaxPositions); err != nil {
		return nil, err
	}
	tr := &trainer{ctx: ctx, m: m, ds: ds, o: o, permEpoch: -1}
	if err := tr.setup(); err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			// A panic inside GoMLX's graph building leaves the Exec waiting for that graph:
			// finalizing it would block forever, so it is left to the garbage collector.
			err = errors.Errorf("finetune: %v", r)
			return
		}
		tr.stepExec.Finalize()
		tr.evalExec.Finalize()
	}()
	return tr.run()
}

// setup attaches (or finds, or resumes) the adapter, sizes the run and builds the graphs.
func (tr *trainer) setup() error {
	o, m := tr.o, tr.m
	tr.accum = o.BatchSize / o.MicroBatch
	tr.stepsPerEpoch = len(tr.ds.Train) / o.BatchSize
	if tr.stepsPerEpoch == 0 {
		return option.Errorf("finetune: %d training examples, fewer than one batch (%s %d)", len(tr.ds.Train), OptBatchSize, o.BatchSize)
	}
	tr.total = o.MaxSteps
	if tr.total == 0 {
		tr.total = o.Epochs * tr.stepsPerEpoch
	}
	var ckpt string
	if o.Resume != "" {
		var err error
		if ckpt, err = findCheckpoint(o.Resume); err != nil {
			return err
		}
	}
	a, _ := AdapterOf(m)
	switch {
	case a == nil && ckpt != "":
		var err error
		if a, err = LoadAdapter(m, ckpt); err != nil {
			return errors.WithMessage(err, "resuming")
		}
		if err := sameAdapterSettings(m, o.LoRA, a.Config); err != nil {
			Detach(m)
			return errors.WithMessagef(err, "resuming from %s: the checkpoint was made with other settings", ckpt)
		}
	case a == nil:
		var err error
		if a, err = Attach(m, o.LoRA, o.Seed); err != nil {
			return err
		}
	}
	tr.adapter = a
	tr.h = newHooks(m.Store, a.Config, a.Modules)
	tr.h.frozenBase = true
	var err error
	if tr.vars, tr.names, err = adapterVars(m, a); err != nil {
		return err
	}
	var sizes []int
	for _, v := range tr.vars {
		d, err := variableFloats(v, v.Shape().Size())
		if err != nil {
			return err
		}
		tr.values = append(tr.values, d)
		sizes = append(sizes, len(d))
	}
	tr.opt = newAdamW(sizes, o.AdamBeta1, o.AdamBeta2, o.AdamEpsilon, o.WeightDecay)
	tr.st = trainState{Fingerprint: tr.fingerprint(), BestLoss: nil}
	if ckpt != "" {
		if err := tr.restore(ckpt); err != nil {
			return err
		}
	}
	return tr.buildExecs()
}

// buildExecs compiles-on-demand the training step (loss and adapter gradients of a micro-batch,
// dropout on) and the evaluation (NLL sum and count, dropout off).
func (tr *trainer) buildExecs() (err error) {
	m := tr.m
	hk := tr.h.modelHooks(m)
	tr.stepExec, err = model.NewExec(m.Backend, m.Store, func(scope *model.Scope, tokens, mask, labels, rng *Node) []*Node {
		g := tokens.Graph()
		tr.h.beginTraining(g, rng)
		defer tr.h.endTraining(g)
		sum, count := LabelsNLL(models.Logits(scope, m.Config, tokens, mask, hk), labels)
		loss := Div(sum, Max(count, OnesLike(count)))
		nodes := make([]*Node, len(tr.vars))
		for i, v := range tr.vars {
			nodes[i] = models.VariableNode(m.Store, v, g)
		}
		return append([]*Node{loss}, Gradient(loss, nodes...)...)
	})
	if err != nil {
		return errors.WithMessage(err, "finetune: building the training graph")
	}
	tr.evalExec, err = model.NewExec(m.Backend, m.Store, func(scope *model.Scope, tokens, mask, labels *Node) (*Node, *Node) {
		return LabelsNLL(models.Logits(scope, m.Config, tokens, mask, hk), labels)
	})
	if err != nil {
		return errors.WithMessage(err, "finetune: building the evaluation graph")
	}
	if tr.o.TensorParallel > 0 {
		mesh, err := tensorParallel(m, tr.adapter, tr.o.TensorParallel)
		if err != nil {
			return err
		}
		tr.stepExec.AutoSharding(mesh)
		tr.evalExec.AutoSharding(mesh)
	}
	tr.stepExec.SetMaxCache(64)
	tr.evalExec.SetMaxCache(64)
	return nil
}

// run is the training loop.
func (tr *trainer) run() (*Result, error) {
	o := tr.o
	tr.res = &Result{Adapter: tr.adapter, TotalSteps: tr.total, BestLoss: math.NaN(), Skipped: tr.ds.Skipped,
		OptimizerState: tr.opt.stateSize()}
	tr.fillResult()
	var tokens int
	var busy time.Duration
	for tr.st.Step < tr.total {
		if err := tr.ctx.Err(); err != nil {
			return tr.res, err
		}
		start := time.Now()
		p, n, err := tr.trainStep()
		if err != nil {
			return tr.res, err
		}
		elapsed := time.Since(start)
		busy += elapsed
		tokens += n
		p.TokensPerSec = float64(n) / elapsed.Seconds()
		step := tr.st.Step
		if (o.EvalEvery > 0 && step%o.EvalEvery == 0) || step == tr.total {
			rec, err := tr.evaluate()
			if err != nil {
				return tr.res, err
			}
			p.Eval = &rec
		}
		if o.OutDir != "" && o.SaveEvery > 0 && step%o.SaveEvery == 0 {
			if err := tr.saveCheckpoint(); err != nil {
				return tr.res, err
			}
		}
		tr.res.TrainTokens, tr.res.TokensPerSec = tokens, float64(tokens)/busy.Seconds()
		tr.fillResult()
		if o.Progress != nil {
			o.Progress(p)
		}
	}
	if !o.KeepLast && tr.bestValues != nil {
		for i := range tr.values {
			copy(tr.values[i], tr.bestValues[i])
		}
		if err := tr.pushValues(); err != nil {
			return tr.res, err
		}
	}
	if o.OutDir != "" {
		if err := SaveAdapter(tr.m, o.OutDir); err != nil {
			return tr.res, err
		}
		if err := writeLog(o.OutDir, &tr.st); err != nil {
			return tr.res, err
		}
	}
	tr.fillResult()
	return tr.res, nil
}

// fillResult copies the history into the result.
func (tr *trainer) fillResult() {
	r := tr.res
	r.Steps = tr.st.Step
	r.Losses = tr.st.Losses
	r.Evals = tr.st.Evals
	r.BestStep = tr.st.BestStep
	if tr.st.BestLoss != nil {
		r.BestLoss = *tr.st.BestLoss
	}
}

// stepRows returns the training example indices of optimizer step s (0-based).
func (tr *trainer) stepRows(s int) []int {
	epoch, pos := s/tr.stepsPerEpoch, s%tr.stepsPerEpoch
	if epoch != tr.permEpoch {
		rng := rand.New(rand.NewPCG(uint64(tr.o.Seed), uint64(epoch)+0x6f72646572)) // "order"
		tr.perm, tr.permEpoch = rng.Perm(len(tr.ds.Train)), epoch
	}
	b := tr.o.BatchSize
	return tr.perm[pos*b : (pos+1)*b]
}

// dropoutSeed derives the RNG seed of micro-batch number k from the run's seed (splitmix64).
func dropoutSeed(seed int64, k int) int64 {
	z := uint64(seed) + uint64(k+1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return int64(z ^ (z >> 31))
}

// trainStep runs one optimizer step: micro-batches, accumulation, clipping, AdamW.
func (tr *trainer) trainStep() (Progress, int, error) {
	s := tr.st.Step
	rows := tr.stepRows(s)
	grads := make([][]float32, len(tr.values))
	for i := range grads {
		grads[i] = make([]float32, len(tr.values[i]))
	}
	inv := float32(1 / float64(tr.accum))
	var lossSum float64
	tokens := 0
	mb := tr.o.MicroBatch
	for k := range tr.accum {
		exs := make([]Example, mb)
		for j, r := range rows[k*mb : (k+1)*mb] {
			exs[j] = tr.ds.Train[r]
		}
		b := makeBatch(exs, mb)
		rng, err := RNGStateFromSeed(dropoutSeed(tr.o.Seed, s*tr.accum+k))
		if err != nil {
			return Progress{}, 0, err
		}
		outs, err := tr.stepExec.Call(b.tokens, b.mask, b.labels, rng)
		b.finalize()
		_ = rng.FinalizeAll()
		if err != nil {
			return Progress{}, 0, errors.WithMessagef(err, "finetune: step %d, micro-batch %d", s+1, k)
		}
		lossSum += float64(tensors.ToScalar[float32](outs[0]))
		for i, g := range outs[1:] {
			flat := tensors.MustCopyFlatData[float32](g)
			acc := grads[i]
			for j, x := range flat {
				acc[j] += x * inv
			}
		}
		for _, t := range outs {
			_ = t.FinalizeAll()
		}
		tokens += b.realTokens
	}
	loss := lossSum / float64(tr.accum)
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return Progress{}, 0, option.Errorf("finetune: the loss became %g at step %d (lower %s %g?)", loss, s+1, OptLearningRate, tr.o.LearningRate)
	}
	norm := clipGradNorm(grads, tr.o.MaxGradNorm)
	lr := linearSchedule(tr.o.LearningRate, s, tr.o.WarmupSteps, tr.total)
	tr.opt.update(tr.values, grads, s+1, lr)
	if err := tr.pushValues(); err != nil {
		return Progress{}, 0, err
	}
	tr.st.Step = s + 1
	tr.st.Losses = append(tr.st.Losses, loss)
	p := Progress{Step: s + 1, TotalSteps: tr.total, Epoch: float64(s+1) / float64(tr.stepsPerEpoch),
		Loss: loss, LearningRate: lr, GradNorm: norm}
	return p, tokens, nil
}

// pushValues copies the host parameters into the store variables.
func (tr *trainer) pushValues() error {
	for i, v := range tr.vars {
		t := tensors.FromFlatDataAndDimensions(append([]float32(nil), tr.values[i]...), v.Shape().Dimensions...)
		if err := v.SetValue(t); err != nil {
			return errors.Wrapf(err, "finetune: updating %s", tr.names[i])
		}
	}
	return nil
}

// evaluate measures the validation loss and extra perplexities and tracks the best adapter.
func (tr *trainer) evaluate() (EvalRecord, error) {
	rec := EvalRecord{Step: tr.st.Step, ValLoss: math.NaN()}
	if len(tr.ds.Val) > 0 {
		loss, err := tr.validationLoss()
		if err != nil {
			return rec, err
		}
		rec.ValLoss = loss
		if tr.st.BestLoss == nil || loss < *tr.st.BestLoss {
			l := loss
			tr.st.BestLoss, tr.st.BestStep = &l, tr.st.Step
			tr.bestValues = make([][]float32, len(tr.values))
			for i, v := range tr.values {
				tr.bestValues[i] = append([]float32(nil), v...)
			}
		}
	}
	for _, set := range tr.o.ExtraEval {
		r, err := eval.PerplexityOfIDs(tr.m, set.IDs, eval.PPLOptions{SeqLen: tr.o.PPLSeqLen})
		if err != nil {
			return rec, errors.WithMessagef(option.Renamed(err, eval.OptSeqLen, OptPPLSeqLen), "finetune: perplexity of %s", set.Name)
		}
		if rec.PPL == nil {
			rec.PPL = map[string]float64{}
		}
		rec.PPL[set.Name] = r.PPL
	}
	tr.st.Evals = append(tr.st.Evals, rec)
	return rec, nil
}

// validationLoss is the token-weighted mean loss over the validation set, in micro-batches.
func (tr *trainer) validationLoss() (float64, error) {
	var sum, count float64
	mb := tr.o.MicroBatch
	for start := 0; start < len(tr.ds.Val); start += mb {
		b := makeBatch(tr.ds.Val[start:min(start+mb, len(tr.ds.Val))], mb)
		s, c, err := tr.evalExec.Call2(b.tokens, b.mask, b.labels)
		b.finalize()
		if err != nil {
			return 0, errors.WithMessage(err, "finetune: validation")
		}
		sum += float64(tensors.ToScalar[float32](s))
		count += float64(tensors.ToScalar[float32](c))
		_, _ = s.FinalizeAll(), c.FinalizeAll()
	}
	if count == 0 {
		return math.NaN(), nil
	}
	return sum / count, nil
}

// sameAdapterSettings checks that the requested adapter settings (want) equal those of a
// checkpoint's adapter (got): rank, alpha, dropout and the resolved target modules.
func sameAdapterSettings(m *models.Model, want, got Config) error {
	_, wt, err := want.resolve(m.Config.Arch)
	if err != nil {
		return err
	}
	if want.R != got.R || want.Alpha != got.Alpha || want.Dropout != got.Dropout ||
		strings.Join(peftNames(wt), ",") != strings.Join(got.Targets, ",") {
		return errors.Errorf("LoRA r %d, alpha %g, dropout %g, targets %v requested; the checkpoint has r %d, alpha %g, dropout %g, targets %v",
			want.R, want.Alpha, want.Dropout, peftNames(wt), got.R, got.Alpha, got.Dropout, got.Targets)
	}
	return nil
}
