package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Kill-safety: prune, convert (to a HF directory and to GGUF) and finetune are SIGKILLed at random moments (and once as soon as
// their temporary output appears, i.e. mid-write). Afterwards the output path holds either a
// complete result (byte-identical to an uninterrupted run's) or nothing; anything else beside it
// is a temporary entry named ".<name>.tmp-*". finetune then resumes from its newest checkpoint
// and ends with the same adapter, bit for bit, as the uninterrupted run.

// killSeeds are the random kill moments tried per command.
var killSeeds = []uint64{1, 2, 3, 4, 5}

// treeBytes maps each file under dir (relative path) to its content; nil when dir is absent.
func treeBytes(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return nil
	}
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// isTempName reports whether name is a temporary entry of lib/atomicfile for target.
func isTempName(name, target string) bool {
	return strings.HasPrefix(name, "."+target+".tmp-")
}

// startKilled starts the CLI and SIGKILLs it after delay, or (delay < 0) as soon as a temporary
// entry for target appears in parent. It returns whether the process was killed before it ended.
func startKilled(t *testing.T, delay time.Duration, parent, target string, args ...string) bool {
	t.Helper()
	cmd := exec.Command(cliBinary, args...)
	cmd.Dir = t.TempDir()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var fire <-chan time.Time
	if delay >= 0 {
		fire = time.After(delay)
	}
	poll := time.NewTicker(time.Millisecond)
	defer poll.Stop()
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("llmpruner %s failed before the kill: %v\n%s", strings.Join(args, " "), err, stderr.String())
			}
			return false
		case <-fire:
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
			return true
		case <-poll.C:
			if delay >= 0 {
				continue
			}
			entries, _ := os.ReadDir(parent)
			for _, e := range entries {
				if isTempName(e.Name(), target) {
					_ = cmd.Process.Signal(syscall.SIGKILL)
					<-done
					return true
				}
			}
		case <-deadline:
			_ = cmd.Process.Signal(syscall.SIGKILL)
			t.Fatalf("llmpruner %s did not end within 2 minutes", strings.Join(args, " "))
		}
	}
}

// checkParent fails t if parent holds anything but target and temporary entries named for it.
func checkParent(t *testing.T, parent, target string) (temps []string) {
	t.Helper()
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		switch {
		case e.Name() == target:
		case isTempName(e.Name(), target):
			temps = append(temps, e.Name())
		default:
			t.Errorf("unexpected entry %s beside %s", e.Name(), target)
		}
	}
	return temps
}

// TestKillSafetyWriters: prune, convert and convert to GGUF killed at random moments leave the previous complete
// output (identical to an uninterrupted run's) or none.
func TestKillSafetyWriters(t *testing.T) {
	model := stories260K(t)
	calib := dataPath(t, "text/tinystories/tinystories_val_head.txt")
	for _, c := range []struct {
		name, target string
		args         func(out string) []string
	}{
		{"prune", "out", func(out string) []string {
			return []string{"prune", "--model", model, "--out", out, "--force", "--strategy", "block", "--ratio", "0.25",
				"--criterion", "taylor", "--calib", calib}
		}},
		{"convert", "out", func(out string) []string {
			return []string{"convert", "--model", model, "--out", out, "--force", "--dtype", "bf16"}
		}},
		{"convert-gguf", "out.gguf", func(out string) []string {
			return []string{"convert", "--model", model, "--out", out, "--force", "--dtype", "q8_0"}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			refDir := filepath.Join(t.TempDir(), c.target)
			start := time.Now()
			mustSucceed(t, c.args(refDir)...)
			full := time.Since(start)
			ref := treeBytes(t, refDir)
			for i, seed := range append(killSeeds, 0) {
				parent := t.TempDir()
				out := filepath.Join(parent, c.target)
				previous := i%2 == 0 // half the runs replace a previous complete result
				if previous {
					mustSucceed(t, c.args(out)...)
				}
				delay := time.Duration(rand.New(rand.NewPCG(seed, 14)).Float64() * 0.8 * float64(full))
				what := "after " + delay.String()
				if seed == 0 {
					delay, what = -1, "mid-write"
				}
				killed := startKilled(t, delay, parent, c.target, c.args(out)...)
				temps := checkParent(t, parent, c.target)
				got := treeBytes(t, out)
				switch {
				case got == nil:
					t.Logf("%s killed %s (previous result: %v): no output, temporary entries %v", c.name, what, previous, temps)
				case sameTree(got, ref):
					t.Logf("%s killed %s (killed: %v, previous result: %v): complete output, temporary entries %v", c.name, what, killed, previous, temps)
				default:
					t.Errorf("%s killed %s: %s holds a partial or different result (%d files, want %d)", c.name, what, out, len(got), len(ref))
				}
			}
		})
	}
}

// TestKillSafetyFinetune: finetune killed at random moments leaves only complete checkpoints
// and adapter files; resumed from its newest checkpoint (or restarted when none was written), it
// ends with the uninterrupted run's adapter, bit for bit.
func TestKillSafetyFinetune(t *testing.T) {
	model := stories260K(t)
	data := storiesTrainText(t, 60)
	args := func(out string, extra ...string) []string {
		return finetuneArgs(model, data, out, append([]string{"--max-steps", "6", "--save-every", "1", "--keep", "2"}, extra...)...)
	}
	refDir := filepath.Join(t.TempDir(), "ref")
	start := time.Now()
	mustSucceed(t, args(refDir)...)
	full := time.Since(start)
	want, err := os.ReadFile(filepath.Join(refDir, "adapter_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for _, seed := range append(killSeeds, 0) {
		parent := t.TempDir()
		out := filepath.Join(parent, "ft")
		delay := time.Duration(rand.New(rand.NewPCG(seed, 14)).Float64() * float64(full))
		what := "after " + delay.String()
		if seed == 0 {
			delay, what = -1, "mid-write" // as soon as the first checkpoint's temporary directory appears
		}
		// The temporary directories of checkpoints live inside out.
		if seed == 0 {
			startKilled(t, delay, out, "checkpoint-1", args(out)...)
		} else {
			startKilled(t, delay, parent, "ft", args(out)...)
		}
		checkFinetuneDir(t, out)
		resume := []string{}
		if ck, _ := filepath.Glob(filepath.Join(out, "checkpoint-*")); len(ck) > 0 {
			resume = []string{"--resume", out}
		}
		mustSucceed(t, args(out, resume...)...)
		got, err := os.ReadFile(filepath.Join(out, "adapter_model.safetensors"))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("killed %s, then resumed (%v): the final adapter differs from the uninterrupted run's (err %v)", what, resume, err)
		} else {
			t.Logf("killed %s, resumed with %v: final adapter identical", what, resume)
		}
	}
}

// checkFinetuneDir checks what a killed finetune left in out: complete checkpoint-N directories,
// complete adapter files, and otherwise only temporary entries.
func checkFinetuneDir(t *testing.T, out string) {
	t.Helper()
	entries, err := os.ReadDir(out)
	if os.IsNotExist(err) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(out, name)
		switch {
		case strings.HasPrefix(name, "."):
			if !strings.Contains(name, ".tmp-") {
				t.Errorf("%s: unexpected hidden entry", p)
			}
		case strings.HasPrefix(name, "checkpoint-"):
			for _, f := range []string{"adapter_config.json", "adapter_model.safetensors", "optimizer.safetensors", "trainer_state.json"} {
				checkCompleteFile(t, filepath.Join(p, f))
			}
		case name == "adapter_config.json" || name == "adapter_model.safetensors" || name == "training_log.json":
			checkCompleteFile(t, p)
		default:
			t.Errorf("%s: unexpected entry", p)
		}
	}
}

// checkCompleteFile checks that a JSON file parses and that a safetensors file's header and size
// agree (independently of lib/checkpoint).
func checkCompleteFile(t *testing.T, p string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Errorf("%s: %v", p, err)
		return
	}
	if strings.HasSuffix(p, ".json") {
		if !json.Valid(b) {
			t.Errorf("%s: incomplete JSON (%d bytes)", p, len(b))
		}
		return
	}
	if len(b) < 8 {
		t.Errorf("%s: %d bytes, not a safetensors file", p, len(b))
		return
	}
	n := binary.LittleEndian.Uint64(b)
	var hdr map[string]struct {
		Offsets []int64 `json:"data_offsets"`
	}
	if n > uint64(len(b)-8) || json.Unmarshal(b[8:8+n], &hdr) != nil {
		t.Errorf("%s: truncated safetensors header", p)
		return
	}
	end := int64(0)
	for _, e := range hdr {
		if len(e.Offsets) == 2 && e.Offsets[1] > end {
			end = e.Offsets[1]
		}
	}
	if int64(8+n)+end != int64(len(b)) {
		t.Errorf("%s: %d bytes, the header describes %d", p, len(b), int64(8+n)+end)
	}
}
