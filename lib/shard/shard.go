// Package shard lays a model out over the devices of a mesh for tensor-parallel execution
// (Megatron-style): every projection that produces attention heads or MLP channels is split on its
// output axis, every projection that consumes them on its input axis, the vocabulary tables on
// the vocabulary, so that each device holds whole heads (whole key/value groups under GQA) and a
// slice of the MLP channels — exactly the coupled groups llmpruner prunes, read from the family
// descriptor (lib/arch), so the layout follows pruned, non-uniform layers too.
//
// The layout is plain data (which axis of which tensor is split over the mesh's "model" axis);
// Specs turns it into GoMLX sharding specs for XLA's partitioner, and DeviceBytes says what each
// device holds. Nothing here needs a device: the layout and its memory are unit-tested on CPU.
package shard

import (
	"fmt"
	"sort"
	"strings"

	"github.com/gomlx/compute/distributed"
	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/config"
	"github.com/pkg/errors"
)

// ModelAxis is the name of the mesh axis the weights are split over.
const ModelAxis = "model"

// Placement says how one tensor is laid out: split into Devices equal contiguous slices along
// Axis, or replicated on every device (Axis −1; Reason says why when the tensor is a projection
// that could have been split).
type Placement struct {
	Tensor string // Hugging Face name (adapters: "<module>.lora_A.weight" / ".lora_B.weight")
	Shape  []int
	Axis   int
	Reason string
}

// Split reports whether the tensor is divided over the devices.
func (p Placement) Split() bool { return p.Axis >= 0 }

// Layout is the placement of every tensor of a model over Devices devices.
type Layout struct {
	Devices    int
	Placements []Placement // in the family's checkpoint order, adapters after the base tensors
	index      map[string]int
}

// Adapter describes LoRA adapters attached to Modules (module paths such as
// "model.layers.0.self_attn.q_proj"), of rank Rank.
type Adapter struct {
	Modules []string
	Rank    int
}

// TensorParallel lays out the model of cfg (and its adapter, if a is not nil) over n devices.
//
// Every tensor that carries heads or MLP channels (the family's HeadBlocks and MLPBlocks) is split
// along the groups' axis when the layer's group count is divisible by n, so each device holds
// whole groups; otherwise it is replicated and Placement.Reason names the count (prune with
// --round-to a multiple of n to avoid that). The embedding and the lm_head are split on the
// vocabulary when it is divisible by n. Norm weights and the biases added after a row-parallel
// projection are replicated. A LoRA adapter follows its base weight: lora_B [out, r] is split
// like a column-parallel weight's rows, lora_A [r, in] like a row-parallel weight's columns, the
// other factor replicated.
func TensorParallel(cfg *config.Config, n int, a *Adapter) (*Layout, error) {
	if n < 1 {
		return nil, errors.Errorf("tensor parallelism over %d devices: need at least 1", n)
	}
	fam := arch.Of(cfg)
	axes, reasons, err := groupAxes(cfg, fam, n)
	if err != nil {
		return nil, err
	}
	vocabTables := map[string]bool{fam.Embedding(): true, fam.LMHead(): true}
	lay := &Layout{Devices: n, index: map[string]int{}}
	shapes := map[string][]int{}
	for _, t := range fam.Tensors(cfg) {
		p := Placement{Tensor: t.Name, Shape: append([]int(nil), t.Shape...), Axis: -1}
		shapes[t.Name] = p.Shape
		switch ax, ok := axes[t.Name]; {
		case ok && n > 1:
			p.Axis = ax
		case ok:
			// One device: nothing to split, nothing to explain.
		case reasons[t.Name] != "":
			p.Reason = reasons[t.Name]
		case vocabTables[t.Name] && len(t.Shape) == 2 && n > 1:
			if t.Shape[0]%n == 0 {
				p.Axis = 0
			} else {
				p.Reason = fmt.Sprintf("vocabulary %d is not divisible by %d devices", t.Shape[0], n)
			}
		}
		lay.add(p)
	}
	if a != nil {
		if a.Rank < 1 {
			return nil, errors.Errorf("adapter rank %d: need at least 1", a.Rank)
		}
		for _, m := range a.Modules {
			base, ok := shapes[m+".weight"]
			if !ok || len(base) != 2 {
				return nil, errors.Errorf("adapter module %q: the model has no projection %s.weight", m, m)
			}
			out, in := base[0], base[1]
			pa := Placement{Tensor: m + ".lora_A.weight", Shape: []int{a.Rank, in}, Axis: -1}
			pb := Placement{Tensor: m + ".lora_B.weight", Shape: []int{out, a.Rank}, Axis: -1}
			switch bp := lay.Placements[lay.index[m+".weight"]]; bp.Axis {
			case 0: // column-parallel: B's rows are the base's output rows
				pb.Axis = 0
			case 1: // row-parallel: A's columns are the base's input columns
				pa.Axis = 1
			default:
				pa.Reason, pb.Reason = bp.Reason, bp.Reason
			}
			lay.add(pa)
			lay.add(pb)
		}
	}
	return lay, nil
}

func (l *Layout) add(p Placement) {
	l.index[p.Tensor] = len(l.Placements)
	l.Placements = append(l.Placements, p)
}

// Placement returns the placement of tensor name.
func (l *Layout) Placement(name string) (Placement, bool) {
	i, ok := l.index[name]
	if !ok {
		return Placement{}, false
	}
	return l.Placements[i], true
}

// groupAxes finds, for every tensor that carries heads or MLP channels, the axis its groups lie
// on — when each unit's slices cover one contiguous range, so that an equal contiguous split keeps
// whole units on a device, and the unit count divides by n. Tensors that carry groups but cannot
// be split that way get a reason instead.
func groupAxes(cfg *config.Config, fam arch.Family, n int) (axes map[string]int, reasons map[string]string, err error) {
	axes, reasons = map[string]int{}, map[string]string{}
	shapes := map[string][]int{}
	for _, t := range fam.Tensors(cfg) {
		shapes[t.Name] = t.Shape
	}
	for l := range cfg.NumLayers() {
		for _, kind := range []struct {
			what   string
			blocks []arch.Block
		}{{"key/value head groups", fam.HeadBlocks(cfg, l)}, {"MLP channels", fam.MLPBlocks(cfg, l)}} {
			byTensor := map[string][]arch.Block{}
			var order []string
			for _, b := range kind.blocks {
				if _, seen := byTensor[b.Tensor]; !seen {
					order = append(order, b.Tensor)
				}
				byTensor[b.Tensor] = append(byTensor[b.Tensor], b)
			}
			for _, name := range order {
				shape, ok := shapes[name]
				if !ok {
					return nil, nil, errors.Errorf("layer %d: the %s name tensor %s, which the model does not have", l, kind.what, name)
				}
				ax, units, ok := contiguousUnits(byTensor[name], shape)
				switch {
				case !ok:
					reasons[name] = fmt.Sprintf("layer %d's %s are not contiguous in %s", l, kind.what, name)
				case units == 0:
					reasons[name] = fmt.Sprintf("layer %d has no %s", l, kind.what)
				case units%n != 0:
					reasons[name] = fmt.Sprintf("layer %d has %d %s, not divisible by %d devices", l, units, kind.what, n)
				default:
					axes[name] = ax
				}
			}
		}
	}
	return axes, reasons, nil
}

// contiguousUnits checks that the blocks of one tensor give each unit u the contiguous range
// [u·Stride, (u+1)·Stride) of one axis covering the whole axis, and returns the axis and the
// number of units.
func contiguousUnits(blocks []arch.Block, shape []int) (axis, units int, ok bool) {
	ax, stride := blocks[0].Axis, blocks[0].Stride
	if ax < 0 || ax >= len(shape) || stride <= 0 {
		return 0, 0, false
	}
	type span struct{ lo, hi int }
	var spans []span
	for _, b := range blocks {
		if b.Axis != ax || b.Stride != stride {
			return 0, 0, false
		}
		spans = append(spans, span{b.Offset, b.Offset + b.Width})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].lo < spans[j].lo })
	end := 0
	for _, s := range spans {
		if s.lo != end {
			return 0, 0, false
		}
		end = s.hi
	}
	if end != stride || shape[ax]%stride != 0 {
		return 0, 0, false
	}
	return ax, shape[ax] / stride, true
}

// Specs builds the GoMLX sharding spec of every placement on mesh, whose axis ModelAxis must
// have Devices devices (other axes, e.g. one for data parallelism, replicate the weights).
func (l *Layout) Specs(mesh *distributed.DeviceMesh) (map[string]*distributed.ShardingSpec, error) {
	size, err := mesh.AxisSize(ModelAxis)
	if err != nil {
		return nil, errors.WithMessagef(err, "mesh %s", mesh)
	}
	if size != l.Devices {
		return nil, errors.Errorf("mesh %s: axis %q has %d devices, the layout was made for %d", mesh, ModelAxis, size, l.Devices)
	}
	specs := make(map[string]*distributed.ShardingSpec, len(l.Placements))
	for _, p := range l.Placements {
		b := distributed.BuildSpec(mesh)
		for ax := range p.Shape {
			if ax == p.Axis {
				b.S(ModelAxis)
			} else {
				b.R()
			}
		}
		spec, err := b.Done()
		if err != nil {
			return nil, errors.WithMessagef(err, "sharding spec of %s", p.Tensor)
		}
		specs[p.Tensor] = spec
	}
	return specs, nil
}

// DeviceBytes is what one device holds of the layout's tensors, with bytesPer giving each
// tensor's bytes per element (its stored dtype); split tensors count their slice.
func (l *Layout) DeviceBytes(bytesPer func(name string) int64) int64 {
	var total int64
	for _, p := range l.Placements {
		elems := int64(1)
		for _, d := range p.Shape {
			elems *= int64(d)
		}
		if p.Split() {
			elems /= int64(l.Devices)
		}
		total += elems * bytesPer(p.Tensor)
	}
	return total
}

// Replicated lists, one line each, the projections and vocabulary tables that could not be split
// and why (empty when every one is split), for reports.
func (l *Layout) Replicated() []string {
	var out []string
	for _, p := range l.Placements {
		if !p.Split() && p.Reason != "" && !strings.Contains(p.Tensor, ".lora_") {
			out = append(out, p.Tensor+": "+p.Reason)
		}
	}
	return out
}
