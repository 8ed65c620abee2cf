package lora

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/llmpruner/llmpruner/internal/fuzzcheck"
)

// FuzzLoadAdapter: a PEFT adapter directory — adapter_config.json (first input) and
// adapter_model.safetensors (second input) — loaded onto groupstest's tiny non-uniform model.
// Seed: an adapter SaveAdapter wrote for that model. Properties: no panic; bounded time and
// allocation; a failed load leaves no adapter behind; a successful one attaches modules that
// Detach removes again.
func FuzzLoadAdapter(f *testing.F) {
	src := tinyModel(f, 51)
	if _, err := Attach(src, DefaultConfig(), 1); err != nil {
		f.Fatal(err)
	}
	saved := f.TempDir()
	if err := SaveAdapter(src, saved); err != nil {
		f.Fatal(err)
	}
	cfg, err1 := os.ReadFile(filepath.Join(saved, ConfigFile))
	weights, err2 := os.ReadFile(filepath.Join(saved, WeightsFile))
	if err1 != nil || err2 != nil {
		f.Fatal(err1, err2)
	}
	f.Add(cfg, weights)
	f.Add([]byte(`{"peft_type": "LORA", "r": 1000000000, "lora_alpha": 16, "target_modules": ["q_proj"]}`), weights)
	f.Add([]byte(`{"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": "q_proj|v_proj"}`), weights)
	m := tinyModel(f, 52)
	scratch := fuzzcheck.NewScratch(f)
	f.Fuzz(func(t *testing.T, cfg, weights []byte) {
		scratch.Write(t, ConfigFile, cfg)
		scratch.Write(t, WeightsFile, weights)
		fuzzcheck.Bounded(t, len(cfg)+len(weights), 32, func() {
			a, err := LoadAdapter(m, scratch.Dir)
			got, _ := AdapterOf(m)
			if err != nil {
				if got != nil {
					t.Fatalf("failed load (%v) left an adapter attached", err)
				}
				return
			}
			if got == nil || len(a.Modules) == 0 {
				t.Fatal("successful load attached nothing")
			}
			Detach(m)
			if again, _ := AdapterOf(m); again != nil {
				t.Fatal("Detach left the adapter")
			}
		})
	})
}
