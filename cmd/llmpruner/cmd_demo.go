package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/llmpruner/llmpruner/lib/data"
	"github.com/llmpruner/llmpruner/lib/eval"
	"github.com/llmpruner/llmpruner/lib/importance"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/llmpruner/llmpruner/lib/prune"
	"github.com/pkg/errors"
)

var demoCmd = &command{
	name:     "demo",
	summary:  "stories260K end to end: info, perplexity, a story, then 20% Taylor block pruning",
	synopsis: "demo [--ppl-kb KB] [--max-new-tokens 200] [--no-prune] [--json]",
	details: `Runs llmpruner on stories260K, the real 260K-parameter TinyStories LLaMA by the author of
llama2.c. The model is taken from $LLMPRUNER_DATA/models/stories260K (stories260K.bin, tok512.bin),
else downloaded from the Hugging Face Hub (karpathy/tinyllamas) into the HF cache.
It prints the model, its perplexity on TinyStories text ($LLMPRUNER_DATA/` + tinyStoriesText + `,
skipped when absent), a greedy story, then prunes 20% of every layer's attention heads (kv-head
groups) and MLP channels with first-order Taylor importance on 10 TinyStories calibration samples
of 64 tokens, and prints the perplexity and a story of the pruned model (no recovery training).`,
	examples: []string{
		"llmpruner demo",
		"LLMPRUNER_DATA=/path/to/data llmpruner demo --ppl-kb 100 --no-prune",
	},
	run: runDemo,
}

func init() { register(demoCmd) }

// demoResult is the --json output of demo.
type demoResult struct {
	Model        modelInfo        `json:"model"`
	Text         string           `json:"ppl_text,omitempty"`
	PPL          *eval.PPLResult  `json:"ppl,omitempty"`
	Story        string           `json:"story"`
	Pruned       *demoPruneResult `json:"pruned,omitempty"`
	TotalSeconds float64          `json:"seconds"`
}

// demoPruneResult is the pruning part of demoResult.
type demoPruneResult struct {
	ParamsBefore int64          `json:"params_before"`
	ParamsAfter  int64          `json:"params_after"`
	Heads        []int          `json:"heads_per_layer"`
	KVHeads      []int          `json:"kv_heads_per_layer"`
	Inter        []int          `json:"intermediate_per_layer"`
	PPL          eval.PPLResult `json:"ppl"`
	Story        string         `json:"story"`
}

func runDemo(e *env, args []string) error {
	e.addJSON()
	pplKB := e.fs.Int("ppl-kb", 0, "measure perplexity on the first `KB` kilobytes of the TinyStories text (0 = all of it)")
	maxNew := e.fs.Int("max-new-tokens", 200, "length of the generated stories in `tokens`")
	noPrune := e.fs.Bool("no-prune", false, "skip the pruning part")
	if err := e.parse(args); err != nil {
		return err
	}
	if *pplKB < 0 || *maxNew < 1 {
		return usageErrorf("--ppl-kb must be ≥ 0 and --max-new-tokens ≥ 1")
	}
	start := time.Now()
	w := e.stdout
	if e.json {
		w = io.Discard // the text report is replaced by one JSON document at the end
	}
	files, err := findStories260K(e)
	if err != nil {
		return err
	}
	m, err := e.loadModelAt(files.model, files.tokenizer)
	if err != nil {
		return err
	}
	var res demoResult
	res.Model = describeModel(m)
	section(w, "Model")
	printModelInfo(w, res.Model)

	text, textPath := demoText(e, *pplKB)
	section(w, "Perplexity")
	if text == "" {
		fmt.Fprintf(w, "skipped: TinyStories text not found (set LLMPRUNER_DATA to a folder holding %s)\n", tinyStoriesText)
	} else {
		ppl, err := demoPPL(e, w, m, text, textPath)
		if err != nil {
			return err
		}
		res.PPL, res.Text = &ppl, textPath
	}

	section(w, "A story (greedy, from BOS)")
	if res.Story, err = demoStory(w, m, *maxNew); err != nil {
		return err
	}

	if !*noPrune {
		if text == "" {
			section(w, "Pruning")
			fmt.Fprintln(w, "skipped: Taylor importance needs TinyStories calibration text (set LLMPRUNER_DATA)")
		} else if res.Pruned, err = demoPrune(e, w, m, text, textPath, res.PPL.PPL, *maxNew); err != nil {
			return err
		}
	}
	res.TotalSeconds = time.Since(start).Seconds()
	e.logf("demo finished in %s", time.Since(start).Round(time.Millisecond))
	if e.json {
		return e.printJSON(res)
	}
	return nil
}

func section(w io.Writer, title string) {
	fmt.Fprintf(w, "\n== %s ==\n", title)
}

// demoText returns the TinyStories evaluation text (its first kb kilobytes, cut at a story
// boundary), or "" when the file is not there.
func demoText(e *env, kb int) (text, path string) {
	root := os.Getenv("LLMPRUNER_DATA")
	if root == "" {
		return "", ""
	}
	path = filepath.Join(root, tinyStoriesText)
	t, err := data.ReadText(path)
	if err != nil {
		e.logf("cannot read %s: %v", path, err)
		return "", ""
	}
	if kb > 0 && len(t) > kb*1024 {
		t = t[:kb*1024]
		if cut := strings.LastIndex(t, "\n\n"); cut > 0 {
			t = t[:cut]
		}
	}
	return t, path
}

// demoPPL prints and returns the perplexity of m on text.
func demoPPL(e *env, w io.Writer, m *models.Model, text, path string) (eval.PPLResult, error) {
	start := time.Now()
	res, err := e.perplexity(m, data.TextSet{Name: "tinystories", Path: path}, text, eval.DefaultPPLSeqLen, eval.DefaultPPLBatch)
	if err != nil {
		return res, err
	}
	fmt.Fprintf(w, "TinyStories (%s, %d KB): PPL %.3f over %d tokens (%d windows of %d) in %s\n",
		filepath.Base(path), len(text)/1024, res.PPL, res.Tokens, res.Windows, eval.DefaultPPLSeqLen, time.Since(start).Round(time.Millisecond))
	return res, nil
}

// demoStory prints and returns a greedy story from BOS.
func demoStory(w io.Writer, m *models.Model, maxNew int) (string, error) {
	tok, err := modelTokenizer(m)
	if err != nil {
		return "", err
	}
	out, err := m.Generate([]int{tok.BOS()}, models.GenerateOptions{MaxNewTokens: maxNew})
	if err != nil {
		return "", errors.WithMessage(err, "generating a story")
	}
	story := strings.TrimSpace(tok.Decode(out))
	fmt.Fprintln(w, story)
	return story, nil
}

// demoPrune prunes 20% of every layer's heads and MLP channels with Taylor importance and prints
// the perplexity before/after and a story of the pruned model.
func demoPrune(e *env, w io.Writer, m *models.Model, text, path string, before float64, maxNew int) (*demoPruneResult, error) {
	section(w, "Pruning: block-wise, 20%, Taylor (param_first), 10 TinyStories samples × 64 tokens")
	tok, err := modelTokenizer(m)
	if err != nil {
		return nil, err
	}
	opts := prune.Options{
		Strategy: prune.Block, Ratio: 0.2,
		Importance: importance.Options{Criterion: importance.Taylor, Taylor: importance.ParamFirst},
		Sampler: func(step int) ([][]int, error) {
			return data.CalibrationSamples(tok, text, 10, 64, 42+int64(step-1))
		},
	}
	if err := opts.Validate(m.Config); err != nil {
		return nil, err
	}
	origKV := slices.Clone(m.Config.KVHeads)
	rep, err := e.runPruning(m, opts)
	if err != nil {
		return nil, err
	}
	c := m.Config
	res := &demoPruneResult{ParamsBefore: rep.ParamsBefore, ParamsAfter: rep.ParamsAfter,
		Heads: slices.Clone(c.Heads), KVHeads: slices.Clone(c.KVHeads), Inter: slices.Clone(c.Inter)}
	fmt.Fprintf(w, "parameters: %d → %d (%.1f%% removed)\n", rep.ParamsBefore, rep.ParamsAfter,
		100*(1-float64(rep.ParamsAfter)/float64(rep.ParamsBefore)))
	fmt.Fprintf(w, "per layer now: heads %v, kv heads %v, MLP %v\n", c.Heads, c.KVHeads, c.Inter)
	if slices.Equal(c.KVHeads, origKV) {
		fmt.Fprintf(w, "(no head was removed: 20%% of %d kv heads × %d channels is less than one whole head, and whole heads are\n"+
			" removed only when the channel count allows it, as the original's MetaPruner rule; --ratio 0.25 removes one)\n",
			origKV[0], c.HeadDim)
	}
	if res.PPL, err = demoPPL(e, w, m, text, path); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "PPL before %.3f → after %.3f (no recovery training)\n", before, res.PPL.PPL)
	section(w, "A story from the pruned model (greedy, from BOS)")
	if res.Story, err = demoStory(w, m, maxNew); err != nil {
		return nil, err
	}
	return res, nil
}
