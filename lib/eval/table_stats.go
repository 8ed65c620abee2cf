package eval

import (
	"fmt"
	"strings"

	"github.com/pkg/errors"
)

// StatsRow is one model's line of the statistics table.
type StatsRow struct {
	Name  string
	Stats *Statistics
	// DType is the weight dtype of the Memory column ("float16" for the paper's numbers).
	DType string
	// Latency of a forward pass (optional); the first row with one is the speed-up baseline.
	Latency *Latency
	// TokensPerSecond of generation (optional; 0 leaves the cell empty).
	TokensPerSecond float64
}

// StatsMarkdown renders the paper's statistics table (#Params, #MACs, Memory, Latency) for
// several models, plus the speed-up of each median latency over the first row that has one and
// the generation throughput when given.
func StatsMarkdown(rows []StatsRow) (string, error) {
	if len(rows) == 0 {
		return "", errors.New("no statistics to tabulate")
	}
	var base *Latency
	for _, r := range rows {
		if r.Latency != nil {
			base = r.Latency
			break
		}
	}
	var b strings.Builder
	b.WriteString("| Model | #Params | #MACs | Memory | Latency | Speed-up | Generation |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		if r.Stats == nil {
			return "", errors.Errorf("model %q has no statistics", r.Name)
		}
		dtype := r.DType
		if dtype == "" {
			dtype = "float16"
		}
		mem, err := r.Stats.WeightBytes(dtype)
		if err != nil {
			return "", errors.WithMessagef(err, "model %q", r.Name)
		}
		lat, speed, gen := "–", "–", "–"
		if r.Latency != nil {
			lat = r.Latency.Median.String()
			if r.Latency.Median > 0 {
				speed = fmt.Sprintf("%.2f×", float64(base.Median)/float64(r.Latency.Median))
			}
		}
		if r.TokensPerSecond > 0 {
			gen = fmt.Sprintf("%.1f tok/s", r.TokensPerSecond)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.1f MiB (%s) | %s | %s | %s |\n", escapeCell(r.Name), FormatParams(r.Stats.Params),
			FormatMACs(r.Stats.MACs), float64(mem)/(1<<20), dtype, lat, speed, gen)
	}
	fmt.Fprintf(&b, "\nMACs for a batch of %d × %d tokens, counted as LLM-Pruner's test_speedup.py; memory = weights only.\n",
		rows[0].Stats.Batch, rows[0].Stats.SeqLen)
	return b.String(), nil
}
