package prune

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/llmpruner/llmpruner/lib/groups/groupstest"
	"github.com/llmpruner/llmpruner/lib/importance"
	"github.com/llmpruner/llmpruner/lib/option"
)

// TestValidateNamesOptions: Validate's errors name the Options field and its value (an
// option.Error carrying the name, which the command line turns into its flag), never a flag.
func TestValidateNamesOptions(t *testing.T) {
	cfg := groupstest.Tiny(t)
	for _, c := range []struct {
		o    Options
		name option.Name
		want string
	}{
		{Options{Strategy: Block, Ratio: 1.5}, OptRatio, "prune.Options.Ratio 1.5 must be in [0, 1)"},
		{Options{Strategy: Block, Ratio: 0.2, IterativeSteps: -1}, OptIterativeSteps, "prune.Options.IterativeSteps -1"},
		{Options{Strategy: Block, Ratio: 0.2, RoundTo: -8}, OptRoundTo, "prune.Options.RoundTo -8"},
		{Options{Strategy: Layer, KeepLayers: 99}, OptKeepLayers, "prune.Options.KeepLayers 99"},
		{Options{Strategy: Block, Ratio: 0.2, AttnLayers: &Range{3, 1}}, OptAttnLayers, "prune.Options.AttnLayers 3:1 is reversed"},
		{Options{Strategy: Layer, Ratio: 0.2, Global: true}, OptGlobal, "prune.Options.Global applies to block-wise pruning, not prune.Options.Strategy layer"},
		{Options{Strategy: Block, Ratio: 0.2, Importance: importance.Options{Criterion: importance.L2, Taylor: importance.ParamSecond}}, OptTaylor,
			"needs prune.Options.Importance.Criterion taylor"},
	} {
		err := c.o.Validate(cfg)
		var oe *option.Error
		if err == nil || !errors.As(err, &oe) || !slices.Contains(oe.Names, c.name) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "--") {
			t.Errorf("%+v: error %v, want an option.Error naming %s: %q", c.o, err, c.name, c.want)
		}
	}
}
