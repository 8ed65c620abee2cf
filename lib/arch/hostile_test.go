package arch

import (
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/internal/fuzzcheck"
)

// TestHostileConfigSizes: a config.json claiming 10¹² layers (or absurd dimensions) is an error
// naming the key, without building per-layer tables of that length.
func TestHostileConfigSizes(t *testing.T) {
	for _, c := range []struct{ json, want string }{
		{`{"model_type":"llama","hidden_size":64,"num_hidden_layers":1000000000000,"num_attention_heads":8,"vocab_size":10,"intermediate_size":4}`, "num_hidden_layers = 1000000000000"},
		{`{"model_type":"chatglm","hidden_size":64,"num_layers":1000000000000,"num_attention_heads":4,"vocab_size":10,"bos_token_id":1,"eos_token_id":2,"mask_token_id":3,"gmask_token_id":4}`, "num_layers = 1000000000000"},
		{`{"model_type":"llama","hidden_size":64,"num_hidden_layers":2,"num_attention_heads":8,"vocab_size":10,"intermediate_size":4,"head_dim":1000000000000}`, "head_dim 1000000000000"},
		{`{"model_type":"llama","hidden_size":64,"num_hidden_layers":1,"num_attention_heads":8,"vocab_size":10,"intermediate_size":100000000000}`, "intermediate size 100000000000"},
	} {
		var err error
		allocated, _ := fuzzcheck.Measure(func() { _, err = ParseConfig([]byte(c.json), "hostile/config.json") })
		if limit := fuzzcheck.Limit(len(c.json), 64); allocated > limit {
			t.Errorf("%s: allocated %d bytes (limit %d)", c.want, allocated, limit)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "hostile/config.json") {
			t.Errorf("error %v: want one naming the file and saying %q", err, c.want)
		}
	}
}
