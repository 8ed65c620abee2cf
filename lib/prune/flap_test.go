package prune

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/data"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/importance"
	"github.com/llmpruner/llmpruner/lib/internal/testdata"
	"github.com/llmpruner/llmpruner/lib/models"
)

// flapReference is scripts/flap_ref.py's output.
type flapReference struct {
	Threshold      float64   `json:"threshold"`
	BlockInfluence []float64 `json:"block_influence"`
	Layers         []struct {
		Layer           int       `json:"layer"`
		KVHeadsKept     []int     `json:"kv_heads_kept"`
		MLPChannelsKept []int     `json:"mlp_channels_kept"`
		OProjBias       []float64 `json:"o_proj_bias"`
		DownProjBias    []float64 `json:"down_proj_bias"`
		HeadScores      []float64 `json:"head_scores"`
		MLPScores       []float64 `json:"mlp_scores"`
		WandaHeadScores []float64 `json:"wanda_head_scores"`
		WandaMLPScores  []float64 `json:"wanda_mlp_scores"`
	} `json:"layers"`
}

// torchPython returns a Python interpreter that can import torch, or "".
func torchPython() string {
	for _, p := range []string{os.Getenv("PYTHON"), "python3", "/usr/bin/python3"} {
		if p != "" && exec.Command(p, "-c", "import torch").Run() == nil {
			return p
		}
	}
	return ""
}

// runFLAPReference runs scripts/flap_ref.py on model dir with the calibration ids and ratio.
func runFLAPReference(t *testing.T, dir string, calib [][]int, ratio float64) *flapReference {
	t.Helper()
	py := torchPython()
	if py == "" {
		if os.Getenv("LLMPRUNER_REQUIRE_TORCH") == "1" {
			t.Fatal("python3 with torch is required (LLMPRUNER_REQUIRE_TORCH=1)")
		}
		t.Skip("python3 with torch is not installed; skipping the FLAP reference check")
	}
	tmp := t.TempDir()
	ids, _ := json.Marshal(calib)
	idsPath, out := filepath.Join(tmp, "calib.json"), filepath.Join(tmp, "ref.json")
	if err := os.WriteFile(idsPath, ids, 0o644); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join("..", "..", "scripts", "flap_ref.py")
	if b, err := exec.Command(py, script, dir, idsPath, jsonFloat(ratio), out).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, b)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var ref flapReference
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	return &ref
}

func jsonFloat(x float64) string { b, _ := json.Marshal(x); return string(b) }

// maxRel is max |a−b| / max(|b|, floor) over the elements.
func maxRel(a, b []float64, floor float64) float64 {
	d := 0.0
	for i := range b {
		d = math.Max(d, math.Abs(a[i]-b[i])/math.Max(math.Abs(b[i]), floor))
	}
	return d
}

// TestFLAPMatchesReference prunes stories260K with FLAP (adaptive structure, bias compensation) and
// compares with an independent PyTorch implementation of FLAP's computation
// (scripts/flap_ref.py): the same kept kv heads and MLP channels in every layer, biases within 1e-5,
// standardized scores (order 1) within 1e-4; Wanda-sp's scores are checked against the same script.
func TestFLAPMatchesReference(t *testing.T) {
	dir := testdata.GoldenPath(t, "stories260K-hf")
	load := func() *models.Model {
		m, err := models.Load(groupstest.Backend(t), dir, models.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := load()
	text, err := data.ReadText(testdata.Path(t, "text/tinystories/tinystories_val_head.txt"))
	if err != nil {
		t.Fatal(err)
	}
	calib, err := data.CalibrationSamples(m.Tokenizer, text[len(text)/2:], 16, 64, 7)
	if err != nil {
		t.Fatal(err)
	}
	const ratio = 0.3
	ref := runFLAPReference(t, dir, calib, ratio)
	opts := Options{Strategy: Block, Ratio: ratio, Structure: Adaptive, Importance: importance.Options{Criterion: importance.FLAP},
		Sampler: func(int) ([][]int, error) { return calib, nil }}
	plan, err := Prune(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	worstBias, worstScore, headsGone, widths := compareFLAP(t, plan, ref)
	if headsGone == 0 || len(widths) < 2 {
		t.Errorf("the test should exercise head removal and adaptive widths: %d kv heads removed, MLP widths %v", headsGone, widths)
	}
	t.Logf("FLAP vs reference: params %d → %d, max |Δbias| %.2e, max |Δscore| %.2e (relative above 1)", plan.ParamsBefore, plan.ParamsAfter, worstBias, worstScore)
	if worstBias > 1e-5 {
		t.Errorf("biases differ from the reference by up to %.2e (limit 1e-5)", worstBias)
	}

	if worstScore > 1e-4 {
		t.Errorf("standardized scores differ from the reference by up to %.2e (limit 1e-4)", worstScore)
	}
	// The pruned model carries the biases: its forward equals the saved-and-reloaded one's.
	if !m.Config.AttnBias || !m.Config.MLPBias {
		t.Errorf("pruned config has attention_bias=%v mlp_bias=%v, want both", m.Config.AttnBias, m.Config.MLPBias)
	}

	// Wanda-sp's scores from the same statistics.
	w := load()
	s, err := Score(w, Options{Strategy: Block, Ratio: ratio, Importance: importance.Options{Criterion: importance.WandaSP},
		Sampler: func(int) ([][]int, error) { return calib, nil }})
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for l, r := range ref.Layers {
		worst = math.Max(worst, maxRel(s.Heads[l], r.WandaHeadScores, 1e-6))
		worst = math.Max(worst, maxRel(s.MLP[l], r.WandaMLPScores, 1e-6))
	}
	t.Logf("Wanda-sp vs reference: max relative Δscore %.2e", worst)
	if worst > 1e-4 {
		t.Errorf("Wanda-sp scores differ from the reference by up to %.2e relative (limit 1e-4)", worst)
	}

	// Block Influence, through ranked layer pruning: the two lowest-BI layers go.
	b := load()
	lp, err := Prune(b, Options{Strategy: Layer, KeepLayers: 3, RankLayers: true, LayerCriterion: LayerBI,
		Sampler: func(int) ([][]int, error) { return calib, nil }})
	if err != nil {
		t.Fatal(err)
	}
	var bi []float64
	for _, l := range lp.Layers {
		bi = append(bi, *l.LayerScore)
	}
	wantKept := []int{}
	drop := lowest(ref.BlockInfluence, 2)
	for l := range ref.BlockInfluence {
		if !slices.Contains(drop, l) {
			wantKept = append(wantKept, l)
		}
	}
	worst = 0
	for i, l := range lp.LayersKept {
		worst = math.Max(worst, math.Abs(bi[i]-ref.BlockInfluence[l]))
	}
	t.Logf("block influence %v (reference %v), max |Δ| %.2e, kept %v", bi, ref.BlockInfluence, worst, lp.LayersKept)
	if !slices.Equal(lp.LayersKept, wantKept) || worst > 1e-5 {
		t.Errorf("block influence kept layers %v (reference %v), max |Δ| %.2e (limit 1e-5)", lp.LayersKept, wantKept, worst)
	}
}

// compareFLAP checks plan's kept kv heads and MLP channels against the reference's, layer by
// layer, and returns the largest bias and standardized-score differences, the number of kv heads
// removed and the set of MLP widths kept.
func compareFLAP(t *testing.T, plan *Plan, ref *flapReference) (worstBias, worstScore float64, headsGone int, widths map[int]bool) {
	t.Helper()
	widths = map[int]bool{}
	for l, r := range ref.Layers {
		lp := plan.Layers[l]
		headsGone += len(r.HeadScores) - len(lp.KVHeadsKept)
		widths[len(lp.MLPChannelsKept)] = true
		if len(r.KVHeadsKept) == 0 || len(r.MLPChannelsKept) == 0 {
			t.Fatalf("the reference empties layer %d (FLAP allows it, llmpruner keeps one unit): choose another ratio", l)
		}
		if !slices.Equal(lp.KVHeadsKept, r.KVHeadsKept) {
			t.Errorf("layer %d kv heads kept %v, reference %v", l, lp.KVHeadsKept, r.KVHeadsKept)
		}
		if !slices.Equal(lp.MLPChannelsKept, r.MLPChannelsKept) {
			t.Errorf("layer %d MLP channels kept %d %v, reference %d %v", l, len(lp.MLPChannelsKept), lp.MLPChannelsKept, len(r.MLPChannelsKept), r.MLPChannelsKept)
		}
		for _, pair := range [][2][]float64{{lp.OProjBias, r.OProjBias}, {lp.DownProjBias, r.DownProjBias}} {
			got, want := pair[0], pair[1]
			if got == nil {
				got = make([]float64, len(want))
			}
			for i := range want {
				worstBias = math.Max(worstBias, math.Abs(got[i]-want[i]))
			}
		}
		worstScore = math.Max(worstScore, maxRel(lp.KVHeadScores, r.HeadScores, 1))
		worstScore = math.Max(worstScore, maxRel(lp.MLPScores, r.MLPScores, 1))
	}
	return worstBias, worstScore, headsGone, widths
}

// TestFLAPQwen2MatchesReference: FLAP (adaptive structure, bias compensation) and Wanda-sp on the
// tiny random Qwen2 checkpoint (q/k/v biases, GQA 8/2, tied embeddings; written by
// scripts/llama_family_ref.py) against scripts/flap_ref.py, which runs the q/k/v biases in its own
// forward pass: the same kept kv heads and MLP channels, biases within 1e-6, scores within 1e-4.
// The compensated model has an o_proj bias, which Qwen2's config.json cannot state: it becomes a
// LLaMA model with attention_bias (q/k/v/o biases), saved as LlamaForCausalLM, and reloads to the
// same logits.
func TestFLAPQwen2MatchesReference(t *testing.T) {
	dir := filepath.Join("..", "models", "testdata", "qwen2_tiny")
	load := func() *models.Model {
		m, err := models.Load(groupstest.Backend(t), dir, models.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := load()
	calib := groupstest.Tokens(16, 24, m.Config.Vocab, 5)
	const ratio = 0.4
	ref := runFLAPReference(t, dir, calib, ratio)
	sampler := func(int) ([][]int, error) { return calib, nil }
	plan, err := Prune(m, Options{Strategy: Block, Ratio: ratio, Structure: Adaptive, Importance: importance.Options{Criterion: importance.FLAP}, Sampler: sampler})
	if err != nil {
		t.Fatal(err)
	}
	worstBias, worstScore, headsGone, widths := compareFLAP(t, plan, ref)
	t.Logf("Qwen2 FLAP vs reference: params %d → %d, kv heads removed %d, MLP widths %v, max |Δbias| %.2e, max |Δscore| %.2e",
		plan.ParamsBefore, plan.ParamsAfter, headsGone, widths, worstBias, worstScore)
	if headsGone == 0 || len(widths) < 2 {
		t.Errorf("the test should exercise head removal and adaptive widths: %d kv heads removed, MLP widths %v", headsGone, widths)
	}
	if worstBias > 1e-6 || worstScore > 1e-4 {
		t.Errorf("biases differ from the reference by up to %.2e (limit 1e-6), standardized scores by %.2e (limit 1e-4)", worstBias, worstScore)
	}
	c := m.Config
	if c.Arch != arch.Llama || !c.AttnBias || c.QKVBiasOnly || !c.MLPBias || !c.TieEmbed || c.RopeTheta != 1e6 {
		t.Errorf("compensated Qwen2: %s arch %s attention_bias %v (q/k/v only %v) mlp_bias %v tied %v rope_theta %g; want a tied LLaMA with all biases, rope_theta 1e6",
			c, c.Arch, c.AttnBias, c.QKVBiasOnly, c.MLPBias, c.TieEmbed, c.RopeTheta)
	}
	prompt := groupstest.Tokens(1, 10, c.Vocab, 9)
	want, err := m.Logits(prompt)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "pruned")
	if err := m.Save(out, ""); err != nil {
		t.Fatal(err)
	}
	var saved struct {
		ModelType     string   `json:"model_type"`
		Architectures []string `json:"architectures"`
		AttentionBias bool     `json:"attention_bias"`
	}
	if raw, err := os.ReadFile(filepath.Join(out, "config.json")); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(raw, &saved); err != nil {
		t.Fatal(err)
	}
	if saved.ModelType != "llama" || !slices.Equal(saved.Architectures, []string{"LlamaForCausalLM"}) || !saved.AttentionBias {
		t.Errorf("saved config.json: model_type %q, architectures %v, attention_bias %v", saved.ModelType, saved.Architectures, saved.AttentionBias)
	}
	back, got := reloadLogits(t, out, prompt)
	wantF := float64Rows(want[0])
	if back.Config.String() != c.String() || relDiff(got[0], wantF) > 1e-6 {
		t.Errorf("reloaded %s (pruned %s), logits differ by %.2e", back.Config, c, relDiff(got[0], wantF))
	}

	s, err := Score(load(), Options{Strategy: Block, Ratio: ratio, Importance: importance.Options{Criterion: importance.WandaSP}, Sampler: sampler})
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for l, r := range ref.Layers {
		worst = math.Max(worst, maxRel(s.Heads[l], r.WandaHeadScores, 1e-6))
		worst = math.Max(worst, maxRel(s.MLP[l], r.WandaMLPScores, 1e-6))
	}
	t.Logf("Qwen2 Wanda-sp vs reference: max relative Δscore %.2e", worst)
	if worst > 1e-4 {
		t.Errorf("Wanda-sp scores differ from the reference by up to %.2e relative (limit 1e-4)", worst)
	}
}

// TestFLAPChatGLMMatchesReference: FLAP and Wanda-sp on the tiny ChatGLM-6B checkpoint
// (scripts/chatglm_ref.py; float16 weights) against scripts/flap_ref.py's own ChatGLM forward pass
// on plain-text calibration ids: the statistics come from the inputs of attention.dense and
// mlp.dense_4h_to_h, heads weigh their 4·hd·D + 3·hd parameters against a channel's 2·D + 1. Same
// kept heads and channels, biases within 1e-6, scores within 1e-4; the pruned model (its biases
// compensated in attention.dense / dense_4h_to_h) saves and reloads to the same logits.
func TestFLAPChatGLMMatchesReference(t *testing.T) {
	dir := filepath.Join("..", "models", "testdata", "chatglm_tiny")
	load := func() *models.Model {
		m, err := models.Load(groupstest.Backend(t), dir, models.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := load()
	calib := groupstest.Tokens(16, 24, 150, 5) // ids below the special tokens (150…153): plain text
	const ratio = 0.4
	ref := runFLAPReference(t, dir, calib, ratio)
	sampler := func(int) ([][]int, error) { return calib, nil }
	plan, err := Prune(m, Options{Strategy: Block, Ratio: ratio, Structure: Adaptive, Importance: importance.Options{Criterion: importance.FLAP}, Sampler: sampler})
	if err != nil {
		t.Fatal(err)
	}
	worstBias, worstScore, headsGone, widths := compareFLAP(t, plan, ref)
	biasScale := 0.0 // ChatGLM's compensation biases are large (weights of std 0.4, residual ×sqrt(56))
	for _, r := range ref.Layers {
		for _, b := range append(append([]float64{}, r.OProjBias...), r.DownProjBias...) {
			biasScale = math.Max(biasScale, math.Abs(b))
		}
	}
	t.Logf("ChatGLM FLAP vs reference: params %d → %d, heads removed %d, MLP widths %v, max |Δbias| %.2e (max |bias| %.2f), max |Δscore| %.2e",
		plan.ParamsBefore, plan.ParamsAfter, headsGone, widths, worstBias, biasScale, worstScore)
	if headsGone == 0 || len(widths) < 2 {
		t.Errorf("the test should exercise head removal and adaptive widths: %d heads removed, MLP widths %v", headsGone, widths)
	}
	if worstBias > 1e-6*math.Max(1, biasScale) || worstScore > 1e-4 {
		t.Errorf("biases differ from the reference by up to %.2e (limit 1e-6 relative to the largest, %.2f), standardized scores by %.2e (limit 1e-4)", worstBias, biasScale, worstScore)
	}
	prompt := groupstest.Tokens(1, 10, 150, 9)
	want, err := m.Logits(prompt)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "pruned")
	if err := m.Save(out, ""); err != nil {
		t.Fatal(err)
	}
	back, got := reloadLogits(t, out, prompt)
	wantF := float64Rows(want[0])
	if back.Config.Arch != arch.ChatGLM || back.Config.String() != m.Config.String() || relDiff(got[0], wantF) > 1e-6 {
		t.Errorf("reloaded %s %s (pruned %s), logits differ by %.2e", back.Config.Arch, back.Config, m.Config, relDiff(got[0], wantF))
	}

	s, err := Score(load(), Options{Strategy: Block, Ratio: ratio, Importance: importance.Options{Criterion: importance.WandaSP}, Sampler: sampler})
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for l, r := range ref.Layers {
		worst = math.Max(worst, maxRel(s.Heads[l], r.WandaHeadScores, 1e-6))
		worst = math.Max(worst, maxRel(s.MLP[l], r.WandaMLPScores, 1e-6))
	}
	t.Logf("ChatGLM Wanda-sp vs reference: max relative Δscore %.2e", worst)
	if worst > 1e-4 {
		t.Errorf("Wanda-sp scores differ from the reference by up to %.2e relative (limit 1e-4)", worst)
	}
}

// reloadLogits loads the checkpoint in dir and returns it with its logits of prompt.
func reloadLogits(t *testing.T, dir string, prompt [][]int) (*models.Model, [][][]float32) {
	t.Helper()
	back, err := models.Load(groupstest.Backend(t), dir, models.LoadOptions{})
	if err != nil {
		t.Fatalf("reload: %+v", err)
	}
	got, err := back.Logits(prompt)
	if err != nil {
		t.Fatal(err)
	}
	return back, got
}

// float64Rows converts one sequence's logits to float64.
func float64Rows(rows [][]float32) [][]float64 {
	out := make([][]float64, len(rows))
	for i, row := range rows {
		for _, v := range row {
			out[i] = append(out[i], float64(v))
		}
	}
	return out
}
