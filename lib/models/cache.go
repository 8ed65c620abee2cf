package models

// The key/value cache of generation, in graph ops. Each layer has its own buffers
// [B, KV_l, maxLen, HD] (so pruned, non-uniform layers are fine). New entries are written with
// Where(position-mask, gathered new values, old) — the Go backend has no DynamicUpdateSlice.

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"
	"github.com/llmpruner/llmpruner/lib/config"
)

// kvCache is the cache of one decoding graph: the buffers passed in, and the updated buffers.
type kvCache struct {
	pos0    *Node   // scalar int32: position of the first new token
	keys    []*Node // [layer] [B, KV_l, maxLen, HD]
	values  []*Node // [layer] [B, KV_l, maxLen, HD]
	newKeys []*Node // [layer] updated buffers (outputs)
	newVals []*Node
}

// write stores the new entries x [B, S, KV, HD] at positions pos0 … pos0+S-1 of buf
// [B, KV, maxLen, HD] and returns the updated buffer.
func (c *kvCache) write(buf, x *Node) *Node {
	g := buf.Graph()
	S, maxLen := x.Shape().Dim(1), buf.Shape().Dim(2)
	slot := Iota(g, shapes.Make(dtypes.Int32, maxLen), 0)
	idx := ClipScalar(Sub(slot, c.pos0), 0, float64(S-1))                // [maxLen]: index into the new entries
	rows := Gather(TransposeAllAxes(x, 1, 0, 2, 3), InsertAxes(idx, -1)) // [maxLen, B, KV, HD]
	rows = TransposeAllAxes(rows, 1, 2, 0, 3)                            // [B, KV, maxLen, HD]
	// The condition is computed at the buffer's full shape: Where with a broadcast condition takes
	// a slow element-by-element path on the Go backend.
	offset := Sub(Iota(g, shapes.Make(dtypes.Int32, buf.Shape().Dimensions...), 2), c.pos0)
	inRange := LogicalAnd(GreaterOrEqual(offset, ScalarZero(g, dtypes.Int32)), LessThan(offset, Scalar(g, dtypes.Int32, S)))
	return Where(inRange, rows, buf)
}

// source is the kvSource of a decoding graph: write layer l's new keys/values, attend to the
// whole buffer.
func (c *kvCache) source(l int, k, v *Node) (*Node, *Node) {
	nk, nv := c.write(c.keys[l], k), c.write(c.values[l], v)
	c.newKeys[l], c.newVals[l] = nk, nv
	return nk, nv
}

// allowed is the attention mask of S new queries at positions pos0+i over the buffer slots j:
// j ≤ pos0+i, shaped [1, S, maxLen].
func (c *kvCache) allowed(S, maxLen int) *Node {
	g := c.pos0.Graph()
	q := Add(Iota(g, shapes.Make(dtypes.Int32, 1, S, maxLen), 1), c.pos0)
	j := Iota(g, shapes.Make(dtypes.Int32, 1, S, maxLen), 2)
	return LessOrEqual(j, q)
}

// positions of the S new tokens: [S] int32.
func (c *kvCache) positions(S int) *Node {
	return Add(Iota(c.pos0.Graph(), shapes.Make(dtypes.Int32, S), 0), c.pos0)
}

// CacheShapes returns the shapes of the per-layer key and value buffers of a batch-1 generation
// cache of maxLen positions (keys and values alternate: k0, v0, k1, v1, …; ChatGLM appends one
// int32 [2] buffer holding the prompt's context length and mask position).
func CacheShapes(cfg *config.Config, maxLen int) []shapes.Shape {
	var out []shapes.Shape
	for l := range cfg.NumLayers() {
		s := shapes.Make(dtypes.Float32, 1, cfg.KVHeads[l], maxLen, cfg.HeadDim)
		out = append(out, s, s)
	}
	return append(out, mustLayout(cfg).cacheExtra...)
}

// DecodeStep is the graph of one generation step: it runs tokens [1, S] (new tokens at positions
// pos0 … pos0+S-1, scalar int32) against the cache buffers (k0, v0, k1, v1, …; see CacheShapes),
// and returns the logits [1, V] of new token number last (scalar int32, 0 ≤ last < S) and the
// updated buffers. A prompt is fed with pos0 = 0 and S = its (padded) length; each generated
// token with S = 1.
func DecodeStep(scope *model.Scope, cfg *config.Config, tokens, pos0, last *Node, buffers []*Node, hooks *Hooks) (logits *Node, updated []*Node) {
	checkTokens(tokens, nil)
	return mustLayout(cfg).decode(scope, cfg, tokens, pos0, last, buffers, hooks)
}

// kvDecode is DecodeStep for layouts with one key and one value buffer per layer: run runs the
// layers against the cache c and returns the logits.
func kvDecode(cfg *config.Config, pos0 *Node, buffers []*Node, run func(c *kvCache) *Node) (logits *Node, updated []*Node) {
	L := cfg.NumLayers()
	if len(buffers) != 2*L {
		exceptions.Panicf("DecodeStep: %d cache buffers for %d layers, want %d", len(buffers), L, 2*L)
	}
	c := &kvCache{pos0: ConvertDType(pos0, dtypes.Int32), newKeys: make([]*Node, L), newVals: make([]*Node, L)}
	for l := range L {
		c.keys = append(c.keys, buffers[2*l])
		c.values = append(c.values, buffers[2*l+1])
	}
	logits = run(c)
	for l := range L {
		updated = append(updated, c.newKeys[l], c.newVals[l])
	}
	return logits, updated
}
