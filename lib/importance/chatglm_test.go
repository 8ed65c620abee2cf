package importance

import "testing"

// TestChatGLMTaylorMatchesReference: first-order Taylor scores (param_first, sum) of every head
// and MLP channel of the tiny ChatGLM equal those of scripts/chatglm_ref.py (PyTorch autograd
// through an independent ChatGLM implementation), within 1e-4 relative; so does the loss.
func TestChatGLMTaylorMatchesReference(t *testing.T) {
	checkTaylorReference(t, "chatglm_tiny")
}
