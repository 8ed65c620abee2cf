// Package arch describes each model family llmpruner knows (LLaMA, ChatGLM-6B, …) once: how its
// config.json reads and writes, its Hugging Face tensor names and shapes per layer (from the
// resolved config), its coupled pruning structures, its LoRA target modules, how to count its
// parameters and MACs, which layer parts zero a layer's contribution, and its GGUF names.
//
// Every other package asks the Family of a config (Of) instead of branching on the family; a new
// family is a Family here plus its forward pass in lib/models (see the README). This package holds
// no GoMLX graph code.
package arch

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/llmpruner/llmpruner/lib/atomicfile"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/pkg/errors"
)

// Family names of the supported families (config.Config.Arch).
const (
	// Llama is LlamaForCausalLM: LLaMA-1/2/3/3.1/3.2, Vicuna, TinyLlama (RMSNorm, RoPE, SwiGLU, GQA).
	Llama config.Arch = "llama"
	// Mistral is MistralForCausalLM: the LLaMA layout with sliding-window attention.
	Mistral config.Arch = "mistral"
	// Qwen2 is Qwen2ForCausalLM (Qwen2, Qwen2.5): the LLaMA layout with q/k/v biases.
	Qwen2 config.Arch = "qwen2"
	// ChatGLM is ChatGLM-6B (v1, THUDM/chatglm-6b).
	ChatGLM config.Arch = "chatglm"
)

// Family is what llmpruner knows about one model family. The unexported methods keep the
// implementations in this package.
type Family interface {
	// Name is the family's name (config.Config.Arch); Title its name in prose ("LLaMA").
	Name() config.Arch
	Title() string
	// Layout names the forward pass in lib/models that runs the family ("llama", "chatglm"):
	// families sharing a tensor layout share it.
	Layout() string

	// matches reports whether config.json's model_type and architectures name this family.
	matches(modelType string, archs []string) bool
	// parseConfig resolves config.json (raw: its top-level object).
	parseConfig(data []byte, raw map[string]json.RawMessage, source string) (*config.Config, error)
	// configFields are the resolved values written over config.json's own fields.
	configFields(c *config.Config) map[string]any
	// validate adds the family's constraints to config.Config.Validate.
	validate(c *config.Config) error

	// Tensors lists every tensor of a checkpoint of c (Hugging Face names and shapes), in
	// checkpoint order.
	Tensors(c *config.Config) []Tensor
	// LayerTensors lists the tensors of decoder layer l (what removing the layer deletes).
	LayerTensors(c *config.Config, l int) []string
	// Embedding and LMHead name the token embedding table and the output projection; LayerPrefix
	// is the prefix of every tensor of layer l as a fmt pattern ("model.layers.%d.").
	Embedding() string
	LMHead() string
	LayerPrefix() string

	// HeadBlocks describes one attention-head group of layer l (one per key/value head).
	HeadBlocks(c *config.Config, l int) []Block
	// MLPBlocks describes one MLP-channel group of layer l (one per intermediate channel).
	MLPBlocks(c *config.Config, l int) []Block
	// HiddenTensors lists the tensors a residual-stream channel runs through.
	HiddenTensors(c *config.Config) Hidden

	// LayerParams counts the parameters of decoder layer l; NumParams the whole model's (tied
	// embeddings counted once).
	LayerParams(c *config.Config, l int) int64
	NumParams(c *config.Config) int64
	// MACs splits one forward pass over S tokens (see MACBreakdown).
	MACs(c *config.Config, S int) MACBreakdown

	// LoRA lists the projections LoRA can adapt.
	LoRA() LoRATargets
	// ResidualOutputs lists the tensors of layer l whose outputs enter the residual stream: scaling
	// them by 0 makes the layer the identity (layer-skip importance). An error says why the family
	// has no such tensors.
	ResidualOutputs(c *config.Config, l int) ([]string, error)
	// OutputProjections names the modules (weight [D, C] at module+".weight") that write layer l's
	// attention and MLP outputs into the residual stream: their inputs are the concatenated head
	// outputs (head h owns columns h·head_dim … (h+1)·head_dim−1) and the MLP activations (one
	// column per MLP channel). FLAP, Wanda-sp and reconstruction read and re-fit them.
	OutputProjections(c *config.Config, l int) (attn, mlp string)
	// OutputBiases names the biases of the OutputProjections (bias compensation adds to them).
	OutputBiases(c *config.Config, l int) (attn, mlp string)
	// EnableBiases turns on the attention (attn) and/or MLP (mlp) biases of c, so that
	// OutputBiases exist (Tensors then lists every bias the family's config implies), or says why
	// the family's config.json cannot express them. It may change c's family to one whose
	// config.json can (Qwen2 → LLaMA with attention_bias).
	EnableBiases(c *config.Config, attn, mlp bool) error
	// GGUF gives llama.cpp's names for the family; Arch is "" (and Unsupported says why) where
	// llama.cpp has no such architecture.
	GGUF() *GGUFNames
}

// Tensor names one tensor of a checkpoint and its shape.
type Tensor struct {
	Name  string // Hugging Face name
	Shape []int
}

// Block is one member of a coupled group, as a strided range: unit u of the group (a key/value
// head, an MLP channel) owns indices Offset+u·Stride … Offset+u·Stride+Width−1 along Axis of
// Tensor. The first block of a group is its root.
type Block struct {
	Tensor                string
	Axis                  int // 0 = rows (output features, or elements of a vector), 1 = columns
	Stride, Offset, Width int
	Bias                  bool // a bias vector: removed with the group, not scored
}

// Indices returns the indices of unit u.
func (b Block) Indices(u int) []int {
	out := make([]int, b.Width)
	for i := range out {
		out[i] = b.Offset + u*b.Stride + i
	}
	return out
}

// Hidden lists the tensors a residual-stream channel d runs through: element d of Elems (norm
// weights; Elems[0] is the root) and of Biases (not scored), column d of Cols, row d of Rows.
type Hidden struct {
	Elems, Cols, Rows, Biases []string
}

// LoRATargets are the projections LoRA can adapt in every decoder layer.
type LoRATargets struct {
	// LayerPrefix is the module prefix of layer l, as a fmt pattern ("model.layers.%d.").
	LayerPrefix string
	// Targets in canonical order (the order modules are listed and saved in).
	Targets []LoRATarget
}

// LoRATarget is one adaptable projection: its short name ("q") and module path inside a layer
// ("self_attn.q_proj"); PEFT's target_modules uses the path's last component.
type LoRATarget struct{ Short, Module string }

// GGUFNames are llama.cpp's names for a family.
type GGUFNames struct {
	// Arch is llama.cpp's architecture for uniform models ("llama", "qwen2"); PerLayerArch the one
	// that sizes every layer by itself ("deci"), "" when none does.
	Arch, PerLayerArch string
	// Pre is tokenizer.ggml.pre for the family's byte-level BPE tokenizer ("llama-bpe", "qwen2").
	Pre string
	// Global maps Hugging Face names outside the layers to GGUF names ("model.norm.weight" →
	// "output_norm.weight"); Layer maps module paths inside a layer ("self_attn.q_proj" → "attn_q"),
	// written as blk.N.<name>.weight / .bias.
	Global, Layer map[string]string
	// HalfSplitRoPE: Arch rotates each head's two halves, as Hugging Face does (llama.cpp's rope
	// "neox" mode, qwen2), so q/k rows are written as they are; otherwise (and always in
	// PerLayerArch, rope "norm" mode) it rotates adjacent pairs and q/k rows and biases are
	// reordered per head.
	HalfSplitRoPE bool
	// SquareAttention: Arch sizes q_proj [hidden, hidden] and o_proj [hidden, hidden] (qwen2), so a
	// model whose heads·head_dim differs from hidden (after head pruning) needs PerLayerArch.
	SquareAttention bool
	// Unsupported says why a family cannot be written as GGUF (Arch "").
	Unsupported string
}

// FromGGUF returns the family of a GGUF file of llama.cpp architecture ggufArch: the family whose
// Arch it is, or, for a PerLayerArch shared by several families ("deci"), the one whose layers
// carry q/k/v biases without an o_proj bias exactly when qkvBiasOnly.
func FromGGUF(ggufArch string, qkvBiasOnly bool) (Family, error) {
	for _, f := range families {
		if f.GGUF().Arch == ggufArch && ggufArch != "" {
			return f, nil
		}
	}
	for _, f := range families {
		if g := f.GGUF(); g.PerLayerArch == ggufArch && ggufArch != "" && qkvBiasOnly == qkvBiasOnlyFamily(f) {
			return f, nil
		}
	}
	var known []string
	for _, f := range families {
		if g := f.GGUF(); g.Arch != "" && !slices.Contains(known, g.Arch) {
			known = append(known, g.Arch)
		}
		if g := f.GGUF(); g.PerLayerArch != "" && !slices.Contains(known, g.PerLayerArch) {
			known = append(known, g.PerLayerArch)
		}
	}
	return nil, errors.Errorf("general.architecture %q is not supported (supported: %s)", ggufArch, strings.Join(known, ", "))
}

// families lists the supported families; detection tries them in order.
var families = []Family{llamaFamily, mistralFamily, qwen2Family, chatglmFamily}

// All returns the supported families.
func All() []Family { return append([]Family(nil), families...) }

// Names lists the supported families' names, for messages.
func Names() string {
	var s []string
	for _, f := range families {
		s = append(s, string(f.Name()))
	}
	return strings.Join(s, ", ")
}

// ByName returns the family called name.
func ByName(name config.Arch) (Family, error) {
	for _, f := range families {
		if f.Name() == name {
			return f, nil
		}
	}
	return nil, errors.Errorf("architecture %q is not supported (supported: %s)", name, Names())
}

// Of returns the family of c. It panics for a config that no Family resolved: every Config comes
// from Parse, a checkpoint reader or a Clone of one.
func Of(c *config.Config) Family {
	f, err := ByName(c.Arch)
	if err != nil {
		panic(err)
	}
	return f
}

// Detect reads only the family of a config.json file.
func Detect(data []byte, source string) (Family, error) {
	var f struct {
		ModelType     string   `json:"model_type"`
		Architectures []string `json:"architectures"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, errors.Wrapf(err, "%s: invalid JSON", source)
	}
	for _, fam := range families {
		if fam.matches(f.ModelType, f.Architectures) {
			return fam, nil
		}
	}
	return nil, errors.Errorf("%s: unknown architecture (model_type %q, architectures %v); supported: %s",
		source, f.ModelType, f.Architectures, Names())
}

// ParseConfig resolves config.json bytes. source names the file in error messages.
func ParseConfig(data []byte, source string) (*config.Config, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, errors.Wrapf(err, "%s: invalid JSON", source)
	}
	fam, err := Detect(data, source)
	if err != nil {
		return nil, err
	}
	c, err := fam.parseConfig(data, raw, source)
	if err != nil {
		return nil, err
	}
	if err := Validate(c); err != nil {
		return nil, errors.WithMessage(err, source)
	}
	return c, nil
}

// LoadConfig reads and resolves a config.json file.
func LoadConfig(path string) (*config.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errors.Wrapf(err, "reading model config")
	}
	return ParseConfig(data, path)
}

// Validate checks c's generic consistency (config.Config.Validate) and its family's constraints.
func Validate(c *config.Config) error {
	fam, err := ByName(c.Arch)
	if err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return err
	}
	return fam.validate(c)
}

// MarshalConfig renders config.json: c.Raw's fields with the resolved values written over them and
// head_dim always present; the per-layer lists only when the layers differ (a uniform model gets a
// stock config.json that transformers and vLLM load).
func MarshalConfig(c *config.Config) ([]byte, error) {
	if err := Validate(c); err != nil {
		return nil, err
	}
	out := make(map[string]any, len(c.Raw)+16)
	for k, v := range c.Raw {
		out[k] = v
	}
	for k, v := range Of(c).configFields(c) {
		out[k] = v
	}
	if c.Uniform() {
		// A stock config.json (transformers, vLLM): the scalars say it all.
		delete(out, config.KeyHeadsPerLayer)
		delete(out, config.KeyKVHeadsPerLayer)
		delete(out, config.KeyInterPerLayer)
	} else {
		out[config.KeyHeadsPerLayer] = c.Heads
		out[config.KeyKVHeadsPerLayer] = c.KVHeads
		out[config.KeyInterPerLayer] = c.Inter
	}
	return json.MarshalIndent(out, "", "  ")
}

// SaveConfig writes config.json atomically.
func SaveConfig(c *config.Config, path string) error {
	data, err := MarshalConfig(c)
	if err != nil {
		return errors.WithMessagef(err, "saving %s", path)
	}
	return atomicfile.WriteFile(path, append(data, '\n'), 0o644)
}

// NumParams counts the parameters of the model c describes (tied embeddings counted once).
func NumParams(c *config.Config) int64 { return Of(c).NumParams(c) }

// LayerParams counts the parameters of decoder layer l.
func LayerParams(c *config.Config, l int) int64 { return Of(c).LayerParams(c, l) }

// MACs splits one forward pass of c over S tokens.
func MACs(c *config.Config, S int) MACBreakdown { return Of(c).MACs(c, S) }

// NamedLike returns the family whose tensor names a checkpoint's names follow (its embedding or
// layer prefix), preferring want's; nil when none does.
func NamedLike(want Family, names []string) Family {
	follows := func(f Family) bool {
		prefix, _, _ := strings.Cut(f.LayerPrefix(), "%d")
		for _, n := range names {
			if n == f.Embedding() || strings.HasPrefix(n, prefix) {
				return true
			}
		}
		return false
	}
	if want != nil && follows(want) {
		return want
	}
	for _, f := range families {
		if follows(f) {
			return f
		}
	}
	return nil
}

// layerName formats prefix's layer l tensor: layerName("model.layers.%d.", 3, "mlp.up_proj.weight").
func layerName(prefix string, l int, rest string) string { return fmt.Sprintf(prefix, l) + rest }
