package arch

import (
	"os"
	"testing"

	"github.com/llmpruner/llmpruner/internal/fuzzcheck"
)

// FuzzParse: config.json of every family (LLaMA, ChatGLM; per-layer lists, rope_scaling, token
// ids as numbers or lists). Properties: no panic; allocation bounded (a config claiming 10¹²
// layers is an error, not a 10¹²-entry table); a config that parses is valid, marshals, and
// parses back to the same sizes; its parameter count and RoPE frequencies can be computed.
func FuzzParse(f *testing.F) {
	fuzzcheck.AddDataSeeds(f, "models/tiny-random-llama/config.json", "tokenizers/chatglm-6b/config.json")
	if b, err := os.ReadFile("../models/testdata/chatglm_tiny/config.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"model_type":"llama","hidden_size":64,"num_hidden_layers":2,"num_attention_heads":8,"num_key_value_heads":4,"vocab_size":10,"intermediate_size":4,` +
		`"num_attention_heads_per_layer":[8,4],"num_key_value_heads_per_layer":[4,2],"intermediate_size_per_layer":[4,6],"bos_token_id":1,"eos_token_id":[2,3],` +
		`"rope_scaling":{"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192,"rope_type":"llama3"}}`))
	f.Add([]byte(`{"model_type":"llama","hidden_size":64,"num_hidden_layers":1000000000000,"num_attention_heads":8,"vocab_size":10,"intermediate_size":4}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzcheck.Bounded(t, len(data), 64, func() {
			c, err := ParseConfig(data, "config.json")
			if err != nil {
				return
			}
			if err := Validate(c); err != nil {
				t.Fatalf("Parse accepted a config that Validate rejects: %v", err)
			}
			_, _ = NumParams(c), c.String()
			_ = c.InvFrequencies()
			out, err := MarshalConfig(c)
			if err != nil {
				t.Fatalf("Marshal of a parsed config: %v", err)
			}
			back, err := ParseConfig(out, "marshalled config.json")
			if err != nil {
				t.Fatalf("re-parsing the marshalled config: %v\n%s", err, out)
			}
			if NumParams(back) != NumParams(c) || back.Hidden != c.Hidden || back.NumLayers() != c.NumLayers() {
				t.Fatalf("round trip changed the config: %s → %s", c, back)
			}
		})
	})
}
