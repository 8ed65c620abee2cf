package eval

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/llmpruner/llmpruner/lib/arch"
	"github.com/llmpruner/llmpruner/lib/config"
)

const llama7BConfig = `{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
 "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32, "vocab_size": 32000,
 "max_position_embeddings": 2048, "rms_norm_eps": 1e-6}`

// stories260K's shapes: dim 64, 5 layers, 8 heads, 4 kv heads, MLP 172, vocab 512, tied head.
const stories260KConfig = `{"model_type": "llama", "hidden_size": 64, "intermediate_size": 172,
 "num_hidden_layers": 5, "num_attention_heads": 8, "num_key_value_heads": 4, "vocab_size": 512,
 "max_position_embeddings": 512, "tie_word_embeddings": true}`

func parseConfig(t *testing.T, js string) *config.Config {
	t.Helper()
	c, err := arch.ParseConfig([]byte(js), "test config")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The paper's statistics table: LLaMA-7B dense 6.74B params / 424.02G MACs, block-wise 20%
// (heads 32→24 and MLP 11008→8256 in layers 4..29, i.e. --pruning_ratio 0.25) 5.42B / 339.60G, at
// a (1, 64) input. Exact counts: 6,738,415,616 and 5,422,977,024 parameters (LLM-Pruner issue #34).
func TestStatsLLaMA7BMatchesPaper(t *testing.T) {
	dense := parseConfig(t, llama7BConfig)
	s, err := Stats(dense, 64, 1)
	if err != nil {
		t.Fatal(err)
	}
	if s.Params != 6_738_415_616 || FormatParams(s.Params) != "6.74B" {
		t.Errorf("dense params %d (%s)", s.Params, FormatParams(s.Params))
	}
	// Per layer: 4·64·4096² + 32·(2·64²·128 + 64²) + 4·64·4096 + 3·64·4096·11008 + 64·11008 + 4·64·4096;
	// plus final norm 2·64·4096 and lm_head 64·4096·32000.
	if s.MACs != 424_021_065_728 || FormatMACs(s.MACs) != "424.02G" {
		t.Errorf("dense MACs %d (%s), want 424021065728 (424.02G)", s.MACs, FormatMACs(s.MACs))
	}
	pruned := dense.Clone()
	for i := 4; i < 30; i++ {
		pruned.Heads[i], pruned.KVHeads[i], pruned.Inter[i] = 24, 24, 8256
	}
	p, err := Stats(pruned, 64, 1)
	if err != nil {
		t.Fatal(err)
	}
	if p.Params != 5_422_977_024 || FormatParams(p.Params) != "5.42B" {
		t.Errorf("pruned params %d (%s)", p.Params, FormatParams(p.Params))
	}
	if p.MACs != 339_602_644_992 || FormatMACs(p.MACs) != "339.60G" {
		t.Errorf("pruned MACs %d (%s), want 339.60G", p.MACs, FormatMACs(p.MACs))
	}
	// Memory at fp16: 2 bytes per parameter (the paper's 12884.5 MiB adds buffers to 12852.2 MiB).
	b, err := s.WeightBytes("float16")
	if err != nil || b != 2*6_738_415_616 {
		t.Errorf("fp16 weight bytes %d, %v", b, err)
	}
}

// stories260K dense and a pruned variant (layers 1..3: 6 heads / 3 kv heads, MLP 138), GQA.
func TestStatsStories260KByHand(t *testing.T) {
	dense := parseConfig(t, stories260KConfig)
	s, err := Stats(dense, 64, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Params: embeddings 512·64 (tied) + final norm 64 + 5·(2·64 + 64·64 + 2·64·32 + 64·64 + 3·64·172).
	if s.Params != 260_032 {
		t.Errorf("params %d, want 260032", s.Params)
	}
	want := MACBreakdown{
		AttentionLinear: 5 * 64 * 64 * 8 * (2*8 + 2*4),
		Attention:       5 * 8 * (2*64*64*8 + 64*64),
		Rotary:          5 * 2 * 64 * 8 * (8 + 4),
		MLPLinear:       5 * 3 * 64 * 64 * 172,
		Activation:      5 * 64 * 172,
		Norm:            11 * 2 * 64 * 64,
		LMHead:          64 * 64 * 512,
	}
	if s.Breakdown != want || s.MACs != 19_588_864 {
		t.Errorf("breakdown %+v (total %d), want %+v (19588864)", s.Breakdown, s.MACs, want)
	}
	pruned := dense.Clone()
	for i := 1; i <= 3; i++ {
		pruned.Heads[i], pruned.KVHeads[i], pruned.Inter[i] = 6, 3, 138
	}
	p, err := Stats(pruned, 64, 1)
	if err != nil {
		t.Fatal(err)
	}
	if p.Params != 231_232 || p.MACs != 17_312_128 {
		t.Errorf("pruned: %d params, %d MACs; want 231232, 17312128", p.Params, p.MACs)
	}
	b4, err := Stats(pruned, 128, 4)
	if err != nil {
		t.Fatal(err)
	}
	if b4.MACs != 157_436_928 || b4.MACsPerSequence*4 != b4.MACs {
		t.Errorf("seq 128 batch 4: %d MACs, want 157436928", b4.MACs)
	}
}

func TestStatsBadInput(t *testing.T) {
	c := parseConfig(t, stories260KConfig)
	for _, sb := range [][2]int{{0, 1}, {64, 0}, {-1, 1}} {
		if _, err := Stats(c, sb[0], sb[1]); err == nil {
			t.Errorf("seq %d batch %d accepted", sb[0], sb[1])
		}
	}
	if _, err := Stats(nil, 64, 1); err == nil {
		t.Error("nil config accepted")
	}
	if _, err := BytesPerParam("int3"); err == nil || !strings.Contains(err.Error(), "int3") {
		t.Errorf("unknown dtype: %v", err)
	}
	if FormatParams(260032) != "260.03K" || FormatMACs(999) != "999" || FormatParams(5_422_977_024) != "5.42B" {
		t.Errorf("formatting: %s %s", FormatParams(260032), FormatMACs(999))
	}
}

func TestMeasureLatency(t *testing.T) {
	calls := 0
	delays := []time.Duration{50, 1, 1, 9, 3, 5, 7} // ms; the first two are warm-up
	start := time.Now()
	l, err := MeasureLatency(func() error {
		time.Sleep(delays[calls] * time.Millisecond)
		calls++
		return nil
	}, 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 7 || len(l.Samples) != 5 || l.Warmup != 2 || l.Repeats != 5 {
		t.Fatalf("calls %d, %+v", calls, l)
	}
	total := time.Since(start)
	// Timed sleeps 1, 9, 3, 5, 7 ms → min ≥ 1ms, median ≥ 5ms, max ≥ 9ms. Sleeps only ever take
	// longer on a busy machine, so these lower bounds hold under any load.
	if l.Min < time.Millisecond || l.Median < 5*time.Millisecond || l.Max < 9*time.Millisecond ||
		!(l.Min <= l.Median && l.Median <= l.Max) {
		t.Errorf("latency %v", l)
	}
	// The warm-up calls (≥ 51 ms of sleep) are not timed: the timed samples are disjoint parts of
	// the whole call, which also contains the warm-ups, whatever the machine's load.
	var timed time.Duration
	for _, s := range l.Samples {
		timed += s
	}
	if timed > total-51*time.Millisecond {
		t.Errorf("timed samples %v include the warm-up (whole call %v)", timed, total)
	}
	if PerSecond(100, 2*time.Second) != 50 {
		t.Error("PerSecond")
	}
	boom := errors.New("boom")
	if _, err := MeasureLatency(func() error { return boom }, 1, 3); !errors.Is(err, boom) {
		t.Errorf("error not propagated: %v", err)
	}
	if _, err := MeasureLatency(func() error { return nil }, 0, 0); err == nil {
		t.Error("0 repeats accepted")
	}
}
