package lora

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/models"
)

func TestZeroBKeepsBaseLogitsExactly(t *testing.T) {
	m := tinyModel(t, 1)
	seqs := groupstest.Tokens(3, 9, 40, 5)
	base := logitsOf(t, m, seqs)
	a, err := Attach(m, DefaultConfig(), 42)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Modules) != 3*7 {
		t.Fatalf("modules %v", a.Modules)
	}
	if d := maxAbsDiff(base, logitsOf(t, m, seqs)); d != 0 {
		t.Errorf("B = 0 adapter changed the logits by %g; want exactly 0", d)
	}
	// Parameter count: Σ r·(in+out) over 3 layers × 7 projections of the non-uniform model.
	want := 0
	for l, io := range [][7][2]int{
		{{16, 16}, {16, 16}, {16, 16}, {16, 16}, {16, 12}, {16, 12}, {12, 16}},
		{{16, 16}, {16, 8}, {16, 8}, {16, 16}, {16, 10}, {16, 10}, {10, 16}},
		{{16, 8}, {16, 4}, {16, 4}, {8, 16}, {16, 8}, {16, 8}, {8, 16}},
	} {
		_ = l
		for _, p := range io {
			want += 8 * (p[0] + p[1])
		}
	}
	if got := a.NumParams(m); got != want {
		t.Errorf("adapter parameters %d, want %d", got, want)
	}
	for v := range m.Store.IterVariables() {
		if v.Trainable != isAdapterVar(v.Path()) {
			t.Errorf("%s trainable=%v", v.Path(), v.Trainable)
		}
	}
}

func TestKaimingUniformBound(t *testing.T) {
	m := tinyModel(t, 1)
	if _, err := Attach(m, DefaultConfig(), 7); err != nil {
		t.Fatal(err)
	}
	// lora_A of down_proj in layer 2 has fan_in 8: bound 1/√8 (torch kaiming_uniform_, a=√5).
	v := m.Store.GetVariable(models.VarPath("model.layers.2.mlp.down_proj.lora_A.weight"))
	d, err := variableFloats(v, 8*8)
	if err != nil {
		t.Fatal(err)
	}
	bound, maxAbs, mean := 1/math.Sqrt(8), 0.0, 0.0
	for _, x := range d {
		maxAbs = math.Max(maxAbs, math.Abs(float64(x)))
		mean += float64(x) / float64(len(d))
	}
	if maxAbs > bound || maxAbs < 0.8*bound || math.Abs(mean) > 0.15 {
		t.Errorf("lora_A values: max |a| %.4f (bound %.4f), mean %.4f", maxAbs, bound, mean)
	}
}

func TestMergeMatchesAdapter(t *testing.T) {
	m := tinyModel(t, 2)
	seqs := groupstest.Tokens(2, 11, 40, 6)
	base := logitsOf(t, m, seqs)
	if _, err := Attach(m, Config{R: 4, Alpha: 12, Targets: []string{"q", "v", "o", "down", "gate"}}, 3); err != nil {
		t.Fatal(err)
	}
	randomizeB(t, m, 9, 0.2)
	adapted := logitsOf(t, m, seqs)
	if d := maxAbsDiff(base, adapted); d < 1e-2 {
		t.Fatalf("random B changed the logits by only %g", d)
	}
	if err := Merge(m); err != nil {
		t.Fatal(err)
	}
	if a, _ := AdapterOf(m); a != nil {
		t.Fatal("adapter still attached after Merge")
	}
	for v := range m.Store.IterVariables() {
		if isAdapterVar(v.Path()) || !v.Trainable {
			t.Errorf("after merge: %s (trainable %v)", v.Path(), v.Trainable)
		}
	}
	if d := maxAbsDiff(adapted, logitsOf(t, m, seqs)); d > 1e-5 {
		t.Errorf("merged logits differ from adapter logits by %g (> 1e-5)", d)
	}
	// The merged model saves as a plain HF directory and loads back with the same logits.
	dir := filepath.Join(t.TempDir(), "merged")
	if err := m.Save(dir, ""); err != nil {
		t.Fatal(err)
	}
	back, err := models.Load(groupstest.Backend(t), dir, models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(adapted, logitsOf(t, back, seqs)); d > 1e-5 {
		t.Errorf("reloaded merged model differs by %g", d)
	}
}

func TestSaveLoadAdapterReproducesLogits(t *testing.T) {
	m := tinyModel(t, 4)
	seqs := groupstest.Tokens(2, 7, 40, 8)
	cfg := DefaultConfig()
	cfg.BaseModel = "tiny"
	if _, err := Attach(m, cfg, 5); err != nil {
		t.Fatal(err)
	}
	randomizeB(t, m, 10, 0.1)
	want := logitsOf(t, m, seqs)
	dir := t.TempDir()
	if err := SaveAdapter(m, dir); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"peft_type": "LORA"`, `"task_type": "CAUSAL_LM"`, `"r": 8`, `"lora_alpha": 16`,
		`"lora_dropout": 0.05`, `"bias": "none"`, `"fan_in_fan_out": false`, `"base_model_name_or_path": "tiny"`,
		`"q_proj"`, `"down_proj"`} {
		if !strings.Contains(string(raw), s) {
			t.Errorf("adapter_config.json lacks %s:\n%s", s, raw)
		}
	}
	fresh := tinyModel(t, 4)
	a, err := LoadAdapter(fresh, dir)
	if err != nil {
		t.Fatal(err)
	}
	if a.Config.R != 8 || a.Config.Alpha != 16 || len(a.Modules) != 21 {
		t.Errorf("loaded adapter %+v", a)
	}
	if d := maxAbsDiff(want, logitsOf(t, fresh, seqs)); d != 0 {
		t.Errorf("loaded adapter logits differ by %g", d)
	}
}
