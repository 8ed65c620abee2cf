package prune

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/importance"
	"github.com/llmpruner/llmpruner/lib/models"
)

// TestStreamedPruneEqualsInMemory prunes a random LLaMA (MHA and GQA layers of different sizes)
// from its checkpoint without loading it (StreamScore → Select → WriteStreamed) and in memory
// (Prune → Save), and requires the same plan and tensor-for-tensor identical checkpoints: block
// pruning with Taylor param_first and param_mix, FLAP (adaptive and uniform, with its bias
// compensation: o_proj/down_proj biases added, the other biases created as zeros) and Wanda-sp,
// channel pruning with l2, layer pruning (first layers, ranked by layer-skip loss and by Block
// Influence).
func TestStreamedPruneEqualsInMemory(t *testing.T) {
	be := groupstest.Backend(t)
	cfg := groupstest.Config(t, map[string]any{"hidden_size": 16, "intermediate_size": 12, "num_hidden_layers": 4,
		"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 4, "vocab_size": 40})
	dir := t.TempDir() + "/model"
	if err := groupstest.RandomModel(t, cfg, 9, 0.3).Save(dir, "bf16"); err != nil {
		t.Fatal(err)
	}
	calib := groupstest.Tokens(3, 8, cfg.Vocab, 2)
	sampler := func(int) ([][]int, error) { return calib, nil }
	attn := &Range{Start: 1, End: 4}
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"block-taylor", Options{Strategy: Block, Ratio: 0.5, AttnLayers: attn, MLPLayers: attn, Sampler: sampler,
			Importance: importance.Options{Criterion: importance.Taylor, Taylor: importance.ParamFirst}}},
		{"block-taylor-mix-global", Options{Strategy: Block, Ratio: 0.4, Global: true, Sampler: sampler,
			Importance: importance.Options{Criterion: importance.Taylor, Taylor: importance.ParamMix}}},
		{"channel-l2", Options{Strategy: Channel, Ratio: 0.25, Importance: importance.Options{Criterion: importance.L2}}},
		{"layer", Options{Strategy: Layer, KeepLayers: 3}},
		{"block-flap-adaptive", Options{Strategy: Block, Ratio: 0.4, Structure: Adaptive, Sampler: sampler,
			Importance: importance.Options{Criterion: importance.FLAP}}},
		{"block-flap-uniform", Options{Strategy: Block, Ratio: 0.5, AttnLayers: attn, MLPLayers: attn, Sampler: sampler,
			Importance: importance.Options{Criterion: importance.FLAP}}},
		{"block-wanda-sp", Options{Strategy: Block, Ratio: 0.5, AttnLayers: attn, MLPLayers: attn, Sampler: sampler,
			Importance: importance.Options{Criterion: importance.WandaSP}}},
		{"layer-rank-loss", Options{Strategy: Layer, KeepLayers: 2, RankLayers: true, Sampler: sampler}},
		{"layer-rank-bi", Options{Strategy: Layer, KeepLayers: 3, RankLayers: true, LayerCriterion: LayerBI, Sampler: sampler}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := models.Load(be, dir, models.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want, err := Prune(m, tc.opts)
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
			scores, err := StreamScore(&importance.StreamSource{Backend: be, Config: sm.Config, Reader: r}, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Select(sm.Config, scores, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.LayersKept, want.LayersKept) || !slices.Equal(got.HiddenChannelsKept, want.HiddenChannelsKept) {
				t.Fatalf("plans differ: layers %v vs %v, hidden %v vs %v", got.LayersKept, want.LayersKept, got.HiddenChannelsKept, want.HiddenChannelsKept)
			}
			for i := range want.Layers {
				if !slices.Equal(got.Layers[i].KVHeadsKept, want.Layers[i].KVHeadsKept) || !slices.Equal(got.Layers[i].MLPChannelsKept, want.Layers[i].MLPChannelsKept) {
					t.Fatalf("layer %d: streamed keeps kv %v mlp %v, in-memory kv %v mlp %v", want.Layers[i].Layer,
						got.Layers[i].KVHeadsKept, got.Layers[i].MLPChannelsKept, want.Layers[i].KVHeadsKept, want.Layers[i].MLPChannelsKept)
				}
			}
			streamDir := t.TempDir() + "/stream"
			if _, err := WriteStreamed(sm.Config, r, got, streamDir, checkpoint.SaveOptions{}); err != nil {
				t.Fatal(err)
			}
			sameTensors(t, memDir, streamDir)
			if tc.opts.Importance.Criterion == importance.FLAP { // the compensation biases were written
				sr, err := checkpoint.Open(streamDir)
				if err != nil {
					t.Fatal(err)
				}
				defer sr.Close()
				biases := 0
				for _, ti := range sr.Tensors() {
					if strings.HasSuffix(ti.Name, "o_proj.bias") || strings.HasSuffix(ti.Name, "down_proj.bias") {
						biases++
					}
				}
				if biases == 0 {
					t.Error("the FLAP-pruned checkpoint has no o_proj/down_proj biases")
				}
			}
		})
	}
}

// sameTensors requires the two checkpoints to hold the same tensors, byte for byte.
func sameTensors(t *testing.T, a, b string) {
	t.Helper()
	ra, err := checkpoint.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	rb, err := checkpoint.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	ia, ib := ra.Tensors(), rb.Tensors()
	if len(ia) != len(ib) {
		t.Fatalf("%d tensors vs %d", len(ia), len(ib))
	}
	for i := range ia {
		if ia[i].Name != ib[i].Name || ia[i].DType != ib[i].DType || !slices.Equal(ia[i].Shape, ib[i].Shape) {
			t.Fatalf("tensor %d: %s %s %v vs %s %s %v", i, ia[i].Name, ia[i].DType, ia[i].Shape, ib[i].Name, ib[i].DType, ib[i].Shape)
		}
		ta, _ := ra.Read(ia[i].Name)
		tb, _ := rb.Read(ib[i].Name)
		var eq bool
		ta.ConstBytes(func(x []byte) { tb.ConstBytes(func(y []byte) { eq = bytes.Equal(x, y) }) })
		if !eq {
			t.Errorf("%s differs", ia[i].Name)
		}
	}
}

// TestStreamedPruneRefusals: iterative steps and reconstruction after FLAP's bias compensation are
// refused with messages naming the option.
func TestStreamedPruneRefusals(t *testing.T) {
	cfg := groupstest.Tiny(t)
	for _, o := range []Options{
		{Strategy: Block, Ratio: 0.5, IterativeSteps: 2, Importance: importance.Options{Criterion: importance.L1}},
		{Strategy: Block, Ratio: 0.5, Reconstruct: true, Importance: importance.Options{Criterion: importance.FLAP}},
	} {
		if err := CheckStreamable(cfg, o); err == nil {
			t.Errorf("%+v accepted", o)
		} else {
			t.Log(err)
		}
	}
}
