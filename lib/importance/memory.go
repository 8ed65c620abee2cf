package importance

// Memory estimates that let a caller choose between loading a model and streaming it, and refuse
// a limit that even one layer cannot meet. They are upper estimates built from the tensors a job
// holds at its peak, checked against the measured peaks of BenchmarkTaylor7BShaped.

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/models"
)

// runtimeBytes is the process's own footprint (Go runtime, binary, graph compilation).
const runtimeBytes = 300 << 20

// MemoryJob describes an importance computation for the estimates.
type MemoryJob struct {
	Criterion Criterion
	Taylor    TaylorMode
	// Samples × SeqLen calibration tokens (Taylor).
	Samples, SeqLen int
	// Hidden is set when hidden channels are scored (the embedding and lm_head need salience).
	Hidden bool
	// Stored is the dtype the checkpoint stores the weights in (bf16 halves the loaded model).
	Stored dtypes.DType
	// Streams > 0 is a forward-only layer sweep (layer ranking) holding Streams hidden states of
	// the calibration batch: 1 for Block Influence, L+1 for the layer-skip loss.
	Streams int
}

func (j MemoryJob) storedSize() int64 {
	if j.Stored == dtypes.BFloat16 || j.Stored == dtypes.Float16 {
		return 2
	}
	return 4
}

func (j MemoryJob) second() bool {
	return j.Criterion == Taylor && (j.Taylor == ParamSecond || j.Taylor == ParamMix)
}

// InMemoryBytes estimates the peak memory of scoring cfg's model loaded whole: the weights as
// stored, and for Taylor the float32 weight and gradient buffers of the backward pass (measured
// 1.6–2.0× the float32 weights at LLaMA-7B shapes, more with the second-order accumulators) plus
// the activations.
func InMemoryBytes(cfg *config.Config, j MemoryJob) int64 {
	params := arch.NumParams(cfg)
	stored := params * j.storedSize()
	if j.Criterion != Taylor {
		return stored + stored/5 + runtimeBytes
	}
	f32 := 4 * params
	extra := 2 * f32
	if j.second() {
		extra += f32
	}
	if j.storedSize() == 4 {
		extra -= f32 / 2 // float32 weights need no float32 copy
	}
	return stored + extra + activationBytes(cfg, j, cfg.NumLayers()) + runtimeBytes
}

// StreamBytes estimates the peak memory of the streamed computation (StreamScores), which frees
// each step's buffers before the next (models.ReleaseMemory): the largest step's working set — a
// half layer's backward (its weights as stored and as float32, their gradients, the salience
// temporaries and the heap's slack, the second-order accumulators), the head's (lm_head, logits)
// or the embedding's — plus every half layer's boundary activations [N, T, D]. Measured
// (BenchmarkTaylor7BShaped, 2 × 64 tokens): 2.03 GB for 8 LLaMA-7B-shaped layers in float32 (this
// rule: 2.61 GB) and 2.60 GB for 32 layers in bfloat16 (2.98 GB); one MLP half's backward alone,
// from a clean heap, 1.37–1.55 GB in float32 (weights 0.54 GB) and 1.82 GB from bfloat16.
func StreamBytes(cfg *config.Config, j MemoryJob) int64 {
	f32 := func(n int64) int64 { return 4 * n }
	if j.Streams > 0 || j.Criterion == FLAP || j.Criterion == WandaSP { // forward-only layer sweep
		rows := min(max(j.Samples, 1), statsBatch)
		if j.Streams > 1 {
			rows = max(j.Samples, 1) // the layer-skip loss runs the calibration batch whole
		}
		tokens := int64(max(j.Streams, 1)) * int64(j.Samples) * int64(j.SeqLen)
		return models.SweepBytes(cfg, j.Stored, tokens, rows, max(j.SeqLen, 1))
	}
	var peak int64
	if j.Criterion != Taylor { // one tensor at a time
		for _, s := range models.OuterTensors(cfg) {
			peak = max(peak, f32(numel(s.Shape))*2)
		}
		for l := range cfg.NumLayers() {
			for _, s := range models.LayerTensors(cfg, l) {
				peak = max(peak, f32(numel(s.Shape))*2)
			}
		}
		return peak + runtimeBytes
	}
	perUnit := int64(3) // float32 gradients, salience temporaries, heap slack (float32 weights are used as read)
	half := j.storedSize() != 4
	if half {
		perUnit++ // the float32 copy of half-precision weights
	}
	if j.second() {
		perUnit += 2
	}
	for l := range cfg.NumLayers() {
		for _, mlp := range []bool{false, true} {
			var p int64
			for _, s := range models.HalfLayerTensors(cfg, l, mlp) {
				p += numel(s.Shape)
			}
			peak = max(peak, p*j.storedSize()+perUnit*f32(p))
		}
	}
	vd := int64(cfg.Vocab) * int64(cfg.Hidden)
	tokens := int64(j.Samples) * int64(j.SeqLen)
	table := vd * j.storedSize() // the embedding or lm_head as read, and its float32 copy
	if half {
		table += f32(vd)
	}
	head := table + 4*f32(tokens*int64(cfg.Vocab))
	if j.Hidden {
		head += 3 * f32(vd) // gradients of lm_head / embedding kept to the end
	}
	peak = max(peak, head, table+f32(tokens*int64(cfg.Hidden)))
	boundary := int64(2*cfg.NumLayers()+2) * f32(tokens*int64(cfg.Hidden))
	return peak + boundary + activationBytes(cfg, j, 1) + runtimeBytes
}

// activationBytes bounds the activations of layers decoder layers' forward and backward over the
// calibration batch (attention scores, MLP intermediates, the residual stream).
func activationBytes(cfg *config.Config, j MemoryJob, layers int) int64 {
	n, t := int64(max(j.Samples, 1)), int64(max(j.SeqLen, 1))
	var perLayer int64
	for l := range cfg.NumLayers() {
		h := int64(cfg.Heads[l])
		perLayer = max(perLayer, 4*n*t*(8*int64(cfg.Hidden)+4*int64(cfg.Inter[l])+2*h*t))
	}
	logits := 3 * 4 * n * t * int64(cfg.Vocab)
	return int64(layers)*perLayer + logits
}

func numel(shape []int) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= int64(d)
	}
	return n
}
