package lora

import (
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/internal/testdata"
	"github.com/llmpruner/llmpruner/lib/models"
)

// benchStep measures one training micro-step (forward, labels loss, gradients) of stories260K on
// a [16, 128] batch: with the gradients of the LoRA adapter only (base frozen, r 8 on all seven
// projections) or of every base weight (full fine-tuning). Reports tokens/s.
func benchStep(b *testing.B, lora bool) {
	m, err := models.Load(groupstest.Backend(b), testdata.Path(b, "models/stories260K/stories260K.bin"), models.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	benchModelStep(b, m, lora, 16, 128)
}

// benchModelStep measures a training micro-step of m on a [rows, seqLen] batch.
func benchModelStep(b *testing.B, m *models.Model, lora bool, rows, seqLen int) {
	benchModelStepFused(b, m, lora, false, rows, seqLen)
}

// benchModelStepFused is benchModelStep; with fusedBase the LoRA graph keeps the fused dense op
// for the frozen projections (whose backward computes the unused weight gradients).
func benchModelStepFused(b *testing.B, m *models.Model, lora, fusedBase bool, rows, seqLen int) {
	var hk *models.Hooks
	if lora {
		a, err := Attach(m, Config{R: 8, Alpha: 16, Targets: AllTargets}, 1)
		if err != nil {
			b.Fatal(err)
		}
		h := newHooks(m.Store, a.Config, a.Modules)
		h.frozenBase = !fusedBase
		hk = h.modelHooks(m)
	}
	var vars []*model.Variable
	for v := range m.Store.IterVariables() {
		if v.Trainable {
			vars = append(vars, v)
		}
	}
	exec := model.MustNewExec(m.Backend, m.Store, func(scope *model.Scope, tokens, mask, labels *Node) []*Node {
		g := tokens.Graph()
		loss := LabelsLoss(models.Logits(scope, m.Config, tokens, mask, hk), labels)
		nodes := make([]*Node, len(vars))
		for i, v := range vars {
			nodes[i] = models.VariableNode(m.Store, v, g)
		}
		return append([]*Node{loss}, Gradient(loss, nodes...)...)
	})
	seqs := groupstest.Tokens(rows, seqLen, m.Config.Vocab, 3)
	exs := make([]Example, len(seqs))
	for i, r := range seqs {
		exs[i] = Example{IDs: r}
	}
	batch := makeBatch(exs, rows)
	run := func() {
		for _, t := range exec.MustExec(batch.tokens, batch.mask, batch.labels) {
			_ = t.FinalizeAll()
		}
	}
	run() // compile
	b.ResetTimer()
	for range b.N {
		run()
	}
	b.ReportMetric(float64(rows*seqLen*b.N)/b.Elapsed().Seconds(), "tokens/s")
	b.ReportMetric(float64(len(vars)), "trainable-tensors")
}

// BenchmarkStepLoRA: adapter gradients only.
func BenchmarkStepLoRA(b *testing.B) { benchStep(b, true) }

// BenchmarkStepFull: gradients of every weight (full fine-tuning), same model and batch.
func BenchmarkStepFull(b *testing.B) { benchStep(b, false) }

// mediumModel is a random LLaMA-shaped model where weight gradients matter: 2 layers, hidden 512,
// 8 heads of 64, MLP 1408, vocab 1000 (≈ 6.7M parameters).
func mediumModel(b *testing.B) *models.Model {
	cfg := groupstest.Config(b, map[string]any{"hidden_size": 512, "intermediate_size": 1408, "num_hidden_layers": 2,
		"num_attention_heads": 8, "num_key_value_heads": 8, "head_dim": 64, "vocab_size": 1000, "max_position_embeddings": 256})
	return groupstest.RandomModel(b, cfg, 1, 0.02)
}

// BenchmarkStepLoRAMedium: adapter gradients only, medium model, [4, 128] batch.
func BenchmarkStepLoRAMedium(b *testing.B) { benchModelStep(b, mediumModel(b), true, 4, 128) }

// BenchmarkStepFullMedium: every weight's gradient, medium model, [4, 128] batch.
func BenchmarkStepFullMedium(b *testing.B) { benchModelStep(b, mediumModel(b), false, 4, 128) }

// BenchmarkStepLoRAFusedMedium: as BenchmarkStepLoRAMedium but with the fused dense op on the
// frozen projections (what Finetune avoids).
func BenchmarkStepLoRAFusedMedium(b *testing.B) {
	benchModelStepFused(b, mediumModel(b), true, true, 4, 128)
}
