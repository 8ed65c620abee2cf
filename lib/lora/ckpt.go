package lora

// Training checkpoints: OutDir/checkpoint-N/ holds the adapter in PEFT's format,
// optimizer.safetensors (AdamW moments and the best adapter so far) and trainer_state.json
// (step, loss and evaluation history, and a fingerprint of the run's settings). Everything else
// a resumed run needs — data order and dropout masks — is a function of the seed and the step.

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/atomicfile"
	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/pkg/errors"
)

const (
	stateFile     = "trainer_state.json"
	optimizerFile = "optimizer.safetensors"
	logFile       = "training_log.json"
	ckptPrefix    = "checkpoint-"
)

// fingerprint is what a resumed run must share with the original one.
type fingerprint struct {
	Seed         int64     `json:"seed"`
	BatchSize    int       `json:"batch_size"`
	MicroBatch   int       `json:"micro_batch"`
	NumTrain     int       `json:"num_train"`
	NumVal       int       `json:"num_val"`
	TotalSteps   int       `json:"total_steps"`
	WarmupSteps  int       `json:"warmup_steps"`
	LearningRate float64   `json:"learning_rate"`
	MaxGradNorm  float64   `json:"max_grad_norm"`
	WeightDecay  float64   `json:"weight_decay"`
	Betas        []float64 `json:"betas"`
	Epsilon      float64   `json:"epsilon"`
	R            int       `json:"r"`
	Alpha        float64   `json:"lora_alpha"`
	Dropout      float64   `json:"lora_dropout"`
	Modules      int       `json:"modules"`
}

// trainState is trainer_state.json.
type trainState struct {
	Step        int          `json:"global_step"`
	Fingerprint fingerprint  `json:"settings"`
	Losses      []float64    `json:"losses"`
	Evals       []EvalRecord `json:"evals"`
	BestStep    int          `json:"best_step"`
	BestLoss    *float64     `json:"best_val_loss"`
}

func (tr *trainer) fingerprint() fingerprint {
	o, c := tr.o, tr.adapter.Config
	return fingerprint{Seed: o.Seed, BatchSize: o.BatchSize, MicroBatch: o.MicroBatch, NumTrain: len(tr.ds.Train),
		NumVal: len(tr.ds.Val), TotalSteps: tr.total, WarmupSteps: o.WarmupSteps, LearningRate: o.LearningRate,
		MaxGradNorm: o.MaxGradNorm, WeightDecay: o.WeightDecay, Betas: []float64{o.AdamBeta1, o.AdamBeta2},
		Epsilon: o.AdamEpsilon, R: c.R, Alpha: c.Alpha, Dropout: c.Dropout, Modules: len(tr.adapter.Modules)}
}

// saveCheckpoint writes OutDir/checkpoint-<step> atomically and prunes old checkpoints.
func (tr *trainer) saveCheckpoint() error {
	dir := filepath.Join(tr.o.OutDir, fmt.Sprintf("%s%d", ckptPrefix, tr.st.Step))
	if err := os.MkdirAll(tr.o.OutDir, 0o755); err != nil {
		return errors.Wrapf(err, "finetune: creating %s", tr.o.OutDir)
	}
	err := atomicfile.WriteDir(dir, func(tmp string) error {
		if err := writeAdapterFiles(tr.m, tr.adapter, tmp); err != nil {
			return err
		}
		names, byName := tr.optimizerTensors()
		get := func(name string) (*tensors.Tensor, error) { return byName[name], nil }
		if err := checkpoint.WriteSafetensors(filepath.Join(tmp, optimizerFile), names, get, nil); err != nil {
			return err
		}
		for _, t := range byName {
			_ = t.FinalizeAll()
		}
		raw, err := json.MarshalIndent(&tr.st, "", " ")
		if err != nil {
			return err
		}
		return atomicfile.WriteFile(filepath.Join(tmp, stateFile), raw, 0o644)
	})
	if err != nil {
		return errors.WithMessagef(err, "finetune: writing checkpoint %s", dir)
	}
	return pruneCheckpoints(tr.o.OutDir, tr.o.KeepCheckpoints)
}

// optimizerTensors returns the AdamW moments (and best adapter values) as named tensors.
func (tr *trainer) optimizerTensors() ([]string, map[string]*tensors.Tensor) {
	byName := map[string]*tensors.Tensor{}
	var names []string
	add := func(name string, d []float32, dims []int) {
		names = append(names, name)
		byName[name] = tensors.FromFlatDataAndDimensions(append([]float32(nil), d...), dims...)
	}
	for i, n := range tr.names {
		dims := tr.vars[i].Shape().Dimensions
		add(PEFTName(n)+".exp_avg", tr.opt.m[i], dims)
		add(PEFTName(n)+".exp_avg_sq", tr.opt.v[i], dims)
		if tr.bestValues != nil {
			add(PEFTName(n)+".best", tr.bestValues[i], dims)
		}
	}
	return names, byName
}

// checkpointSteps lists the checkpoint-N directories of outDir by step.
func checkpointSteps(outDir string) ([]int, error) {
	entries, err := os.ReadDir(outDir)
	if err != nil {
		return nil, err
	}
	var steps []int
	for _, e := range entries {
		if n, ok := strings.CutPrefix(e.Name(), ckptPrefix); ok && e.IsDir() {
			if s, err := strconv.Atoi(n); err == nil {
				steps = append(steps, s)
			}
		}
	}
	sort.Ints(steps)
	return steps, nil
}

// pruneCheckpoints removes all but the last keep checkpoints of outDir.
func pruneCheckpoints(outDir string, keep int) error {
	steps, err := checkpointSteps(outDir)
	if err != nil {
		return errors.Wrapf(err, "finetune: listing checkpoints in %s", outDir)
	}
	for len(steps) > keep {
		dir := filepath.Join(outDir, fmt.Sprintf("%s%d", ckptPrefix, steps[0]))
		if err := atomicfile.RemoveAll(dir); err != nil {
			return errors.Wrapf(err, "finetune: removing old checkpoint %s", dir)
		}
		steps = steps[1:]
	}
	return nil
}

// findCheckpoint returns dir itself when it is a checkpoint, else its latest checkpoint-N.
func findCheckpoint(dir string) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err == nil {
		return dir, nil
	}
	steps, err := checkpointSteps(dir)
	if err != nil {
		return "", errors.Wrapf(err, "resuming from %s", dir)
	}
	if len(steps) == 0 {
		return "", errors.Errorf("resuming from %s: it is not a checkpoint (no %s) and holds no %sN directories", dir, stateFile, ckptPrefix)
	}
	return filepath.Join(dir, fmt.Sprintf("%s%d", ckptPrefix, steps[len(steps)-1])), nil
}

// LatestCheckpoint returns the newest checkpoint directory under a Finetune output directory.
func LatestCheckpoint(outDir string) (string, error) { return findCheckpoint(outDir) }

// restore loads a checkpoint's adapter values, optimizer state and history into tr.
func (tr *trainer) restore(dir string) error {
	raw, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return errors.Wrapf(err, "resuming from %s", dir)
	}
	var st trainState
	if err := json.Unmarshal(raw, &st); err != nil {
		return errors.Wrapf(err, "resuming from %s: %s", dir, stateFile)
	}
	if want := tr.fingerprint(); !reflect.DeepEqual(st.Fingerprint, want) {
		got, _ := json.Marshal(st.Fingerprint)
		now, _ := json.Marshal(want)
		return errors.Errorf("resuming from %s: the checkpoint was made with other settings or data:\n  checkpoint: %s\n  now:        %s", dir, got, now)
	}
	_, _, values, err := readAdapter(tr.m, dir)
	if err != nil {
		return errors.WithMessage(err, "resuming")
	}
	r, err := checkpoint.OpenSafetensors(filepath.Join(dir, optimizerFile))
	if err != nil {
		return errors.WithMessage(err, "resuming")
	}
	defer r.Close()
	read := func(name string, n int) ([]float32, error) {
		t, err := r.Read(name)
		if err != nil {
			return nil, err
		}
		defer t.FinalizeAll()
		d, err := toFloat32s(t)
		if err == nil && len(d) != n {
			err = errors.Errorf("%s has %d values, want %d", name, len(d), n)
		}
		return d, err
	}
	hasBest := st.BestLoss != nil
	if hasBest {
		tr.bestValues = make([][]float32, len(tr.vars))
	}
	for i, n := range tr.names {
		t := values[n]
		if t == nil {
			return errors.Errorf("resuming from %s: the adapter lacks %s", dir, PEFTName(n))
		}
		d, err := toFloat32s(t)
		if err != nil || len(d) != len(tr.values[i]) {
			return errors.Errorf("resuming from %s: %s does not match the adapter", dir, PEFTName(n))
		}
		tr.values[i] = d
		if tr.opt.m[i], err = read(PEFTName(n)+".exp_avg", len(d)); err == nil {
			tr.opt.v[i], err = read(PEFTName(n)+".exp_avg_sq", len(d))
		}
		if err == nil && hasBest {
			tr.bestValues[i], err = read(PEFTName(n)+".best", len(d))
		}
		if err != nil {
			return errors.WithMessagef(err, "resuming from %s: %s", dir, optimizerFile)
		}
	}
	tr.st = st
	return tr.pushValues()
}

// writeLog writes the training history to outDir/training_log.json.
func writeLog(outDir string, st *trainState) error {
	raw, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(outDir, logFile), raw, 0o644)
}

// evalJSON is EvalRecord on disk: non-finite numbers (no validation set, a diverged model) are
// written as null or strings, which JSON numbers cannot hold.
type evalJSON struct {
	Step    int               `json:"step"`
	ValLoss *float64          `json:"val_loss"`
	PPL     map[string]string `json:"ppl,omitempty"`
}

// MarshalJSON writes ValLoss NaN as null and perplexities as exact decimal strings.
func (e EvalRecord) MarshalJSON() ([]byte, error) {
	j := evalJSON{Step: e.Step}
	if !math.IsNaN(e.ValLoss) && !math.IsInf(e.ValLoss, 0) {
		v := e.ValLoss
		j.ValLoss = &v
	}
	if len(e.PPL) > 0 {
		j.PPL = map[string]string{}
		for k, v := range e.PPL {
			j.PPL[k] = strconv.FormatFloat(v, 'g', -1, 64)
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reverses MarshalJSON.
func (e *EvalRecord) UnmarshalJSON(b []byte) error {
	var j evalJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*e = EvalRecord{Step: j.Step, ValLoss: math.NaN()}
	if j.ValLoss != nil {
		e.ValLoss = *j.ValLoss
	}
	for k, s := range j.PPL {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return errors.Wrapf(err, "perplexity %s", k)
		}
		if e.PPL == nil {
			e.PPL = map[string]float64{}
		}
		e.PPL[k] = v
	}
	return nil
}
