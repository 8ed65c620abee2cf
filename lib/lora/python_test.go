package lora

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/llmpruner/llmpruner/lib/models"
)

// peftCheckScript reads an adapter directory with Python's standard library only (an independent
// safetensors reader: 8-byte header length, JSON header, little-endian float32 data) and prints
// the tensor names, shapes, dtypes and the first value of each tensor, plus adapter_config.json.
const peftCheckScript = `
import json, struct, sys, array
d = sys.argv[1]
with open(d + "/adapter_model.safetensors", "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    data = f.read()
out = {"tensors": {}, "config": json.load(open(d + "/adapter_config.json"))}
for name, e in header.items():
    if name == "__metadata__":
        continue
    a, b = e["data_offsets"]
    vals = array.array("f")
    vals.frombytes(data[a:b])
    out["tensors"][name] = {"dtype": e["dtype"], "shape": e["shape"], "first": vals[0], "count": len(vals)}
print(json.dumps(out))
`

// TestPEFTFilesReadByPython checks names, shapes and values of a saved adapter with a reader
// written in Python's standard library (skipped without python3).
func TestPEFTFilesReadByPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found")
	}
	m := tinyModel(t, 61)
	if _, err := Attach(m, Config{R: 2, Alpha: 4, Targets: []string{"k", "down"}}, 3); err != nil {
		t.Fatal(err)
	}
	randomizeB(t, m, 4, 0.1)
	dir := t.TempDir()
	if err := SaveAdapter(m, dir); err != nil {
		t.Fatal(err)
	}
	raw, err := exec.Command(py, "-c", peftCheckScript, filepath.Clean(dir)).Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	var got struct {
		Tensors map[string]struct {
			DType string  `json:"dtype"`
			Shape []int   `json:"shape"`
			First float32 `json:"first"`
			Count int     `json:"count"`
		} `json:"tensors"`
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Tensors) != 3*2*2 {
		t.Errorf("%d tensors, want 12", len(got.Tensors))
	}
	// Layer 1 k_proj: [KV·HD, D] = [8, 16]; layer 2 down_proj: [16, 8].
	for name, shape := range map[string][]int{
		"base_model.model.model.layers.1.self_attn.k_proj.lora_A.weight": {2, 16},
		"base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight": {8, 2},
		"base_model.model.model.layers.2.mlp.down_proj.lora_A.weight":    {2, 8},
		"base_model.model.model.layers.2.mlp.down_proj.lora_B.weight":    {16, 2},
	} {
		e, ok := got.Tensors[name]
		if !ok || e.DType != "F32" || len(e.Shape) != 2 || e.Shape[0] != shape[0] || e.Shape[1] != shape[1] || e.Count != shape[0]*shape[1] {
			t.Errorf("%s: %+v, want F32 %v", name, e, shape)
			continue
		}
		v := m.Store.GetVariable(models.VarPath(name[len(peftPrefix):]))
		want, _ := variableFloats(v, e.Count)
		if e.First != want[0] {
			t.Errorf("%s: Python reads first value %g, the store has %g", name, e.First, want[0])
		}
	}
	c := got.Config
	if c["peft_type"] != "LORA" || c["task_type"] != "CAUSAL_LM" || c["r"] != 2.0 || c["lora_alpha"] != 4.0 || c["bias"] != "none" {
		t.Errorf("adapter_config.json as read by Python: %v", c)
	}
	if tm, _ := c["target_modules"].([]any); len(tm) != 2 || tm[0] != "k_proj" || tm[1] != "down_proj" {
		t.Errorf("target_modules %v", c["target_modules"])
	}
}
