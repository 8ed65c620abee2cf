package main

import (
	"path/filepath"
	"testing"
)

// TestPruneStreamForwardCriteria: prune --stream with the forward-only criteria — flap (adaptive
// structure, bias compensation written), wanda-sp, ranked layer pruning by loss and by Block
// Influence, and --reconstruct — writes the same model.safetensors, byte for byte, and the same plan as the loaded
// prune, on stories260K.
func TestPruneStreamForwardCriteria(t *testing.T) {
	model := stories260K(t)
	calib := dataPath(t, "text/tinystories/tinystories_val_head.txt")
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"flap", []string{"--strategy", "block", "--ratio", "0.2", "--criterion", "flap"}},
		{"wanda-sp", []string{"--strategy", "block", "--ratio", "0.25", "--attn-layers", "1:4", "--mlp-layers", "1:4", "--criterion", "wanda-sp"}},
		{"rank-loss", []string{"--strategy", "layer", "--keep-layers", "3", "--rank-layers"}},
		{"rank-bi", []string{"--strategy", "layer", "--keep-layers", "4", "--layer-criterion", "bi"}},
		{"reconstruct", []string{"--strategy", "block", "--ratio", "0.25", "--attn-layers", "1:4", "--mlp-layers", "1:4", "--criterion", "wanda-sp", "--reconstruct"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := func(out string, extra ...string) []string {
				a := append([]string{"prune", "--model", model, "--out", filepath.Join(dir, out), "--save-plan", filepath.Join(dir, out+".json"),
					"--calib", calib, "--num-examples", "4"}, tc.args...)
				return append(a, extra...)
			}
			mustSucceed(t, args(tc.name+"-loaded")...)
			mustSucceed(t, args(tc.name+"-streamed", "--stream")...)
			sameFile(t, filepath.Join(dir, tc.name+"-loaded", "model.safetensors"), filepath.Join(dir, tc.name+"-streamed", "model.safetensors"))
			samePlanSelection(t, filepath.Join(dir, tc.name+"-loaded.json"), filepath.Join(dir, tc.name+"-streamed.json"))
		})
	}
}
