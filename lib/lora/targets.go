package lora

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/pkg/errors"
)

// target is one adaptable projection of a decoder layer: the short name accepted in
// Config.Targets and the module path inside the layer ("self_attn.q_proj"). The PEFT
// target_modules name is the last component of the module path ("q_proj").
type target struct{ short, module string }

// peftName is the name PEFT's target_modules uses for t (the module's last component).
func (t target) peftName() string { return t.module[strings.LastIndex(t.module, ".")+1:] }

// archTargets are the LoRA targets of one architecture (arch.Family.LoRA): the HF layer prefix of
// its decoder layers and its projections in canonical order (the order modules are listed and
// saved in).
type archTargets struct {
	arch        config.Arch
	layerPrefix string // fmt pattern of a layer's module prefix, e.g. "model.layers.%d."
	targets     []target
}

func newArchTargets(f arch.Family) *archTargets {
	lt := f.LoRA()
	at := &archTargets{arch: f.Name(), layerPrefix: lt.LayerPrefix}
	for _, t := range lt.Targets {
		at.targets = append(at.targets, target{t.Short, t.Module})
	}
	return at
}

// AllTargets are the seven LLaMA projections LLM-Pruner adapts by default, in short form.
var AllTargets = newArchTargets(mustFamily(arch.Llama)).shortNames()

func mustFamily(name config.Arch) arch.Family {
	f, err := arch.ByName(name)
	if err != nil {
		panic(err)
	}
	return f
}

// targetsOf returns the LoRA targets of name ("" is LLaMA, the zero value of older configs).
func targetsOf(name config.Arch) (*archTargets, error) {
	if name == "" {
		name = arch.Llama
	}
	f, err := arch.ByName(name)
	if err != nil {
		return nil, errors.Errorf("LoRA is not supported for %q models", name)
	}
	return newArchTargets(f), nil
}

func (at *archTargets) shortNames() []string {
	out := make([]string, len(at.targets))
	for i, t := range at.targets {
		out[i] = t.short
	}
	return out
}

func (at *archTargets) describe() string {
	var peft []string
	for _, t := range at.targets {
		if t.peftName() != t.short {
			peft = append(peft, t.peftName())
		}
	}
	s := strings.Join(at.shortNames(), ",")
	if len(peft) > 0 {
		s += " or " + strings.Join(peft, ",")
	}
	return s
}

// matches reports whether name (short, PEFT or module-path form) names t.
func (t target) matches(name string) bool {
	return name == t.short || name == t.peftName() || name == t.module
}

// knownAnywhere reports whether name is a target of some supported architecture.
func knownAnywhere(name string) bool {
	for _, f := range arch.All() {
		for _, t := range newArchTargets(f).targets {
			if t.matches(name) {
				return true
			}
		}
	}
	return false
}

// describeAll lists every architecture's targets, for errors.
func describeAll() string {
	var parts []string
	for _, f := range arch.All() {
		parts = append(parts, newArchTargets(f).describe()+" for "+f.Title())
	}
	return strings.Join(parts, ", ")
}

// resolve maps target names (empty: all) to this architecture's targets in canonical order.
func (at *archTargets) resolve(names []string) ([]target, error) {
	if len(names) == 0 {
		return slices.Clone(at.targets), nil
	}
	want := make([]bool, len(at.targets))
	for _, n := range names {
		name := strings.TrimSpace(n)
		found := false
		for i, t := range at.targets {
			if t.matches(name) {
				want[i], found = true, true
			}
		}
		if !found {
			return nil, errors.Errorf("unknown LoRA target module %q for %s models (want %s)", n, at.arch, at.describe())
		}
	}
	var out []target
	for i, t := range at.targets {
		if want[i] {
			out = append(out, t)
		}
	}
	return out, nil
}

// moduleNames lists the full module names ("model.layers.3.mlp.up_proj") of targets over
// numLayers decoder layers, layer by layer.
func (at *archTargets) moduleNames(targets []target, numLayers int) []string {
	var out []string
	for l := range numLayers {
		for _, t := range targets {
			out = append(out, fmt.Sprintf(at.layerPrefix, l)+t.module)
		}
	}
	return out
}

// parseModule splits a full module name into its layer and target index (ok false when the
// name is not a target module of this architecture).
func (at *archTargets) parseModule(module string) (layer, idx int, ok bool) {
	prefix := at.layerPrefix[:strings.Index(at.layerPrefix, "%d")]
	rest, found := strings.CutPrefix(module, prefix)
	if !found {
		return 0, 0, false
	}
	num, sub, found := strings.Cut(rest, ".")
	if !found {
		return 0, 0, false
	}
	layer, err := strconv.Atoi(num)
	if err != nil || layer < 0 {
		return 0, 0, false
	}
	for i, t := range at.targets {
		if sub == t.module {
			return layer, i, true
		}
	}
	return 0, 0, false
}

// sortModules orders module names by layer number, then by the canonical projection order
// (names that are not target modules go last, in their order).
func (at *archTargets) sortModules(modules []string) {
	key := func(s string) (int, int) {
		l, i, ok := at.parseModule(s)
		if !ok {
			return 1 << 30, len(at.targets)
		}
		return l, i
	}
	slices.SortStableFunc(modules, func(a, b string) int {
		la, ia := key(a)
		lb, ib := key(b)
		if la != lb {
			return la - lb
		}
		return ia - ib
	})
}

// peftNames returns the PEFT target_modules names of targets.
func peftNames(targets []target) []string {
	out := make([]string, len(targets))
	for i, t := range targets {
		out[i] = t.peftName()
	}
	return out
}
