package importance

import (
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/pkg/errors"
)

// checkLayerSkipArch rejects architectures whose layers cannot be skipped by zeroing their
// residual outputs. A ChatGLM layer computes x' = LN(x)·alpha + attn (and the same for the MLP): the
// residual carries the *normalized* input scaled by alpha, so no weight gate turns it into the
// identity and LayerSkipLoss would measure nothing.
func checkLayerSkipArch(cfg *config.Config) error {
	if cfg.Arch == config.ArchChatGLM {
		return errors.New("layer-skip importance (ranked layer pruning) is not available for ChatGLM: its DeepNorm residual (LN(x)·alpha + f(LN(x))) cannot be made the identity by zeroing weights; prune the first layers instead (no --rank-layers)")
	}
	return nil
}
