// Package llamacpp runs GGUF files in the real llama.cpp — the prebuilt CPU build that the npm
// package node-llama-cpp 3.22.1 ships (llama.cpp release v0.5.0) — through the repository's
// scripts/llamacpp.mjs: greedy continuations, teacher-forced logits, tokenization and prompt /
// decode speed. It is how llmpruner's GGUF export is checked against an independent
// implementation (tests, tutorials/09-deploy.ipynb). It holds no GoMLX code.
//
// It needs node on PATH and a node_modules directory holding node-llama-cpp (installed with
// NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --omit=optional node-llama-cpp@3.22.1
// @node-llama-cpp/linux-x64@3.22.1), named by $LLMPRUNER_NODE_MODULES unless Runner says otherwise.
package llamacpp

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/pkg/errors"
)

// Runner finds node, the script and node-llama-cpp.
type Runner struct {
	Script  string // path of scripts/llamacpp.mjs
	Modules string // node_modules directory holding node-llama-cpp
	// Threads is the number of CPU threads llama.cpp uses; 0 means every core.
	Threads int
}

// New returns a Runner for the repository at repo (its scripts/llamacpp.mjs) and
// $LLMPRUNER_NODE_MODULES, or an error saying what is missing.
func New(repo string) (*Runner, error) {
	r := &Runner{Script: filepath.Join(repo, "scripts", "llamacpp.mjs"), Modules: os.Getenv("LLMPRUNER_NODE_MODULES")}
	return r, r.Check()
}

// Check reports what is missing to run llama.cpp.
func (r *Runner) Check() error {
	if _, err := exec.LookPath("node"); err != nil {
		return errors.New("node is not installed (Debian: apt-get install nodejs npm)")
	}
	if _, err := os.Stat(r.Script); err != nil {
		return errors.Errorf("script %s not found", r.Script)
	}
	if r.Modules == "" {
		return errors.New("LLMPRUNER_NODE_MODULES is not set (the node_modules directory holding node-llama-cpp@3.22.1)")
	}
	if _, err := os.Stat(filepath.Join(r.Modules, "node-llama-cpp", "dist", "index.js")); err != nil {
		return errors.Errorf("%s has no node-llama-cpp: NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --omit=optional node-llama-cpp@3.22.1 @node-llama-cpp/linux-x64@3.22.1", r.Modules)
	}
	return nil
}

// Run is one model and the tasks to run on it, in order.
type Run struct {
	Model   string `json:"model"`
	Context int    `json:"context,omitempty"` // context size (default 512)
	Tasks   []Task `json:"tasks"`
}

// Task is one request; see the constructors.
type Task map[string]any

// Greedy asks for the greedy (argmax) continuation of ids, n tokens.
func Greedy(ids []int, n int) Task { return Task{"op": "greedy", "ids": ids, "n": n} }

// Logits asks for the logits after every position of ids (teacher forcing).
func Logits(ids []int) Task { return Task{"op": "logits", "ids": ids} }

// Tokenize asks for llama.cpp's tokenization of each text (no BOS, special tokens as text).
func Tokenize(texts []string) Task { return Task{"op": "tokenize", "texts": texts} }

// TokenizeSpecial is Tokenize with control and user-defined tokens written in the text matched as
// those tokens (llama.cpp's parse_special), as Hugging Face's tokenizers match added tokens.
func TokenizeSpecial(texts []string) Task {
	return Task{"op": "tokenize", "texts": texts, "special": true}
}

// Bench asks for prompt tokens/s (a prompt of prompt tokens) and decode tokens/s (decode tokens
// after it), the best of repeat runs.
func Bench(prompt, decode, repeat int) Task {
	return Task{"op": "bench", "prompt": prompt, "decode": decode, "repeat": repeat}
}

// Result is one task's result: IDs for Greedy, Logits for Logits, Tokens for Tokenize,
// PromptTokS / DecodeTokS for Bench.
type Result struct {
	IDs        []int       `json:"-"`
	Tokens     [][]int     `json:"-"`
	Logits     [][]float32 `json:"logits"`
	PromptTokS float64     `json:"prompt_tok_s"`
	DecodeTokS float64     `json:"decode_tok_s"`
}

// Run runs the runs in one node process and returns their results, run by run.
func (r *Runner) Run(runs ...Run) ([][]Result, error) {
	req := map[string]any{"runs": runs}
	if r.Threads > 0 {
		req["threads"] = r.Threads
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("node", r.Script)
	cmd.Env = append(os.Environ(), "LLMPRUNER_NODE_MODULES="+r.Modules)
	cmd.Stdin = bytes.NewReader(body)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 && len(msg) > 2000 {
			msg = msg[i+1:]
		}
		return nil, errors.Errorf("llama.cpp (node %s): %v: %s", r.Script, err, msg)
	}
	var out struct {
		Runs [][]json.RawMessage `json:"runs"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return nil, errors.Wrapf(err, "llama.cpp output %.200q", stdout.String())
	}
	if len(out.Runs) != len(runs) {
		return nil, errors.Errorf("llama.cpp returned %d runs for %d", len(out.Runs), len(runs))
	}
	results := make([][]Result, len(runs))
	for i, run := range out.Runs {
		if len(run) != len(runs[i].Tasks) {
			return nil, errors.Errorf("llama.cpp returned %d results for %d tasks of %s", len(run), len(runs[i].Tasks), runs[i].Model)
		}
		for j, raw := range run {
			var res Result
			if err := json.Unmarshal(raw, &res); err != nil {
				return nil, errors.Wrapf(err, "llama.cpp result %d of %s", j, runs[i].Model)
			}
			var ids struct {
				IDs json.RawMessage `json:"ids"`
			}
			_ = json.Unmarshal(raw, &ids)
			if runs[i].Tasks[j]["op"] == "tokenize" {
				err = json.Unmarshal(ids.IDs, &res.Tokens)
			} else if len(ids.IDs) > 0 {
				err = json.Unmarshal(ids.IDs, &res.IDs)
			}
			if err != nil {
				return nil, errors.Wrapf(err, "llama.cpp ids of result %d of %s", j, runs[i].Model)
			}
			results[i] = append(results[i], res)
		}
	}
	return results, nil
}
