package experiment

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/internal/testdata"
	"github.com/llmpruner/llmpruner/lib/notebook"
)

// TestSmallLLaMA runs the LLaMA-7B preset in small mode on stories260K end to end, twice: the
// second run must read every step back from the cache and give the same numbers.
func TestSmallLLaMA(t *testing.T) {
	testdata.DataDir(t)
	s := LLaMA7B("test-llama", "/nonexistent/llama-7b", true)
	for _, m := range s.Methods { // Element¹ (with LoRA) only: keep the test short
		if m.Name == "Element¹" {
			s.Methods = []Method{m}
			break
		}
	}
	s.LoRA.Steps = 8
	s.CacheDir = t.TempDir()
	start := time.Now()
	res, err := Run(groupstest.Backend(t), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first run %s", time.Since(start))
	if got, want := len(res.Measurements), 3; got != want { // dense, Element¹ w/o tune, Element¹ w/ LoRA
		t.Fatalf("%d measurements, want %d", got, want)
	}
	dense, pruned, recovered := res.Measurements[0], res.Measurements[1], res.Measurements[2]
	if !(pruned.Stats.Params < dense.Stats.Params) || pruned.Stats.Params != recovered.Stats.Params {
		t.Errorf("params dense %d, pruned %d, recovered %d", dense.Stats.Params, pruned.Stats.Params, recovered.Stats.Params)
	}
	// stories260K's dense TinyStories-trained model: WikiText2 is out of domain but finite; pruning raises it.
	for _, m := range res.Measurements {
		for col, v := range m.PPL {
			if math.IsNaN(v) || v <= 1 {
				t.Errorf("%s %s PPL %g", m.Name, col, v)
			}
		}
		if m.ZeroShot == nil || len(m.ZeroShot.Tasks) != 7 || m.ZeroShot.Tasks["boolq"].N != 5 {
			t.Errorf("%s: zero-shot %+v", m.Name, m.ZeroShot)
		}
	}
	if c := res.Curves["Element¹"]; len(c.Loss) != 8 {
		t.Errorf("curve has %d losses, want 8", len(c.Loss))
	}
	if res.Reports["Element¹"] == nil || res.Reports["Element¹"].ParamsAfter != pruned.Stats.Params {
		t.Errorf("report %+v vs params %d", res.Reports["Element¹"], pruned.Stats.Params)
	}
	table, err := res.Table(notebook.PaperLLaMA7B[:1])
	if err != nil {
		t.Fatal(err)
	}
	header := "| Model | WikiText2 | PTB | BoolQ | PIQA | HellaSwag | WinoGrande | ARC-e | ARC-c | OBQA | Average |"
	if !strings.HasPrefix(table, header+"\n") || !strings.Contains(table, "| ours · ratio 0.25 Element¹, w/ LoRA |") {
		t.Errorf("table:\n%s", table)
	}
	if _, err := res.StatsTable(); err != nil {
		t.Error(err)
	}
	if svg, err := res.CurvePlot(); err != nil || !strings.Contains(svg, "<polyline") {
		t.Errorf("curve plot: %v", err)
	}

	start = time.Now()
	again, err := Run(groupstest.Backend(t), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cached run %s", time.Since(start))
	if again.Computed != 0 || again.Cached != 5 {
		t.Errorf("second run computed %d, cached %d steps (want 0, 5)", again.Computed, again.Cached)
	}
	if again.Measurements[2].PPL["WikiText2"] != recovered.PPL["WikiText2"] {
		t.Error("cached measurement differs")
	}
}

// TestSmallChatGLM runs the ChatGLM-6B preset in small mode on the tiny ChatGLM fixture.
func TestSmallChatGLM(t *testing.T) {
	testdata.DataDir(t)
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("LLMPRUNER_REPO", repo)
	s := ChatGLM6B("test-chatglm", "/nonexistent/chatglm-6b", true)
	s.CacheDir = t.TempDir()
	res, err := Run(groupstest.Backend(t), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Measurements) != 5 { // dense, L2, Random, Element¹ w/o tune, Element¹ w/ LoRA
		t.Fatalf("%d measurements", len(res.Measurements))
	}
	// 4 heads of 16 channels, ratio 0.25: one head goes in each of the 2 layers.
	if rep := res.Reports["Element¹"]; rep == nil || len(rep.Layers) != 2 || len(rep.Layers[0].HeadsKept) != 3 {
		t.Errorf("report %+v", rep)
	}
	table, err := res.Table(notebook.PaperChatGLM6B)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table, "| PIQA |") || strings.Contains(table, "BoolQ") || !strings.Contains(table, "PIQA acc_norm (n=5)") {
		t.Errorf("table:\n%s", table)
	}
}

func TestSettingsValidate(t *testing.T) {
	s := LLaMA7B("x", "m", true)
	s.Methods[0].WithoutFT = false
	if err := s.Validate(); err == nil {
		t.Error("a method that reports nothing: want an error")
	}
	s = LLaMA7B("bad name", "m", false)
	if err := s.Validate(); err == nil {
		t.Error("bad name: want an error")
	}
	a, b := LLaMA7B("x", "m", true), LLaMA7B("x", "m", true)
	b.Ratio = 0.3
	if a.Hash() == b.Hash() {
		t.Error("different settings share a cache hash")
	}
}

func TestSmallMode(t *testing.T) {
	t.Setenv(SmallEnv, "")
	if !SmallMode("/nonexistent/model") || SmallMode(os.TempDir()) {
		t.Error("default: small iff the model path is missing")
	}
	t.Setenv(SmallEnv, "1")
	if !SmallMode(os.TempDir()) {
		t.Error("LLMPRUNER_NOTEBOOK_SMALL=1 must force small mode")
	}
	t.Setenv(SmallEnv, "0")
	if SmallMode("/nonexistent/model") {
		t.Error("LLMPRUNER_NOTEBOOK_SMALL=0 must force full mode")
	}
}

func TestByteTokenizer(t *testing.T) {
	tok := NewByteTokenizer(160, 153)
	ids, _ := tok.Encode("Hi ~\n")
	want := []int{4 + 'H' - 32, 4 + 'i' - 32, 4, 4 + 94, 99}
	for i := range want {
		if ids[i] != want[i] {
			t.Fatalf("ids %v, want %v", ids, want)
		}
	}
	if got := tok.Decode(ids); got != "Hi ~?" {
		t.Errorf("decode %q", got)
	}
	if tok.BOS() != -1 || tok.EOS() != 153 || tok.VocabSize() != 160 {
		t.Error("special ids")
	}
}
