package prune

import (
	"path/filepath"
	"testing"

	"github.com/llmpruner/llmpruner/internal/fuzzcheck"
)

// FuzzLoadPlan: pruning plan JSON files (prune --plan). Seeds: testdata/fuzz/FuzzLoadPlan holds
// a block and a channel plan of stories260K (scores stripped) and bit-flipped copies. Properties:
// no panic; bounded time and allocation (a base shape claiming 10¹² heads per kv head is an
// error, not a 10¹²-entry table); a plan that loads saves and loads back.
func FuzzLoadPlan(f *testing.F) {
	f.Add([]byte(`{"shape_before":{"hidden_size":8,"head_dim":2,"heads_per_layer":[4],"kv_heads_per_layer":[2],"intermediate_per_layer":[4]},` +
		`"layers_kept":[0],"hidden_channels_kept":[0,1,2,3,4,5,6,7],"layers":[{"layer":0,"kv_heads_kept":[1],"heads_kept":[2,3],"mlp_channels_kept":[0,3]}]}`))
	f.Add([]byte(`{"shape_before":{"hidden_size":8,"head_dim":2,"heads_per_layer":[1000000000000],"kv_heads_per_layer":[1],"intermediate_per_layer":[4]},` +
		`"layers_kept":[0],"hidden_channels_kept":[0],"layers":[{"layer":0,"kv_heads_kept":[0],"heads_kept":[0],"mlp_channels_kept":[0]}]}`))
	scratch := fuzzcheck.NewScratch(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		p := scratch.Write(t, "plan.json", data)
		fuzzcheck.Bounded(t, len(data), 32, func() {
			plan, err := LoadPlan(p)
			if err != nil {
				return
			}
			again := filepath.Join(scratch.Dir, "again.json")
			if err := plan.Save(again); err != nil {
				t.Fatalf("saving a loaded plan: %v", err)
			}
			if _, err := LoadPlan(again); err != nil {
				t.Fatalf("a saved plan does not load back: %v", err)
			}
		})
	})
}
