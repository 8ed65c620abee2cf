package eval

import (
	"strings"
	"testing"
	"time"
)

func TestStatsMarkdown(t *testing.T) {
	dense := parseConfig(t, llama7BConfig)
	pruned := dense.Clone()
	for i := 4; i < 30; i++ {
		pruned.Heads[i], pruned.KVHeads[i], pruned.Inter[i] = 24, 24, 8256
	}
	sd, _ := Stats(dense, 64, 1)
	sp, _ := Stats(pruned, 64, 1)
	table, err := StatsMarkdown([]StatsRow{
		{Name: "LLaMA-7B", Stats: sd, Latency: &Latency{Median: 2 * time.Second}},
		{Name: "Block 20%", Stats: sp, Latency: &Latency{Median: 1600 * time.Millisecond}, TokensPerSecond: 12.5},
	})
	if err != nil {
		t.Fatal(err)
	}
	// fp16 weights: 2·6,738,415,616 B = 12852.5 MiB; 2·5,422,977,024 B = 10343.5 MiB.
	for _, want := range []string{
		"| LLaMA-7B | 6.74B | 424.02G | 12852.5 MiB (float16) | 2s | 1.00× | – |",
		"| Block 20% | 5.42B | 339.60G | 10343.5 MiB (float16) | 1.6s | 1.25× | 12.5 tok/s |",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if _, err := StatsMarkdown([]StatsRow{{Name: "x", Stats: sd, DType: "int4"}}); err == nil {
		t.Error("unknown dtype accepted")
	}
	if _, err := StatsMarkdown(nil); err == nil {
		t.Error("empty table accepted")
	}
}
