package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPruneBadInputWritesNothing is issue 3's catalogue: each bad option fails with a clear error
// and leaves neither --out nor --report behind.
func TestPruneBadInputWritesNothing(t *testing.T) {
	model := stories260K(t)
	calib := dataPath(t, "text/tinystories/tinystories_val_head.txt")
	dir := t.TempDir()
	short := writeFile(t, filepath.Join(dir, "short.txt"), "Once upon a time there was a cat.\n\nThe end.\n")
	ids := writeFile(t, filepath.Join(dir, "ids.json"), "[[1, 403, 407, 261], [1, 378, 432, 99999]]")
	out, report := filepath.Join(dir, "out"), filepath.Join(dir, "report.json")
	base := []string{"prune", "--model", model, "--out", out, "--report", report}
	taylor := []string{"--criterion", "taylor", "--calib", calib}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"ratio 1", append([]string{"--strategy", "block", "--ratio", "1"}, taylor...), 2, []string{"--ratio 1 must be in [0, 1)"}},
		{"ratio 1.5", append([]string{"--strategy", "block", "--ratio", "1.5"}, taylor...), 2, []string{"--ratio 1.5"}},
		{"negative ratio", append([]string{"--strategy", "block", "--ratio", "-0.2"}, taylor...), 2, []string{"--ratio -0.2"}},
		{"empty layer range", append([]string{"--strategy", "block", "--ratio", "0.2", "--attn-layers", "2:2"}, taylor...), 2, []string{"--attn-layers 2:2 is empty"}},
		{"reversed layer range", append([]string{"--strategy", "block", "--ratio", "0.2", "--mlp-layers", "4:1"}, taylor...), 2, []string{"--mlp-layers 4:1 is reversed"}},
		{"range beyond the model", append([]string{"--strategy", "block", "--ratio", "0.2", "--attn-layers", "1:9"}, taylor...), 1, []string{"--attn-layers 1:9", "beyond the model", "5 layers"}},
		{"calibration text too short", []string{"--strategy", "block", "--ratio", "0.2", "--criterion", "taylor", "--calib", short}, 1, []string{"--calib", "short.txt"}},
		{"calibration ids outside vocabulary", []string{"--strategy", "block", "--ratio", "0.2", "--criterion", "taylor", "--calib-ids", ids}, 1, []string{"ids.json", "99999"}},
		{"taylor without criterion taylor", []string{"--strategy", "block", "--ratio", "0.2", "--criterion", "l2", "--taylor", "param_first"}, 2, []string{"--taylor", "--criterion taylor"}},
		{"taylor without calibration", []string{"--strategy", "block", "--ratio", "0.2", "--criterion", "taylor"}, 2, []string{"--calib"}},
		{"no criterion", []string{"--strategy", "block", "--ratio", "0.2"}, 2, []string{"--criterion is required"}},
		{"unknown criterion", []string{"--strategy", "block", "--ratio", "0.2", "--criterion", "fisher"}, 2, []string{"--criterion", "fisher"}},
		{"unknown reduction", []string{"--strategy", "block", "--ratio", "0.2", "--criterion", "l2", "--reduction", "median"}, 2, []string{"--reduction", "median"}},
		{"keep more layers than exist", []string{"--strategy", "layer", "--keep-layers", "9"}, 1, []string{"--keep-layers 9", "5 layers"}},
		{"no strategy", []string{"--ratio", "0.2", "--criterion", "l2"}, 2, []string{"--strategy is required"}},
		{"adaptive without flap", []string{"--strategy", "block", "--ratio", "0.2", "--criterion", "l2", "--structure", "adaptive"}, 2, []string{"--structure adaptive", "--criterion flap"}},
		{"unknown structure", []string{"--strategy", "block", "--ratio", "0.2", "--criterion", "l2", "--structure", "zigzag"}, 2, []string{"--structure", "zigzag"}},
		{"flap channel-wise", []string{"--strategy", "channel", "--ratio", "0.2", "--criterion", "flap", "--calib", calib}, 2, []string{"--criterion flap", "--strategy block"}},
		{"flap without calibration", []string{"--strategy", "block", "--ratio", "0.2", "--criterion", "flap"}, 2, []string{"--calib"}},
		{"wanda-sp iterative", []string{"--strategy", "block", "--ratio", "0.2", "--criterion", "wanda-sp", "--calib", calib, "--iterative-steps", "2"}, 2, []string{"wanda-sp", "--iterative-steps"}},
		{"reconstruct layer-wise", []string{"--strategy", "layer", "--keep-layers", "3", "--reconstruct", "--calib", calib}, 2, []string{"--reconstruct", "--strategy layer"}},
		{"reconstruct without calibration", []string{"--strategy", "block", "--ratio", "0.2", "--criterion", "l2", "--reconstruct"}, 2, []string{"--reconstruct", "--calib"}},
		{"negative damping", []string{"--strategy", "block", "--ratio", "0.2", "--criterion", "l2", "--reconstruct", "--reconstruct-damp", "-1", "--calib", calib}, 2, []string{"--reconstruct-damp -1"}},
		{"layer criterion on block", []string{"--strategy", "block", "--ratio", "0.2", "--criterion", "l2", "--layer-criterion", "bi"}, 2, []string{"--layer-criterion", "--strategy layer"}},
		{"unknown layer criterion", []string{"--strategy", "layer", "--keep-layers", "3", "--layer-criterion", "cka", "--calib", calib}, 2, []string{"--layer-criterion", "cka"}},
		{"bi without calibration", []string{"--strategy", "layer", "--keep-layers", "3", "--layer-criterion", "bi"}, 2, []string{"--calib"}},
		{"flap with reduction", []string{"--strategy", "block", "--ratio", "0.2", "--criterion", "flap", "--calib", calib, "--reduction", "max"}, 2, []string{"--reduction", "flap"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectFailure(t, runCLI(t, append(slices.Clone(base), tc.args...)...), tc.code, tc.want...)
			for _, p := range []string{out, report} {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("%s was written despite the error", p)
				}
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 2 {
				t.Errorf("the output folder holds %d entries, want only the 2 fixtures", len(entries))
			}
		})
	}
	// An existing non-empty --out is not replaced without --force.
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	keep := writeFile(t, filepath.Join(out, "precious.txt"), "x")
	expectFailure(t, runCLI(t, "prune", "--model", model, "--out", out, "--strategy", "block", "--ratio", "0.2", "--criterion", "l2"), 1, "--force")
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("existing --out content was removed")
	}
}

// TestPruneTaylorBlockReloads prunes stories260K 20% block-wise with Taylor importance and checks
// the output: it reloads and runs, its size matches the report, and the report follows issue 3.
func TestPruneTaylorBlockReloads(t *testing.T) {
	model := stories260K(t)
	calib := dataPath(t, "text/tinystories/tinystories_val_head.txt")
	dir := t.TempDir()
	out, report := filepath.Join(dir, "pruned"), filepath.Join(dir, "report.json")
	res := mustSucceed(t, "prune", "--model", model, "--out", out, "--strategy", "block", "--ratio", "0.25",
		"--attn-layers", "1:4", "--mlp-layers", "1:4", "--criterion", "taylor", "--calib", calib, "--report", report, "--json")
	var summary struct {
		Before int64 `json:"params_before"`
		After  int64 `json:"params_after"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &summary); err != nil {
		t.Fatalf("prune --json: %v\n%s", err, res.stdout)
	}
	raw, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Before, After int64
		Layers        []struct {
			Layer       int       `json:"layer"`
			HeadScores  []float64 `json:"head_scores"`
			HeadsKept   []int     `json:"heads_kept"`
			KVHeadsKept []int     `json:"kv_heads_kept"`
			MLPKept     []int     `json:"mlp_channels_kept"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Layers) != 5 {
		t.Fatalf("report has %d layers", len(rep.Layers))
	}
	// Layers 1..3: 25% of 4 kv heads (8 channels each) = one kv group (2 query heads);
	// int(172·0.75) = 129 MLP channels kept. Layers 0 and 4 are untouched.
	for _, l := range rep.Layers {
		wantKV, wantMLP := 4, 172
		if l.Layer >= 1 && l.Layer < 4 {
			wantKV, wantMLP = 3, 129
		}
		if len(l.KVHeadsKept) != wantKV || len(l.HeadsKept) != 2*wantKV || len(l.MLPKept) != wantMLP {
			t.Errorf("layer %d keeps %d kv heads, %d heads, %d MLP channels; want %d, %d, %d",
				l.Layer, len(l.KVHeadsKept), len(l.HeadsKept), len(l.MLPKept), wantKV, 2*wantKV, wantMLP)
		}
	}
	// The pruned directory loads, reports the smaller sizes, and its parameter count matches.
	var info modelInfo
	if err := json.Unmarshal([]byte(mustSucceed(t, "info", "--model", out, "--json").stdout), &info); err != nil {
		t.Fatal(err)
	}
	if info.Params != summary.After || info.Layers[2].Heads != 6 || info.Layers[2].KVHeads != 3 || info.Layers[2].Intermediate != 129 || info.Layers[0].Heads != 8 {
		t.Errorf("pruned model info: params %d (report %d), layer 2 %+v, layer 0 %+v", info.Params, summary.After, info.Layers[2], info.Layers[0])
	}
	if st, err := os.Stat(filepath.Join(out, "model.safetensors")); err != nil || st.Size() < 4*info.Params || st.Size() > 4*info.Params+16384 {
		t.Errorf("model.safetensors size does not match %d float32 parameters", info.Params)
	}
	// It generates and scores.
	gen := mustSucceed(t, "generate", "--model", out, "--max-new-tokens", "8", "--json")
	var g generateOutput
	if err := json.Unmarshal([]byte(gen.stdout), &g); err != nil || len(g.IDs) == 0 {
		t.Errorf("generate on the pruned model: %v %s", err, gen.stdout)
	}
	ppl := mustSucceed(t, "eval", "ppl", "--model", out, "--data", "t="+writeFile(t, filepath.Join(dir, "t.txt"), strings.Repeat("Once upon a time, there was a little girl named Lily. She loved to play outside.\n\n", 20)), "--json")
	if !strings.Contains(ppl.stdout, `"ppl":`) {
		t.Errorf("eval ppl on the pruned model: %s", ppl.stdout)
	}
}

// TestPruneLayerWise keeps the first 3 of 5 layers (no importance needed).
func TestPruneLayerWise(t *testing.T) {
	model := stories260K(t)
	out := filepath.Join(t.TempDir(), "l3")
	mustSucceed(t, "prune", "--model", model, "--out", out, "--strategy", "layer", "--keep-layers", "3")
	var info modelInfo
	if err := json.Unmarshal([]byte(mustSucceed(t, "info", "--model", out, "--json").stdout), &info); err != nil {
		t.Fatal(err)
	}
	if info.NumLayers != 3 || info.Params != 260032-2*45440 {
		t.Errorf("layer-wise: %d layers, %d params; want 3, %d", info.NumLayers, info.Params, 260032-2*45440)
	}
}

// TestPruneSavePlanReplays saves a plan while pruning, replays it with --plan on the unpruned model
// and requires byte-identical weights; bad --plan uses fail with one line and write nothing.
func TestPruneSavePlanReplays(t *testing.T) {
	model := stories260K(t)
	calib := dataPath(t, "text/tinystories/tinystories_val_head.txt")
	dir := t.TempDir()
	out, out2, plan := filepath.Join(dir, "pruned"), filepath.Join(dir, "replayed"), filepath.Join(dir, "plan.json")
	mustSucceed(t, "prune", "--model", model, "--out", out, "--strategy", "block", "--ratio", "0.5",
		"--criterion", "taylor", "--calib", calib, "--iterative-steps", "2", "--save-plan", plan)
	mustSucceed(t, "prune", "--model", model, "--out", out2, "--plan", plan)
	a, err := os.ReadFile(filepath.Join(out, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out2, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a, b) {
		t.Errorf("--plan replay: model.safetensors differs from the pruned model's (%d vs %d bytes)", len(b), len(a))
	}
	broken := writeFile(t, filepath.Join(dir, "broken.json"), `{"shape_before": {"heads_per_layer": [8]}}`)
	bad := filepath.Join(dir, "bad-out")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"plan with ratio", []string{"--model", model, "--out", bad, "--plan", plan, "--ratio", "0.2"}, 2, []string{"--plan", "--ratio"}},
		{"plan with criterion", []string{"--model", model, "--out", bad, "--plan", plan, "--criterion", "l2"}, 2, []string{"--plan", "--criterion"}},
		{"plan for another model", []string{"--model", out, "--out", bad, "--plan", plan}, 1, []string{"--plan", "plan.json", "shape"}},
		{"missing plan", []string{"--model", model, "--out", bad, "--plan", filepath.Join(dir, "none.json")}, 1, []string{"--plan", "none.json"}},
		{"inconsistent plan", []string{"--model", model, "--out", bad, "--plan", broken}, 1, []string{"--plan", "broken.json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectFailure(t, runCLI(t, append([]string{"prune"}, tc.args...)...), tc.code, tc.want...)
			if _, err := os.Stat(bad); err == nil {
				t.Errorf("%s was written despite the error", bad)
			}
		})
	}
}

// TestPruneFLAPReloads prunes stories260K with FLAP (adaptive structure, bias compensation): the
// output has attention_bias/mlp_bias, reloads, and its parameter count is what the plan says.
func TestPruneFLAPReloads(t *testing.T) {
	model := stories260K(t)
	calib := dataPath(t, "text/tinystories/tinystories_val_head.txt")
	dir := t.TempDir()
	out, plan := filepath.Join(dir, "flap"), filepath.Join(dir, "plan.json")
	mustSucceed(t, "prune", "--model", model, "--out", out, "--strategy", "block", "--ratio", "0.3",
		"--criterion", "flap", "--calib", calib, "--num-examples", "16", "--save-plan", plan)
	raw, err := os.ReadFile(filepath.Join(out, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		AttnBias bool  `json:"attention_bias"`
		MLPBias  bool  `json:"mlp_bias"`
		Inter    []int `json:"intermediate_size_per_layer"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if !cfg.AttnBias || !cfg.MLPBias {
		t.Errorf("FLAP output config: attention_bias %v, mlp_bias %v; want both true", cfg.AttnBias, cfg.MLPBias)
	}
	var p struct {
		After int64 `json:"params_after"`
	}
	raw, _ = os.ReadFile(plan)
	_ = json.Unmarshal(raw, &p)
	var info modelInfo
	if err := json.Unmarshal([]byte(mustSucceed(t, "info", "--model", out, "--json").stdout), &info); err != nil {
		t.Fatal(err)
	}
	if info.Params != p.After {
		t.Errorf("reloaded FLAP model has %d parameters, the plan says %d", info.Params, p.After)
	}
	t.Logf("FLAP 0.3: %d parameters, MLP widths %v", info.Params, cfg.Inter)
}
