package lora

import (
	"math"

	"github.com/llmpruner/llmpruner/lib/option"
	"github.com/pkg/errors"
)

// TrainOptions configure Finetune. Zero values take post_training.py's / the Hugging Face
// Trainer's defaults, as noted.
type TrainOptions struct {
	// LoRA is the adapter attached when the model has none yet (zero value: DefaultConfig).
	LoRA Config

	Epochs       int     // passes over the training set (2, the README's Alpaca value); ignored when MaxSteps > 0
	MaxSteps     int     // optimizer steps (overrides Epochs; the data order cycles through epochs)
	LearningRate float64 // peak learning rate (1e-4)
	BatchSize    int     // examples per optimizer step (64)
	MicroBatch   int     // examples per forward/backward pass (4); BatchSize must be a multiple
	WarmupSteps  int     // linear warm-up steps (100); negative = none
	MaxGradNorm  float64 // global gradient-norm clip (1.0); negative = none
	WeightDecay  float64 // AdamW decoupled weight decay (0, the HF default)
	AdamBeta1    float64 // 0.9
	AdamBeta2    float64 // 0.999
	AdamEpsilon  float64 // 1e-8 (PyTorch's; GoMLX's Adam defaults to 1e-7)
	Seed         int64   // seed of the adapter init, data order and dropout masks (42)

	// TensorParallel > 0 splits the model over that many devices of the backend (Megatron-style
	// tensor parallelism through XLA's partitioner: heads and MLP channels per device, see
	// lib/shard); 0 runs on one device without a mesh. The Go backend has one device.
	TensorParallel int

	EvalEvery int       // evaluate every N optimizer steps (100); negative = only at the end
	ExtraEval []EvalSet // token streams whose perplexity is also measured at each evaluation
	PPLSeqLen int       // perplexity window for ExtraEval (128)

	OutDir          string // where adapters and checkpoints go ("" = write nothing)
	SaveEvery       int    // checkpoint every N optimizer steps (200); negative = never
	KeepCheckpoints int    // keep the last K checkpoints (20)
	// Resume continues from a checkpoint directory written by Finetune (OutDir/checkpoint-N), or
	// from the latest checkpoint of an output directory. The options and data must be the same.
	Resume string
	// KeepLast keeps the last adapter at the end instead of the one with the best validation loss
	// (the original's load_best_model_at_end=True picks the best).
	KeepLast bool

	// Progress, if set, is called after every optimizer step (and evaluation).
	Progress func(Progress)
}

// EvalSet is a named token stream (starting with BOS, as tokenizer.ModelInputs gives) whose
// perplexity is measured during training with eval.PerplexityOfIDs.
type EvalSet struct {
	Name string
	IDs  []int
}

// Progress reports one optimizer step.
type Progress struct {
	Step, TotalSteps int
	Epoch            float64 // fractional epoch reached
	Loss             float64 // mean micro-batch loss of the step
	LearningRate     float64 // learning rate used by the step
	GradNorm         float64 // gradient norm before clipping
	TokensPerSec     float64 // input tokens (without padding) per second of this step
	Eval             *EvalRecord
}

// EvalRecord is one evaluation.
type EvalRecord struct {
	Step    int                `json:"step"`
	ValLoss float64            `json:"val_loss"` // token-weighted mean loss on the validation set (NaN without one)
	PPL     map[string]float64 `json:"ppl,omitempty"`
}

// resolved applies the defaults and checks the options.
func (o TrainOptions) resolved() (TrainOptions, error) {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	deff := func(p *float64, v float64) {
		if *p == 0 {
			*p = v
		}
	}
	if o.LoRA.R == 0 && len(o.LoRA.Targets) == 0 {
		o.LoRA = DefaultConfig()
	}
	def(&o.Epochs, 2)
	deff(&o.LearningRate, 1e-4)
	def(&o.BatchSize, 64)
	def(&o.MicroBatch, 4)
	def(&o.WarmupSteps, 100)
	o.WarmupSteps = max(o.WarmupSteps, 0)
	deff(&o.MaxGradNorm, 1.0)
	deff(&o.AdamBeta1, 0.9)
	deff(&o.AdamBeta2, 0.999)
	deff(&o.AdamEpsilon, 1e-8)
	if o.Seed == 0 {
		o.Seed = 42
	}
	def(&o.EvalEvery, 100)
	def(&o.PPLSeqLen, 128)
	def(&o.SaveEvery, 200)
	def(&o.KeepCheckpoints, 20)
	if err := o.LoRA.Validate(); err != nil {
		return o, err
	}
	switch {
	case o.Epochs < 0 || o.MaxSteps < 0:
		return o, errors.Errorf("epochs %d / max steps %d: must not be negative", o.Epochs, o.MaxSteps)
	case !(o.LearningRate > 0) || math.IsInf(o.LearningRate, 0):
		return o, option.Errorf("%s %g: must be positive", OptLearningRate, o.LearningRate)
	case o.BatchSize < 0 || o.MicroBatch < 0:
		return o, errors.Errorf("batch %d / micro-batch %d: must be positive", o.BatchSize, o.MicroBatch)
	case o.BatchSize%o.MicroBatch != 0:
		return o, option.Errorf("%s %d is not a multiple of %s %d", OptBatchSize, o.BatchSize, OptMicroBatch, o.MicroBatch)
	case o.WeightDecay < 0 || o.AdamBeta1 < 0 || o.AdamBeta1 >= 1 || o.AdamBeta2 < 0 || o.AdamBeta2 >= 1 || o.AdamEpsilon < 0:
		return o, errors.Errorf("AdamW settings out of range: betas (%g, %g), eps %g, weight decay %g", o.AdamBeta1, o.AdamBeta2, o.AdamEpsilon, o.WeightDecay)
	case o.TensorParallel < 0:
		return o, errors.Errorf("tensor parallelism over %d devices: must not be negative", o.TensorParallel)
	case o.KeepCheckpoints < 0:
		return o, errors.Errorf("keep %d checkpoints: must be positive", o.KeepCheckpoints)
	}
	return o, nil
}
