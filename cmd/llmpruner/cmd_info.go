package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/checkpoint"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/llmpruner/llmpruner/lib/lora"
	"github.com/llmpruner/llmpruner/lib/models"
	"github.com/llmpruner/llmpruner/lib/tokenizer"
	"github.com/pkg/errors"
)

var infoCmd = &command{
	name:     "info",
	summary:  "show a model's architecture, per-layer sizes, parameter count, dtype and tokenizer",
	synopsis: "info --model M [--tokenizer T] [--adapter DIR] [--json]",
	details: `A local model is described from its config and tensor headers, checked against each other as
loading would check them, without reading the weights (fast for multi-GB checkpoints).`,
	examples: []string{
		"llmpruner info --model $LLMPRUNER_DATA/models/stories260K/stories260K.bin",
		"llmpruner info --model ./pruned-llama --json",
	},
	run: runInfo,
}

func init() { register(infoCmd) }

// layerInfo is one decoder layer's sizes.
type layerInfo struct {
	Layer        int   `json:"layer"`
	Heads        int   `json:"heads"`
	KVHeads      int   `json:"kv_heads"`
	Intermediate int   `json:"intermediate_size"`
	Params       int64 `json:"params"`
}

// modelInfo is the --json output of info.
type modelInfo struct {
	Source       string       `json:"source"`
	Architecture string       `json:"architecture"`
	Hidden       int          `json:"hidden_size"`
	HeadDim      int          `json:"head_dim"`
	NumLayers    int          `json:"num_layers"`
	Vocab        int          `json:"vocab_size"`
	Context      int          `json:"max_position_embeddings"`
	TiedEmbed    bool         `json:"tie_word_embeddings"`
	RopeTheta    float64      `json:"rope_theta"`
	RopeScaling  string       `json:"rope_scaling,omitempty"`
	RMSNormEps   float64      `json:"rms_norm_eps"`
	Params       int64        `json:"params"`
	DTypes       []string     `json:"dtypes"`
	WeightBytes  int64        `json:"weight_bytes"`
	Tokenizer    string       `json:"tokenizer,omitempty"`
	TokenizerVoc int          `json:"tokenizer_vocab_size,omitempty"`
	BOS          int          `json:"bos_token_id"`
	EOS          []int        `json:"eos_token_ids"`
	Layers       []layerInfo  `json:"layers"`
	Adapter      *adapterInfo `json:"adapter,omitempty"`
}

// adapterInfo describes a LoRA adapter applied with --adapter.
type adapterInfo struct {
	Path    string   `json:"path"`
	R       int      `json:"r"`
	Alpha   float64  `json:"lora_alpha"`
	Dropout float64  `json:"lora_dropout"`
	Targets []string `json:"target_modules"`
	Modules int      `json:"modules"`
	Params  int      `json:"params"`
}

func runInfo(e *env, args []string) error {
	e.addModel()
	e.addJSON()
	if err := e.parse(args); err != nil {
		return err
	}
	if err := e.requireModel(); err != nil {
		return err
	}
	var info modelInfo
	if e.adapter != "" {
		// The adapter is checked against the loaded weights' shapes.
		m, err := e.loadModel()
		if err != nil {
			return err
		}
		info = describeModel(m)
		a, _ := lora.AdapterOf(m)
		info.Adapter = &adapterInfo{Path: e.adapter, R: a.Config.R, Alpha: a.Config.Alpha, Dropout: a.Config.Dropout,
			Targets: a.Config.Targets, Modules: len(a.Modules), Params: a.NumParams(m)}
	} else if _, err := os.Stat(e.model); err == nil {
		// A local model is described from its headers: no weights are read.
		if info, err = e.describeFiles(); err != nil {
			return err
		}
	} else {
		m, err := e.loadModel() // a Hub repo id: download, then describe
		if err != nil {
			return err
		}
		info = describeModel(m)
	}
	if e.json {
		return e.printJSON(info)
	}
	printModelInfo(e.stdout, info)
	return nil
}

// describeFiles describes the model at --model from its config and tensor headers, checking
// them strictly against each other (as loading would) without reading the weights.
func (e *env) describeFiles() (modelInfo, error) {
	cfg, r, err := checkpoint.OpenWithConfig(e.model)
	if err != nil {
		return modelInfo{}, errors.WithMessagef(err, "--model %s", e.model)
	}
	defer r.Close()
	infos := r.Tensors()
	if err := models.CheckTensors(cfg, infos); err != nil {
		return modelInfo{}, errors.WithMessagef(err, "--model %s", e.model)
	}
	info := configInfo(cfg)
	info.Source = e.model
	dts := map[string]bool{}
	for _, ti := range infos {
		dts[ti.DType.String()] = true
		n := int64(ti.DType.Size())
		for _, d := range ti.Shape {
			n *= int64(d)
		}
		info.WeightBytes += n
	}
	info.DTypes = slices.Sorted(maps.Keys(dts))
	info.EOS = slices.Clone(cfg.EOS)
	tokPath := e.tokenizer
	if tokPath == "" {
		tokPath = e.model
		if !isDir(tokPath) {
			tokPath = filepath.Dir(tokPath)
		}
	}
	tok, files, err := tokenizer.Load(tokPath)
	switch {
	case err != nil && e.tokenizer != "":
		return modelInfo{}, errors.WithMessagef(err, "--tokenizer %s", e.tokenizer)
	case err != nil:
		e.logf("no tokenizer: %v", oneLine(err.Error()))
	default:
		addTokenizerInfo(&info, tok, files)
	}
	return info, nil
}

// describeModel gathers what info prints from a loaded model.
func describeModel(m *models.Model) modelInfo {
	info := configInfo(m.Config)
	info.Source = m.Source
	info.WeightBytes = m.Store.ByteSize()
	dts := map[string]bool{}
	for v := range m.Store.IterVariables() {
		dts[v.DType().String()] = true
	}
	info.DTypes = slices.Sorted(maps.Keys(dts))
	info.EOS = m.EOSTokens()
	if m.Tokenizer != nil {
		addTokenizerInfo(&info, m.Tokenizer, m.TokenizerFiles)
	}
	info.EOS = slices.Compact(slices.Sorted(slices.Values(info.EOS)))
	return info
}

// configInfo fills the architecture part of modelInfo.
func configInfo(c *config.Config) modelInfo {
	info := modelInfo{
		Architecture: string(c.Arch), Hidden: c.Hidden, HeadDim: c.HeadDim,
		NumLayers: c.NumLayers(), Vocab: c.Vocab, Context: c.MaxPositions, TiedEmbed: c.TieEmbed,
		RopeTheta: c.RopeTheta, RopeScaling: c.RopeScaling.Kind(), RMSNormEps: c.RMSNormEps,
		Params: arch.NumParams(c), BOS: c.BOS,
	}
	for l := range c.NumLayers() {
		info.Layers = append(info.Layers, layerInfo{Layer: l, Heads: c.Heads[l], KVHeads: c.KVHeads[l], Intermediate: c.Inter[l], Params: arch.LayerParams(c, l)})
	}
	return info
}

// addTokenizerInfo adds the tokenizer's files, size and special ids.
func addTokenizerInfo(info *modelInfo, tok tokenizer.Tokenizer, files []string) {
	info.Tokenizer = strings.Join(files, ", ")
	info.TokenizerVoc = tok.VocabSize()
	if info.BOS < 0 {
		info.BOS = tok.BOS()
	}
	if tok.EOS() >= 0 {
		info.EOS = append(info.EOS, tok.EOS())
	}
	info.EOS = slices.Compact(slices.Sorted(slices.Values(info.EOS)))
}

func printModelInfo(w io.Writer, info modelInfo) {
	fmt.Fprintf(w, "model         %s\n", info.Source)
	fmt.Fprintf(w, "architecture  %s: %d layers, hidden %d, head_dim %d, vocab %d, context %d\n",
		info.Architecture, info.NumLayers, info.Hidden, info.HeadDim, info.Vocab, info.Context)
	rope := fmt.Sprintf("theta %g", info.RopeTheta)
	if info.RopeScaling != "" {
		rope += ", scaling " + info.RopeScaling
	}
	fmt.Fprintf(w, "rope          %s; rms_norm_eps %g; tied embeddings %v\n", rope, info.RMSNormEps, info.TiedEmbed)
	fmt.Fprintf(w, "parameters    %s (%d)\n", humanCount(info.Params), info.Params)
	fmt.Fprintf(w, "weights       %s in %s\n", humanBytes(info.WeightBytes), strings.Join(info.DTypes, ", "))
	if info.Tokenizer != "" {
		fmt.Fprintf(w, "tokenizer     %s (%d tokens, bos %d, eos %v)\n", info.Tokenizer, info.TokenizerVoc, info.BOS, info.EOS)
	} else {
		fmt.Fprintln(w, "tokenizer     none found (pass --tokenizer)")
	}
	printLayerTable(w, info.Layers)
	if a := info.Adapter; a != nil {
		fmt.Fprintf(w, "adapter       %s: LoRA r %d, alpha %g, dropout %g, %s (%d modules, %s parameters)\n",
			a.Path, a.R, a.Alpha, a.Dropout, strings.Join(a.Targets, ","), a.Modules, humanCount(int64(a.Params)))
	}
}

// printLayerTable prints per-layer sizes, folding runs of identical layers into one line ("0-31").
func printLayerTable(w io.Writer, layers []layerInfo) {
	fmt.Fprintln(w, "layers        heads  kv_heads  intermediate  params")
	for i, l := range layers {
		if i > 0 && sameSizes(l, layers[i-1]) {
			continue
		}
		j := i
		for j+1 < len(layers) && sameSizes(layers[j+1], l) {
			j++
		}
		span := fmt.Sprint(i)
		if j > i {
			span = fmt.Sprintf("%d-%d", i, j)
		}
		fmt.Fprintf(w, "  %-11s %5d  %8d  %12d  %s each\n", span, l.Heads, l.KVHeads, l.Intermediate, humanCount(l.Params))
	}
}

func sameSizes(a, b layerInfo) bool {
	return a.Heads == b.Heads && a.KVHeads == b.KVHeads && a.Intermediate == b.Intermediate
}

// humanCount writes a parameter count as 6.74B, 260.1K, ...
func humanCount(n int64) string {
	switch f := float64(n); {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", f/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", f/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", f/1e3)
	}
	return fmt.Sprint(n)
}

// humanBytes writes a byte size in binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
