package models

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/config"
)

// chatglm6BOneLayer is ChatGLM-6B's config.json reduced to one layer (alpha keeps 28 layers).
const chatglm6BOneLayer = `{"model_type":"chatglm","hidden_size":4096,"inner_hidden_size":16384,"num_layers":1,
"residual_alpha_num_layers":28,"num_attention_heads":32,"vocab_size":130528,"layernorm_epsilon":1e-5,
"max_sequence_length":2048,"bos_token_id":130004,"eos_token_id":130005,"mask_token_id":130000,"gmask_token_id":130001}`

// chatglmLayerStore creates layer 0's weights of cfg (float32, N(0, 0.02²), LayerNorm weights 1).
func chatglmLayerStore(b *testing.B, cfg *config.Config) *model.Store {
	rng := rand.New(rand.NewPCG(7, 7))
	store := model.NewStore()
	for _, s := range arch.Of(cfg).Tensors(cfg) {
		if !strings.HasPrefix(s.Name, "transformer.layers.0.") {
			continue
		}
		n := 1
		for _, d := range s.Shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			if strings.HasSuffix(s.Name, "layernorm.weight") {
				v[i] = 1
			} else {
				v[i] = float32(0.02 * rng.NormFloat64())
			}
		}
		if _, err := store.CreateVariable(VarPath(s.Name), tensors.FromFlatDataAndDimensions(v, s.Shape...)); err != nil {
			b.Fatal(err)
		}
	}
	return store
}

// BenchmarkChatGLM6BLayer: one ChatGLM-6B-shaped layer (d 4096, 32 heads × 128, fused qkv, MLP
// 16384, LayerNorms with bias) on 1 × 128 tokens with [gMASK] <sop> at positions 62, 63, random
// float32 weights: forward, and forward+backward (the Taylor importance pass). FLOPs = 2·MACs of
// qkv, dense, MLP and the S×S attention.
//
//	go test ./lib/models -run '^$' -bench ChatGLM6BLayer -benchtime 3x
func BenchmarkChatGLM6BLayer(b *testing.B) {
	cfg, err := arch.ParseConfig([]byte(chatglm6BOneLayer), "chatglm-6b one layer")
	if err != nil {
		b.Fatal(err)
	}
	const B, S = 1, 128
	D, I := float64(cfg.Hidden), float64(cfg.Inter[0])
	fwd := 2 * (float64(B*S)*(4*D*D+2*D*I) + float64(B)*2*S*S*D)
	store := chatglmLayerStore(b, cfg)
	sp := arch.ChatGLMTokens(cfg)
	rng := rand.New(rand.NewPCG(3, 3))
	xs, ids := make([]float32, B*S*cfg.Hidden), make([]int32, S)
	for i := range xs {
		xs[i] = float32(rng.NormFloat64())
	}
	for i := range ids {
		ids[i] = int32(rng.IntN(130000))
	}
	ids[62], ids[63] = int32(sp.GMask), int32(sp.BOS)
	x, tok := tensors.FromFlatDataAndDimensions(xs, B, S, cfg.Hidden), tensors.FromFlatDataAndDimensions(ids, B, S)
	layer := func(scope *model.Scope, x, tokens *Node, hooks *Hooks) *Node {
		g := x.Graph()
		m := &chatglm{cfg: cfg, w: newWeights(scope, g, hooks)}
		ctx, maskPos := chatglmPrefix(cfg, tokens)
		abs := Iota(g, shapes.Make(dtypes.Int32, 1, S), 1)
		pos, block := chatglmPositions(abs, ctx, maskPos, B)
		r1, r2 := chatglmRoPE(pos, block, cfg.HeadDim)
		return m.layer(0, x, r1, r2, chatglmAllowed(abs, ctx, B, S), noCache)
	}
	b.Run("forward", func(b *testing.B) {
		exec := model.MustNewExec(backend(b), store, func(scope *model.Scope, x, tokens *Node) *Node {
			return ReduceAllSum(layer(scope, x, tokens, nil))
		})
		runBench(b, exec, fwd, B*S, x, tok)
	})
	b.Run("forward+backward", func(b *testing.B) {
		exec := model.MustNewExec(backend(b), store, func(scope *model.Scope, x, tokens *Node) []*Node {
			var w weightNodes
			out := layer(scope, x, tokens, w.hooks(store))
			return gradSums(ReduceAllMean(Square(out)), w.nodes)
		})
		runBench(b, exec, 3*fwd, B*S, x, tok)
	})
}
