package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// copyModelDir copies a Hugging Face model directory (flat) into a new temporary directory.
func copyModelDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		data, err := os.ReadFile(filepath.Join(src, en.Name()))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dst, en.Name()), string(data))
	}
	return dst
}

// editSafetensorsHeader rewrites the JSON header of dir/model.safetensors through edit (which
// gets the tensor entries by name), keeping the data bytes.
func editSafetensorsHeader(t *testing.T, dir string, edit func(h map[string]map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, "model.safetensors")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(raw[:8])
	var h map[string]map[string]any
	if err := json.Unmarshal(raw[8:8+n], &h); err != nil {
		t.Fatal(err)
	}
	edit(h)
	header, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	for len(header)%8 != 0 {
		header = append(header, ' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	out = append(append(out, header...), raw[8+n:]...)
	writeFile(t, path, string(out))
}

// editConfig rewrites dir/config.json through edit.
func editConfig(t *testing.T, dir string, edit func(c map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, "config.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	edit(c)
	out, _ := json.Marshal(c)
	writeFile(t, path, string(out))
}

// TestBadModelFiles is the catalogue of broken checkpoints from the foundation issue: each is
// refused with exit 1 and a one-line message naming the file or tensor, never a panic.
func TestBadModelFiles(t *testing.T) {
	golden := goldenPath(t, "stories260K-hf")
	input := writeFile(t, filepath.Join(t.TempDir(), "in.jsonl"), `{"ids":[1,403,407]}`+"\n")
	const embed = "model.embed_tokens.weight"
	for _, tc := range []struct {
		name    string
		corrupt func(t *testing.T, dir string) string // returns the --model path
		wants   []string
	}{
		{"missing file", func(t *testing.T, dir string) string {
			return filepath.Join(dir, "no-such-model")
		}, []string{"no-such-model", "no such file"}},
		{"missing weights", func(t *testing.T, dir string) string {
			_ = os.Remove(filepath.Join(dir, "model.safetensors"))
			return dir
		}, []string{dir0}},
		{"truncated safetensors", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "model.safetensors")
			st, _ := os.Stat(p)
			if err := os.Truncate(p, st.Size()/2); err != nil {
				t.Fatal(err)
			}
			return dir
		}, []string{"model.safetensors"}},
		{"truncated header", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "model.safetensors")
			if err := os.Truncate(p, 100); err != nil {
				t.Fatal(err)
			}
			return dir
		}, []string{"model.safetensors"}},
		{"header lying about sizes", func(t *testing.T, dir string) string {
			editSafetensorsHeader(t, dir, func(h map[string]map[string]any) {
				h[embed]["data_offsets"] = []int{0, 131072 - 256}
			})
			return dir
		}, []string{embed}},
		{"wrong dtype", func(t *testing.T, dir string) string {
			editSafetensorsHeader(t, dir, func(h map[string]map[string]any) { h[embed]["dtype"] = "I32" })
			return dir
		}, []string{embed}},
		{"unknown dtype", func(t *testing.T, dir string) string {
			editSafetensorsHeader(t, dir, func(h map[string]map[string]any) { h[embed]["dtype"] = "Q4" })
			return dir
		}, []string{"Q4"}},
		{"shape mismatch against config", func(t *testing.T, dir string) string {
			editConfig(t, dir, func(c map[string]any) { c["intermediate_size"] = 180 })
			return dir
		}, []string{"mlp", "172", "180"}},
		{"unknown architecture", func(t *testing.T, dir string) string {
			editConfig(t, dir, func(c map[string]any) {
				c["model_type"] = "gpt2"
				c["architectures"] = []string{"GPT2LMHeadModel"}
			})
			return dir
		}, []string{"unknown architecture", "gpt2"}},
		{"config not JSON", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "config.json"), "{not json")
			return dir
		}, []string{"config.json"}},
		{"truncated GGUF", func(t *testing.T, dir string) string {
			raw := storiesGGUF(t)
			return writeFile(t, filepath.Join(dir, "m.gguf"), string(raw[:len(raw)/2]))
		}, []string{"m.gguf"}},
		{"GGUF claiming 2^64-1 tensors", func(t *testing.T, dir string) string {
			raw := []byte(string(storiesGGUF(t)))
			binary.LittleEndian.PutUint64(raw[8:], 1<<64-1)
			return writeFile(t, filepath.Join(dir, "m.gguf"), string(raw))
		}, []string{"m.gguf", "tensor count 18446744073709551615"}},
		{"GGUF key length beyond the file", func(t *testing.T, dir string) string {
			raw := []byte(string(storiesGGUF(t)))
			binary.LittleEndian.PutUint64(raw[24:], 1<<62)
			return writeFile(t, filepath.Join(dir, "m.gguf"), string(raw))
		}, []string{"m.gguf", "string length 4611686018427387904", "more than the file"}},
		{"truncated llama2.c file", func(t *testing.T, dir string) string {
			raw, err := os.ReadFile(stories260K(t))
			if err != nil {
				t.Fatal(err)
			}
			return writeFile(t, filepath.Join(dir, "stories260K.bin"), string(raw[:len(raw)/3]))
		}, []string{"stories260K.bin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyModelDir(t, golden)
			model := tc.corrupt(t, dir)
			wants := tc.wants
			if len(wants) == 1 && wants[0] == dir0 {
				wants = []string{filepath.Base(dir)}
			}
			for _, args := range [][]string{
				{"score", "--model", model, "--input", input},
				{"info", "--model", model},
			} {
				res := runCLI(t, args...)
				expectFailure(t, res, 1, wants...)
				if strings.Count(strings.TrimSpace(res.stderr), "\n") != 0 {
					t.Errorf("%s: error is not one line:\n%s", args[0], res.stderr)
				}
			}
		})
	}
}

// storiesGGUF is stories260K converted to GGUF (Q8_0) by the CLI, made once per test binary.
func storiesGGUF(t *testing.T) []byte {
	t.Helper()
	storiesGGUFOnce.Do(func() {
		p := filepath.Join(os.TempDir(), fmt.Sprintf("llmpruner-badinput-%d.gguf", os.Getpid()))
		mustSucceed(t, "convert", "--model", stories260K(t), "--out", p, "--dtype", "q8_0", "--force")
		storiesGGUFBytes, _ = os.ReadFile(p)
		_ = os.Remove(p)
	})
	if len(storiesGGUFBytes) == 0 {
		t.Fatal("no GGUF of stories260K")
	}
	return storiesGGUFBytes
}

var (
	storiesGGUFOnce  sync.Once
	storiesGGUFBytes []byte
)

// dir0 in a catalogue entry stands for "the model directory's name".
const dir0 = "\x00model-dir"

// TestBadTextAndSequences covers the text/sequence part of the catalogue.
func TestBadTextAndSequences(t *testing.T) {
	model := stories260K(t)
	tok := dataPath(t, "models/stories260K/tok512.bin")
	dir := t.TempDir()
	empty := writeFile(t, filepath.Join(dir, "empty.txt"), "")
	short := writeFile(t, filepath.Join(dir, "short.txt"), "Once upon a time.")
	latin1 := writeFile(t, filepath.Join(dir, "latin1.txt"), "caf\xe9 au lait\n")
	long := make([]string, 600)
	for i := range long {
		long[i] = "403"
	}
	longIDs := writeFile(t, filepath.Join(dir, "long.jsonl"), `{"ids":[`+strings.Join(long, ",")+`]}`+"\n")
	badLine := writeFile(t, filepath.Join(dir, "bad.jsonl"), `{"ids":[1,2,3]}`+"\n"+`{"ids":[1,2,3]}`+"\n"+`{"tokens":[1,2]}`+"\n")
	badID := writeFile(t, filepath.Join(dir, "badid.jsonl"), `{"ids":[1,99999]}`+"\n")
	nonUTF8Line := writeFile(t, filepath.Join(dir, "latin1.jsonl"), "{\"text\":\"caf\xe9\"}\n")
	oneToken := writeFile(t, filepath.Join(dir, "one.jsonl"), `{"ids":[1]}`+"\n")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"non-UTF-8 --text", []string{"tokenize", "--tokenizer", tok, "--text", "caf\xe9"}, 1, []string{"--text", "not valid UTF-8"}},
		{"non-UTF-8 --prompt", []string{"generate", "--model", model, "--prompt", "caf\xe9"}, 1, []string{"--prompt", "not valid UTF-8"}},
		{"non-UTF-8 text file", []string{"eval", "ppl", "--model", model, "--data", "x=" + latin1}, 1, []string{"latin1.txt", "UTF-8"}},
		{"non-UTF-8 score line", []string{"score", "--model", model, "--input", nonUTF8Line}, 1, []string{"latin1.jsonl:1", "UTF-8"}},
		{"empty text for PPL", []string{"eval", "ppl", "--model", model, "--data", "empty=" + empty}, 1, []string{"empty"}},
		{"text shorter than a window", []string{"eval", "ppl", "--model", model, "--data", "short=" + short}, 1, []string{"short", "--seq-len"}},
		{"sequence longer than context", []string{"score", "--model", model, "--input", longIDs}, 1, []string{"long.jsonl:1", "600", "512"}},
		{"prompt longer than context", []string{"generate", "--model", model, "--ids", strings.Join(long, ",")}, 1, []string{"600", "512"}},
		{"bad score line", []string{"score", "--model", model, "--input", badLine}, 1, []string{"bad.jsonl:3"}},
		{"id outside vocabulary", []string{"score", "--model", model, "--input", badID}, 1, []string{"badid.jsonl:1", "99999"}},
		{"one-token sequence", []string{"score", "--model", model, "--input", oneToken}, 1, []string{"one.jsonl:1"}},
		{"missing input", []string{"score", "--model", model, "--input", filepath.Join(dir, "nope.jsonl")}, 1, []string{"nope.jsonl"}},
		{"missing data file", []string{"eval", "ppl", "--model", model, "--data", "x=" + filepath.Join(dir, "nope.txt")}, 1, []string{"nope.txt"}},
		{"missing tokenizer", []string{"tokenize", "--tokenizer", filepath.Join(dir, "nope.bin"), "--text", "hi"}, 1, []string{"nope.bin"}},
		{"missing --model", []string{"generate"}, 2, []string{"--model is required"}},
		{"--prompt and --ids", []string{"generate", "--model", model, "--prompt", "a", "--ids", "1"}, 2, []string{"--prompt", "--ids"}},
		{"bad --ids", []string{"generate", "--model", model, "--ids", "1,x"}, 2, []string{"-ids", `"x"`}},
		{"bad --top-p", []string{"generate", "--model", model, "--top-p", "1.5"}, 2, []string{"--top-p"}},
		{"adapter dir without adapter", []string{"eval", "ppl", "--model", model, "--data", "x=" + short, "--adapter", dir}, 1, []string{"--adapter", "no adapter_config.json"}},
		{"adapter missing", []string{"score", "--model", model, "--input", oneToken, "--adapter", filepath.Join(dir, "nope")}, 1, []string{"--adapter", "no such directory"}},
		{"adapter without model", []string{"tokenize", "--tokenizer", filepath.Join(dir, "nope.bin"), "--text", "hi", "--adapter", dir}, 2, []string{"--adapter needs --model"}},
		{"unknown task", []string{"eval", "zeroshot", "--model", model, "--tasks", "boolq,squad"}, 2, []string{"squad"}},
		{"bad --matmul-dtype", []string{"score", "--model", model, "--input", oneToken, "--matmul-dtype", "int8"}, 2, []string{"--matmul-dtype", `"int8"`, "bf16"}},
		{"--limit 0", []string{"eval", "zeroshot", "--model", model, "--limit", "0"}, 2, []string{"--limit 0"}},
		{"convert bad dtype", []string{"convert", "--model", model, "--out", filepath.Join(dir, "o"), "--dtype", "int8"}, 2, []string{"--dtype"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectFailure(t, runCLI(t, tc.args...), tc.code, tc.want...)
		})
	}
}

// TestPanicsAreReported: an internal panic prints one line (no goroutine trace), exit 1; with
// LLMPRUNER_DEBUG=1 the stack is shown. (In-process, with a command that panics.)
func TestPanicsAreReported(t *testing.T) {
	saved := commands
	defer func() { commands = saved }()
	commands = append(slices.Clone(commands), &command{name: "zz-panic", run: func(*env, []string) error {
		var m map[string]int
		m["x"] = 1 // assignment to entry in nil map
		return nil
	}})
	var out, errw strings.Builder
	t.Setenv("LLMPRUNER_DEBUG", "")
	code := run([]string{"zz-panic"}, &out, &errw)
	first, _, _ := strings.Cut(errw.String(), "\n")
	if code != 1 || !strings.HasPrefix(first, "llmpruner: zz-panic: internal error: assignment to entry in nil map") ||
		strings.Contains(errw.String(), "goroutine") {
		t.Errorf("exit %d, stderr %q", code, errw.String())
	}
	t.Setenv("LLMPRUNER_DEBUG", "1")
	errw.Reset()
	run([]string{"zz-panic"}, &out, &errw)
	if !strings.Contains(errw.String(), "goroutine") {
		t.Errorf("LLMPRUNER_DEBUG=1 does not show the stack: %q", errw.String())
	}
}
