package lora

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/models"
)

// chatglmTinyDir is the tiny random ChatGLM-6B-architecture fixture of lib/models (2 layers,
// hidden 64, 4 heads, MLP 128, vocab 160; [gMASK] 151, <sop> 152; float16 weights).
var chatglmTinyDir = filepath.Join("..", "models", "testdata", "chatglm_tiny")

// loadChatGLMTiny loads the fixture with its weights converted to float32, so that merging
// (which stores W + ΔW in W's dtype) is not rounded to float16.
func loadChatGLMTiny(t testing.TB) *models.Model {
	t.Helper()
	m, err := models.Load(groupstest.Backend(t), chatglmTinyDir, models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for v := range m.Store.IterVariables() {
		paths = append(paths, v.Path())
	}
	for _, p := range paths {
		v := m.Store.GetVariable(p)
		dims := slices.Clone(v.Shape().Dimensions)
		d, err := variableFloats(v, v.Shape().Size())
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Store.DeleteVariable(p); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Store.CreateVariable(p, tensors.FromFlatDataAndDimensions(d, dims...)); err != nil {
			t.Fatal(err)
		}
	}
	m.ResetExecs()
	return m
}

// chatglmSeqs are prompts in ChatGLM's input layout (context, [gMASK], <sop>, continuation) and
// plain causal text.
func chatglmSeqs() [][]int {
	return [][]int{
		{5, 17, 99, 151, 152, 30, 40, 41, 8},
		{12, 151, 152, 3, 77, 140, 2, 61, 9},
		{1, 2, 3, 4, 5, 6, 7, 8, 9},
	}
}

func TestChatGLMTargets(t *testing.T) {
	m := loadChatGLMTiny(t)
	seqs := chatglmSeqs()
	base := logitsOf(t, m, seqs)
	a, err := Attach(m, DefaultConfig(), 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"transformer.layers.0.attention.query_key_value", "transformer.layers.0.attention.dense",
		"transformer.layers.0.mlp.dense_h_to_4h", "transformer.layers.0.mlp.dense_4h_to_h",
		"transformer.layers.1.attention.query_key_value", "transformer.layers.1.attention.dense",
		"transformer.layers.1.mlp.dense_h_to_4h", "transformer.layers.1.mlp.dense_4h_to_h",
	}
	if !slices.Equal(a.Modules, want) {
		t.Fatalf("modules %v, want %v", a.Modules, want)
	}
	// r·(in+out) per layer: qkv 64→192, dense 64→64, h_to_4h 64→128, 4h_to_h 128→64.
	if got, wantN := a.NumParams(m), 2*8*((64+192)+(64+64)+(64+128)+(128+64)); got != wantN {
		t.Errorf("adapter parameters %d, want %d", got, wantN)
	}
	if d := maxAbsDiff(base, logitsOf(t, m, seqs)); d != 0 {
		t.Errorf("B = 0 adapter changed ChatGLM logits by %g; want exactly 0", d)
	}
	randomizeB(t, m, 5, 0.05)
	adapted := logitsOf(t, m, seqs)
	if d := maxAbsDiff(base, adapted); d < 1e-3 {
		t.Fatalf("random B changed the logits by only %g: the adapter is not applied", d)
	}

	// PEFT files: ChatGLM module names and target_modules.
	dir := t.TempDir()
	if err := SaveAdapter(m, dir); err != nil {
		t.Fatal(err)
	}
	cfgJSON := readFile(t, filepath.Join(dir, ConfigFile))
	if !strings.Contains(cfgJSON, `"query_key_value",`) || !strings.Contains(cfgJSON, `"dense_4h_to_h"`) {
		t.Errorf("adapter_config.json target_modules:\n%s", cfgJSON)
	}
	st := readFile(t, filepath.Join(dir, WeightsFile))
	if !strings.Contains(st, "base_model.model.transformer.layers.1.mlp.dense_4h_to_h.lora_B.weight") {
		t.Error("adapter_model.safetensors lacks the PEFT name of layer 1's dense_4h_to_h lora_B")
	}
	// Reload into a fresh model: same logits.
	m2 := loadChatGLMTiny(t)
	if _, err := LoadAdapter(m2, dir); err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(adapted, logitsOf(t, m2, seqs)); d != 0 {
		t.Errorf("reloaded ChatGLM adapter: logits differ by %g", d)
	}
	// Merge: W + (alpha/r)·B·A gives the adapter's logits.
	if err := Merge(m); err != nil {
		t.Fatal(err)
	}
	// The random fixture's logits reach |z| ≈ 10²: compare relative to the largest one (float32
	// sums of 64–192 terms in a different order differ by a few ulps of that size).
	if d, scale := maxAbsDiff(adapted, logitsOf(t, m, seqs)), maxAbs(adapted); d > 1e-5*scale {
		t.Errorf("merged ChatGLM logits differ from the adapter's by %g (max |logit| %g; want ≤ 1e-5 relative)", d, scale)
	} else {
		t.Logf("merged vs adapter logits: max diff %g, max |logit| %g", d, scale)
	}
	// A LLaMA target name on a ChatGLM model, and a ChatGLM adapter on a LLaMA model.
	_, err = Attach(loadChatGLMTiny(t), Config{R: 4, Alpha: 8, Targets: []string{"q"}}, 1)
	wantErr(t, "LLaMA target on ChatGLM", err, `unknown LoRA target module "q" for chatglm models`, "query_key_value")
	_, err = LoadAdapter(tinyModel(t, 1), dir)
	wantErr(t, "ChatGLM adapter on LLaMA", err, "another architecture", `"query_key_value" for llama models`)
}

func TestChatGLMFinetuneReducesLoss(t *testing.T) {
	m := loadChatGLMTiny(t)
	// A learnable pattern (i, i+d, i+2d, …) over the ordinary tokens, in ChatGLM's prompt layout.
	rng := rand.New(rand.NewPCG(9, 9))
	ds := &Dataset{}
	for k := range 40 {
		start, stride := rng.IntN(100), 1+k%3
		ids := []int{start, 151, 152}
		for i := range 13 {
			ids = append(ids, (start+i*stride)%140)
		}
		if k%5 == 4 {
			ds.Val = append(ds.Val, Example{IDs: ids})
		} else {
			ds.Train = append(ds.Train, Example{IDs: ids})
		}
	}
	res, err := Finetune(context.Background(), m, ds, TrainOptions{
		LoRA: Config{R: 4, Alpha: 8}, MaxSteps: 8, LearningRate: 1e-2, BatchSize: 8, MicroBatch: 4,
		WarmupSteps: -1, EvalEvery: 4, KeepLast: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	first, last := res.Losses[0], res.Losses[len(res.Losses)-1]
	t.Logf("ChatGLM tiny LoRA: loss %.4f → %.4f over %d steps; val %v", first, last, res.Steps, res.Evals)
	if !(last < first-0.1) {
		t.Errorf("training loss did not drop: %.4f → %.4f", first, last)
	}
	if a, _ := AdapterOf(m); a == nil || len(a.Modules) != 8 {
		t.Errorf("adapter after Finetune: %+v", a)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func maxAbs(a [][][]float32) float64 {
	m := 0.0
	for _, s := range a {
		for _, row := range s {
			for _, x := range row {
				m = math.Max(m, math.Abs(float64(x)))
			}
		}
	}
	return m
}

// TestMergeFloat32OnHalfPrecision: merging into the float16 fixture rounds W + ΔW to float16
// (Merge) unless the merged weights are kept in float32 (MergeFloat32), which matches the
// adapter's logits.
func TestMergeFloat32OnHalfPrecision(t *testing.T) {
	seqs := chatglmSeqs()
	load := func() *models.Model {
		m, err := models.Load(groupstest.Backend(t), chatglmTinyDir, models.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Attach(m, DefaultConfig(), 3); err != nil {
			t.Fatal(err)
		}
		randomizeB(t, m, 5, 0.05)
		return m
	}
	m := load()
	adapted := logitsOf(t, m, seqs)
	if err := MergeFloat32(m); err != nil {
		t.Fatal(err)
	}
	w := m.Store.GetVariable(models.VarPath("transformer.layers.0.attention.query_key_value.weight"))
	if w.DType().String() != "Float32" {
		t.Errorf("MergeFloat32 stored %s", w.DType())
	}
	if d, scale := maxAbsDiff(adapted, logitsOf(t, m, seqs)), maxAbs(adapted); d > 1e-5*scale {
		t.Errorf("MergeFloat32 on float16 weights: logits differ by %g (max |logit| %g)", d, scale)
	}
	m16 := load()
	if err := Merge(m16); err != nil {
		t.Fatal(err)
	}
	d16 := maxAbsDiff(adapted, logitsOf(t, m16, seqs))
	t.Logf("Merge into float16 weights moves the logits by %g (rounding of W + ΔW)", d16)
}
