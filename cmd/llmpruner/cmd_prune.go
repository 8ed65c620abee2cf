package main

import (
	"fmt"
	"math"
	"time"

	"github.com/llmpruner/llmpruner/lib/data"
	"github.com/llmpruner/llmpruner/lib/importance"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/llmpruner/llmpruner/lib/prune"
	"github.com/pkg/errors"
)

var pruneCmd = &command{
	name:    "prune",
	summary: "structurally prune a model (block / channel / layer) and save the smaller dense model",
	synopsis: `prune --model M [--adapter DIR] --out DIR --strategy block|channel|layer --ratio R
      [--attn-layers A:B] [--mlp-layers A:B] [--keep-layers N] [--rank-layers] [--layer-criterion loss|bi]
      --criterion random|l1|l2|taylor|flap|wanda-sp [--taylor vectorize|param_first|param_second|param_mix]
      [--structure uniform|adaptive] [--reconstruct [--reconstruct-damp 0.01]]
      [--reduction sum|mean|max|prod|first] [--global] [--iterative-steps K] [--round-to K]
      [--calib PATH | --calib-ids F.json] [--num-examples 10] [--calib-seq-len 64] [--seed 42]
      [--save-plan P.json] [--dtype f32|bf16|f16] [--stream] [--max-memory SIZE] [--force] [--json]
   or prune --model M --out DIR --plan P.json [--dtype …] [--force] [--json]`,
	details: `As LLM-Pruner's hf_prune.py: groups (attention heads — for GQA a kv head with the query heads
sharing it —, MLP channels, hidden channels, layers) are scored by --criterion and the least
important --ratio of each layer's groups is removed (--global: of all pruned layers together).
Layer ranges are START:END with END exclusive, like --block_attention_layer_start/end.
Beyond LLM-Pruner: --criterion flap (FLAP: input fluctuation × squared column norm of o_proj /
down_proj, forward only, with bias compensation — the output gets attention_bias/mlp_bias — and by
default --structure adaptive: --ratio is then the fraction of all prunable attention+MLP parameters,
spread over layers by standardized score), --criterion wanda-sp (|W|·‖X‖₂), --reconstruct (ridge
re-fit of each narrowed layer's o_proj/down_proj on the calibration samples, any block criterion),
--layer-criterion bi (ShortGPT's Block Influence for --strategy layer).
Taylor, flap, wanda-sp, --rank-layers and --reconstruct need calibration text (--calib, e.g.
TinyStories text for stories260K, Alpaca outputs for LLaMA) or token ids (--calib-ids, a JSON array
of arrays). Calibration text must not overlap the text you evaluate on: llmpruner does not check
it. Use another split or another part of the file (FLAP calibrates on WikiText-2 *train*, which is
fine for a WikiText-2 test evaluation; the test text itself is not). The README's stories260K
results cut tinystories_val_head.txt at the first document boundary after 200,000 bytes: evaluation
before it, calibration after it (scripts/beyond_llm_pruner.sh). All options are checked before any
work; nothing is written to --out (or --save-plan) unless pruning succeeds.
--save-plan writes the selection as JSON (which layers, heads, kv heads and channels stay, their
scores, parameters and MACs before/after; --report is the same file); --plan applies such a file
to the model it was made for (no scoring, no calibration; the model's shape must match the plan's).
The output is an HF directory. When every layer keeps the same sizes (e.g. --strategy layer, or
channel) its config.json is stock and transformers and vLLM load it; a block-pruned model's layers
differ, and its config.json adds per-layer lists that only llmpruner reads (stock transformers
cannot build per-layer sizes). To deploy such a model, convert it to GGUF (llmpruner convert --out
M.gguf): llama.cpp and the tools built on it run it (architecture deci).
--stream prunes a model larger than memory: importance is computed one decoder layer at a time from
the checkpoint (Taylor: forward layer by layer, backward layer by layer re-reading each layer;
flap/wanda-sp statistics and --rank-layers: forward layer by layer; the same scores as loading it)
and the pruned model is written one tensor at a time, FLAP's compensation biases included;
--reconstruct re-fits one layer at a time (LLaMA family, one step, no --adapter, no --reconstruct
after flap). --max-memory SIZE streams only when the loaded model would
need more than SIZE, and refuses when even one layer at a time does not fit.`,
	examples: []string{
		"llmpruner prune --model $LLMPRUNER_DATA/models/stories260K/stories260K.bin --out stories-pruned --strategy block --ratio 0.2 --attn-layers 1:4 --mlp-layers 1:4 --criterion taylor --calib $LLMPRUNER_DATA/text/tinystories/tinystories_val_head.txt --save-plan plan.json",
		"llmpruner prune --model $LLMPRUNER_DATA/models/stories260K/stories260K.bin --out stories-replayed --plan plan.json",
		"llmpruner prune --model ./llama-7b --out ./llama-7b-20 --strategy block --ratio 0.25 --attn-layers 4:30 --mlp-layers 4:30 --criterion taylor --taylor param_first --calib alpaca.txt",
		"llmpruner prune --model ./llama-7b --out ./llama-7b-l24 --strategy layer --keep-layers 24",
		"llmpruner prune --model ./llama-7b --out ./llama-7b-bi24 --strategy layer --keep-layers 24 --layer-criterion bi --calib calib.txt",
		"llmpruner prune --model ./llama-7b --out ./llama-7b-flap20 --strategy block --ratio 0.2 --criterion flap --calib calib.txt --num-examples 1024 --calib-seq-len 128",
		"llmpruner prune --model ./llama-7b --out ./llama-7b-20 --strategy block --ratio 0.25 --attn-layers 4:30 --mlp-layers 4:30 --criterion taylor --calib alpaca.txt --max-memory 8GB",
	},
	run: runPrune,
}

func init() { register(pruneCmd) }

// pruneFlags are prune's flags beyond the shape flags it shares with plan.
type pruneFlags struct {
	shape       shapeFlags
	out         string
	criterion   string
	structure   string
	layerCrit   string
	reconstruct bool
	damp        float64
	taylor      string
	reduction   string
	calib       string
	calibIDs    string
	numExamples int
	calibSeqLen int
	seed        int64
	report      string
	savePlan    string
	plan        string
	dtype       string
	force       bool
	stream      bool
	maxMemory   string
}

func runPrune(e *env, args []string) error {
	e.addModel()
	e.addJSON()
	var f pruneFlags
	e.addShapeFlags(&f.shape)
	fs := e.fs
	fs.StringVar(&f.out, "out", "", "output `DIR` for the pruned model (Hugging Face layout)")
	fs.StringVar(&f.criterion, "criterion", "", "importance `criterion`: random, l1, l2, taylor, flap (FLAP's fluctuation, with bias compensation) or wanda-sp")
	fs.StringVar(&f.structure, "structure", "", "block: how removals spread over layers (`S`): uniform (--ratio of each layer's heads/channels; default) or adaptive (FLAP's search: --ratio of all prunable attention+MLP parameters; default for --criterion flap)")
	fs.StringVar(&f.taylor, "taylor", "", "Taylor `variant`: vectorize, param_first (default), param_second or param_mix (needs --criterion taylor)")
	fs.StringVar(&f.reduction, "reduction", "", "group `reduction`: sum (Taylor default), mean (l1/l2 default), max, prod or first")
	fs.StringVar(&f.layerCrit, "layer-criterion", "", "layer: rank layers by `C`: loss (loss increase when skipped; the --rank-layers default) or bi (ShortGPT's Block Influence, 1 − mean cos(layer input, output)); implies --rank-layers")
	fs.BoolVar(&f.reconstruct, "reconstruct", false, "block: after the selection, re-fit each narrowed layer's o_proj/down_proj (and bias) by ridge least squares on the calibration samples so its output follows the dense model's")
	fs.Float64Var(&f.damp, "reconstruct-damp", 0.01, "ridge damping `λ` of --reconstruct, relative to the mean diagonal of XᵀX")
	fs.StringVar(&f.calib, "calib", "", "calibration text `file` (documents separated by blank lines)")
	fs.StringVar(&f.calibIDs, "calib-ids", "", "calibration token ids: JSON `file` with an array of equal-length arrays")
	fs.IntVar(&f.numExamples, "num-examples", 10, "calibration samples `N` drawn from --calib")
	fs.IntVar(&f.calibSeqLen, "calib-seq-len", 64, "tokens per calibration sample `L`")
	fs.Int64Var(&f.seed, "seed", 42, "random `seed` (calibration sampling, random criterion)")
	fs.StringVar(&f.savePlan, "save-plan", "", "write the pruning plan (selection, scores, sizes; JSON) to `P.json`")
	fs.StringVar(&f.report, "report", "", "the same as --save-plan (`R.json`)")
	fs.StringVar(&f.plan, "plan", "", "apply the saved plan `P.json` (from --save-plan) instead of scoring; no --strategy/--ratio/--criterion")
	fs.StringVar(&f.dtype, "dtype", "", "weight `dtype` of the output: f32, bf16 or f16 (default: as stored)")
	fs.BoolVar(&f.force, "force", false, "replace an existing non-empty --out directory")
	fs.BoolVar(&f.stream, "stream", false, "never load the whole model: score one decoder layer at a time from the checkpoint and write the pruned model tensor by tensor (LLaMA family, one step)")
	fs.StringVar(&f.maxMemory, "max-memory", "", "memory `limit` (e.g. 8GB): stream when the loaded model would not fit, refuse when even one layer does not")
	if err := e.parse(args); err != nil {
		return err
	}
	if f.report != "" && f.savePlan != "" && f.report != f.savePlan {
		return usageErrorf("--report and --save-plan name the same file; give one of them")
	}
	if f.savePlan == "" {
		f.savePlan = f.report
	}
	var opts prune.Options
	var saved *prune.Plan
	var err error
	if f.plan != "" {
		if saved, err = f.loadPlan(e); err != nil {
			return err
		}
	} else if opts, err = f.options(e.flagSet("ratio")); err != nil {
		return err
	}
	if err := e.requireModel(); err != nil {
		return err
	}
	if err := checkOutDir(f.out, e.model, f.force); err != nil {
		return err
	}
	if _, err := models.ParseSaveDType(f.dtype); err != nil {
		return usageErrorf("--dtype: %v", err)
	}
	if f.stream || f.maxMemory != "" {
		streamed, sm, r, err := e.streamChoice(&f, &opts, saved)
		if err != nil {
			return err
		}
		if streamed {
			rep, err := e.runStreamedPrune(&f, opts, saved, sm, r)
			if err != nil {
				return err
			}
			return e.prunedOutput(&f, rep)
		}
	}
	e.mergeAdapter = true // pruning changes the weights' shapes: prune the merged model
	m, err := e.loadModel()
	if err != nil {
		return err
	}
	var rep *prune.Plan
	if saved != nil {
		if err := saved.CheckModel(m.Config); err != nil {
			return errors.WithMessagef(err, "--plan %s (model %s)", f.plan, e.model)
		}
		if err := prune.Apply(m, saved); err != nil {
			return errors.WithMessagef(err, "--plan %s", f.plan)
		}
		rep = saved
	} else {
		if err := opts.Validate(m.Config); err != nil {
			return errors.WithMessagef(err, "model %s", e.model)
		}
		if opts.Sampler == nil {
			if opts.Sampler, err = f.sampler(m, &opts); err != nil {
				return err
			}
		}
		if rep, err = e.runPruning(m, opts); err != nil {
			return err
		}
	}
	stop := e.spinner("saving " + f.out)
	err = m.Save(f.out, f.dtype)
	stop()
	if err != nil {
		return err
	}
	return e.prunedOutput(&f, rep)
}

// prunedOutput reports the written model and saves the plan.
func (e *env) prunedOutput(f *pruneFlags, rep *prune.Plan) error {
	e.logf("wrote %s (%s on disk)", f.out, humanBytes(dirSize(f.out)))
	if f.savePlan != "" {
		if err := rep.Save(f.savePlan); err != nil {
			return errors.WithMessage(err, "--save-plan")
		}
		e.logf("wrote plan %s", f.savePlan)
	}
	if e.json {
		return e.printJSON(map[string]any{
			"out": f.out, "params_before": rep.ParamsBefore, "params_after": rep.ParamsAfter,
			"layers_kept": rep.LayersKept, "report": f.savePlan, "plan": f.savePlan,
		})
	}
	fmt.Fprintf(e.stdout, "pruned %s → %s: %s → %s parameters (%.2f%% kept)\n", e.model, f.out,
		humanCount(rep.ParamsBefore), humanCount(rep.ParamsAfter), 100*float64(rep.ParamsAfter)/float64(rep.ParamsBefore))
	return nil
}

// runPruning prunes m in place, logging the time it took.
func (e *env) runPruning(m *models.Model, opts prune.Options) (*prune.Plan, error) {
	start := time.Now()
	e.logf("pruning: %s, ratio %g, criterion %s", opts.Strategy, opts.Ratio, opts.Importance.Criterion)
	stop := e.spinner("pruning")
	rep, err := prune.Prune(m, opts)
	stop()
	if err != nil {
		return nil, errors.WithMessage(err, "pruning")
	}
	e.logf("pruned in %s: %d → %d parameters", time.Since(start).Round(time.Millisecond), rep.ParamsBefore, rep.ParamsAfter)
	return rep, nil
}

// planExclusive are the flags that choose or score a selection: --plan replaces them all.
var planExclusive = []string{"strategy", "ratio", "structure", "reconstruct", "reconstruct-damp", "layer-criterion", "attn-layers", "mlp-layers", "keep-layers", "rank-layers", "global",
	"iterative-steps", "round-to", "criterion", "taylor", "reduction", "calib", "calib-ids", "num-examples", "calib-seq-len", "seed"}

// loadPlan reads --plan, refusing the selection flags it replaces.
func (f *pruneFlags) loadPlan(e *env) (*prune.Plan, error) {
	for _, name := range planExclusive {
		if e.flagSet(name) {
			return nil, usageErrorf("--plan applies a saved selection; --%s cannot be combined with it", name)
		}
	}
	if f.savePlan == f.plan {
		return nil, usageErrorf("--save-plan %s would overwrite the --plan being applied", f.plan)
	}
	p, err := prune.LoadPlan(f.plan)
	if err != nil {
		return nil, errors.WithMessage(err, "--plan")
	}
	return p, nil
}

// options builds prune.Options from the flags, rejecting inconsistent combinations.
func (f *pruneFlags) options(ratioGiven bool) (prune.Options, error) {
	opts, err := f.shape.options(ratioGiven)
	if err != nil {
		return opts, err
	}
	switch {
	case f.calib != "" && f.calibIDs != "":
		return opts, usageErrorf("give either --calib or --calib-ids, not both")
	case f.numExamples < 1:
		return opts, usageErrorf("--num-examples %d must be at least 1", f.numExamples)
	case f.calibSeqLen < 2:
		return opts, usageErrorf("--calib-seq-len %d must be at least 2", f.calibSeqLen)
	}
	imp := importance.Options{Seed: f.seed}
	if f.criterion == "" {
		if opts.Strategy != prune.Layer {
			return opts, usageErrorf("--criterion is required for %s pruning (random, l1, l2, taylor, flap or wanda-sp)", opts.Strategy)
		}
	} else if imp.Criterion, err = importance.ParseCriterion(f.criterion); err != nil {
		return opts, usageErrorf("--criterion: %v", err)
	}
	if f.taylor != "" && imp.Criterion != importance.Taylor {
		return opts, usageErrorf("--taylor %s needs --criterion taylor (criterion is %q)", f.taylor, f.criterion)
	}
	if imp.Taylor, err = importance.ParseTaylorMode(f.taylor); err != nil {
		return opts, usageErrorf("--taylor: %v", err)
	}
	if imp.Reduction, err = importance.ParseReduction(f.reduction); err != nil {
		return opts, usageErrorf("--reduction: %v", err)
	}
	if f.structure != "" {
		if opts.Structure, err = prune.ParseStructure(f.structure); err != nil {
			return opts, usageErrorf("--structure: %v", err)
		}
		if opts.Strategy != prune.Block {
			return opts, usageErrorf("--structure applies to --strategy block, not %s", opts.Strategy)
		}
		if opts.Structure == prune.Adaptive && imp.Criterion != importance.FLAP {
			return opts, usageErrorf("--structure adaptive needs --criterion flap (scores standardized per layer), not %q", f.criterion)
		}
	} else if imp.Criterion == importance.FLAP && f.criterion != "" && opts.Strategy == prune.Block && !opts.Global {
		opts.Structure = prune.Adaptive
	}
	forwardOnly := imp.Criterion == importance.FLAP || imp.Criterion == importance.WandaSP
	if forwardOnly && f.criterion != "" && opts.Strategy != prune.Block {
		return opts, usageErrorf("--criterion %s scores heads and MLP channels: it needs --strategy block, not %s", f.criterion, opts.Strategy)
	}
	if forwardOnly && f.criterion != "" && opts.IterativeSteps > 1 {
		return opts, usageErrorf("--criterion %s prunes in one step (--iterative-steps %d)", f.criterion, opts.IterativeSteps)
	}
	if forwardOnly && f.reduction != "" {
		return opts, usageErrorf("--reduction %s: --criterion %s has its own group reduction", f.reduction, f.criterion)
	}
	if f.layerCrit != "" {
		if opts.LayerCriterion, err = prune.ParseLayerCriterion(f.layerCrit); err != nil {
			return opts, usageErrorf("--layer-criterion: %v", err)
		}
		if opts.Strategy != prune.Layer {
			return opts, usageErrorf("--layer-criterion ranks layers for --strategy layer, not %s", opts.Strategy)
		}
		opts.RankLayers = true
	}
	if f.damp < 0 || math.IsNaN(f.damp) {
		return opts, usageErrorf("--reconstruct-damp %g must be ≥ 0", f.damp)
	}
	if f.reconstruct {
		if opts.Strategy != prune.Block {
			return opts, usageErrorf("--reconstruct re-fits block (head / MLP-channel) pruning, not --strategy %s", opts.Strategy)
		}
		if opts.IterativeSteps > 1 {
			return opts, usageErrorf("--reconstruct follows a one-step selection (--iterative-steps %d)", opts.IterativeSteps)
		}
		opts.Reconstruct, opts.ReconstructDamp = true, f.damp
	}
	needsCalib := ((imp.Criterion == importance.Taylor || forwardOnly) && f.criterion != "") || (opts.Strategy == prune.Layer && opts.RankLayers) || f.reconstruct
	if needsCalib && f.calib == "" && f.calibIDs == "" {
		return opts, usageErrorf("--criterion taylor/flap/wanda-sp, --rank-layers and --reconstruct need calibration data: give --calib PATH or --calib-ids F.json")
	}
	opts.Importance = imp
	return opts, nil
}

// sampler reads the calibration data (before pruning starts, so that short or bad data fails
// fast) and returns the per-step Sampler; nil when no calibration data was given.
func (f *pruneFlags) sampler(m *models.Model, opts *prune.Options) (prune.Sampler, error) {
	switch {
	case f.calibIDs != "":
		ids, err := data.ReadCalibIDs(f.calibIDs)
		if err != nil {
			return nil, errors.WithMessage(err, "--calib-ids")
		}
		if err := data.CheckTokenIDs(ids, m.Config.Vocab, "--calib-ids "+f.calibIDs); err != nil {
			return nil, err
		}
		if err := m.CheckSequences(ids, 2); err != nil {
			return nil, errors.WithMessagef(err, "--calib-ids %s", f.calibIDs)
		}
		// The same samples at every iterative step: a fixed id file cannot draw new ones.
		return func(int) ([][]int, error) { return ids, nil }, nil
	case f.calib != "":
		tok, err := modelTokenizer(m)
		if err != nil {
			return nil, err
		}
		text, err := data.ReadText(f.calib)
		if err != nil {
			return nil, errors.WithMessage(err, "--calib")
		}
		if f.calibSeqLen > m.Config.MaxPositions {
			return nil, usageErrorf("--calib-seq-len %d is longer than the model's context (%d)", f.calibSeqLen, m.Config.MaxPositions)
		}
		draw := func(step int) ([][]int, error) {
			s, err := data.CalibrationSamples(tok, text, f.numExamples, f.calibSeqLen, f.seed+int64(step-1))
			if err != nil {
				return nil, errors.WithMessagef(err, "--calib %s (%d samples of %d tokens)", f.calib, f.numExamples, f.calibSeqLen)
			}
			return s, nil
		}
		first, err := draw(1)
		if err != nil {
			return nil, err
		}
		return func(step int) ([][]int, error) {
			if step == 1 {
				return first, nil
			}
			return draw(step)
		}, nil
	}
	return nil, nil
}
