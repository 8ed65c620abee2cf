package eval

import (
	"fmt"
	"slices"
	"time"

	"github.com/pkg/errors"
)

// Latency summarises repeated timings of one operation.
type Latency struct {
	// Median, Min, Max and Mean of the timed repeats (warm-up runs excluded).
	Median, Min, Max, Mean time.Duration
	// Warmup and Repeats are the numbers of untimed and timed calls.
	Warmup, Repeats int
	// Samples are the timed durations in call order.
	Samples []time.Duration
}

// MeasureLatency calls fn warmup times untimed (compilation, caches), then repeats times timed,
// and returns the median (the figure to report), min, max and mean. An error from fn stops the
// measurement and is returned.
func MeasureLatency(fn func() error, warmup, repeats int) (Latency, error) {
	if fn == nil {
		return Latency{}, errors.New("measure latency: no function")
	}
	if warmup < 0 || repeats <= 0 {
		return Latency{}, errors.Errorf("measure latency: warm-up (%d) must be ≥ 0 and repeats (%d) > 0", warmup, repeats)
	}
	for i := range warmup {
		if err := fn(); err != nil {
			return Latency{}, errors.WithMessagef(err, "warm-up run %d", i+1)
		}
	}
	l := Latency{Warmup: warmup, Repeats: repeats, Samples: make([]time.Duration, repeats)}
	var sum time.Duration
	for i := range repeats {
		start := time.Now()
		if err := fn(); err != nil {
			return Latency{}, errors.WithMessagef(err, "timed run %d", i+1)
		}
		l.Samples[i] = time.Since(start)
		sum += l.Samples[i]
	}
	sorted := slices.Clone(l.Samples)
	slices.Sort(sorted)
	l.Min, l.Max, l.Mean = sorted[0], sorted[repeats-1], sum/time.Duration(repeats)
	if repeats%2 == 1 {
		l.Median = sorted[repeats/2]
	} else {
		l.Median = (sorted[repeats/2-1] + sorted[repeats/2]) / 2
	}
	return l, nil
}

// PerSecond converts a count of items (tokens, requests) processed in d into items per second.
func PerSecond(items int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(items) / d.Seconds()
}

// String prints "median 12.3ms (min 11.9ms, max 13.0ms, 5 runs after 2 warm-up)".
func (l Latency) String() string {
	return fmt.Sprintf("median %v (min %v, max %v, %d runs after %d warm-up)",
		l.Median.Round(time.Microsecond), l.Min.Round(time.Microsecond), l.Max.Round(time.Microsecond), l.Repeats, l.Warmup)
}
