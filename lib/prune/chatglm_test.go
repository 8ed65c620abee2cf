package prune

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/groups"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/importance"
	"github.com/llmpruner/llmpruner/lib/internal/testdata"
	"github.com/llmpruner/llmpruner/lib/models"
)

// TestChatGLM6BPlan: block-wise 10% on every layer of ChatGLM-6B. Per layer the query_key_value
// root keeps int(4096·0.9) = 3686 of 4096 channels → 410 pruned → 3 whole heads (29 kept), and
// the MLP keeps int(16384·0.9) = 14745 channels. Hand count after: per layer 4·4096 (LayerNorms)
// + 3·3712·4096 + 3·3712 (qkv) + 3712·4096 + 4096 (dense) + 2·14745·4096 + 14745 + 4096 (MLP)
// = 181,658,905; ×28 + 534,642,688 (tied embeddings) + 8,192 (final LayerNorm) = 5,621,100,220.
func TestChatGLM6BEstimate(t *testing.T) {
	cfg, err := arch.LoadConfig(testdata.Path(t, "tokenizers/chatglm-6b/config.json"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Estimate(cfg, Options{Strategy: Block, Ratio: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ChatGLM-6B block 10%%: params %d → %d, MACs(64) %d → %d", res.ParamsBefore, res.ParamsAfter, res.MACsBefore, res.MACsAfter)
	if res.ParamsBefore != 6173286400 || res.ParamsAfter != 5621100220 || res.Heads[5] != 29 || res.KVHeads[5] != 29 || res.Inter[27] != 14745 {
		t.Errorf("plan: %+v", res)
	}
}

// chatglmTinyF32 loads the tiny ChatGLM of lib/models/testdata (float16 on disk) and returns it
// with float32 weights (saved and reloaded as f32, so tests can edit the values).
func chatglmTinyF32(t *testing.T) *models.Model {
	t.Helper()
	m, err := models.Load(groupstest.Backend(t), "../models/testdata/chatglm_tiny", models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "f32")
	if err := m.Save(dir, "f32"); err != nil {
		t.Fatal(err)
	}
	m, err = models.Load(groupstest.Backend(t), dir, models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// chatglmExpected is the part of lib/models/testdata/chatglm_tiny/expected.json these tests use
// (scripts/chatglm_ref.py: independent PyTorch slicing of the same weights).
type chatglmExpected struct {
	Prompts             [][]int     `json:"prompts"`
	HiddenRemoved       []int       `json:"hidden_removed"`
	HiddenRemovedLogits [][]float64 `json:"hidden_removed_logits"`
	Layer0RemovedLogits [][]float64 `json:"layer0_removed_logits"`
}

func loadChatGLMExpected(t *testing.T) chatglmExpected {
	t.Helper()
	data, err := os.ReadFile("../models/testdata/chatglm_tiny/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var e chatglmExpected
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// chatglmCalibration are prefix-LM rows of the tiny vocabulary ([gMASK] 151, <sop> 152).
func chatglmCalibration(step int) ([][]int, error) {
	var rows [][]int
	for j, r := range groupstest.Tokens(4, 10, 150, uint64(300+step)) {
		rows = append(rows, append(append(r[:4+j%3], 151, 152), r[4+j%3:]...))
	}
	return rows, nil
}

// TestChatGLMBlockPruneSaveReload prunes the tiny ChatGLM block-wise at 50% (every layer, heads and
// MLP channels) with Taylor and with l2 importance, saves, reloads, and checks the logits against
// the unpruned model with the removed groups zeroed.
func TestChatGLMBlockPruneSaveReload(t *testing.T) {
	e := loadChatGLMExpected(t)
	for _, crit := range []importance.Criterion{importance.Taylor, importance.L2} {
		m, ref := chatglmTinyF32(t), chatglmTinyF32(t)
		rep, err := Prune(m, Options{Strategy: Block, Ratio: 0.5, Importance: importance.Options{Criterion: crit}, Sampler: chatglmCalibration})
		if err != nil {
			t.Fatalf("%v: %+v", crit, err)
		}
		if !slices.Equal(m.Config.Heads, []int{2, 2}) || !slices.Equal(m.Config.Inter, []int{64, 64}) {
			t.Errorf("%v: pruned config %v", crit, m.Config)
		}
		out := filepath.Join(t.TempDir(), "pruned")
		if err := m.Save(out, ""); err != nil {
			t.Fatal(err)
		}
		back, err := models.Load(groupstest.Backend(t), out, models.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := back.Logits(e.Prompts)
		if err != nil {
			t.Fatal(err)
		}
		dense, _ := ref.Logits(e.Prompts)
		zeroRemoved(t, ref, rep)
		want, err := ref.Logits(e.Prompts)
		if err != nil {
			t.Fatal(err)
		}
		d, changed := maxAbsDiff(got, want), maxAbsDiff(got, dense)
		t.Logf("%v: params %d → %d; reloaded vs zeroed max |Δlogit| %.2e (vs dense %.2f)", crit, rep.ParamsBefore, rep.ParamsAfter, d, changed)
		if d > 1e-4 {
			t.Errorf("%v: reloaded pruned ChatGLM vs zeroed unpruned: logits differ by %.3g", crit, d)
		}
		if changed < 1e-2 {
			t.Errorf("%v: pruning did not change the logits: test cannot fail", crit)
		}
		if arch.NumParams(back.Config) != rep.ParamsAfter {
			t.Errorf("%v: reloaded params %d, report %d", crit, arch.NumParams(back.Config), rep.ParamsAfter)
		}
	}
}

// relDiff is max|got-want| / max|want| over a sequence's logits.
func relDiff(got [][]float32, want [][]float64) float64 {
	var d, ref float64
	for i := range want {
		for j := range want[i] {
			d = max(d, abs(float64(got[i][j])-want[i][j]))
			ref = max(ref, abs(want[i][j]))
		}
	}
	return d / ref
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// TestChatGLMHiddenChannelsMatchReference: LayerNorm renormalises over the remaining channels, so
// removal is checked against the reference's own slicing of the same hidden channels.
func TestChatGLMHiddenChannelsMatchReference(t *testing.T) {
	e := loadChatGLMExpected(t)
	m := chatglmTinyF32(t)
	fam, err := groups.HiddenChannels(m.Config)
	if err != nil {
		t.Fatal(err)
	}
	var gs []groups.Group
	for _, d := range e.HiddenRemoved {
		gs = append(gs, fam.Groups[d])
	}
	next, err := RemoveGroups(m.Store, m.Config, gs)
	if err != nil {
		t.Fatal(err)
	}
	m.Config = next
	m.ResetExecs()
	got, err := m.Logits(e.Prompts[1:2])
	if err != nil {
		t.Fatal(err)
	}
	r := relDiff(got[0], e.HiddenRemovedLogits)
	t.Logf("hidden %d → %d: logits relative error vs reference %.2e", 64, next.Hidden, r)
	if next.Hidden != 64-len(e.HiddenRemoved) || r > 1e-4 {
		t.Errorf("hidden-channel removal: hidden %d, relative error %.3g", next.Hidden, r)
	}
}

// TestChatGLMLayerRemovalMatchesReference: removing layer 0 renumbers layer 1 and keeps the residual
// scale alpha = sqrt(2·2) of the unpruned model, as the reference run through layer 1 alone; the
// saved config records it.
func TestChatGLMLayerRemovalMatchesReference(t *testing.T) {
	e := loadChatGLMExpected(t)
	m := chatglmTinyF32(t)
	next, kept, err := RemoveLayers(m.Store, m.Config, []int{0})
	if err != nil {
		t.Fatal(err)
	}
	m.Config = next
	m.ResetExecs()
	out := filepath.Join(t.TempDir(), "one-layer")
	if err := m.Save(out, ""); err != nil {
		t.Fatal(err)
	}
	back, err := models.Load(groupstest.Backend(t), out, models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := back.Logits(e.Prompts[1:2])
	if err != nil {
		t.Fatal(err)
	}
	r := relDiff(got[0], e.Layer0RemovedLogits)
	t.Logf("layer 0 removed (kept %v): logits relative error vs reference %.2e", kept, r)
	if back.Config.NumLayers() != 1 || r > 1e-4 {
		t.Errorf("layer removal: %d layers, relative error %.3g", back.Config.NumLayers(), r)
	}
}

// TestChatGLMChannelAndLayerStrategies: channel-wise (Taylor) and layer-wise pruning of the tiny
// ChatGLM produce directories that reload with the planned sizes; ranked layer pruning is refused
// with a clear error (no weight gate makes a ChatGLM layer the identity).
func TestChatGLMChannelAndLayerStrategies(t *testing.T) {
	e := loadChatGLMExpected(t)
	for _, o := range []Options{
		{Strategy: Channel, Ratio: 0.25, Importance: importance.Options{Criterion: importance.Taylor}, Sampler: chatglmCalibration},
		{Strategy: Layer, KeepLayers: 1},
	} {
		m := chatglmTinyF32(t)
		plan, err := Estimate(m.Config, o)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Prune(m, o)
		if err != nil {
			t.Fatalf("%v: %+v", o.Strategy, err)
		}
		out := filepath.Join(t.TempDir(), "pruned")
		if err := m.Save(out, ""); err != nil {
			t.Fatal(err)
		}
		back, err := models.Load(groupstest.Backend(t), out, models.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := back.Logits(e.Prompts); err != nil {
			t.Fatal(err)
		}
		if arch.NumParams(back.Config) != plan.ParamsAfter || rep.ParamsAfter != plan.ParamsAfter {
			t.Errorf("%v: reloaded %d params, report %d, plan %d", o.Strategy, arch.NumParams(back.Config), rep.ParamsAfter, plan.ParamsAfter)
		}
		t.Logf("%v: hidden %d, layers %d, params %d → %d", o.Strategy, back.Config.Hidden, back.Config.NumLayers(), rep.ParamsBefore, rep.ParamsAfter)
	}
	m := chatglmTinyF32(t)
	_, err := Prune(m, Options{Strategy: Layer, KeepLayers: 1, RankLayers: true, Sampler: chatglmCalibration})
	if err == nil || !strings.Contains(err.Error(), "not available for ChatGLM") {
		t.Errorf("ranked layer pruning of ChatGLM: err = %v", err)
	}
}
