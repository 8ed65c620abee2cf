package prune

import (
	"testing"

	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/importance"
	"github.com/llmpruner/llmpruner/lib/models"
)

// TestStreamedReconstructEqualsInMemory: block pruning with reconstruction of a model that is not
// loaded (StreamScore → Select → WriteReconstructedStreamed) writes the same tensors, byte for byte,
// as the loaded Prune with Reconstruct, on random LLaMAs (GQA layers of different sizes; f32 and
// bf16, attention biases) with Taylor and Wanda-sp, more calibration samples than one batch.
func TestStreamedReconstructEqualsInMemory(t *testing.T) {
	be := groupstest.Backend(t)
	for _, tc := range []struct {
		name   string
		fields map[string]any
		dtype  string
		crit   importance.Criterion
	}{
		{"f32-taylor", nil, "f32", importance.Taylor},
		{"bf16-bias-wanda-sp", map[string]any{"attention_bias": true}, "bf16", importance.WandaSP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fields := map[string]any{"hidden_size": 16, "intermediate_size": 12, "num_hidden_layers": 3,
				"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 4, "vocab_size": 40}
			for k, v := range tc.fields {
				fields[k] = v
			}
			cfg := groupstest.Config(t, fields)
			dir := t.TempDir() + "/model"
			if err := groupstest.RandomModel(t, cfg, 11, 0.3).Save(dir, tc.dtype); err != nil {
				t.Fatal(err)
			}
			calib := groupstest.Tokens(10, 8, cfg.Vocab, 3)
			opts := Options{Strategy: Block, Ratio: 0.5, Reconstruct: true, Sampler: func(int) ([][]int, error) { return calib, nil },
				Importance: importance.Options{Criterion: tc.crit}}
			m, err := models.Load(be, dir, models.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want, err := Prune(m, opts)
			if err != nil {
				t.Fatal(err)
			}
			memDir := t.TempDir() + "/mem"
			if err := m.Save(memDir, ""); err != nil {
				t.Fatal(err)
			}
			m.Store.Finalize()

			sm, r, err := models.OpenStreamed(be, dir, models.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			scores, err := StreamScore(&importance.StreamSource{Backend: be, Config: sm.Config, Reader: r}, opts)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := Select(sm.Config, scores, opts)
			if err != nil {
				t.Fatal(err)
			}
			if plan.ParamsAfter != want.ParamsAfter {
				t.Fatalf("streamed plan keeps %d parameters, loaded %d", plan.ParamsAfter, want.ParamsAfter)
			}
			streamDir := t.TempDir() + "/stream"
			if _, err := WriteReconstructedStreamed(be, sm.Config, r, plan, ReconstructOptions{Calibration: calib}, streamDir, checkpoint.SaveOptions{}); err != nil {
				t.Fatal(err)
			}
			sameTensors(t, memDir, streamDir)
		})
	}
}
