package prune

import "github.com/llmpruner/llmpruner/lib/config"

// chatglmMACs is MACs for ChatGLM: query_key_value (3·D·H·HD), dense (H·HD·D), the two MLP
// projections (2·D·I) and lm_head per token, plus 2·S²·H·HD per layer for attention scores and
// values. LayerNorms, biases, rotary and softmax are not counted (as for LLaMA).
func chatglmMACs(cfg *config.Config, S int) int64 {
	s := int64(S)
	D, V, HD := int64(cfg.Hidden), int64(cfg.Vocab), int64(cfg.HeadDim)
	total := s * V * D
	for l := range cfg.NumLayers() {
		q, f := int64(cfg.Heads[l])*HD, int64(cfg.Inter[l])
		total += s * (3*D*q + q*D + 2*D*f)
		total += 2 * s * s * q
	}
	return total
}
