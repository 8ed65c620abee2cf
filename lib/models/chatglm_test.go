package models

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/llmpruner/llmpruner/lib/internal/testdata"
)

// chatglmExpected is testdata/chatglm_tiny/expected.json, written by scripts/chatglm_ref.py (an
// independent PyTorch implementation of ChatGLM-6B's architecture).
type chatglmExpected struct {
	Prompts             [][]int       `json:"prompts"`
	Logits              [][][]float64 `json:"logits"`
	GreedyPrompts       [][]int       `json:"greedy_prompts"`
	Greedy              [][]int       `json:"greedy"`
	HiddenRemoved       []int         `json:"hidden_removed"`
	HiddenRemovedLogits [][]float64   `json:"hidden_removed_logits"`
}

const chatglmTinyDir = "testdata/chatglm_tiny"

func loadChatGLMExpected(t *testing.T) chatglmExpected {
	var e chatglmExpected
	readJSON(t, filepath.Join(chatglmTinyDir, "expected.json"), &e)
	return e
}

// checkChatGLMLogits compares the model's logits on every reference prompt (one padded batch).
func checkChatGLMLogits(t *testing.T, m *Model, e chatglmExpected, tol float64) {
	t.Helper()
	logits, err := m.Logits(e.Prompts)
	if err != nil {
		t.Fatalf("Logits: %+v", err)
	}
	worst := 0.0
	for i, p := range e.Prompts {
		for pos := range p {
			worst = max(worst, relErr(logits[i][pos], e.Logits[i][pos]))
		}
	}
	t.Logf("%s: worst logits relative error over %d prompts: %.2e", m.Source, len(e.Prompts), worst)
	if worst > tol {
		t.Errorf("logits relative error %.3e exceeds %.0e", worst, tol)
	}
}

// TestChatGLMTinyMatchesReference: float16 safetensors, prefix-LM prompts with [gMASK]/[MASK]
// and <sop>, batched with padding.
func TestChatGLMTinyMatchesReference(t *testing.T) {
	m := mustLoad(t, chatglmTinyDir, LoadOptions{})
	checkChatGLMLogits(t, m, loadChatGLMExpected(t), 1e-4)
}

// TestChatGLMTinyShardedBin: the same weights as two torch .bin shards with an index and the tied
// lm_head copy.
func TestChatGLMTinyShardedBin(t *testing.T) {
	m := mustLoad(t, "testdata/chatglm_tiny_bin", LoadOptions{})
	checkChatGLMLogits(t, m, loadChatGLMExpected(t), 1e-4)
}

// TestChatGLMGenerateMatchesReference: KV-cache greedy decoding equals the reference's greedy
// continuation (full recomputation with the reference's positions and masks).
func TestChatGLMGenerateMatchesReference(t *testing.T) {
	m := mustLoad(t, chatglmTinyDir, LoadOptions{})
	e := loadChatGLMExpected(t)
	for i, p := range e.GreedyPrompts {
		got, err := m.Generate(p, GenerateOptions{MaxNewTokens: len(e.Greedy[i])})
		if err != nil {
			t.Fatalf("Generate: %+v", err)
		}
		t.Logf("prompt %v → %v", p, got)
		if !slices.Equal(got, e.Greedy[i]) {
			t.Errorf("prompt %v: generated %v, reference %v", p, got, e.Greedy[i])
		}
	}
}

func TestChatGLMGenerateNeedsSop(t *testing.T) {
	m := mustLoad(t, chatglmTinyDir, LoadOptions{})
	_, err := m.Generate([]int{5, 6, 151}, GenerateOptions{MaxNewTokens: 2})
	wantError(t, err, "<sop>")
	_, err = m.Generate([]int{5, 6, 152}, GenerateOptions{MaxNewTokens: 2})
	wantError(t, err, "[gMASK]")
}

// TestChatGLMSaveReload: Save writes a ChatGLM directory that reloads with identical logits.
func TestChatGLMSaveReload(t *testing.T) {
	m := mustLoad(t, chatglmTinyDir, LoadOptions{})
	dir := filepath.Join(t.TempDir(), "out")
	if err := m.Save(dir, "f32"); err != nil {
		t.Fatalf("Save: %+v", err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if !strings.Contains(string(data), `"model_type": "chatglm"`) {
		t.Fatalf("saved config: %s", data)
	}
	r := mustLoad(t, dir, LoadOptions{})
	e := loadChatGLMExpected(t)
	a, err := m.Logits(e.Prompts[:1])
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Logits(e.Prompts[:1])
	if err != nil {
		t.Fatal(err)
	}
	for pos := range a[0] {
		if !slices.Equal(a[0][pos], b[0][pos]) {
			t.Fatalf("position %d: reloaded logits differ", pos)
		}
	}
}

// TestChatGLMBadInput: architecture mismatches and missing shards give clear errors.
func TestChatGLMBadInput(t *testing.T) {
	// ChatGLM weights under a LLaMA config.json.
	dir := copyDir(t, chatglmTinyDir)
	llamaCfg := `{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":64,"intermediate_size":128,
"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":160,"max_position_embeddings":64}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(llamaCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(backend(t), dir, LoadOptions{})
	wantError(t, err, "named like a ChatGLM checkpoint")
	t.Log(err)

	// LLaMA weights under a ChatGLM config.json.
	glm, _ := os.ReadFile(filepath.Join(chatglmTinyDir, "config.json"))
	llamaDir := copyDir(t, testdata.GoldenPath(t, "tiny-llama-mha"))
	if err := os.WriteFile(filepath.Join(llamaDir, "config.json"), glm, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(backend(t), llamaDir, LoadOptions{})
	wantError(t, err, "named like a LLaMA checkpoint")
	t.Log(err)

	// A missing shard.
	dir = copyDir(t, "testdata/chatglm_tiny_bin")
	if err := os.Remove(filepath.Join(dir, "pytorch_model-00002-of-00002.bin")); err != nil {
		t.Fatal(err)
	}
	_, err = Load(backend(t), dir, LoadOptions{})
	wantError(t, err, "pytorch_model-00002-of-00002.bin")
	t.Log(err)
}

// TestChatGLMPlainTextIsCausal: a sequence without <sop> (plain text scored as a language model)
// is causal: the logits of a prefix do not change when tokens are appended. With <sop> the context
// before it is bidirectional, so appending to the context changes earlier logits.
func TestChatGLMPlainTextIsCausal(t *testing.T) {
	m := mustLoad(t, chatglmTinyDir, LoadOptions{})
	full := []int{4, 8, 15, 16, 23, 42, 7, 9}
	a, err := m.Logits([][]int{full, full[:5]})
	if err != nil {
		t.Fatal(err)
	}
	for pos := range 5 {
		if d := relErr(a[1][pos], a[0][pos]); d > 1e-6 {
			t.Errorf("plain text position %d: prefix logits differ by %.3g", pos, d)
		}
	}
	ctxA, ctxB := []int{4, 8, 15, 151, 152}, []int{4, 8, 15, 16, 151, 152}
	b, err := m.Logits([][]int{ctxA, ctxB})
	if err != nil {
		t.Fatal(err)
	}
	if d := relErr(b[1][0], b[0][0]); d < 1e-3 {
		t.Errorf("context is not bidirectional: first-token logits equal (%.3g)", d)
	}
}

// TestChatGLMPositions checks the position and block position ids against the reference's
// get_position_ids example in expected.json, through the graph code.
func TestChatGLMPositions(t *testing.T) {
	var e struct {
		Ex struct {
			IDs   []int `json:"ids"`
			Pos   []int `json:"position_ids"`
			Block []int `json:"block_position_ids"`
		} `json:"positions_example"`
	}
	readJSON(t, filepath.Join(chatglmTinyDir, "expected.json"), &e)
	m := mustLoad(t, chatglmTinyDir, LoadOptions{})
	exec, err := model.NewExec(backend(t), m.Store, func(scope *model.Scope, tokens *Node) (*Node, *Node) {
		ctx, maskPos := chatglmPrefix(m.Config, tokens)
		S := tokens.Shape().Dim(1)
		return chatglmPositions(Iota(tokens.Graph(), shapes.Make(dtypes.Int32, 1, S), 1), ctx, maskPos, 1)
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int32, len(e.Ex.IDs))
	for i, id := range e.Ex.IDs {
		ids[i] = int32(id)
	}
	out, err := exec.Call(tensors.FromFlatDataAndDimensions(ids, 1, len(ids)))
	if err != nil {
		t.Fatal(err)
	}
	pos, block := tensors.MustCopyFlatData[int32](out[0]), tensors.MustCopyFlatData[int32](out[1])
	for i := range ids {
		if int(pos[i]) != e.Ex.Pos[i] || int(block[i]) != e.Ex.Block[i] {
			t.Fatalf("ids %v: positions %v / %v, reference %v / %v", e.Ex.IDs, pos, block, e.Ex.Pos, e.Ex.Block)
		}
	}
}
