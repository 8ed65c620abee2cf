package testdata

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// ImportanceGolden is golden/importance_tiny_llama_mha.json: group scores, kept heads and channels,
// parameter counts and post-prune evaluation produced by the original LLM-Pruner code
// (MetaPruner + hf_llama_pruner) on golden/tiny-llama-mha, for each case (pruner, Taylor mode,
// ratio, layer ranges).
type ImportanceGolden struct {
	Calibration struct {
		InputIDs [][]int `json:"input_ids"`
	} `json:"calibration"`
	EvalIDs []int `json:"eval_ids"`
	Cases   []struct {
		Name         string  `json:"name"`
		PrunerType   string  `json:"pruner_type"`
		Taylor       *string `json:"taylor"`
		Grouping     string  `json:"grouping_strategy"`
		Ratio        float64 `json:"pruning_ratio"`
		ParamsBefore int64   `json:"params_before"`
		ParamsAfter  int64   `json:"params_after"`
		AttnLayers   []int   `json:"block_attention_layers"`
		MLPLayers    []int   `json:"block_mlp_layers"`
		Layers       map[string]struct {
			Attention struct {
				HeadImportance []float64 `json:"head_importance"`
				KeptQHeads     []int     `json:"kept_q_heads"`
				KeptKVHeads    []int     `json:"kept_kv_heads"`
			} `json:"attention"`
			MLP struct {
				ChannelImportance []float64 `json:"channel_importance"`
				KeptChannels      []int     `json:"kept_channels"`
			} `json:"mlp"`
		} `json:"layers"`
		PostPrune struct {
			Loss        float64   `json:"loss"`
			LogitsFirst []float64 `json:"logits_last_first1000"`
		} `json:"post_prune_eval"`
	} `json:"cases"`
}

// LoadImportanceGolden reads golden/importance_tiny_llama_mha.json and returns it with the
// directory of the model it was computed on (golden/tiny-llama-mha).
func LoadImportanceGolden(t testing.TB) (g *ImportanceGolden, modelDir string) {
	t.Helper()
	path := GoldenPath(t, "importance_tiny_llama_mha.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	g = new(ImportanceGolden)
	if err := json.Unmarshal(data, g); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return g, filepath.Join(filepath.Dir(path), "tiny-llama-mha")
}
