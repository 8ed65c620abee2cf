package prune

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/importance"
	"github.com/llmpruner/llmpruner/lib/models"
)

// TestRidgeFitNormalEquations checks RidgeFit against the closed-form optimality conditions of
// the ridge problem, computed independently in float64: Aᵀ(A·Wᵀ + 1·bᵀ − T) + λ·[Wᵀ; 0] = 0.
func TestRidgeFitNormalEquations(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	C, D, damp := 7, 5, 0.05
	var a, tg [][]float32
	var rows [][]float64
	var targets [][]float64
	for range 3 { // batches
		n := 20
		ab, tb := make([]float32, n*C), make([]float32, n*D)
		for i := range n {
			row := make([]float64, C)
			for j := range C {
				row[j] = r.NormFloat64() + 0.5
				ab[i*C+j] = float32(row[j])
			}
			tr := make([]float64, D)
			for d := range D {
				tr[d] = r.NormFloat64()
				tb[i*D+d] = float32(tr[d])
			}
			rows, targets = append(rows, row), append(targets, tr)
		}
		a, tg = append(a, ab), append(tg, tb)
	}
	for _, bias := range []bool{false, true} {
		W, b, err := RidgeFit(a, tg, C, D, bias, damp)
		if err != nil {
			t.Fatal(err)
		}
		diag := 0.0
		for _, row := range rows {
			for j := range C {
				row32 := float64(float32(row[j]))
				diag += row32 * row32
			}
		}
		lambda := damp * diag / float64(C)
		worst := 0.0
		for d := range D {
			gradB := 0.0
			for j := range C {
				g := lambda * W[d*C+j]
				for i, row := range rows {
					pred := 0.0
					for k := range C {
						pred += W[d*C+k] * float64(float32(row[k]))
					}
					if bias {
						pred += b[d]
					}
					res := pred - float64(float32(targets[i][d]))
					g += float64(float32(row[j])) * res
					if j == 0 {
						gradB += res
					}
				}
				worst = math.Max(worst, math.Abs(g))
			}
			if bias {
				worst = math.Max(worst, math.Abs(gradB))
			}
		}
		t.Logf("bias %v: max |gradient of the ridge objective| %.2e", bias, worst)
		if worst > 1e-9 {
			t.Errorf("bias %v: ridge solution violates the normal equations by %.2e", bias, worst)
		}
	}
}

// TestReconstructRecoversLosslessRemoval zeroes, in a model, the o_proj columns and down_proj
// columns of the units a plan removes, so that removing them changes nothing: the re-fit must then
// give back the kept weights (the targets are exactly representable; the damping is tiny), which
// checks the targets, the layer order and the index bookkeeping end to end. Models: a random
// LLaMA (MHA) and the tiny Qwen2 (GQA, q/k/v biases, o_proj without one: re-fitted without a
// bias, the family kept), Mistral (sliding window 6 < the 10 calibration tokens) and Llama-3.2
// (tied, llama3 rope scaling) checkpoints.
func TestReconstructRecoversLosslessRemoval(t *testing.T) {
	tiny := groupstest.Tiny(t)
	t.Run("llama", func(t *testing.T) {
		checkLosslessReconstruction(t, func() *models.Model { return groupstest.RandomModel(t, tiny, 31, 0.3) })
	})
	for _, name := range []string{"qwen2_tiny", "mistral_tiny", "llama32_tiny"} {
		t.Run(name, func(t *testing.T) {
			checkLosslessReconstruction(t, func() *models.Model {
				m, err := models.Load(groupstest.Backend(t), filepath.Join("..", "models", "testdata", name), models.LoadOptions{})
				if err != nil {
					t.Fatal(err)
				}
				return m
			})
		})
	}
}

func checkLosslessReconstruction(t *testing.T, mk func() *models.Model) {
	o := Options{Strategy: Block, Ratio: 0.5, Importance: importance.Options{Criterion: importance.L2}}
	m := mk()
	cfg := m.Config.Clone()
	s, err := Score(m, o)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Select(m.Config, s, o)
	if err != nil {
		t.Fatal(err)
	}
	zero := func(m *models.Model) {
		for _, lp := range plan.Layers {
			l := lp.Layer
			nRep := cfg.Heads[l] / cfg.KVHeads[l]
			var cols []int
			for _, kv := range complement(cfg.KVHeads[l], lp.KVHeadsKept) {
				for h := kv * nRep; h < (kv+1)*nRep; h++ {
					for d := range cfg.HeadDim {
						cols = append(cols, h*cfg.HeadDim+d)
					}
				}
			}
			zeroColumns(t, m, "model.layers."+strconv.Itoa(l)+".self_attn.o_proj.weight", cols)
			zeroColumns(t, m, "model.layers."+strconv.Itoa(l)+".mlp.down_proj.weight", complement(cfg.Inter[l], lp.MLPChannelsKept))
		}
	}
	want, got := mk(), mk()
	zero(want)
	zero(got)
	if err := Apply(want, plan); err != nil {
		t.Fatal(err)
	}
	calib := groupstest.Tokens(12, 10, cfg.Vocab, 5)
	if err := ApplyReconstructed(got, plan, ReconstructOptions{Calibration: calib, Damp: 1e-10, Batch: 5}); err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for _, lp := range plan.Layers {
		for _, n := range []string{"self_attn.o_proj.weight", "mlp.down_proj.weight"} {
			name := "model.layers." + strconv.Itoa(lp.Layer) + "." + n
			a := tensors.MustCopyFlatData[float32](want.Store.GetVariable(models.VarPath(name)).MustValue())
			b := tensors.MustCopyFlatData[float32](got.Store.GetVariable(models.VarPath(name)).MustValue())
			for i := range a {
				worst = math.Max(worst, math.Abs(float64(a[i]-b[i])))
			}
		}
	}
	t.Logf("%s: re-fitted weights vs the kept ones: max |Δ| %.2e", cfg, worst)
	if worst > 2e-3 {
		t.Errorf("reconstruction of a lossless removal changed the weights by up to %.2e", worst)
	}
	if got.Config.String() != want.Config.String() || got.Config.Arch != cfg.Arch || got.Config.OBias() != cfg.OBias() {
		t.Errorf("reconstructed config %v (%s, o_proj bias %v), plan's %v (%s)", got.Config, got.Config.Arch, got.Config.OBias(), want.Config, cfg.Arch)
	}
}

func zeroColumns(t *testing.T, m *models.Model, name string, cols []int) {
	t.Helper()
	v := m.Store.GetVariable(models.VarPath(name))
	dims := v.Shape().Dimensions
	w := tensors.MustCopyFlatData[float32](v.MustValue())
	for r := range dims[0] {
		for _, c := range cols {
			w[r*dims[1]+c] = 0
		}
	}
	v.MustSetValue(tensors.FromFlatDataAndDimensions(w, dims...))
}

// TestReconstructRefusesChatGLM: ChatGLM's layers cannot run one at a time (their positions come
// from the whole sequence), so Validate and ApplyReconstructed refuse it in one line.
func TestReconstructRefusesChatGLM(t *testing.T) {
	m, err := models.Load(groupstest.Backend(t), filepath.Join("..", "models", "testdata", "chatglm_tiny"), models.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Strategy: Block, Ratio: 0.25, Reconstruct: true, Importance: importance.Options{Criterion: importance.L2}}
	if err := o.Validate(m.Config); err == nil || !strings.Contains(err.Error(), "one layer at a time") || strings.Contains(err.Error(), "\n") {
		t.Errorf("Validate: %v", err)
	}
	o.Reconstruct = false
	s, err := Score(m, o)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Select(m.Config, s, o)
	if err != nil {
		t.Fatal(err)
	}
	err = ApplyReconstructed(m, plan, ReconstructOptions{Calibration: groupstest.Tokens(2, 8, 150, 1)})
	if err == nil || !strings.Contains(err.Error(), "one layer at a time") {
		t.Errorf("ApplyReconstructed: %v", err)
	}
	t.Log(err)
}
