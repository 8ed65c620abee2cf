// Package models holds the GoMLX forward passes of the supported architectures (LLaMA family now,
// ChatGLM-6B later: one file each), loading a checkpoint into a GoMLX store, next-token loss,
// scoring and KV-cache generation.
//
// Weights live in a model.Store under their Hugging Face names with "." replaced by "/":
// "model.layers.0.self_attn.q_proj.weight" is the variable "/model/layers/0/self_attn/q_proj/weight".
// Loading, saving and pruning therefore need no mapping tables. (This departs on purpose from
// GoMLX's layers.Dense naming, "dense/weights".)
//
// Weights may be stored in bf16/f16 to save memory; the forward pass converts them to float32
// in-graph (float32 matmuls are much faster on the Go backend).
//
// Host side (errors, never panics):
//
//	m, err := models.Load(backend, "path/to/hf-dir" /* or llama2.c .bin, or "owner/name" */, models.LoadOptions{})
//	logits, err := m.Logits([][]int{ids})              // [seq][pos][V]
//	logp, greedy, err := m.TokenLogProbs(seqs)          // log p(tok[t] | tok[<t]), t ≥ 1
//	nll, err := m.Loss(seqs)                            // mean next-token NLL
//	out, err := m.Generate(prompt, models.GenerateOptions{MaxNewTokens: 64, Temperature: 0.8, TopP: 0.9, Seed: 1})
//	err = m.Save(dir, "bf16")                           // Hugging Face directory
//
// Graph side (for importance estimation, training, custom Execs; panics like graph code):
// Logits(scope, cfg, tokens, mask, hooks), LMLoss(logits, tokens, mask), TokenScores and
// DecodeStep. Every weight is read through Hooks.Weight and every projection applied through
// Hooks.Linear.
//
// Files: llama.go (the LLaMA architecture), chatglm*.go (ChatGLM-6B), layers.go (shared blocks:
// RMSNorm, RoPE, attention), forward.go (architecture dispatch, loss), cache.go (generation
// cache), store.go/load.go/hub.go/tokenizer.go (loading), score.go/generate.go/save.go (host
// API), exec.go (compiled-graph cache).
package models

import (
	"github.com/gomlx/compute/dtypes"
	"strings"
	"sync"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/tokenizer"
)

// VarPath converts a Hugging Face tensor name to its store path.
func VarPath(hfName string) string { return "/" + strings.ReplaceAll(hfName, ".", "/") }

// HFName converts a store path back to the Hugging Face tensor name.
func HFName(path string) string { return strings.ReplaceAll(strings.TrimPrefix(path, "/"), "/", ".") }

// Model is a loaded language model.
type Model struct {
	Config    *config.Config
	Store     *model.Store
	Backend   compute.Backend
	Tokenizer tokenizer.Tokenizer // nil when none was found
	// TokenizerErr says why Tokenizer is nil (no tokenizer file, or one that failed to load).
	TokenizerErr error
	// TokenizerFiles are the files the tokenizer came from (copied when the model is saved).
	TokenizerFiles []string
	// Source is the path (or hub id) the model was loaded from.
	Source string
	// Hooks, when set, are used by the host-side methods (Logits, TokenLogProbs, Loss, Generate),
	// e.g. to evaluate with LoRA adapters. Call ResetExecs after changing them.
	Hooks *Hooks

	mu    sync.Mutex
	execs map[string]*model.Exec // compiled graphs by purpose; see exec.go
}

// Hooks let callers intercept the forward pass without copying it (importance recording, LoRA).
// Nil fields take the defaults.
type Hooks struct {
	// Weight returns the float32 node used for the tensor named hfName (default: the store
	// variable, converted to float32). Importance estimation uses it to record the nodes it
	// differentiates against.
	Weight func(g *Graph, hfName string) *Node
	// Linear applies the projection module (e.g. "model.layers.0.self_attn.q_proj") to x, given
	// its weight [out, in] and optional bias [out] (default: x·Wᵀ + b). LoRA wraps it.
	Linear func(x *Node, module string, weight, bias *Node) *Node
	// MatMulDType, when dtypes.BFloat16 or dtypes.Float16, runs every projection (Linear, LoRA
	// included) on inputs and weights converted to that dtype and converts the product back to
	// float32 — mixed precision as PyTorch's autocast: norms, attention, softmax, the residual
	// stream and the loss stay float32. For GPUs (XLA), where half-precision matrix products are
	// several times faster. On the pure-Go backend the operands are rounded to the dtype and
	// multiplied in float32 (same numbers; its own half-precision kernels are wrong on CPUs
	// without AVX-512, see autocast). Zero (or Float32) computes in float32 throughout.
	MatMulDType dtypes.DType
}
