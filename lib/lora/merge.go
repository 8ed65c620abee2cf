package lora

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/pkg/errors"
)

// Merge folds m's adapter into the base weights, W ← W + (alpha/r)·B·A (computed in float32 with
// float64 accumulation over the rank, stored in W's dtype), then removes the adapter variables
// and hook: m is a plain model again, ready for m.Save.
func Merge(m *models.Model) error { return merge(m, false) }

// MergeFloat32 is Merge storing the merged weights in float32 whatever their stored dtype, so that
// a half-precision model's W + (alpha/r)·B·A is not rounded before it is saved (e.g. with
// Save(dir, "f32"), or rounded once with "bf16"/"f16"); the other weights keep their dtypes.
func MergeFloat32(m *models.Model) error { return merge(m, true) }

// merge folds the adapter into the weights, stored in float32 or in W's dtype.
func merge(m *models.Model, asFloat32 bool) error {
	a, err := AdapterOf(m)
	if err != nil || a == nil {
		return errors.New("merging LoRA adapter: the model has no adapter")
	}
	scale := a.Config.Scale()
	// Compute every merged weight before touching the store, so a failure leaves m unchanged.
	merged := make(map[string][]float32, len(a.Modules))
	for _, mod := range a.Modules {
		w, err := mergedWeight(m, mod, a.Config.R, scale)
		if err != nil {
			return errors.WithMessagef(err, "merging LoRA adapter into %s", mod)
		}
		merged[mod] = w
	}
	for _, mod := range a.Modules {
		v := m.Store.GetVariable(models.VarPath(mod + ".weight"))
		dt := v.DType()
		if asFloat32 {
			dt = dtypes.Float32
		}
		t, err := fromFloat32s(merged[mod], dt, v.Shape().Dimensions...)
		if err != nil {
			return errors.WithMessagef(err, "merging LoRA adapter into %s", mod)
		}
		if err := v.SetValue(t); err != nil {
			return errors.Wrapf(err, "merging LoRA adapter into %s", mod)
		}
	}
	Detach(m)
	return nil
}

// mergedWeight returns W + scale·B·A of module as float32 [out·in].
func mergedWeight(m *models.Model, module string, r int, scale float64) ([]float32, error) {
	wv := m.Store.GetVariable(models.VarPath(module + ".weight"))
	an, bn := loraNames(module)
	av, bv := m.Store.GetVariable(models.VarPath(an)), m.Store.GetVariable(models.VarPath(bn))
	if wv == nil || av == nil || bv == nil {
		return nil, errors.New("weight or adapter variable missing")
	}
	out, in := wv.Shape().Dim(0), wv.Shape().Dim(1)
	w, err := variableFloats(wv, out*in)
	if err != nil {
		return nil, err
	}
	A, err := variableFloats(av, r*in)
	if err != nil {
		return nil, err
	}
	B, err := variableFloats(bv, out*r)
	if err != nil {
		return nil, err
	}
	acc := make([]float64, in)
	for i := range out {
		clear(acc)
		for k := range r {
			b := float64(B[i*r+k])
			if b == 0 {
				continue
			}
			row := A[k*in : (k+1)*in]
			for j, a := range row {
				acc[j] += b * float64(a)
			}
		}
		wr := w[i*in : (i+1)*in]
		for j := range wr {
			wr[j] += float32(scale * acc[j])
		}
	}
	return w, nil
}

// variableFloats returns the float32 values of v, checking their count.
func variableFloats(v *model.Variable, n int) ([]float32, error) {
	t, err := v.Value()
	if err != nil {
		return nil, errors.Wrapf(err, "reading %s", v.Path())
	}
	d, err := toFloat32s(t)
	if err != nil {
		return nil, errors.WithMessagef(err, "reading %s", v.Path())
	}
	if len(d) != n {
		return nil, errors.Errorf("%s has %d values, want %d", v.Path(), len(d), n)
	}
	return d, nil
}
