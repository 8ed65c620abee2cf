package config

import "fmt"

// Hugging Face tensor names of the architectures llmpruner knows. Models use them as GoMLX
// variable paths and groups as the members of coupled structures, so load, save and prune share
// one spelling and need no mapping table.

// LlamaLayerTensor names a tensor of LLaMA decoder layer l, e.g. LlamaLayerTensor(3, "self_attn.q_proj.weight").
func LlamaLayerTensor(l int, rest string) string { return fmt.Sprintf("model.layers.%d.%s", l, rest) }

// LLaMA (LlamaForCausalLM) tensor names outside the layers.
const (
	LlamaEmbed     = "model.embed_tokens.weight"
	LlamaFinalNorm = "model.norm.weight"
	LlamaLMHead    = "lm_head.weight"
)

// ChatGLMLayerTensor names a tensor of ChatGLM layer l, e.g. ChatGLMLayerTensor(3, "attention.dense.weight").
func ChatGLMLayerTensor(l int, rest string) string {
	return fmt.Sprintf("transformer.layers.%d.%s", l, rest)
}

// ChatGLM-6B (THUDM/chatglm-6b) tensor names outside the layers. ChatGLMFinalNorm is a module
// prefix: append ".weight" or ".bias".
const (
	ChatGLMEmbed     = "transformer.word_embeddings.weight"
	ChatGLMFinalNorm = "transformer.final_layernorm"
	ChatGLMLMHead    = "lm_head.weight"
)
