package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/importance"
)

// TestPruneStreamEqualsLoaded: prune --stream (and --max-memory between the streamed and the
// loaded estimate) writes the same model, byte for byte, and the same plan as the loaded prune, on
// stories260K (GQA, tied embeddings) with Taylor importance; a limit that one layer cannot meet is
// refused in one line and writes nothing; a large limit loads the model.
func TestPruneStreamEqualsLoaded(t *testing.T) {
	model := stories260K(t)
	calib := dataPath(t, "text/tinystories/tinystories_val_head.txt")
	dir := t.TempDir()
	args := func(out string, extra ...string) []string {
		return append([]string{"prune", "--model", model, "--out", filepath.Join(dir, out), "--save-plan", filepath.Join(dir, out+".json"),
			"--strategy", "block", "--ratio", "0.25", "--attn-layers", "1:4", "--mlp-layers", "1:4",
			"--criterion", "taylor", "--calib", calib, "--num-examples", "4"}, extra...)
	}
	mustSucceed(t, args("loaded")...)
	res := mustSucceed(t, args("streamed", "--stream")...)
	if !strings.Contains(res.stderr, "streaming the model layer by layer") {
		t.Errorf("--stream did not say it streams:\n%s", res.stderr)
	}
	sameFile(t, filepath.Join(dir, "loaded", "model.safetensors"), filepath.Join(dir, "streamed", "model.safetensors"))
	samePlanSelection(t, filepath.Join(dir, "loaded.json"), filepath.Join(dir, "streamed.json"))

	cfg, r, err := checkpoint.LoadLlama2C(model)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	job := importance.MemoryJob{Criterion: importance.Taylor, Taylor: importance.ParamFirst, Samples: 4, SeqLen: 64, Stored: dtypes.Float32}
	stream, loaded := importance.StreamBytes(cfg, job), importance.InMemoryBytes(cfg, job)
	if stream >= loaded {
		t.Fatalf("estimates: streamed %d ≥ loaded %d bytes", stream, loaded)
	}
	res = mustSucceed(t, args("auto", "--max-memory", strconv.FormatInt((stream+loaded)/2, 10))...)
	if !strings.Contains(res.stderr, "streaming the model layer by layer") {
		t.Errorf("--max-memory between the estimates did not stream:\n%s", res.stderr)
	}
	sameFile(t, filepath.Join(dir, "loaded", "model.safetensors"), filepath.Join(dir, "auto", "model.safetensors"))
	res = mustSucceed(t, args("big", "--max-memory", "100GB")...)
	if !strings.Contains(res.stderr, "loading the model") {
		t.Errorf("--max-memory 100GB did not load the model:\n%s", res.stderr)
	}

	expectFailure(t, runCLI(t, args("tiny", "--max-memory", "1MB")...), 1, "--max-memory 1MB is too small", "even streamed one layer at a time")
	expectFailure(t, runCLI(t, args("steps", "--stream", "--iterative-steps", "2")...), 1, "one step")
	expectFailure(t, runCLI(t, args("badsize", "--max-memory", "lots")...), 2, "--max-memory", "lots")
	for _, out := range []string{"tiny", "steps", "badsize"} {
		if _, err := os.Stat(filepath.Join(dir, out)); err == nil {
			t.Errorf("%s was written despite the error", out)
		}
	}
}

func sameFile(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Errorf("%s and %s differ (%d vs %d bytes)", a, b, len(x), len(y))
	}
}

// samePlanSelection compares what two saved plans keep.
func samePlanSelection(t *testing.T, a, b string) {
	t.Helper()
	type layer struct {
		Layer int   `json:"layer"`
		KV    []int `json:"kv_heads_kept"`
		MLP   []int `json:"mlp_channels_kept"`
	}
	read := func(p string) []layer {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var plan struct {
			Layers []layer `json:"layers"`
		}
		if err := json.Unmarshal(data, &plan); err != nil {
			t.Fatal(err)
		}
		return plan.Layers
	}
	la, lb := read(a), read(b)
	if len(la) != len(lb) {
		t.Fatalf("plans have %d and %d layers", len(la), len(lb))
	}
	for i := range la {
		if la[i].Layer != lb[i].Layer || !slices.Equal(la[i].KV, lb[i].KV) || !slices.Equal(la[i].MLP, lb[i].MLP) {
			t.Errorf("layer %d: %+v vs %+v", la[i].Layer, la[i], lb[i])
		}
	}
}
